/**
 * RwSem: a reader-writer semaphore with Linux's queueing. Fast paths are one atomic on COUNT
 * (a reader adds READER and checks the old value; a writer compareExchanges 0 -> WRITER). As soon
 * as anybody waits, WAITERS is set and every newcomer - reader or writer - queues behind: a waiting
 * writer blocks new readers. The queue is FIFO and is served by handoff: whoever releases the lock
 * (or enqueues while it is free) grants it to the front of the queue under WAIT_LOCK, all
 * consecutive readers at the front together, or one writer. Downgrade turns a write hold into a
 * read hold and admits the readers queued at the front.
 *
 *   words at offset:
 *   +-------+-----------+------+------+----------+----------+-------+----+
 *   | COUNT | WAIT_LOCK | HEAD | TAIL | KINDS_LO | KINDS_HI | OWNER | ID |
 *   +-------+-----------+------+------+----------+----------+-------+----+
 *   COUNT: readers (bits 0-23, one READER each) | WRITER (bit 24) | WAITERS (bit 25)
 *   HEAD/TAIL: queue tickets; the waiter with ticket t is granted when HEAD passes t (mod 2^32)
 *   KINDS: bit (t mod 64) set when ticket t is a writer (at most MAX_CPUS waiters)
 *   OWNER: the write holder's cpu + 1 (bits 0-7: owner checks, diagnostics) | the subclass it
 *          told the validator (bits 8-10, so a downgrade keeps it);   ID: validator instance id
 *
 * Invariants: WRITER and a non-zero reader count never coexist except for the transient READER a
 * fast-path reader adds before it sees WRITER or WAITERS and backs out (backing out wakes the queue
 * if it was the last reader); WAITERS is set iff HEAD != TAIL, and both change only under
 * WAIT_LOCK; a granted waiter owns its hold before HEAD moves past its ticket.
 */
import { assert, VmAssertionError } from '../assert.js';
import { currentCpu, MAX_CPUS } from '../cpu/current.js';
import {
  beginWait,
  endWait,
  hangError,
  WAIT_READ,
  WAIT_SLICE_MS,
  WAIT_WRITE,
  waitTooLong,
} from '../cpu/waits.js';
import { LOCK_SLEEPS, lockHooks, READ, WRITE } from '../lockhooks.js';
import { hookAcquire, hookAcquired, hookRelease, hookTrylock } from './hookcalls.js';
import { lockClassName } from './lockclass.js';
import { statAcquired, statContended, statReleased, statTryFailed } from './lockstat.js';
import { type LockDescriptor, LockView, ownWords, wordsOf } from './lockview.js';
import { blockingInReadSection, rcuBlockBegin, rcuBlockEnd, rcuCpu } from './rcu.js';

export const RWSEM_WORDS = 8;
const WAIT_LOCK = 1;
const HEAD = 2;
const TAIL = 3;
const KINDS_LO = 4;
const KINDS_HI = 5;
const OWNER = 6;
const ID = 7;

const READER = 1;
const READER_MASK = (1 << 24) - 1;
const WRITER = 1 << 24;
const WAITERS = 1 << 25;
/** A fast-path reader fails on these. */
const READ_FAIL = WRITER | WAITERS;
/** OWNER: the write holder's cpu + 1 in the low bits, its validator subclass above. */
const OWNER_CPU = 0xff;
const OWNER_SUBCLASS_SHIFT = 8;
/** What the validator sees of a blocking acquisition (trylocks pass the plain side). */
const READ_MODE = READ | LOCK_SLEEPS;
const WRITE_MODE = WRITE | LOCK_SLEEPS;
assert(MAX_CPUS === 64, 'rwsem: the KINDS words hold exactly 64 queue slots (MAX_CPUS)');
/**
 * Module-local aliases of the per-thread state the fast paths test: V8 loads an imported binding
 * through its module cell on every use but folds a local const (about 1.5 ns per lock round trip).
 */
const hooks = lockHooks;
const rcu = rcuCpu;

/** Polls before an acquirer queues (only while nobody is queued, to keep FIFO order). */
export const RWSEM_SPINS = 100;
/** Polls of the queue head before a queued waiter sleeps. */
const QUEUE_SPINS = 2000;

