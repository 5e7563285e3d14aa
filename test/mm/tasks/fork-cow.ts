/**
 * Task: a parent and its child after fork on two CPUs (test/mm/fork-cpus.test.ts). Every page of
 * the window was filled before the fork with snapshot(p, w).
 *
 *   parent (CPU A)  writes parentValue(round, p, w) over every page, round after round, and
 *                   reads each page back: copy-on-write faults and shootdowns on its side
 *   child (CPU B)   meanwhile reads every page flat out: it must see the snapshot only (no leak
 *                   parent -> child); once the parent is done it writes childValue(p, w) into the
 *                   even pages and reads them back
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';

export const P = 4096;
export const WINDOW = 0x200000000;
export const PAGES = 16;
export const ROUNDS = 40;
/** Words checked per page (every STRIDE bytes). */
export const STRIDE = 128;

export const snapshot = (p: number, w: number): number => 0x10000 + p * P + w;
export const parentValue = (round: number, p: number, w: number): number =>
  -(round * 0x100000 + p * P + w + 1);
export const childValue = (p: number, w: number): number => 0x40000000 + p * P + w;

/** sync words: 0 CPUs ready, 1 parent done. */
export interface ForkCowArgs {
  role: 'parent' | 'child';
  process: ProcessDescriptor;
  sync: SharedArrayBuffer;
}

export interface ForkCowResult {
  /** Pages written (parent) or read (child) and checked. */
  pages: number;
  error: string;
}

export default function run(_cpu: number, args: ForkCowArgs): ForkCowResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  try {
    return args.role === 'parent' ? parent(proc, sync) : child(proc, sync);
  } catch (error) {
    return { pages: 0, error: String(error) };
  } finally {
    if (args.role === 'parent') Atomics.store(sync, 1, 1);
    proc.detach();
  }
}

function parent(proc: Process, _sync: Int32Array): ForkCowResult {
  const mmu = proc.mm.mmu();
  let pages = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let p = 0; p < PAGES; p++) {
      const base = WINDOW + p * P;
      for (let w = 0; w < P; w += STRIDE) mmu.store32(base + w, parentValue(round, p, w));
      for (let w = 0; w < P; w += STRIDE) {
        const v = mmu.load32(base + w);
        if (v !== parentValue(round, p, w)) {
          return { pages, error: `parent round ${round} page ${p} word ${w}: ${v}` };
        }
      }
      pages++;
    }
    if ((round & 7) === 0) proc.mm.mprotect(WINDOW, PAGES * P, 1 /* PROT_READ */);
    if ((round & 7) === 0) proc.mm.mprotect(WINDOW, PAGES * P, 3 /* PROT_READ | PROT_WRITE */);
    rcuQuiescent();
  }
  return { pages, error: '' };
}

function child(proc: Process, sync: Int32Array): ForkCowResult {
  const mmu = proc.mm.mmu();
  let pages = 0;
  let last = false;
  while (!last) {
    last = Atomics.load(sync, 1) === 1;
    for (let p = 0; p < PAGES; p++) {
      const base = WINDOW + p * P;
      for (let w = 0; w < P; w += STRIDE) {
        const v = mmu.load32(base + w);
        if (v !== snapshot(p, w))
          return { pages, error: `child page ${p} word ${w}: ${v} (not the snapshot)` };
      }
      pages++;
    }
    rcuQuiescent();
  }
  for (let p = 0; p < PAGES; p += 2) {
    const base = WINDOW + p * P;
    for (let w = 0; w < P; w += STRIDE) mmu.store32(base + w, childValue(p, w));
    for (let w = 0; w < P; w += STRIDE) {
      const v = mmu.load32(base + w);
      if (v !== childValue(p, w)) return { pages, error: `child write page ${p} word ${w}: ${v}` };
    }
  }
  return { pages, error: '' };
}
