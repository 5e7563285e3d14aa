/**
 * The CPUs of `vmspace demo` (src/cli/demo-mm.ts): the task module a Machine runs, one phase per
 * run. CPUs 0..writers-1 are writers, the rest readers, all on ONE address space.
 *
 *   writer  AddressSpace.attach(desc), then seeded random mmap (MAP_FIXED in the window, or a hint
 *           in the window without MAP_FIXED) / munmap / mprotect / mremap, back to back; the only
 *           thing serialising the writers is mmap_lock (taken inside each syscall)
 *   reader  attachFaultMm(desc), then looks up random addresses of the window as a page fault does:
 *           PHASE_VMA_LOCKS  lockVmaUnderRcu, falling back to lockMmAndFindVma (Linux 6.4+)
 *           PHASE_MMAP_LOCK  mmap_lock for read + a tree walk on every lookup (Linux before 6.4)
 *           and, holding the VMA, does a fault's work: checks it (live record, attached, covers
 *           the address), clears a page, checks that the VMA did not change meanwhile
 *
 * A phase starts when every CPU is ready (READY) and lasts `ms` on each CPU. A writer seeds its
 * generator from (seed, writer index) only, so both phases run the same sequence of calls from the
 * same start (the window mapped by one mmap); a reader's addresses are the same in both phases
 * too. Non-fixed mappings a writer gets outside the window go into its ring and are unmapped when
 * the ring is full and at the end of the phase. Counts go to the CPU's row of `results` (Float64);
 * a failed check is counted (ERRORS, and the row's ERR), the first one described in the control
 * words, and the reader goes on. The loops allocate nothing.
 */

import { rangeOut } from '../maple/api.js';
import type { MapleTree } from '../maple/tree.js';
import { AddressSpace, type AddressSpaceDescriptor } from '../mm/address-space.js';
import { attachFaultMm, type FaultMm, lockMmAndFindVma, lockVmaUnderRcu } from '../mm/fault-lookup.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/vm-flags.js';
import { mmapReadLock, mmapReadUnlock, vmaEndRead } from '../mm/vma-lock.js';
import { VMA_ATTACHED, type VmaArena } from '../mm/vma-record.js';
import { Rng } from '../rng.js';
import { rcuQuiescent } from '../sync/rcu.js';

export const PHASE_VMA_LOCKS = 0;
export const PHASE_MMAP_LOCK = 1;

export const P = 4096;
/** The window the writers change and the readers probe: [WINDOW_BASE, WINDOW_BASE + WINDOW_PAGES * P). */
export const WINDOW_BASE = 0x100000000;
export const WINDOW_PAGES = 512;
const WINDOW_END = WINDOW_BASE + WINDOW_PAGES * P;
/** Largest range one call covers, in pages. */
const MAX_PAGES = 16;
/** Non-fixed mappings outside the window a writer keeps before it unmaps the oldest. */
const RING = 16;

/** Control words (Int32): CPUs ready, errors, the first error (kind, cpu, address - WINDOW_BASE, record). */
export const READY = 0;
export const ERRORS = 1;
export const FIRST_KIND = 2;
export const FIRST_CPU = 3;
export const FIRST_OFFSET = 4;
export const FIRST_RECORD = 5;
export const CONTROL_WORDS = 8;

/** Error kinds (FIRST_KIND). */
export const ERR_FREED = 1;
export const ERR_DETACHED = 2;
export const ERR_NOT_COVERING = 3;
export const ERR_CHANGED = 4;
export const ERROR_NAMES = [
  '',
  'freed record',
  'detached VMA',
  'VMA not covering the address',
  'VMA changed while held',
];

/** One row of Float64 results per CPU. */
export const ROW = 8;
/** Writer: calls made, calls that returned an errno. Reader: lookups, by outcome. Both: ELAPSED, ERR. */
export const CALLS = 0;
export const CALLS_FAILED = 1;
export const LOOKUPS = 0;
export const VMA_LOCKED = 1;
export const MMAP_LOCKED = 2;
export const HOLES = 3;
export const ERR = 4;
export const ELAPSED_MS = 5;

export interface MmDemoTaskArgs {
  mm: AddressSpaceDescriptor;
  control: SharedArrayBuffer;
  results: SharedArrayBuffer;
  phase: number;
  writers: number;
  cpus: number;
  ms: number;
  seed: number;
}

/** Bound on the wait for the other CPUs to start. */
const GIVE_UP_MS = 30_000;