/**
 * The blocking acquisitions keep one branch on their fast path for both of their checks (inside an
 * RCU read section: refused; validator on: told before and after), taken out of line.
 */
export function rwsemDownRead(words: Int32Array, offset: number, classId: number, subclass = 0): void {
  if (rcu.depth !== 0 || hooks.on) checkedDownRead(words, offset, classId, subclass);
  else takeRead(words, offset, classId);
}

function checkedDownRead(words: Int32Array, offset: number, classId: number, subclass: number): void {
  if (rcu.depth !== 0) blockingInReadSection('down_read');
  hookAcquire(classId, subclass, words, offset + ID, READ_MODE);
  takeRead(words, offset, classId);
  hookAcquired(classId, subclass, words, offset + ID, READ_MODE);
}

function takeRead(words: Int32Array, offset: number, classId: number): void {
  if ((Atomics.add(words, offset, READER) & READ_FAIL) === 0) statAcquired(classId, READ);
  else readSlow(words, offset, classId);
}

export function rwsemUpRead(words: Int32Array, offset: number, classId: number): void {
  if (hooks.on) hookRelease(classId, words, offset + ID);
  statReleased(classId);
  const old = Atomics.sub(words, offset, READER);
  if ((old & (READER_MASK | WRITER | WAITERS)) === (READER | WAITERS)) wakeQueue(words, offset);
  else if ((old & READER_MASK) === 0) {
    Atomics.add(words, offset, READER);
    throw new Error(`up_read of ${lockClassName(classId)}, which has no reader`);
  }
}

export function rwsemDownWrite(words: Int32Array, offset: number, classId: number, subclass = 0): void {
  if (rcu.depth !== 0 || hooks.on) checkedDownWrite(words, offset, classId, subclass);
  else takeWrite(words, offset, classId, subclass);
}

function checkedDownWrite(words: Int32Array, offset: number, classId: number, subclass: number): void {
  if (rcu.depth !== 0) blockingInReadSection('down_write');
  hookAcquire(classId, subclass, words, offset + ID, WRITE_MODE);
  takeWrite(words, offset, classId, subclass);
  hookAcquired(classId, subclass, words, offset + ID, WRITE_MODE);
}

function takeWrite(words: Int32Array, offset: number, classId: number, subclass: number): void {
  if (Atomics.compareExchange(words, offset, 0, WRITER) === 0) statAcquired(classId, WRITE);
  else writeSlow(words, offset, classId);
  words[offset + OWNER] = (currentCpu() + 1) | (subclass << OWNER_SUBCLASS_SHIFT);
}

export function rwsemUpWrite(words: Int32Array, offset: number, classId: number): void {
  assertWriteOwner(words, offset, classId, 'up_write');
  if (hooks.on) hookRelease(classId, words, offset + ID);
  statReleased(classId);
  words[offset + OWNER] = 0;
  if (Atomics.compareExchange(words, offset, WRITER, 0) !== WRITER) {
    const old = Atomics.sub(words, offset, WRITER);
    if ((old & WAITERS) !== 0) wakeQueue(words, offset);
  }
}

export function rwsemTryDownRead(words: Int32Array, offset: number, classId: number, subclass = 0): boolean {
  if ((Atomics.add(words, offset, READER) & READ_FAIL) !== 0) {
    backOutReader(words, offset);
    statTryFailed(classId);
    return false;
  }
  statAcquired(classId, READ);
  if (hooks.on) hookTrylock(classId, subclass, words, offset + ID, READ);
  return true;
}

export function rwsemTryDownWrite(words: Int32Array, offset: number, classId: number, subclass = 0): boolean {
  if (Atomics.compareExchange(words, offset, 0, WRITER) !== 0) {
    statTryFailed(classId);
    return false;
  }
  words[offset + OWNER] = (currentCpu() + 1) | (subclass << OWNER_SUBCLASS_SHIFT);
  statAcquired(classId, WRITE);
  if (hooks.on) hookTrylock(classId, subclass, words, offset + ID, WRITE);
  return true;
}

/**
 * Turns this CPU's write hold into a read hold and admits the readers queued at the front. The
 * validator sees release(WRITE) then a read trylock of the same instance with the same subclass
 * (which adds no ordering).
 */
