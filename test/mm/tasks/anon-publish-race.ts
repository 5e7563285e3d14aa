/**
 * Task: a write fault that gives a fresh VMA its anon_vma (the mmap_lock path's fault stage)
 * against a lockless reader of the page tables, on two CPUs of one process.
 *
 *   faulter (CPU 1)   per round, once the round's fresh VMA is mapped: one write to its first page
 *                     (the VMA has no anon_vma, so the fault falls back to mmap_lock, which makes one)
 *   watcher (CPU 0)   per round: maps the fresh VMA (MAP_FIXED over the last), then, until the
 *                     faulter's write is done, reads the page's entry under its PTL: a frame mapped
 *                     there must belong to the anon_vma the VMA names (anon_vma_prepare publishes the
 *                     anon_vma before the fault maps a page of it, as Linux's does)
 *
 * The anchor VMA at the start of the 2 MiB region keeps the PTE table the watcher locks.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { rangeOut } from '../../../src/maple/api.js';
import { ZERO_PFN } from '../../../src/mem/page.js';
import { pteIndex, ptePfn } from '../../../src/mem/pte.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE } from '../../../src/mm/vm-flags.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import { P, RW, SPAN_PAGES, WIN } from './spec-race.js';

/** sync words: 0 CPUs ready, 1 the round mapped (watcher; STOP once it left), 2 the round written (faulter). */
export interface AnonPublishArgs {
  role: 'faulter' | 'watcher';
  process: ProcessDescriptor;
  sync: SharedArrayBuffer;
  rounds: number;
}

export interface AnonPublishResult {
  /** Watcher: entries seen mapped with a frame while the faulter's write was in flight. */
  seen: number;
  error: string;
}

/** Bounded waits: the watchdog stops a stuck CPU long before this many spins. */
const SPIN_LIMIT = 2e9;
/** sync[1] once the watcher has left. */
const STOP = 0x7fffffff;

export default function run(_cpu: number, args: AnonPublishArgs): AnonPublishResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  for (let n = 0; Atomics.load(sync, 0) < 2 && n < SPIN_LIMIT; n++) {
    // Start together.
  }
  try {
    return args.role === 'faulter' ? faulter(proc, args, sync) : watcher(proc, args, sync);
  } finally {
    // The watcher stops the faulter when it leaves (early, on a finding).
    if (args.role === 'watcher') Atomics.store(sync, 1, STOP);
    proc.detach();
  }
}

function faulter(proc: Process, args: AnonPublishArgs, sync: Int32Array): AnonPublishResult {
  const mmu = proc.mm.mmu();
  for (let round = 1; round <= args.rounds; round++) {
    for (let n = 0; Atomics.load(sync, 1) < round && n < SPIN_LIMIT; n++) rcuQuiescent();
    if (Atomics.load(sync, 1) === STOP) break;
    mmu.store32(WIN, round);
    // Offline while it waits: the watcher's next mmap zaps the page and shoots it down.
    proc.mm.mmuOffline();
    Atomics.store(sync, 2, round);
  }
  return { seen: 0, error: '' };
}

function watcher(proc: Process, args: AnonPublishArgs, sync: Int32Array): AnonPublishResult {
  const mm = proc.mm;
  const pt = mm.pt;
  const out = rangeOut();
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  let seen = 0;
  for (let round = 1; round <= args.rounds; round++) {
    if (mm.sysMmap(WIN, SPAN_PAGES * P, RW, flags, -1, 0) !== WIN) return { seen, error: 'mmap failed' };
    const t = pt.findPteTable(WIN);
    if (t === 0) return { seen, error: 'no PTE table under the anchor' };
    Atomics.store(sync, 1, round);
    rcuQuiescent();
    for (let n = 0; Atomics.load(sync, 2) < round && n < SPIN_LIMIT; n++) {
      pt.lockTable(t);
      const pte = pt.readEntry(t, pteIndex(WIN));
      let error = '';
      if (pte !== 0 && ptePfn(pte) !== ZERO_PFN) {
        seen++;
        const h = mm.index.load(WIN, out);
        const owner = mm.mem.owner[ptePfn(pte)];
        const anon = h > 0 ? mm.arena.anon(h) : -1;
        if (anon !== owner)
          error = `round ${round}: frame of anon_vma ${owner} mapped in a VMA of anon_vma ${anon}`;
      }
      pt.unlockTable(t);
      if (error !== '') return { seen, error };
      rcuQuiescent();
    }
  }
  return { seen, error: '' };
}