export default function demoMmCpu(cpu: number, args: MmDemoTaskArgs): number {
  const control = new Int32Array(args.control);
  const row = new Float64Array(args.results, cpu * ROW * 8, ROW);
  row.fill(0);
  const writer = cpu < args.writers;
  // Attach before the barrier: a phase measures only the loops.
  const mm = writer ? AddressSpace.attach(args.mm) : null;
  const fault = writer ? null : attachFaultMm(args.mm);
  const rng = new Rng(writer ? mix(args.seed, cpu + 1) : mix(args.seed ^ 0x5bd1e995, cpu + 1));
  waitForAll(control, args.cpus);
  const start = performance.now();
  if (mm !== null) writerLoop(mm, rng, row, start + args.ms);
  else readerLoop(fault!, cpu, args.phase, rng, row, control, start + args.ms);
  row[ELAPSED_MS] = performance.now() - start;
  return row[LOOKUPS];
}

function waitForAll(control: Int32Array, cpus: number): void {
  Atomics.add(control, READY, 1);
  Atomics.notify(control, READY);
  const giveUp = Date.now() + GIVE_UP_MS;
  for (;;) {
    const ready = Atomics.load(control, READY);
    if (ready >= cpus) return;
    if (Date.now() > giveUp) throw new Error(`demo: only ${ready} of ${cpus} CPUs started`);
    Atomics.wait(control, READY, ready, 10);
  }
}

// ---- writers -------------------------------------------------------------------------------------

const PROTS = [PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE];
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/**
 * The writers' mix, out of 16: mmap MAP_FIXED 5, mmap with a hint 2, munmap 3, mprotect 3, mremap
 * 3. A phase starts with the window mapped, and a call that leaves a hole in it (munmap, a move, a
 * shrink) is followed by an mmap MAP_FIXED of the hole: a program returning memory and taking it
 * back. So lookups land on mapped memory, as faults do (a fault on a hole is a SIGSEGV, and costs
 * the per-VMA path a fallback to mmap_lock); the holes readers still see are the transient ones.
 */
function writerLoop(mm: AddressSpace, rng: Rng, row: Float64Array, end: number): void {
  const ring = new Float64Array(RING * 2);
  let used = 0;
  let calls = 0;
  let failed = 0;
  for (let n = 0; (n & 63) !== 0 || performance.now() < end; n++) {
    const addr = WINDOW_BASE + rng.below(WINDOW_PAGES - MAX_PAGES) * P;
    const len = (1 + rng.below(MAX_PAGES)) * P;
    const op = rng.below(16);
    let r: number;
    // A hole a call leaves in the window (at `hole`, `holeLen` bytes) is mapped again right after.
    let hole = addr;
    let holeLen = 0;
    if (op < 5) r = mm.sysMmap(addr, len, PROTS[rng.below(2)], ANON | MAP_FIXED, -1, 0);
    else if (op < 7) {
      // A hint, not MAP_FIXED: used when free, otherwise the mapping lands below mmap_base.
      r = mm.sysMmap(addr, len, PROTS[rng.below(2)], ANON, -1, 0);
      if (r >= 0 && (r < WINDOW_BASE || r >= WINDOW_END)) {
        if (used === RING) {
          failed += mm.sysMunmap(ring[0], ring[1]) < 0 ? 1 : 0;
          calls++;
          ring.copyWithin(0, 2);
          used--;
        }
        ring[used * 2] = r;
        ring[used * 2 + 1] = len;
        used++;
      }
    } else if (op < 10) {
      r = mm.sysMunmap(addr, len);
      holeLen = len;
    } else if (op < 13) r = mm.sysMprotect(addr, len, PROTS[rng.below(3)]);
    else {
      const to = WINDOW_BASE + rng.below(WINDOW_PAGES - MAX_PAGES) * P;
      if (Math.abs(to - addr) >= len) {
        r = mm.sysMremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
        holeLen = r >= 0 ? len : 0;
      } else {
        const newLen = (1 + rng.below(MAX_PAGES)) * P;
        r = mm.sysMremap(addr, len, newLen, 0, 0);
        if (r >= 0 && newLen < len) {
          hole = addr + newLen;
          holeLen = len - newLen;
        }
      }
    }
    calls++;
    if (r < 0) failed++;
    if (holeLen !== 0) {
      calls++;
      if (mm.sysMmap(hole, holeLen, PROTS[rng.below(2)], ANON | MAP_FIXED, -1, 0) < 0) failed++;
    }
    rcuQuiescent();
  }
  for (let i = 0; i < used; i++) {
    failed += mm.sysMunmap(ring[i * 2], ring[i * 2 + 1]) < 0 ? 1 : 0;
    calls++;
  }
  // Nodes this CPU's tree writer keeps cached go back to the arena.
  (mm.index as MapleTree).releasePreallocated();
  row[CALLS] = calls;
  row[CALLS_FAILED] = failed;
}

// ---- readers -------------------------------------------------------------------------------------