export function rwsemDowngrade(words: Int32Array, offset: number, classId: number): void {
  assertWriteOwner(words, offset, classId, 'downgrade_write');
  const subclass = words[offset + OWNER] >>> OWNER_SUBCLASS_SHIFT;
  words[offset + OWNER] = 0;
  const old = Atomics.add(words, offset, READER - WRITER);
  if ((old & WAITERS) !== 0) wakeQueue(words, offset);
  if (hooks.on) {
    hookRelease(classId, words, offset + ID);
    hookTrylock(classId, subclass, words, offset + ID, READ);
  }
}

/** The write holder's cpu + 1 (0: no writer). */
function writeOwner(words: Int32Array, offset: number): number {
  return words[offset + OWNER] & OWNER_CPU;
}

function assertWriteOwner(words: Int32Array, offset: number, classId: number, what: string): void {
  const owner = writeOwner(words, offset);
  if (owner !== currentCpu() + 1) {
    const holder = owner === 0 ? 'no writer' : `cpu ${owner - 1}`;
    throw new Error(
      `${what} of ${lockClassName(classId)} by cpu ${currentCpu()}, but it is write-held by ${holder}`,
    );
  }
}

/** Undoes a fast-path reader's READER; the last one out wakes the queue. */
function backOutReader(words: Int32Array, offset: number): void {
  const old = Atomics.sub(words, offset, READER);
  if ((old & (READER_MASK | WRITER | WAITERS)) === (READER | WAITERS)) wakeQueue(words, offset);
}

function readSlow(words: Int32Array, offset: number, classId: number): void {
  const start = performance.now();
  backOutReader(words, offset);
  for (let i = 0; i < RWSEM_SPINS; i++) {
    const count = Atomics.load(words, offset);
    if ((count & WAITERS) !== 0) break;
    if ((count & WRITER) === 0) {
      if ((Atomics.add(words, offset, READER) & READ_FAIL) === 0) {
        statContended(classId, READ, start);
        return;
      }
      backOutReader(words, offset);
    }
  }
  waitGranted(words, offset, classId, enqueue(words, offset, false), WAIT_READ);
  statContended(classId, READ, start);
}

function writeSlow(words: Int32Array, offset: number, classId: number): void {
  const start = performance.now();
  if (writeOwner(words, offset) === currentCpu() + 1) {
    throw new Error(`cpu ${currentCpu()} write-locks ${lockClassName(classId)} again: self-deadlock`);
  }
  for (let i = 0; i < RWSEM_SPINS; i++) {
    const count = Atomics.load(words, offset);
    if ((count & WAITERS) !== 0) break;
    if (count === 0 && Atomics.compareExchange(words, offset, 0, WRITER) === 0) {
      statContended(classId, WRITE, start);
      return;
    }
  }
  waitGranted(words, offset, classId, enqueue(words, offset, true), WAIT_WRITE);
  statContended(classId, WRITE, start);
}

function lockQueue(words: Int32Array, offset: number): void {
  while (Atomics.compareExchange(words, offset + WAIT_LOCK, 0, 1) !== 0) {
    // Held for a few word updates: spin.
  }
}

function unlockQueue(words: Int32Array, offset: number): void {
  Atomics.store(words, offset + WAIT_LOCK, 0);
}

/** Takes a ticket (and grants it at once if the lock is free); returns the ticket. */
function enqueue(words: Int32Array, offset: number, writer: boolean): number {
  lockQueue(words, offset);
  const ticket = words[offset + TAIL];
  if (((ticket - words[offset + HEAD]) | 0) >= MAX_CPUS) {
    unlockQueue(words, offset);
    // Each CPU waits in at most one queue slot at a time, so this cannot happen.
    throw new VmAssertionError(`rwsem queue overflow: more than ${MAX_CPUS} waiters`);
  }
  const slot = ticket & (MAX_CPUS - 1);
  const kinds = offset + (slot < 32 ? KINDS_LO : KINDS_HI);
  const bit = 1 << (slot & 31);
  words[kinds] = writer ? words[kinds] | bit : words[kinds] & ~bit;
  words[offset + TAIL] = (ticket + 1) | 0;
  Atomics.or(words, offset, WAITERS);
  grantQueued(words, offset);
  unlockQueue(words, offset);
  return ticket;
}

function wakeQueue(words: Int32Array, offset: number): void {
  lockQueue(words, offset);
  grantQueued(words, offset);
  unlockQueue(words, offset);
}

