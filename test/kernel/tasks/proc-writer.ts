/**
 * Task: a syscall CPU of the shared-process race. Attaches the process, waits for the reader CPUs,
 * runs seeded random mmap (fixed and placed, some populated or locked), munmap, mprotect, mremap,
 * madvise (populate too), brk, mlock, munlock, mlockall, munlockall and touch calls on the one
 * address space until the deadline, then detaches (its tree reserve and deferred
 * frees go back). The last writer to finish signals WRITER_DONE to the readers.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import {
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MCL_CURRENT,
  MLOCK_ONFAULT,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/mm/vm-flags.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import {
  BASE,
  GIVE_UP_MS,
  OPS,
  P,
  READERS_READY,
  Rng,
  WINDOW_PAGES,
  WRITER_DONE,
} from '../../mm/tasks/vma-race.js';

/** Control word: writers that finished. */
export const WRITERS_FINISHED = 4;

export interface WriterArgs {
  process: ProcessDescriptor;
  control: SharedArrayBuffer;
  seed: number;
  durationMs: number;
  readers: number;
  writers: number;
}

const PROTS = [PROT_READ, PROT_READ | PROT_WRITE, 0];

export default function writer(cpu: number, args: WriterArgs): number {
  const proc = Process.attach(args.process);
  const control = new Int32Array(args.control);
  const rng = new Rng(args.seed * 7919 + cpu);
  const giveUp = Date.now() + GIVE_UP_MS;
  while (Atomics.load(control, READERS_READY) < args.readers) {
    if (Date.now() > giveUp) throw new Error('the readers never started');
    Atomics.wait(control, READERS_READY, Atomics.load(control, READERS_READY), 10);
  }
  const deadline = Date.now() + args.durationMs;
  let ops = 0;
  try {
    for (; (ops & 63) !== 0 || Date.now() < deadline; ops++) {
      randomCall(proc, rng);
      rcuQuiescent();
    }
    Atomics.add(control, OPS, ops);
  } finally {
    if (Atomics.add(control, WRITERS_FINISHED, 1) + 1 === args.writers) {
      Atomics.store(control, WRITER_DONE, 1);
      Atomics.notify(control, WRITER_DONE);
    }
  }
  proc.detach();
  return ops;
}

function randomCall(proc: Process, rng: Rng): void {
  const mm = proc.mm;
  const addr = BASE + rng.below(WINDOW_PAGES - 16) * P;
  const len = (1 + rng.below(16)) * P;
  switch (rng.below(13)) {
    case 0:
    case 1: {
      // Now and then populated or locked at once: the populate stage runs after the unlock.
      const extra = [0, 0, 0, MAP_POPULATE, MAP_LOCKED][rng.below(5)];
      mm.sysMmap(addr, len, PROTS[rng.below(2)], MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | extra, -1, 0);
      break;
    }
    case 2: {
      // Placed by the kernel (top-down from mmap_base), or shared anonymous memory in the window.
      const shared = rng.below(4) === 0;
      const placed = mm.sysMmap(0, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (shared) mm.sysMmap(addr, len, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (placed > 0 && rng.below(2) === 0) mm.sysMunmap(placed, len);
      break;
    }
    case 3:
      mm.sysMunmap(addr, len);
      break;
    case 4:
    case 5:
      mm.sysMprotect(addr, len, PROTS[rng.below(3)]);
      break;
    case 6: {
      const to = BASE + rng.below(WINDOW_PAGES - 16) * P;
      if (Math.abs(to - addr) >= len) mm.sysMremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
      else mm.sysMremap(addr, len, (1 + rng.below(16)) * P, rng.below(2) === 0 ? MREMAP_MAYMOVE : 0, 0);
      break;
    }
    case 7:
      mm.sysMadvise(addr, len, [MADV_RANDOM, MADV_NORMAL, MADV_DONTNEED][rng.below(3)]);
      break;
    case 8:
      mm.sysBrk(mm.startBrk + rng.below(64) * P);
      break;
    case 9:
      mm.sysMlock2(addr, len, rng.below(3) === 0 ? MLOCK_ONFAULT : 0);
      break;
    case 10:
      mm.sysMunlock(addr, len);
      break;
    case 11:
      if (rng.below(16) === 0) {
        if (rng.below(2) === 0) mm.sysMlockall(MCL_CURRENT);
        else mm.sysMunlockall();
      } else mm.sysMadvise(addr, len, rng.below(2) === 0 ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
      break;
    default:
      mm.sysTouch(addr, len, rng.below(2) === 0);
  }
}