/** Outcomes of one lookup. */
const GOT_VMA_LOCK = 0;
const GOT_MMAP_LOCK = 1;
const GOT_HOLE = 2;

type FaultSide = FaultMm & { readonly arena: VmaArena };

/** This CPU's walk result (one thread per CPU). */
const out = rangeOut();
/** Outcome counts of the current loop: GOT_* (reused). */
const outcomes = new Float64Array(3);

function readerLoop(
  mm: FaultSide,
  cpu: number,
  phase: number,
  rng: Rng,
  row: Float64Array,
  control: Int32Array,
  end: number,
): void {
  outcomes.fill(0);
  let lookups = 0;
  let errors = 0;
  while ((lookups & 63) !== 0 || performance.now() < end) {
    const addr = WINDOW_BASE + rng.below(WINDOW_PAGES * P);
    const got = phase === PHASE_VMA_LOCKS ? lookupVmaLocks(mm, addr) : lookupMmapLock(mm, addr);
    if (got >= 0) outcomes[got]++;
    else {
      errors++;
      report(control, -got, cpu, addr, checked);
    }
    lookups++;
    if ((lookups & 15) === 0) rcuQuiescent();
  }
  row[LOOKUPS] = lookups;
  row[VMA_LOCKED] = outcomes[GOT_VMA_LOCK];
  row[MMAP_LOCKED] = outcomes[GOT_MMAP_LOCK];
  row[HOLES] = outcomes[GOT_HOLE];
  row[ERR] = errors;
}

/** lock_vma_under_rcu, falling back to lock_mm_and_find_vma: GOT_* or -ERR_*. */
function lookupVmaLocks(mm: FaultSide, addr: number): number {
  let h = lockVmaUnderRcu(mm, addr);
  if (h !== 0) {
    const bad = fault(mm.arena, h, addr);
    vmaEndRead(mm.locks, h);
    return bad === 0 ? GOT_VMA_LOCK : -bad;
  }
  h = lockMmAndFindVma(mm, addr);
  if (h === 0) return GOT_HOLE;
  const bad = fault(mm.arena, h, addr);
  mmapReadUnlock(mm.locks);
  return bad === 0 ? GOT_MMAP_LOCK : -bad;
}

/** The pre-6.4 fault: mmap_lock for read around the walk and the work. GOT_* or -ERR_*. */
function lookupMmapLock(mm: FaultSide, addr: number): number {
  mmapReadLock(mm.locks);
  const h = mm.index.load(addr, out);
  const bad = h > 0 ? fault(mm.arena, h, addr) : 0;
  mmapReadUnlock(mm.locks);
  if (bad !== 0) return -bad;
  return h > 0 ? GOT_MMAP_LOCK : GOT_HOLE;
}

/** The record last checked (for the error report). */
let checked = 0;
/** The page this CPU's faults clear (clear_page of a new anonymous page): the work done while held. */
const page = new Float64Array(P / 8);

/**
 * The fault, holding VMA `h` (by its read lock or mmap_lock): checks that it is a live, attached
 * record covering `addr`, clears a page, and checks that the VMA did not change meanwhile.
 * 0, or the ERR_* kind.
 */
function fault(a: VmaArena, h: number, addr: number): number {
  checked = h;
  if (!a.arena.isLive(h)) return ERR_FREED;
  if (a.state(h) !== VMA_ATTACHED) return ERR_DETACHED;
  const start = a.start(h);
  const end = a.end(h);
  const flags = a.flags(h);
  const pgoff = a.pgoff(h);
  if (!(start <= addr && addr < end)) return ERR_NOT_COVERING;
  page.fill(addr);
  if (a.start(h) !== start || a.end(h) !== end || a.flags(h) !== flags || a.pgoff(h) !== pgoff)
    return ERR_CHANGED;
  if (a.state(h) !== VMA_ATTACHED) return ERR_DETACHED;
  return 0;
}

/** Counts an error; the first one of the run is described in the control words. */
function report(control: Int32Array, kind: number, cpu: number, addr: number, h: number): void {
  if (Atomics.add(control, ERRORS, 1) !== 0) return;
  control[FIRST_CPU] = cpu;
  control[FIRST_OFFSET] = addr - WINDOW_BASE;
  control[FIRST_RECORD] = h;
  Atomics.store(control, FIRST_KIND, kind);
}

// ---- seeded generator ----------------------------------------------------------------------------

/** A seed per (run seed, stream): a few rounds of integer mixing, never 0. */
function mix(seed: number, stream: number): number {
  let x = (seed ^ Math.imul(stream, 0x9e3779b9)) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  x ^= x >>> 16;
  return x === 0 ? 0x6d2b79f5 : x;
}