/** Under WAIT_LOCK: hands the lock to the front of the queue as far as the current holders allow. */
function grantQueued(words: Int32Array, offset: number): void {
  let head = words[offset + HEAD];
  const tail = words[offset + TAIL];
  const first = head;
  while (head !== tail) {
    const slot = head & (MAX_CPUS - 1);
    const writer = (words[offset + (slot < 32 ? KINDS_LO : KINDS_HI)] & (1 << (slot & 31))) !== 0;
    const count = Atomics.load(words, offset);
    if (writer) {
      if ((count & (WRITER | READER_MASK)) !== 0) break;
      if (Atomics.compareExchange(words, offset, count, count | WRITER) !== count) continue;
      head = (head + 1) | 0;
      break;
    }
    if ((count & WRITER) !== 0) break;
    Atomics.add(words, offset, READER);
    head = (head + 1) | 0;
  }
  if (head === tail) Atomics.and(words, offset, ~WAITERS);
  if (head !== first) {
    Atomics.store(words, offset + HEAD, head);
    Atomics.notify(words, offset + HEAD);
  }
}

function waitGranted(words: Int32Array, offset: number, classId: number, ticket: number, kind: number): void {
  for (let i = 0; i < QUEUE_SPINS; i++) {
    if (((Atomics.load(words, offset + HEAD) - ticket) | 0) > 0) return;
  }
  const cpu = currentCpu();
  const wasOnline = rcuBlockBegin();
  beginWait(cpu, kind, classId, writeOwner(words, offset), words[offset] & READER_MASK);
  try {
    for (;;) {
      const head = Atomics.load(words, offset + HEAD);
      if (((head - ticket) | 0) > 0) return;
      const result = Atomics.wait(words, offset + HEAD, head, WAIT_SLICE_MS);
      const count = Atomics.load(words, offset);
      if (result === 'timed-out' && waitTooLong(cpu, writeOwner(words, offset), count & READER_MASK)) {
        throw hangError(cpu, `${lockClassName(classId)} (rwsem ${kind === WAIT_WRITE ? 'write' : 'read'})`);
      }
    }
  } finally {
    endWait(cpu);
    rcuBlockEnd(wasOnline);
  }
}

/** Readers inside and whether a writer holds it, for assertions and reports. */
export function rwsemState(
  words: Int32Array,
  offset: number,
): { readers: number; writer: boolean; queued: number } {
  const count = Atomics.load(words, offset);
  return {
    readers: count & READER_MASK,
    writer: (count & WRITER) !== 0,
    queued: (Atomics.load(words, offset + TAIL) - Atomics.load(words, offset + HEAD)) | 0,
  };
}

export class RwSem extends LockView {
  static readonly WORDS = RWSEM_WORDS;

  static create(className: string): RwSem {
    const [words, classId] = ownWords(RwSem.WORDS, className);
    return new RwSem(words, 0, classId);
  }

  static at(words: Int32Array, offset: number, classId: number): RwSem {
    return new RwSem(words, offset, classId);
  }

  static attach(desc: LockDescriptor): RwSem {
    return new RwSem(wordsOf(desc), desc.offset, desc.classId);
  }

  private constructor(words: Int32Array, offset: number, classId: number) {
    super(words, offset, classId, RwSem.WORDS);
  }

  downRead(subclass = 0): void {
    rwsemDownRead(this.words, this.offset, this.classId, subclass);
  }

  upRead(): void {
    rwsemUpRead(this.words, this.offset, this.classId);
  }

  downWrite(subclass = 0): void {
    rwsemDownWrite(this.words, this.offset, this.classId, subclass);
  }

  upWrite(): void {
    rwsemUpWrite(this.words, this.offset, this.classId);
  }

  tryDownRead(subclass = 0): boolean {
    return rwsemTryDownRead(this.words, this.offset, this.classId, subclass);
  }

  tryDownWrite(subclass = 0): boolean {
    return rwsemTryDownWrite(this.words, this.offset, this.classId, subclass);
  }

  downgrade(): void {
    rwsemDowngrade(this.words, this.offset, this.classId);
  }

  state(): { readers: number; writer: boolean; queued: number } {
    return rwsemState(this.words, this.offset);
  }
}
