/**
 * Task: the CPUs of the GUP-fast races (test/mm/gup-cpus.test.ts), all on ONE process.
 *
 *   pinner   (CPU A)  GUP-fast pins and gets (read and write, through the API and the bare lockless
 *                     walk) of random pages of the window, flat out; every page returned is checked
 *                     twice while held: an anonymous frame, pinned (or referenced), PG_ANON_EXCLUSIVE
 *                     for a pin, holding only zeros or its own page's pattern (never poison, a
 *                     scratch value or another page's pattern); then unpinned or put
 *   mutator  (CPU B)  random munmap+mmap, mprotect (R, NONE), fork (the child writes, then exits),
 *                     MADV_DONTNEED, mremap of the whole 2 MiB window away and back (a PTE table
 *                     moved by its PMD entry), each followed by a refill of the pattern; and a
 *                     scratch range remapped and filled with negative values, so that freed frames
 *                     are soon reused
 *   forkpin  (CPU A)  (the fork race) pins one page (fast, read or write), then several times:
 *                     the "device" writes a fresh value into the pinned frame and the process must
 *                     load it through the Mmu, the process stores one and the pin must see it
 *   forker   (CPU B)  (the fork race) fork, a store into every page (copy-on-write of whatever fork
 *                     shared), exit of the child, flat out
 *   holder   (CPU B)  takes mmap_lock for write and keeps it until told to let go
 */

import { EAGAIN, EFAULT } from '../../../src/errno.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import type { PhysMem } from '../../../src/mem/frames.js';
import { GUP_PIN_COUNTING_BIAS, KIND_ANON, PG_ANON_EXCLUSIVE, ZERO_PFN } from '../../../src/mem/page.js';
import { FOLL_PIN, gupFast } from '../../../src/mm/gup.js';
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
import { mmapWriteLock, mmapWriteUnlock } from '../../../src/mm/vma-lock.js';
import { Rng } from '../../../src/rng.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';

export const P = 4096;
/** The window: one VMA of 2 MiB (so that mremap moves its PTE table whole); pages 0..PAGES-1 used. */
export const WINDOW = 0x200000000;
export const WINDOW_LEN = 2 * 1024 * 1024;
export const PAGES = 16;
const ALT = 0x240000000;
const SCRATCH = 0x300000000;
const SCRATCH_PAGES = 32;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const RW = PROT_READ | PROT_WRITE;
/** Words checked per page: every SAMPLE-th. */
const SAMPLE = 16;

/** The value of word w (a byte offset) of window page p; never 0, poison or negative. */
export const pattern = (p: number, w: number): number => 0x10000000 + p * P + w;

/** sync words: 0 CPUs ready, 1 the mutating CPU is done, 2 errors seen, 3 let go (holder). */
export interface GupRaceArgs {
  role: 'pinner' | 'mutator' | 'forkpin' | 'forker' | 'holder';
  process: ProcessDescriptor;
  sync: SharedArrayBuffer;
  seed: number;
  durationMs: number;
}

export interface GupRaceResult {
  /** Calls that returned pages, pages checked, pages the bare lockless walk had, EFAULTs, EAGAINs. */
  calls: number;
  pages: number;
  lockless: number;
  efaults: number;
  eagains: number;
  /** Mutating CPU: operations (forks for the forker). */
  ops: number;
  error: string;
}

function result(): GupRaceResult {
  return { calls: 0, pages: 0, lockless: 0, efaults: 0, eagains: 0, ops: 0, error: '' };
}

export default function run(_cpu: number, args: GupRaceArgs): GupRaceResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  if (args.role === 'holder') return hold(proc, sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  const mutating = args.role === 'mutator' || args.role === 'forker';
  try {
    if (args.role === 'pinner') return pinner(proc, args, sync);
    if (args.role === 'mutator') return mutator(proc, args, sync);
    if (args.role === 'forkpin') return forkPinner(proc, args, sync);
    return forker(proc, args, sync);
  } finally {
    if (mutating) Atomics.store(sync, 1, 1);
    proc.detach();
  }
}

/** Writes the pattern into window pages [p, p + n) through this CPU's Mmu (stops at a fault). */
export function refill(proc: Process, p: number, n: number): void {
  const mmu = proc.mm.mmu();
  const page = new Int32Array(P / 4);
  const bytes = new Uint8Array(page.buffer);
  for (let q = p; q < p + n; q++) {
    for (let w = 0; w < P; w += 4) page[w >> 2] = pattern(q, w);
    if (mmu.copyOut(WINDOW + q * P, bytes) !== 0) return;
  }
}

