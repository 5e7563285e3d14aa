/**
 * Task: the two CPUs of test/mm/munmap-neighbour-cpus.test.ts on ONE process.
 *
 *   owner (CPU A)      keeps its VMA [BASE, BASE + OWN_PAGES pages) mapped and stores and loads a
 *                      per-page pattern through its Mmu; every few rounds it discards a page
 *                      (MADV_DONTNEED) and empties its TLB, so that it faults again (the per-VMA-
 *                      lock path) and walks the page tables (lock-free) while B runs
 *   neighbour (CPU B)  maps a VMA right after A's, in the same 2 MiB region and past it, fills it
 *                      through its own Mmu, and unmaps it: munmap zaps and runs free_pgtables with
 *                      mmap_lock downgraded to read, next to A's faults and walks
 *
 * A's pages share B's PTE table in the first region and B's PMD table everywhere: a free_pgtables
 * that freed a table A still uses would show A a zero page, a foreign value or (with poisoning)
 * poison. A checks every load: exactly its last store, or 0 right after its own discard.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/mm/vm-flags.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import { Rng } from './vma-race.js';

export const P = 4096;
/** A 2 MiB-aligned base: A's VMA starts a region that B's VMAs share. */
export const BASE = 0x4_0000_0000;
export const OWN_PAGES = 64;
/** B's VMA: from A's end, up to this many pages (into the next regions). */
export const NEIGHBOUR_MAX_PAGES = 1024;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
export const RW = PROT_READ | PROT_WRITE;
/** B's protections differ from A's, so the two VMAs never merge: neighbours, not one VMA. */
const RWX = RW | PROT_EXEC;

/** sync words: 0 CPUs ready, 1 neighbour done, 2 owner errors. */
export interface NeighbourRaceArgs {
  role: 'owner' | 'neighbour';
  process: ProcessDescriptor;
  sync: SharedArrayBuffer;
  seed: number;
  durationMs: number;
}

export interface NeighbourRaceResult {
  /** Owner: loads checked, pages discarded and faulted again. Neighbour: munmaps. */
  checks: number;
  refaults: number;
  unmaps: number;
  error: string;
}

export default function run(_cpu: number, args: NeighbourRaceArgs): NeighbourRaceResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  try {
    return args.role === 'owner' ? own(proc, args, sync) : neighbour(proc, args, sync);
  } finally {
    if (args.role === 'neighbour') Atomics.store(sync, 1, 1);
    proc.detach();
  }
}

function own(proc: Process, args: NeighbourRaceArgs, sync: Int32Array): NeighbourRaceResult {
  const mmu = proc.mm.mmu();
  const rng = new Rng(args.seed);
  const last = new Int32Array(OWN_PAGES);
  let checks = 0;
  let refaults = 0;
  let error = '';
  for (let round = 1; Atomics.load(sync, 1) === 0 && error === ''; round++) {
    for (let p = 0; p < OWN_PAGES && error === ''; p++) {
      const addr = BASE + p * P + 8 * (round & 63);
      const got = mmu.load32(BASE + p * P);
      checks++;
      if (got !== last[p]) {
        error = `page ${p}: loaded ${got}, last stored ${last[p]} (round ${round})`;
        Atomics.add(sync, 2, 1);
      }
      const v = ((p + 1) << 20) | (round & 0xfffff);
      mmu.store32(BASE + p * P, v);
      mmu.store32(addr, v);
      last[p] = v;
    }
    if (round % 8 === 0) {
      const p = rng.below(OWN_PAGES);
      if (proc.mm.sysMadvise(BASE + p * P, P, MADV_DONTNEED) !== 0) error = 'madvise failed';
      last[p] = 0;
      refaults++;
      mmu.flushLocal();
    }
    rcuQuiescent();
  }
  return { checks, refaults, unmaps: 0, error };
}

function neighbour(proc: Process, args: NeighbourRaceArgs, sync: Int32Array): NeighbourRaceResult {
  const mm = proc.mm;
  const mmu = mm.mmu();
  const rng = new Rng(args.seed * 31 + 7);
  const deadline = Date.now() + args.durationMs;
  const start = BASE + OWN_PAGES * P;
  let unmaps = 0;
  while (Date.now() < deadline && Atomics.load(sync, 2) === 0) {
    const pages = 1 + rng.below(NEIGHBOUR_MAX_PAGES);
    if (mm.sysMmap(start, pages * P, RWX, ANON, -1, 0) !== start) throw new Error('neighbour mmap failed');
    for (let k = 0; k < pages; k += 1 + rng.below(8)) mmu.store32(start + k * P, -1 - k);
    if (mm.sysMunmap(start, pages * P) !== 0) throw new Error('neighbour munmap failed');
    unmaps++;
    rcuQuiescent();
  }
  return { checks: 0, refaults: 0, unmaps, error: '' };
}
