/**
 * Task: a reader CPU of the per-VMA lock race. Looks up random addresses of the window at full
 * speed through lockVmaUnderRcu, falling back to lockMmAndFindVma, until the writer is done.
 * Every VMA it gets must be live (not freed), attached, cover the address, and keep its fields
 * while held. Returns its counts; counts a failed check in ERRORS and throws.
 */
import {
  attachFaultMm,
  type FaultMm,
  lockMmAndFindVma,
  lockVmaUnderRcu,
} from '../../../src/mm/fault-lookup.js';
import { mmapReadUnlock, vmaEndRead } from '../../../src/mm/vma-lock.js';
import { VMA_ATTACHED, type VmaArena } from '../../../src/mm/vma-record.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import {
  BASE,
  ERRORS,
  GIVE_UP_MS,
  P,
  type RaceArgs,
  READERS_READY,
  Rng,
  WINDOW_PAGES,
  WRITER_DONE,
} from './vma-race.js';

export interface ReaderCounts {
  lookups: number;
  vmaLocked: number;
  mmapLocked: number;
  holes: number;
}

export default function reader(cpu: number, args: RaceArgs): ReaderCounts {
  const mm = attachFaultMm(args.mm);
  const control = new Int32Array(args.control);
  const rng = new Rng(args.seed * 31 + cpu);
  const counts: ReaderCounts = { lookups: 0, vmaLocked: 0, mmapLocked: 0, holes: 0 };
  const giveUp = Date.now() + args.durationMs + GIVE_UP_MS;
  Atomics.add(control, READERS_READY, 1);
  Atomics.notify(control, READERS_READY);
  try {
    while ((counts.lookups & 255) !== 0 || Atomics.load(control, WRITER_DONE) === 0) {
      if ((counts.lookups & 255) === 0 && Date.now() > giveUp) throw new Error('the writer never finished');
      // Every 16th lookup holds its VMA long, as a fault doing real work would.
      const holdReads = (counts.lookups & 15) === 0 ? 2048 : 8;
      lookupOnce(mm, BASE + rng.below(WINDOW_PAGES * P), holdReads, counts);
      counts.lookups++;
      rcuQuiescent();
    }
  } catch (error) {
    Atomics.add(control, ERRORS, 1);
    throw error;
  }
  return counts;
}

function lookupOnce(
  mm: FaultMm & { arena: VmaArena },
  addr: number,
  holdReads: number,
  counts: ReaderCounts,
): void {
  let h = lockVmaUnderRcu(mm, addr);
  if (h !== 0) {
    checkHeld(mm, h, addr, holdReads, 'VMA read lock');
    vmaEndRead(mm.locks, h);
    counts.vmaLocked++;
    return;
  }
  h = lockMmAndFindVma(mm, addr);
  if (h === 0) {
    counts.holes++;
    return;
  }
  checkHeld(mm, h, addr, holdReads, 'mmap_lock');
  mmapReadUnlock(mm.locks);
  counts.mmapLocked++;
}

/** The VMA must be a live, attached record covering addr, and must not change while held. */
function checkHeld(
  mm: FaultMm & { arena: VmaArena },
  h: number,
  addr: number,
  holdReads: number,
  via: string,
): void {
  const a = mm.arena;
  const start = a.start(h);
  const end = a.end(h);
  const flags = a.flags(h);
  const pgoff = a.pgoff(h);
  if (!a.arena.isLive(h)) throw new Error(`${via}: VMA record ${h} for ${addr.toString(16)} was freed`);
  if (a.state(h) !== VMA_ATTACHED) throw new Error(`${via}: VMA record ${h} is detached`);
  if (!(start <= addr && addr < end)) {
    throw new Error(
      `${via}: VMA [${start.toString(16)}, ${end.toString(16)}) does not cover ${addr.toString(16)}`,
    );
  }
  for (let i = 0; i < holdReads; i++) {
    if (a.start(h) !== start || a.end(h) !== end || a.flags(h) !== flags || a.pgoff(h) !== pgoff) {
      throw new Error(`${via}: VMA record ${h} changed while held`);
    }
  }
}