/** '' or what is wrong with frame pfn returned for window page p (pin: pinned, else referenced). */
function checkFrame(mem: PhysMem, pfn: number, p: number, pin: boolean): string {
  if (pfn === ZERO_PFN) return pin ? `page ${p}: the zero page pinned` : zeroCheck(mem, pfn, p);
  if (mem.kind[pfn] !== KIND_ANON)
    return `page ${p}: pfn ${pfn} is not anonymous (${mem.describeFrame(pfn)})`;
  const ref = mem.refcountOf(pfn);
  if (pin ? ref < GUP_PIN_COUNTING_BIAS : ref < 1) return `page ${p}: pfn ${pfn} refcount ${ref}`;
  if (pin && !mem.testFlag(pfn, PG_ANON_EXCLUSIVE)) return `page ${p}: pinned pfn ${pfn} is not exclusive`;
  const base = pfn * (P / 4);
  for (let w = 0; w < P; w += 4 * SAMPLE) {
    const v = Atomics.load(mem.i32, base + (w >> 2));
    if (v !== 0 && v !== pattern(p, w)) {
      return `page ${p}: pfn ${pfn} word ${w} holds 0x${(v >>> 0).toString(16)} (not 0 or the page's pattern)`;
    }
  }
  return '';
}

function zeroCheck(mem: PhysMem, pfn: number, p: number): string {
  const base = pfn * (P / 4);
  for (let w = 0; w < P / 4; w += SAMPLE)
    if (mem.i32[base + w] !== 0) return `page ${p}: the zero page is not zero`;
  return '';
}

const MODES = [
  { pin: true, write: false },
  { pin: true, write: true },
  { pin: false, write: false },
  { pin: false, write: true },
];

function pinner(proc: Process, args: GupRaceArgs, sync: Int32Array): GupRaceResult {
  const mm = proc.mm;
  const mem = proc.kernel.mem;
  const rng = new Rng(args.seed);
  const res = result();
  const out: number[] = [];
  const fail = (what: string): void => {
    if (res.error === '') res.error = what;
    Atomics.add(sync, 2, 1);
  };
  while (Atomics.load(sync, 1) === 0 && res.error === '') {
    const p = rng.below(PAGES);
    const n = 1 + rng.below(Math.min(3, PAGES - p));
    const m = rng.below(MODES.length + 1);
    const addr = WINDOW + p * P;
    const pin = m === MODES.length || MODES[m].pin;
    let r: number[] | number;
    if (m === MODES.length) {
      out.length = 0;
      const had = gupFast(mm, addr, n, FOLL_PIN, out);
      out.length = had;
      res.lockless += had;
      r = out;
    } else {
      const mode = MODES[m];
      const opts = { write: mode.write };
      r = mode.pin ? mm.pinUserPagesFast(addr, n, opts, out) : mm.getUserPagesFast(addr, n, opts, out);
    }
    if (typeof r === 'number') {
      if (r === -EFAULT) res.efaults++;
      else if (r === -EAGAIN) res.eagains++;
      else fail(`GUP of page ${p} (mode ${m}): errno ${-r}`);
      continue;
    }
    res.calls++;
    // Check every page, twice while holding it (a frame freed under the pin would show at once).
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < r.length && res.error === ''; i++) {
        const why = checkFrame(mem, r[i], p + i, pin);
        if (why !== '') fail(why);
      }
    }
    res.pages += r.length;
    for (let i = 0; i < r.length; i++) {
      if (pin) mem.unpinPage(r[i]);
      else mem.putPage(r[i]);
    }
    rcuQuiescent();
  }
  return res;
}

function mutator(proc: Process, args: GupRaceArgs, sync: Int32Array): GupRaceResult {
  const mm = proc.mm;
  const mmu = mm.mmu();
  const rng = new Rng(args.seed * 31 + 7);
  const res = result();
  const deadline = Date.now() + args.durationMs;
  const junk = new Int32Array(P / 4);
  const junkBytes = new Uint8Array(junk.buffer);
  while (Date.now() < deadline && Atomics.load(sync, 2) === 0) {
    const p = rng.below(PAGES);
    const n = 1 + rng.below(Math.min(6, PAGES - p));
    const addr = WINDOW + p * P;
    const op = rng.below(7);
    if (op === 0) {
      mm.sysMunmap(addr, n * P);
      mm.sysMmap(addr, n * P, RW, ANON, -1, 0);
    } else if (op === 1) {
      mm.sysMprotect(addr, n * P, rng.below(2) === 0 ? PROT_READ : PROT_NONE);
      mm.sysMprotect(addr, n * P, RW);
    } else if (op === 2) {
      const child = proc.fork();
      junk.fill(-1);
      child.mm.mmu().copyOut(addr, junkBytes); // the child's copy-on-write (a fault is fine)
      child.detach();
      child.exit();
    } else if (op === 3) {
      mm.sysMadvise(addr, n * P, MADV_DONTNEED);
    } else if (op === 4) {
      // The whole window away and back: its PTE table moves by its PMD entry (EFAULT once split).
      if (mm.sysMremap(WINDOW, WINDOW_LEN, WINDOW_LEN, MREMAP_MAYMOVE | MREMAP_FIXED, ALT) === ALT) {
        mm.sysMremap(ALT, WINDOW_LEN, WINDOW_LEN, MREMAP_MAYMOVE | MREMAP_FIXED, WINDOW);
      }
    } else if (op === 5) {
      // Back to one 2 MiB VMA.
      mm.sysMunmap(WINDOW, WINDOW_LEN);
      mm.sysMmap(WINDOW, WINDOW_LEN, RW, ANON, -1, 0);
    } else {
      // Reuse freed frames: a fresh scratch range full of negative values.
      mm.sysMunmap(SCRATCH, SCRATCH_PAGES * P);
      mm.sysMmap(SCRATCH, SCRATCH_PAGES * P, RW, ANON, -1, 0);
      junk.fill(-(2 + res.ops));
      for (let k = 0; k < SCRATCH_PAGES; k++) mmu.copyOut(SCRATCH + k * P, junkBytes);
    }
    refill(proc, op >= 4 ? 0 : p, op >= 4 ? PAGES : n);
    res.ops++;
    rcuQuiescent();
  }
  return res;
}

