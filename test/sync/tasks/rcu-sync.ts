/**
 * Tasks for "synchronize waits for pre-existing readers". `reader`: for each round, enter a
 * (nested) read section, announce it, stay inside a while, mark the exit, leave. `updater`: wait
 * for the announcement, synchronize, and check the reader had exited by then.
 *
 *   words: [round announced, round exited, failures]
 */
import { rcuReadLock, rcuReadUnlock, synchronizeRcu } from '../../../src/sync/rcu.js';

export interface SyncArgs {
  role: 'reader' | 'updater';
  words: SharedArrayBuffer;
  rounds: number;
  holdMs: number;
}

export default function sync(_cpu: number, args: SyncArgs): number {
  const w = new Int32Array(args.words);
  const deadline = Date.now() + 10_000;
  for (let round = 1; round <= args.rounds; round++) {
    if (args.role === 'reader') {
      rcuReadLock();
      rcuReadLock();
      Atomics.store(w, 0, round);
      const until = Date.now() + args.holdMs;
      while (Date.now() < until) {
        // Inside the read section.
      }
      rcuReadUnlock();
      Atomics.store(w, 1, round);
      rcuReadUnlock();
      while (Atomics.load(w, 3) < round && Date.now() < deadline) {
        // Wait for the updater to finish this round (outside any read section).
      }
    } else {
      while (Atomics.load(w, 0) < round) {
        if (Date.now() > deadline) throw new Error(`round ${round}: the reader never entered`);
      }
      synchronizeRcu();
      if (Atomics.load(w, 1) < round) Atomics.add(w, 2, 1);
      Atomics.store(w, 3, round);
    }
  }
  return Atomics.load(w, 2);
}
