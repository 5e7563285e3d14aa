/**
 * Task: the writer CPU of the per-VMA lock race. Builds an AddressSpace over the shared VMA
 * records, tree and locks, waits for the readers, then runs seeded random mmap / munmap / mprotect
 * / mremap / touch calls in the window until the deadline or maxOps, signals WRITER_DONE, then
 * unmaps everything and retires the tree's nodes (and this CPU's reserve). Returns the calls made.
 */
import type { MapleTree } from '../../../src/maple/tree.js';
import { AddressSpace } from '../../../src/mm/address-space.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/mm/vm-flags.js';
import { mmapWriteLock, mmapWriteUnlock } from '../../../src/mm/vma-lock.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import {
  BASE,
  GIVE_UP_MS,
  OPS,
  P,
  type RaceArgs,
  READERS_READY,
  Rng,
  WINDOW_PAGES,
  WRITER_DONE,
} from './vma-race.js';

const PROTS = [PROT_READ, PROT_READ | PROT_WRITE, 0];

export default function writer(_cpu: number, args: RaceArgs): number {
  const mm = AddressSpace.attach(args.mm);
  const control = new Int32Array(args.control);
  const rng = new Rng(args.seed);
  const giveUp = Date.now() + GIVE_UP_MS;
  while (Atomics.load(control, READERS_READY) < args.readers) {
    if (Date.now() > giveUp) throw new Error('the readers never started');
    Atomics.wait(control, READERS_READY, Atomics.load(control, READERS_READY), 10);
  }
  const deadline = Date.now() + args.durationMs;
  let ops = 0;
  try {
    for (; ops < args.maxOps && ((ops & 63) !== 0 || Date.now() < deadline); ops++) {
      randomCall(mm, rng);
      rcuQuiescent();
      if ((ops & 1023) === 0) Atomics.store(control, OPS, ops);
    }
    Atomics.store(control, OPS, ops);
  } finally {
    Atomics.store(control, WRITER_DONE, 1);
    Atomics.notify(control, WRITER_DONE);
  }
  mm.destroy();
  mmapWriteLock(mm.locks);
  (mm.index as MapleTree).destroy();
  mmapWriteUnlock(mm.locks);
  return ops;
}

function randomCall(mm: AddressSpace, rng: Rng): void {
  const page = rng.below(WINDOW_PAGES - 16);
  const pages = 1 + rng.below(16);
  const addr = BASE + page * P;
  const len = pages * P;
  switch (rng.below(6)) {
    case 0:
    case 1:
      mm.sysMmap(addr, len, PROTS[rng.below(2)], MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      break;
    case 2:
      mm.sysMunmap(addr, len);
      break;
    case 3:
      mm.sysMprotect(addr, len, PROTS[rng.below(3)]);
      break;
    case 4: {
      const to = BASE + rng.below(WINDOW_PAGES - 16) * P;
      if (Math.abs(to - addr) >= len) mm.sysMremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
      else mm.sysMremap(addr, len, (1 + rng.below(16)) * P, 0, 0);
      break;
    }
    default:
      mm.sysTouch(addr, len, rng.below(2) === 0);
  }
}
