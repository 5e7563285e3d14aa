/**
 * Stress task: a seeded random mix of every lock operation and RCU updates/reads on shared state,
 * checking exclusion and RCU safety as it goes. Stops at a deadline or an operation bound.
 *
 *   w: [readers inside, writers inside, mutex counter, mutex increments, rcu slot, violations, start]
 */
import { Arena, type ArenaDescriptor, POISON_WORD } from '../../../src/shm/arena.js';
import type { LockDescriptor } from '../../../src/sync/lockview.js';
import { Mutex } from '../../../src/sync/mutex.js';
import {
  rcuBarrier,
  rcuDeferFree,
  rcuReadLock,
  rcuReadUnlock,
  synchronizeRcu,
} from '../../../src/sync/rcu.js';
import { RwSem } from '../../../src/sync/rwsem.js';

export interface MixArgs {
  seed: number;
  cpus: number;
  rw: LockDescriptor;
  mutex: LockDescriptor;
  arena: ArenaDescriptor;
  words: SharedArrayBuffer;
  deadlineMs: number;
  maxOps: number;
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export default function mix(cpu: number, args: MixArgs): number {
  const random = prng(args.seed * 64 + cpu);
  const rw = RwSem.attach(args.rw);
  const mutex = Mutex.attach(args.mutex);
  const arena = Arena.attach(args.arena);
  const w = new Int32Array(args.words);
  const violation = (what: string) => {
    Atomics.add(w, 5, 1);
    throw new Error(`cpu ${cpu}: ${what}`);
  };
  Atomics.add(w, 6, 1);
  while (Atomics.load(w, 6) < args.cpus && Date.now() < args.deadlineMs) {
    // Start together.
  }
  let ops = 0;
  for (; ops < args.maxOps && Date.now() < args.deadlineMs; ops++) {
    const r = random();
    if (r < 0.3) {
      if (!readLock(rw, r < 0.05)) continue;
      Atomics.add(w, 0, 1);
      if (Atomics.load(w, 1) !== 0) violation('reader inside with a writer');
      Atomics.sub(w, 0, 1);
      rw.upRead();
    } else if (r < 0.45) {
      if (!writeLock(rw, r < 0.33)) continue;
      if (Atomics.add(w, 1, 1) !== 0 || Atomics.load(w, 0) !== 0) violation('writer not alone');
      Atomics.sub(w, 1, 1);
      if (r < 0.4) {
        rw.downgrade();
        Atomics.add(w, 0, 1);
        if (Atomics.load(w, 1) !== 0) violation('writer inside after downgrade');
        Atomics.sub(w, 0, 1);
        rw.upRead();
      } else rw.upWrite();
    } else if (r < 0.6) {
      mutex.lock();
      w[2]++;
      mutex.unlock();
      Atomics.add(w, 3, 1);
    } else if (r < 0.7) {
      const h = arena.alloc();
      if (h === 0) continue;
      arena.i32[h * arena.i32PerRecord + 1] = h;
      const old = Atomics.exchange(w, 4, h);
      if (old !== 0) rcuDeferFree(arena, old);
    } else if (r < 0.995) {
      rcuReadLock();
      const h = Atomics.load(w, 4);
      if (h !== 0) {
        const v = arena.i32[h * arena.i32PerRecord + 1];
        if (v === POISON_WORD || v !== h) violation(`read a freed record ${h} (${v})`);
      }
      rcuReadUnlock();
    } else if (r < 0.998) synchronizeRcu();
    else rcuBarrier();
  }
  rcuBarrier();
  return ops;
}

function readLock(rw: RwSem, trylock: boolean): boolean {
  if (trylock) return rw.tryDownRead();
  rw.downRead();
  return true;
}

function writeLock(rw: RwSem, trylock: boolean): boolean {
  if (trylock) return rw.tryDownWrite();
  rw.downWrite();
  return true;
}
