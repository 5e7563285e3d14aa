/**
 * Task: increments a shared counter `iterations` times under a lock, with a deliberately racy
 * read-modify-write (plain load, a yield point, plain store) so any lapse of mutual exclusion
 * loses updates; all CPUs start together (word 3). Also checks that nobody else is inside (an "inside" word).
 */

import type { LockDescriptor } from '../../../src/sync/lockview.js';
import { Mutex } from '../../../src/sync/mutex.js';
import { RwSem } from '../../../src/sync/rwsem.js';
import { SpinLock } from '../../../src/sync/spinlock.js';

export interface CounterArgs {
  kind: 'spinlock' | 'mutex' | 'rwsem';
  lock: LockDescriptor;
  data: SharedArrayBuffer;
  iterations: number;
  deadlineMs: number;
}

export default function counter(_cpu: number, args: CounterArgs): number {
  const data = new Int32Array(args.data);
  const { lock, unlock } = exclusive(args);
  startTogether(data, args.deadlineMs);
  let done = 0;
  for (; done < args.iterations; done++) {
    if ((done & 255) === 0 && Date.now() > args.deadlineMs) break;
    lock();
    if (Atomics.add(data, 1, 1) !== 0) throw new Error('two CPUs inside the critical section');
    const value = data[0];
    if ((done & 15) === 0) Atomics.load(data, 2);
    data[0] = value + 1;
    Atomics.sub(data, 1, 1);
    unlock();
  }
  return done;
}

/** Word 3 counts arrivals: every CPU starts when all have arrived, so they really contend. */
export function startTogether(data: Int32Array, deadlineMs: number, cpus = 3): void {
  Atomics.add(data, 3, 1);
  while (Atomics.load(data, 3) < cpus && Date.now() < deadlineMs) {
    // Spin: the others are about to arrive.
  }
}

function exclusive(args: CounterArgs): { lock: () => void; unlock: () => void } {
  if (args.kind === 'rwsem') {
    const rw = RwSem.attach(args.lock);
    return { lock: () => rw.downWrite(), unlock: () => rw.upWrite() };
  }
  const l = args.kind === 'mutex' ? Mutex.attach(args.lock) : SpinLock.attach(args.lock);
  return { lock: () => l.lock(), unlock: () => l.unlock() };
}
