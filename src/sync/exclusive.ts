/**
 * The exclusive owner-word lock under SpinLock and Mutex: one state word holding the owner's CPU
 * id + 1 and a WAITERS bit (set by a sleeper, so only then does unlock pay for a notify), plus the
 * instance id the lock validator sees.
 *
 *   word offset+0  STATE: 0 free | (owner cpu + 1) | WAITERS (1 << 16)
 *   word offset+1  ID:    lock instance id (0 until the validator first needs one)
 *
 * Invariants: STATE is 0 or names its owner; only the owner releases it; WAITERS may be set
 * spuriously (a sleeper that re-acquires sets it conservatively), never missing while a CPU sleeps
 * on the word. Acquire = one compareExchange, release = one compareExchange when nobody sleeps.
 * Uncontended acquisitions are not fair; waiters are woken one at a time.
 */
import { currentCpu } from '../cpu/current.js';
import { beginWait, endWait, hangError, WAIT_SLICE_MS, waitTooLong } from '../cpu/waits.js';
import { lockHooks } from '../lockhooks.js';
import { hookAcquire, hookAcquired, hookRelease, hookTrylock } from './hookcalls.js';
import { lockClassName } from './lockclass.js';
import { statAcquired, statContended, statReleased, statTryFailed } from './lockstat.js';
import { rcuBlockBegin, rcuBlockEnd } from './rcu.js';

export const EXCLUSIVE_WORDS = 2;
/** Statistics count exclusive acquisitions as writes. */
const WRITE = 1;
const ID = 1;
const OWNER_MASK = 0xffff;
const WAITERS = 1 << 16;
/**
 * A module-local alias of the per-thread state the fast paths test: V8 loads an imported binding
 * through its module cell on every use but folds a local const (about 1.5 ns per lock round trip).
 */
const hooks = lockHooks;

/** `hookMode` is what the validator sees: WRITE plus the lock's kind bits (see hooks.ts). */
export function exclusiveLock(
  words: Int32Array,
  offset: number,
  classId: number,
  subclass: number,
  spins: number,
  waitKind: number,
  hookMode: number,
): void {
  if (hooks.on) hookAcquire(classId, subclass, words, offset + ID, hookMode);
  const me = currentCpu() + 1;
  if (Atomics.compareExchange(words, offset, 0, me) === 0) statAcquired(classId, WRITE);
  else exclusiveLockSlow(words, offset, classId, me, spins, waitKind);
  if (hooks.on) hookAcquired(classId, subclass, words, offset + ID, hookMode);
}

export function exclusiveTryLock(
  words: Int32Array,
  offset: number,
  classId: number,
  subclass: number,
  hookMode: number,
): boolean {
  if (Atomics.compareExchange(words, offset, 0, currentCpu() + 1) !== 0) {
    statTryFailed(classId);
    return false;
  }
  statAcquired(classId, WRITE);
  if (hooks.on) hookTrylock(classId, subclass, words, offset + ID, hookMode);
  return true;
}

export function exclusiveUnlock(words: Int32Array, offset: number, classId: number): void {
  const me = currentCpu() + 1;
  const state = Atomics.compareExchange(words, offset, me, 0);
  if (state !== me) exclusiveUnlockSlow(words, offset, classId, me, state);
  if (hooks.on) hookRelease(classId, words, offset + ID);
  statReleased(classId);
}

function exclusiveUnlockSlow(
  words: Int32Array,
  offset: number,
  classId: number,
  me: number,
  state: number,
): void {
  if ((state & OWNER_MASK) !== me) {
    const holder = state === 0 ? 'nobody' : `cpu ${(state & OWNER_MASK) - 1}`;
    throw new Error(`unlock of ${lockClassName(classId)} by cpu ${me - 1}, but it is held by ${holder}`);
  }
  Atomics.store(words, offset, 0);
  Atomics.notify(words, offset, 1);
}

function exclusiveLockSlow(
  words: Int32Array,
  offset: number,
  classId: number,
  me: number,
  spins: number,
  waitKind: number,
): void {
  const start = performance.now();
  let state = 0;
  for (let i = 0; i < spins; i++) {
    state = Atomics.load(words, offset);
    if (state === 0 && Atomics.compareExchange(words, offset, 0, me) === 0) {
      statContended(classId, WRITE, start);
      return;
    }
  }
  if ((state & OWNER_MASK) === me)
    throw new Error(`cpu ${me - 1} locks ${lockClassName(classId)} again: self-deadlock`);
  sleepUntilAcquired(words, offset, classId, me, waitKind);
  statContended(classId, WRITE, start);
}

function sleepUntilAcquired(
  words: Int32Array,
  offset: number,
  classId: number,
  me: number,
  waitKind: number,
): void {
  const cpu = me - 1;
  const wasOnline = rcuBlockBegin();
  beginWait(cpu, waitKind, classId, Atomics.load(words, offset) & OWNER_MASK, 0);
  try {
    for (;;) {
      let state = Atomics.load(words, offset);
      if (state === 0) {
        if (Atomics.compareExchange(words, offset, 0, me | WAITERS) === 0) return;
        continue;
      }
      if ((state & WAITERS) === 0) {
        if (Atomics.compareExchange(words, offset, state, state | WAITERS) !== state) continue;
        state |= WAITERS;
      }
      if (
        Atomics.wait(words, offset, state, WAIT_SLICE_MS) === 'timed-out' &&
        waitTooLong(cpu, state & OWNER_MASK, 0)
      ) {
        throw hangError(cpu, `${lockClassName(classId)} (held by cpu ${(state & OWNER_MASK) - 1})`);
      }
    }
  } finally {
    endWait(cpu);
    rcuBlockEnd(wasOnline);
  }
}
