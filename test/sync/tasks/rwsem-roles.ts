/**
 * Roles for the rwsem fairness tests, coordinated through a shared Int32Array `w`:
 *   w[0] order counter   w[1] readers inside   w[2] writers inside   w[3] release signal
 *   w[4] downgrader holds   w[5] invariant violations
 * Every wait is bounded (BOUND_MS) so a broken lock fails the test instead of hanging it.
 */
import type { LockDescriptor } from '../../../src/sync/lockview.js';
import { RwSem } from '../../../src/sync/rwsem.js';

export interface RoleArgs {
  role: 'writer' | 'reader-together' | 'reader-hold' | 'downgrader' | 'loop-reader' | 'loop-writer';
  lock: LockDescriptor;
  words: SharedArrayBuffer;
  durationMs?: number;
}

const BOUND_MS = 5000;

function until(cond: () => boolean): boolean {
  const deadline = Date.now() + BOUND_MS;
  while (!cond()) if (Date.now() > deadline) return false;
  return true;
}

function busy(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end) {
    // Hold the lock for a while.
  }
}

export default function role(_cpu: number, args: RoleArgs): unknown {
  const rw = RwSem.attach(args.lock);
  const w = new Int32Array(args.words);
  switch (args.role) {
    case 'writer': {
      rw.downWrite();
      const order = Atomics.add(w, 0, 1) + 1;
      const readers = rw.state().readers;
      rw.upWrite();
      return { order, readers };
    }
    case 'reader-together': {
      rw.downRead();
      const order = Atomics.add(w, 0, 1) + 1;
      Atomics.add(w, 1, 1);
      const together = until(() => Atomics.load(w, 1) >= 2);
      rw.upRead();
      return { order, together };
    }
    case 'reader-hold': {
      rw.downRead();
      Atomics.add(w, 1, 1);
      const released = until(() => Atomics.load(w, 3) === 1);
      Atomics.sub(w, 1, 1);
      rw.upRead();
      return released;
    }
    case 'downgrader': {
      rw.downWrite();
      Atomics.store(w, 4, 1);
      const queued = until(() => rw.state().queued === 2);
      rw.downgrade();
      const readerJoined = until(() => Atomics.load(w, 1) === 1);
      const { writer, queued: stillQueued } = rw.state();
      Atomics.store(w, 3, 1);
      rw.upRead();
      return { queued, readerJoined, writerHeld: writer, stillQueued };
    }
    case 'loop-reader':
    case 'loop-writer':
      return loop(rw, w, args.role === 'loop-writer', args.durationMs ?? 300);
  }
}

/** Acquires repeatedly for `durationMs`, checking exclusion; returns the number of acquisitions. */
function loop(rw: RwSem, w: Int32Array, writer: boolean, durationMs: number): number {
  const end = Date.now() + durationMs;
  let n = 0;
  while (Date.now() < end) {
    if (writer) {
      rw.downWrite();
      if (Atomics.add(w, 2, 1) !== 0 || Atomics.load(w, 1) !== 0) Atomics.add(w, 5, 1);
      busy(20);
      Atomics.sub(w, 2, 1);
      rw.upWrite();
    } else {
      rw.downRead();
      Atomics.add(w, 1, 1);
      if (Atomics.load(w, 2) !== 0) Atomics.add(w, 5, 1);
      busy(50);
      Atomics.sub(w, 1, 1);
      rw.upRead();
    }
    n++;
  }
  return n;
}
