/**
 * The locks' calls into the lock validator (src/lockhooks.ts), kept out of line. A lock's fast
 * path holds only `if (hooks.on) hookX(...)` (`hooks`: a module-local alias of `lockHooks`): with
 * the validator off that is one untaken branch, and the fast path stays small enough for the JIT
 * to inline into its callers.
 *
 * A lock names its instance by the word holding its validator id (`words[idIndex]`, 0 until the
 * validator first needs one, see lockIdAt). `mode` is the side (READ/WRITE) plus the lock's kind
 * bits (LOCK_ATOMIC, LOCK_SLEEPS, LOCK_RECURSIVE_READ).
 */
import { lockHooks } from '../lockhooks.js';
import { lockIdAt } from './lockclass.js';

/** Before a (possibly blocking) acquisition: the validator checks it before the lock is taken. */
export function hookAcquire(
  classId: number,
  subclass: number,
  words: Int32Array,
  idIndex: number,
  mode: number,
): void {
  lockHooks.v.acquire(classId, subclass, lockIdAt(words, idIndex), mode, false);
}

/** After a successful blocking acquisition. */
export function hookAcquired(
  classId: number,
  subclass: number,
  words: Int32Array,
  idIndex: number,
  mode: number,
): void {
  lockHooks.v.acquired(classId, subclass, lockIdAt(words, idIndex), mode);
}

/** After a successful trylock (it cannot deadlock, so it adds no dependency into the lock). */
export function hookTrylock(
  classId: number,
  subclass: number,
  words: Int32Array,
  idIndex: number,
  mode: number,
): void {
  const id = lockIdAt(words, idIndex);
  lockHooks.v.acquire(classId, subclass, id, mode, true);
  lockHooks.v.acquired(classId, subclass, id, mode);
}

/** At release. */
export function hookRelease(classId: number, words: Int32Array, idIndex: number): void {
  lockHooks.v.release(classId, lockIdAt(words, idIndex));
}
