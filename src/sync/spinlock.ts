/**
 * SpinLock: for short critical sections. An acquirer spins (up to SPINLOCK_SPINS polls, tens of
 * microseconds) and only then sleeps on the lock word, so a preempted holder cannot burn a CPU
 * forever. Taking a spinlock is allowed inside an RCU read section (it never calls mightSleep).
 *
 *   +-------------------------------+-------------+
 *   | STATE: 0 | owner+1 | WAITERS  | ID          |   (words at offset, offset+1; see exclusive.ts)
 *   +-------------------------------+-------------+
 */
import { WAIT_SPIN } from '../cpu/waits.js';
import { LOCK_ATOMIC, WRITE } from '../lockhooks.js';
import { EXCLUSIVE_WORDS, exclusiveLock, exclusiveTryLock, exclusiveUnlock } from './exclusive.js';
import { type LockDescriptor, LockView, ownWords, wordsOf } from './lockview.js';

/** Polls of a held spinlock before the acquirer sleeps. */
export const SPINLOCK_SPINS = 4000;
/** The validator sees a spinlock hold as atomic context (nothing may sleep inside). */
const HOOK_MODE = WRITE | LOCK_ATOMIC;

export class SpinLock extends LockView {
  static readonly WORDS = EXCLUSIVE_WORDS;

  static create(className: string): SpinLock {
    const [words, classId] = ownWords(SpinLock.WORDS, className);
    return new SpinLock(words, 0, classId);
  }

  static at(words: Int32Array, offset: number, classId: number): SpinLock {
    return new SpinLock(words, offset, classId);
  }

  static attach(desc: LockDescriptor): SpinLock {
    return new SpinLock(wordsOf(desc), desc.offset, desc.classId);
  }

  private constructor(words: Int32Array, offset: number, classId: number) {
    super(words, offset, classId, SpinLock.WORDS);
  }

  /** `subclass` tells the validator about deliberate nesting of two locks of one class. */
  lock(subclass = 0): void {
    exclusiveLock(this.words, this.offset, this.classId, subclass, SPINLOCK_SPINS, WAIT_SPIN, HOOK_MODE);
  }

  tryLock(subclass = 0): boolean {
    return exclusiveTryLock(this.words, this.offset, this.classId, subclass, HOOK_MODE);
  }

  unlock(): void {
    exclusiveUnlock(this.words, this.offset, this.classId);
  }
}
