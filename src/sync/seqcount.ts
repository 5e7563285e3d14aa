/**
 * SeqCount: lets readers read a small group of words without a lock and detect a concurrent
 * writer. Writers must already be serialised (by a lock of their own, as in Linux); a second
 * concurrent writer is detected and throws. A reader that finds a write in progress polls until it
 * ends (writers are short), then reads and checks `readRetry`.
 *
 *   +-------------------------------+----+
 *   | SEQ: even idle, odd writing   | ID |   (words at offset, offset+1)
 *   +-------------------------------+----+
 *
 *   do { s = sc.readBegin(); ...plain reads...; } while (sc.readRetry(s));
 *
 * Invariants: SEQ grows by one at writeBegin and one at writeEnd; it is odd exactly while a write
 * is in progress. Both write steps are atomic read-modify-writes (sequentially consistent), so the
 * reader's plain reads between two seq-cst loads cannot be mixed from two sides of a write.
 */
import { currentCpu } from '../cpu/current.js';
import { beginWait, endWait, hangError, WAIT_SEQCOUNT, waitTooLong } from '../cpu/waits.js';
import { LOCK_ATOMIC, LOCK_RECURSIVE_READ, lockHooks, READ, WRITE } from '../lockhooks.js';
import { hookAcquire, hookAcquired, hookRelease } from './hookcalls.js';
import { lockClassName } from './lockclass.js';
import { statAcquired, statReleased } from './lockstat.js';
import { type LockDescriptor, LockView, ownWords, wordsOf } from './lockview.js';

const ID = 1;
const READ_SPINS = 1000;
/** What the validator sees: writers are atomic context, readers a recursive read side. */
const WRITER_MODE = WRITE | LOCK_ATOMIC;
const READER_MODE = READ | LOCK_RECURSIVE_READ;
/**
 * A module-local alias of the per-thread state the fast paths test: V8 loads an imported binding
 * through its module cell on every use but folds a local const (about 1.5 ns per lock round trip).
 */
const hooks = lockHooks;

export class SeqCount extends LockView {
  static readonly WORDS = 2;

  static create(className: string): SeqCount {
    const [words, classId] = ownWords(SeqCount.WORDS, className);
    return new SeqCount(words, 0, classId);
  }

  static at(words: Int32Array, offset: number, classId: number): SeqCount {
    return new SeqCount(words, offset, classId);
  }

  static attach(desc: LockDescriptor): SeqCount {
    return new SeqCount(wordsOf(desc), desc.offset, desc.classId);
  }

  private constructor(words: Int32Array, offset: number, classId: number) {
    super(words, offset, classId, SeqCount.WORDS);
  }

  /** An even sequence number to hand to `readRetry` (waits while a write is in progress). */
  readBegin(): number {
    if (hooks.on) this.readerHooks();
    const seq = Atomics.load(this.words, this.offset);
    return (seq & 1) === 0 ? seq : this.waitForWriter();
  }

  /**
   * Linux's raw_seqcount_try_begin: the sequence as it is, without waiting. Odd means a write is in
   * progress: a reader that cannot wait (GUP-fast) gives up; even is for `readRetry`. The validator
   * does not see it (as Linux's raw_ reads): a reader that never waits cannot deadlock, even on the
   * CPU holding the write side.
   */
  tryReadBegin(): number {
    return Atomics.load(this.words, this.offset);
  }

  /** True when a write began since `readBegin` returned `seq`: the reads must be redone. */
  readRetry(seq: number): boolean {
    return Atomics.load(this.words, this.offset) !== seq;
  }

  writeBegin(subclass = 0): void {
    if (hooks.on) hookAcquire(this.classId, subclass, this.words, this.offset + ID, WRITER_MODE);
    if ((Atomics.add(this.words, this.offset, 1) & 1) !== 0) {
      Atomics.sub(this.words, this.offset, 1);
      throw new Error(
        `seqcount ${lockClassName(this.classId)}: concurrent writers (writers must be serialised)`,
      );
    }
    statAcquired(this.classId, WRITE);
    if (hooks.on) hookAcquired(this.classId, subclass, this.words, this.offset + ID, WRITER_MODE);
  }

  writeEnd(): void {
    if ((Atomics.add(this.words, this.offset, 1) & 1) === 0) {
      Atomics.sub(this.words, this.offset, 1);
      throw new Error(`seqcount ${lockClassName(this.classId)}: writeEnd without writeBegin`);
    }
    if (hooks.on) hookRelease(this.classId, this.words, this.offset + ID);
    statReleased(this.classId);
  }

  /** The validator sees each read side as a momentary read acquisition (as lockdep does). */
  private readerHooks(): void {
    hookAcquire(this.classId, 0, this.words, this.offset + ID, READER_MODE);
    hookAcquired(this.classId, 0, this.words, this.offset + ID, READER_MODE);
    hookRelease(this.classId, this.words, this.offset + ID);
  }

  private waitForWriter(): number {
    for (let i = 0; i < READ_SPINS; i++) {
      const seq = Atomics.load(this.words, this.offset);
      if ((seq & 1) === 0) return seq;
    }
    const cpu = currentCpu();
    beginWait(cpu, WAIT_SEQCOUNT, this.classId, 0, 0);
    try {
      for (;;) {
        const seq = Atomics.load(this.words, this.offset);
        if ((seq & 1) === 0) return seq;
        // Writers do not notify (it would cost every write): poll every millisecond.
        Atomics.wait(this.words, this.offset, seq, 1);
        if (waitTooLong(cpu, 0, 0))
          throw hangError(cpu, `${lockClassName(this.classId)} (seqcount write in progress)`);
      }
    } finally {
      endWait(cpu);
    }
  }
}
