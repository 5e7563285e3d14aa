/**
 * A spin word guarding lockdep's own shared tables. The validator runs inside lock operations, so
 * it must never take a lock that calls the lock hooks: its tables use this instead. The sections
 * it guards are short and rare (a new dependency, a new call site, an appended report).
 *
 * Invariant: word 0 = free, 1 = held; only the holder stores 0.
 */

/** Takes the spin word `words[index]`, sleeping 1 ms between attempts when it is contended. */
export function lockWord(words: Int32Array, index: number): void {
  while (Atomics.compareExchange(words, index, 0, 1) !== 0) Atomics.wait(words, index, 1, 1);
}

export function unlockWord(words: Int32Array, index: number): void {
  if (Atomics.exchange(words, index, 0) !== 1)
    throw new Error('lockdep: internal table lock released while free');
  Atomics.notify(words, index, 1);
}
