/**
 * Task: the two CPUs of the MMU race (test/mm/mmu-cpus.test.ts) on ONE process.
 *
 *   accessor (CPU A)  stores and loads a per-page pattern in the window through its Mmu, flat out;
 *                     a MemoryFault is expected whenever the page is unmapped or protected
 *   mutator (CPU B)   random munmap / mmap / mprotect / mremap / MADV_DONTNEED on the window, and
 *                     between them remaps its own scratch range and fills it with poison (negative
 *                     words) through its own Mmu, so a frame freed from the window is soon reused
 *                     and poisoned
 *
 * B bumps the page's generation (gen[p], shared, a seqlock: odd while a call that may change the
 * page runs) before and after every such call. A's checks: it never reads poison (a stale
 * translation to a reused frame); when a page's generation was even and did not move between
 * A's store and its load, the load returns exactly what A stored; anything else A reads is 0 or a
 * well-formed value A stored (mremap moves A's pages around the window).
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { MemoryFault } from '../../../src/mem/tlb.js';
import type { AddressSpace } from '../../../src/mm/address-space.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/mm/vm-flags.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import { Rng } from './vma-race.js';

export const P = 4096;
export const WINDOW = 0x200000000;
export const WINDOW_PAGES = 32;
export const SCRATCH = 0x300000000;
export const SCRATCH_PAGES = 64;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const RW = PROT_READ | PROT_WRITE;
const PROTS = [PROT_READ, RW, PROT_NONE, RW];

/** sync words: 0 CPUs ready, 1 mutator done, 2 accessor errors. */
export interface MmuRaceArgs {
  role: 'accessor' | 'mutator';
  process: ProcessDescriptor;
  gen: SharedArrayBuffer;
  sync: SharedArrayBuffer;
  seed: number;
  durationMs: number;
}

export interface MmuRaceResult {
  /** Accessor: checked store-load pairs, faults taken, the first error. Mutator: calls made. */
  pairs: number;
  faults: number;
  calls: number;
  poisonFills: number;
  error: string;
}

export default function run(_cpu: number, args: MmuRaceArgs): MmuRaceResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  try {
    return args.role === 'accessor' ? access(proc, args, sync) : mutate(proc, args, sync);
  } finally {
    if (args.role === 'mutator') Atomics.store(sync, 1, 1);
    proc.detach();
  }
}

function access(proc: Process, args: MmuRaceArgs, sync: Int32Array): MmuRaceResult {
  const mmu = proc.mm.mmu();
  const gen = new Int32Array(args.gen);
  const rng = new Rng(args.seed);
  let seq = 1;
  let pairs = 0;
  let faults = 0;
  let error = '';
  const bad = (what: string): void => {
    if (error === '') error = what;
    Atomics.add(sync, 2, 1);
  };
  const wellFormed = (v: number): boolean => {
    const page = (v >>> 20) - 1;
    return v === 0 || (v > 0 && page >= 0 && page < WINDOW_PAGES);
  };
  while (Atomics.load(sync, 1) === 0 && error === '') {
    for (let k = 0; k < 64; k++) {
      const p = rng.below(WINDOW_PAGES);
      const addr = WINDOW + p * P + rng.below(P / 4) * 4;
      const v = ((p + 1) << 20) | (seq++ & 0xfffff);
      const g1 = Atomics.load(gen, p);
      let w: number;
      try {
        mmu.store32(addr, v);
        w = mmu.load32(addr);
      } catch (e) {
        if (!(e instanceof MemoryFault)) throw e;
        faults++;
        continue;
      }
      const g2 = Atomics.load(gen, p);
      pairs++;
      if (w < 0) bad(`poison 0x${(w >>> 0).toString(16)} read at 0x${addr.toString(16)}`);
      else if ((g1 & 1) === 0 && g1 === g2 && w !== v)
        bad(`0x${addr.toString(16)}: stored ${v}, loaded ${w} with the page's generation unchanged`);
      else if (!wellFormed(w)) bad(`0x${addr.toString(16)}: loaded ${w}, never stored`);
      // A plain read of another page: never poison, never a value nobody stored.
      const q = rng.below(WINDOW_PAGES);
      try {
        const x = mmu.load32(WINDOW + q * P + rng.below(P / 4) * 4);
        if (x < 0) bad(`poison 0x${(x >>> 0).toString(16)} read in page ${q}`);
        else if (!wellFormed(x)) bad(`page ${q}: loaded ${x}, never stored`);
      } catch (e) {
        if (!(e instanceof MemoryFault)) throw e;
        faults++;
      }
    }
  }
  return { pairs, faults, calls: 0, poisonFills: 0, error };
}

function mutate(proc: Process, args: MmuRaceArgs, sync: Int32Array): MmuRaceResult {
  const mm = proc.mm;
  const gen = new Int32Array(args.gen);
  const rng = new Rng(args.seed * 31 + 7);
  const deadline = Date.now() + args.durationMs;
  let calls = 0;
  let fills = 0;
  const bump = (from: number, n: number): void => {
    for (let p = from; p < from + n && p < WINDOW_PAGES; p++) Atomics.add(gen, p, 1);
  };
  while (Date.now() < deadline && Atomics.load(sync, 2) === 0) {
    const p = rng.below(WINDOW_PAGES);
    const n = 1 + rng.below(Math.min(8, WINDOW_PAGES - p));
    const addr = WINDOW + p * P;
    const op = rng.below(6);
    bump(p, n);
    if (op === 0) mm.sysMunmap(addr, n * P);
    else if (op === 1) mm.sysMmap(addr, n * P, RW, ANON, -1, 0);
    else if (op === 2) mm.sysMprotect(addr, n * P, PROTS[rng.below(PROTS.length)]);
    else if (op === 3) mm.sysMadvise(addr, n * P, MADV_DONTNEED);
    else {
      const q = rng.below(WINDOW_PAGES - n + 1);
      if (q + n <= p || q >= p + n) {
        bump(q, n);
        mm.sysMremap(addr, n * P, n * P, MREMAP_MAYMOVE | MREMAP_FIXED, WINDOW + q * P);
        bump(q, n);
      }
    }
    bump(p, n);
    calls++;
    if ((calls & 3) === 0) {
      refillScratch(mm, -(1 + fills));
      fills++;
    }
    rcuQuiescent();
  }
  return { pairs: 0, faults: 0, calls, poisonFills: fills, error: '' };
}

const poison = new Int32Array(P / 4);
const poisonBytes = new Uint8Array(poison.buffer);

/**
 * Reuse of freed frames: a fresh scratch mapping [SCRATCH, + SCRATCH_PAGES pages), every word
 * set to `value` (negative: never a value an accessor stores) through this CPU's Mmu, which
 * stays online afterwards.
 */
export function refillScratch(mm: AddressSpace, value: number): void {
  mm.sysMunmap(SCRATCH, SCRATCH_PAGES * P);
  mm.sysMmap(SCRATCH, SCRATCH_PAGES * P, RW, ANON, -1, 0);
  poison.fill(value);
  const mmu = mm.mmu();
  for (let k = 0; k < SCRATCH_PAGES; k++) {
    if (mmu.copyOut(SCRATCH + k * P, poisonBytes) !== 0) throw new Error('scratch copyOut faulted');
  }
}