function forkPinner(proc: Process, args: GupRaceArgs, sync: Int32Array): GupRaceResult {
  const mm = proc.mm;
  const mem = proc.kernel.mem;
  const rng = new Rng(args.seed);
  const res = result();
  const out: number[] = [];
  const ro = { write: false };
  const rw = { write: true };
  while (Atomics.load(sync, 1) === 0 && res.error === '') {
    const p = rng.below(PAGES);
    const n = rng.below(2) === 0 ? 1 : PAGES - p;
    const write = rng.below(2) === 0;
    const r = mm.pinUserPagesFast(WINDOW + p * P, n, write ? rw : ro, out);
    if (r === -EAGAIN) {
      res.eagains++;
      continue;
    }
    if (typeof r === 'number' || r.length !== n) {
      res.error = `pin of pages ${p}..${p + n - 1}: ${typeof r === 'number' ? `errno ${-r}` : `${r.length} pages`}`;
      break;
    }
    for (let i = 0; i < n && res.error === ''; i++)
      res.error = deviceAndProcess(proc, mem, p + i, r[i], write);
    if (res.error !== '') Atomics.add(sync, 2, 1);
    for (let i = 0; i < n; i++) mem.unpinPage(r[i]);
    res.calls++;
    res.pages += n;
    rcuQuiescent();
  }
  return res;
}

let value = 1;

/**
 * '' or what shows that pinned frame pfn is not window page p's: the device writes a fresh value
 * (write pins) that the process must load; the process stores one the pin must see.
 */
function deviceAndProcess(proc: Process, mem: PhysMem, p: number, pfn: number, write: boolean): string {
  const mmu = proc.mm.mmu();
  const addr = WINDOW + p * P;
  const w = pfn * (P / 4);
  for (let k = 0; k < 2; k++) {
    value = (value + 1) & 0x3fffffff;
    if (write) {
      Atomics.store(mem.i32, w, value);
      const seen = mmu.load32(addr);
      if (seen !== value) return `page ${p}: the device wrote ${value}, the process loads ${seen}`;
    }
    mmu.store32(addr + 4, value);
    const got = Atomics.load(mem.i32, w + 1);
    if (got !== value) return `page ${p}: the process stored ${value}, the pin reads ${got}`;
    if (!mem.testFlag(pfn, PG_ANON_EXCLUSIVE)) return `page ${p}: pinned pfn ${pfn} lost PG_ANON_EXCLUSIVE`;
  }
  return '';
}

function forker(proc: Process, args: GupRaceArgs, sync: Int32Array): GupRaceResult {
  const mmu = proc.mm.mmu();
  const res = result();
  const deadline = Date.now() + args.durationMs;
  while (Date.now() < deadline && Atomics.load(sync, 2) === 0) {
    const child = proc.fork();
    // Copy-on-write of every page fork shared (a pin lost to it would now be the child's page).
    for (let p = 0; p < PAGES; p++) mmu.store32(WINDOW + p * P + 2048, res.ops);
    child.exit();
    res.ops++;
    rcuQuiescent();
  }
  return res;
}

function hold(proc: Process, sync: Int32Array): GupRaceResult {
  mmapWriteLock(proc.mm.locks);
  Atomics.store(sync, 0, 1);
  Atomics.notify(sync, 0);
  const deadline = Date.now() + 10_000;
  while (Atomics.load(sync, 3) === 0 && Date.now() < deadline) Atomics.wait(sync, 3, 0, 10);
  mmapWriteUnlock(proc.mm.locks);
  proc.detach();
  return result();
}
