/**
 * Task: the two CPUs of the THP-region race (test/mm/thp-regions.test.ts) on ONE process whose
 * window is two 2 MiB regions with MADV_HUGEPAGE.
 *
 *   accessor (CPU A)  stores a value in a random page of the window through its Mmu and loads it
 *                     back, flat out: a page faulted in a region that has its PTE table takes the
 *                     per-VMA-lock fast path; one in a region whose PMD entry is empty takes
 *                     mmap_lock and maps a THP (a PTE table marked PMD_THP_TABLE)
 *   mutator (CPU B)   MADV_DONTNEED of a whole region (the marked table leaves with its PMD entry)
 *                     once A has faulted it in again (a bounded wait; never part of one, which
 *                     would leave a plain table for good)
 *
 * A's check: a load right after its store returns that value or 0 (a DONTNEED in between), never
 * anything else. A fast-path fault that installed an entry into a table B is detaching would lose
 * the page (a frame left at exit) or trip the free check of the table (entries left in it).
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { PMD_THP_TABLE } from '../../../src/mem/pte.js';
import { MADV_DONTNEED } from '../../../src/mm/vm-flags.js';
import { Rng } from './vma-race.js';

export const P = 4096;
export const PMD = 2 ** 21;
export const WINDOW = 0x200000000;
export const REGIONS = 2;

/** sync words: 0 CPUs ready, 1 mutator done. */
export interface ThpRaceArgs {
  role: 'accessor' | 'mutator';
  process: ProcessDescriptor;
  sync: SharedArrayBuffer;
  seed: number;
  durationMs: number;
}

export interface ThpRaceResult {
  /** Accessor: store-load pairs, the first error. Mutator: DONTNEEDs, those that found a THP table. */
  pairs: number;
  calls: number;
  marked: number;
  error: string;
}

export default function run(_cpu: number, args: ThpRaceArgs): ThpRaceResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  try {
    return args.role === 'accessor' ? access(proc, args, sync) : mutate(proc, args);
  } finally {
    if (args.role === 'mutator') Atomics.store(sync, 1, 1);
    proc.detach();
  }
}

function access(proc: Process, args: ThpRaceArgs, sync: Int32Array): ThpRaceResult {
  const mmu = proc.mm.mmu();
  const rng = new Rng(args.seed);
  let pairs = 0;
  let seq = 1;
  let error = '';
  while (Atomics.load(sync, 1) === 0 && error === '') {
    for (let k = 0; k < 64; k++) {
      const addr = WINDOW + rng.below((REGIONS * PMD) / P) * P + rng.below(P / 4) * 4;
      const v = seq++ & 0x7fffffff || 1;
      mmu.store32(addr, v);
      const w = mmu.load32(addr);
      pairs++;
      if (w !== v && w !== 0) error = `0x${addr.toString(16)}: stored ${v}, loaded ${w}`;
    }
  }
  return { pairs, calls: 0, marked: 0, error };
}

function mutate(proc: Process, args: ThpRaceArgs): ThpRaceResult {
  const mm = proc.mm;
  const rng = new Rng(args.seed * 31 + 7);
  const start = Date.now();
  let calls = 0;
  let marked = 0;
  // At least durationMs, and on until 40 DONTNEEDs found a THP region (at most 4 x durationMs).
  for (;;) {
    const spent = Date.now() - start;
    if ((spent >= args.durationMs && marked >= 40) || spent >= 4 * args.durationMs) break;
    const r = WINDOW + rng.below(REGIONS) * PMD;
    // Give A time to fault the region in again (a THP), so that its faults there take the fast path.
    for (let spin = 0; spin < 20_000 && (mm.pt.pmdEntry(r) & PMD_THP_TABLE) === 0; spin++) {
      // Bounded wait.
    }
    if ((mm.pt.pmdEntry(r) & PMD_THP_TABLE) !== 0) marked++;
    mm.madvise(r, PMD, MADV_DONTNEED);
    calls++;
  }
  return { pairs: 0, calls, marked, error: '' };
}
