/**
 * Mutex: a sleeping lock (futex-style: Atomics.wait on the lock word, Atomics.notify on release
 * only when a sleeper flagged itself). An acquirer polls briefly (MUTEX_SPINS, about a
 * microsecond) before it sleeps. `lock()` may sleep: taking a mutex inside an RCU read section
 * throws, whether or not it is contended, and the validator sees it as WRITE | LOCK_SLEEPS (an
 * error under a spinlock). `tryLock()` never sleeps and is allowed anywhere.
 *
 *   +-------------------------------+-------------+
 *   | STATE: 0 | owner+1 | WAITERS  | ID          |   (words at offset, offset+1; see exclusive.ts)
 *   +-------------------------------+-------------+
 */
import { WAIT_MUTEX } from '../cpu/waits.js';
import { LOCK_SLEEPS, WRITE } from '../lockhooks.js';
import { EXCLUSIVE_WORDS, exclusiveLock, exclusiveTryLock, exclusiveUnlock } from './exclusive.js';
import { type LockDescriptor, LockView, ownWords, wordsOf } from './lockview.js';
import { blockingInReadSection, rcuCpu } from './rcu.js';

/** Polls of a held mutex before the acquirer sleeps. */
export const MUTEX_SPINS = 100;
/** The validator sees a blocking acquisition as one that may sleep; a trylock as a plain WRITE. */
const HOOK_MODE = WRITE | LOCK_SLEEPS;
/**
 * A module-local alias of the per-thread state the fast paths test: V8 loads an imported binding
 * through its module cell on every use but folds a local const (about 1.5 ns per lock round trip).
 */
const rcu = rcuCpu;

export class Mutex extends LockView {
  static readonly WORDS = EXCLUSIVE_WORDS;

  static create(className: string): Mutex {
    const [words, classId] = ownWords(Mutex.WORDS, className);
    return new Mutex(words, 0, classId);
  }

  static at(words: Int32Array, offset: number, classId: number): Mutex {
    return new Mutex(words, offset, classId);
  }

  static attach(desc: LockDescriptor): Mutex {
    return new Mutex(wordsOf(desc), desc.offset, desc.classId);
  }

  private constructor(words: Int32Array, offset: number, classId: number) {
    super(words, offset, classId, Mutex.WORDS);
  }

  /** `subclass` tells the validator about deliberate nesting of two locks of one class. */
  lock(subclass = 0): void {
    if (rcu.depth !== 0) blockingInReadSection('mutex_lock');
    exclusiveLock(this.words, this.offset, this.classId, subclass, MUTEX_SPINS, WAIT_MUTEX, HOOK_MODE);
  }

  tryLock(subclass = 0): boolean {
    return exclusiveTryLock(this.words, this.offset, this.classId, subclass, WRITE);
  }

  unlock(): void {
    exclusiveUnlock(this.words, this.offset, this.classId);
  }
}
