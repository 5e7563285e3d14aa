/**
 * Per-VMA locks (Linux 6.4+, with the 6.15 reference count): a page fault holds just its VMA, not
 * mmap_lock. A writer holding mmap_lock for write write-locks each VMA it changes by stamping
 * the VMA with the mm's lock sequence; releasing mmap_lock bumps the sequence, which releases
 * every VMA write lock at once. A reader is a trylock: it fails rather than waits, and the fault
 * then falls back to mmap_lock (src/mm/fault-lookup.ts).
 *
 *   MmLocks buffer (one per address space, shared by every CPU)
 *   Int32 words 0..7   mmap_lock (RwSem)
 *         word  16     MM_LOCK_SEQ: odd while mmap_lock is write-held (mmapWriteLock bumps it,
 *                      mmapWriteUnlock/Downgrade bump it again); starts at 2
 *   Float64 from byte 128: EVENTS, one row of EVENT_STRIDE counters per CPU (two 64-byte lines;
 *                      plain writes by their own CPU: no shared cache line on the fault path):
 *                      the VMA-lock events (EV_SUCCESS..EV_WRITER_WAITED) and the faults by path
 *                      (EV_FAULT_VMA, EV_FAULT_MMAP, EV_FAULT_RETRY), read by vmstat.ts
 *
 *   VMA record lock words (src/mm/vma-record.ts)
 *   LOCK_SEQ   the mm's MM_LOCK_SEQ when the VMA was last write-locked
 *   REFCNT     0 = detached | 1 = attached, + 1 per reader, + WRITER_WAIT (1 << 30) while a writer
 *              waits for the readers to leave
 *   LOCKDEP_ID the validator's instance id of this VMA's lock
 *
 * Invariants: a VMA is write-locked iff LOCK_SEQ == MM_LOCK_SEQ, which is then odd (a record
 * zeroed by alloc is never locked; after 2^32 sequences a stale stamp may match again, costing a
 * spurious fallback); only the mmap_lock writer sets WRITER_WAIT, stamps LOCK_SEQ, attaches or
 * detaches; a reader holds the lock iff its increment of REFCNT succeeded (attached,
 * no WRITER_WAIT) and LOCK_SEQ != MM_LOCK_SEQ afterwards; a write lock is stamped only once no
 * reader holds the VMA, so a held read lock excludes every change to the VMA's fields.
 *
 * Why a reader never waits: vmaStartRead adds 1 to REFCNT and checks the old value and the
 * sequence; on a writer (stamped or waiting) or a detached VMA it takes the 1 back and fails. The
 * writer is the one that waits (for readers already inside), and readers arriving meanwhile fail.
 *
 * The validator sees class "vma_lock": the read side as a READ trylock (never a wait edge), the
 * write side as a WRITE acquisition that lasts while vmaStartWrite waits for readers (as Linux
 * annotates it), taken under mmap_lock. The lock statistics see the same class: read acquisitions
 * (hold sampled to vmaEndRead), trylock failures, write stamps and their waits for readers.
 */
import { currentCpu, MAX_CPUS } from '../cpu/current.js';
import { beginWait, endWait, hangError, WAIT_SLICE_MS, WAIT_WRITE, waitTooLong } from '../cpu/waits.js';
import { LOCK_SLEEPS, lockHooks, READ, WRITE } from '../lockhooks.js';
import { pageAligned } from '../mem/page.js';
import { lockIdAt } from '../sync/lockclass.js';
import { statAcquired, statAcquiredUnheld, statReleased, statTryFailed } from '../sync/lockstat.js';
import { rcuBlockBegin, rcuBlockEnd, rcuReadLockHeld } from '../sync/rcu.js';
import { RwSem } from '../sync/rwsem.js';
import { mmapLockClass, vmaLockClass } from './locking.js';
import {
  VMA_ATTACHED,
  VMA_DETACHED,
  VMA_LOCK_SEQ_WORD,
  VMA_RECORD_BYTES,
  VMA_REFCNT_WORD,
  type VmaArena,
} from './vma-record.js';

const MMAP_LOCK_WORD = 0;
const MM_LOCK_SEQ = 16;
const MM_WORDS = 32;
const INITIAL_SEQ = 2;
const EVENTS_BYTE = MM_WORDS * 4;
/** Float64 counters per CPU row (two 64-byte lines). */
const EVENT_STRIDE = 16;

/** Int32 words per VMA record, and the lock words in it. */
const STRIDE = VMA_RECORD_BYTES >> 2;
const LOCK_SEQ = VMA_LOCK_SEQ_WORD;
const REFCNT = VMA_REFCNT_WORD;
/** First of the record's spare lock words. */
const LOCKDEP_ID = VMA_REFCNT_WORD + 1;
if (LOCKDEP_ID >= STRIDE) throw new Error('vma-lock: the lockdep id word lies outside the VMA record');

/** Set in REFCNT while a writer waits for readers; readers fail on it. */
const WRITER_WAIT = 1 << 30;
/** A reader's increment fails at or above this. */
const REF_LIMIT = WRITER_WAIT - 1;
/** Polls of REFCNT before a writer sleeps. */
const WRITER_SPINS = 200;

/** vmaTryRead results. */
export const READ_OK = 0;
export const READ_WRITE_LOCKED = 1;
export const READ_DETACHED = 2;

/** Event counters (Linux's VMA_LOCK_* vm events, split by reason). */
export const EV_SUCCESS = 0;
export const EV_ABORT_NO_VMA = 1;
export const EV_ABORT_LOCKED = 2;
export const EV_ABORT_DETACHED = 3;
export const EV_ABORT_MOVED = 4;
export const EV_RETRY = 5;
export const EV_MMAP_FALLBACK = 6;
export const EV_WRITER_WAITED = 7;
/** Faults by path (vmstat.ts): finished holding only the VMA read lock; finished under mmap_lock (R). */
export const EV_FAULT_VMA = 8;
export const EV_FAULT_MMAP = 9;
/** Faults that dropped their lock to wait for I/O and were retried (VM_FAULT_RETRY: file faults). */
export const EV_FAULT_RETRY = 10;
/**
 * The speculative design (spec-fault.ts): faults finished with no VMA or mmap lock; speculative
 * attempts whose validation failed (the VMA or its table changed); attempts the path does not
 * handle (no VMA, not private anonymous, no anon_vma or PTE table yet, a present entry).
 */
export const EV_FAULT_SPEC = 11;
export const EV_SPEC_ABORT = 12;
export const EV_SPEC_SKIP = 13;
const EVENTS = 14;
if (EVENTS > EVENT_STRIDE) throw new Error('vma-lock: more events than a CPU row holds');

export interface VmaLockEvents {
  /** lockVmaUnderRcu returned a read-locked VMA. */
  success: number;
  /** Fallbacks to mmap_lock, by reason: no VMA at the address, write-locked, detached, moved. */
  noVma: number;
  locked: number;
  detached: number;
  moved: number;
  /** Walks repeated because the VMA found was detached meanwhile. */
  retries: number;
  /** lockMmAndFindVma calls (the mmap_lock path). */
  mmapFallbacks: number;
  /** vmaStartWrite / vmaMarkDetached calls that had to wait for readers. */
  writerWaits: number;
}

export interface MmLocksDescriptor {
  buffer: SharedArrayBuffer;
}

/** One address space's locks: mmap_lock, the lock sequence, and the per-VMA locks of its records. */
export class MmLocks {
  readonly mmapLock: RwSem;
  /** MM_LOCK_SEQ and the mmap_lock words. */
  readonly words: Int32Array;
  readonly events: Float64Array;
  /** The VMA records' words (the arena's Int32 view). */
  readonly vma: Int32Array;
  readonly arena: VmaArena;

  static create(arena: VmaArena): MmLocks {
    const locks = new MmLocks(
      // Page-aligned, so that each CPU's row of events is one cache line of its own.
      { buffer: pageAligned(EVENTS_BYTE + MAX_CPUS * EVENT_STRIDE * 8) },
      arena,
    );
    // Not 0: a zeroed record's stamp must not match the sequence of an unlocked mm.
    locks.words[MM_LOCK_SEQ] = INITIAL_SEQ;
    return locks;
  }

  /** This address space's locks on another CPU; `arena` is the same VMA arena attached there. */
  static attach(desc: MmLocksDescriptor, arena: VmaArena): MmLocks {
    return new MmLocks(desc, arena);
  }

  private constructor(desc: MmLocksDescriptor, arena: VmaArena) {
    if (arena.arena.recordBytes !== VMA_RECORD_BYTES) throw new Error('vma-lock: not a VMA arena');
    this.words = new Int32Array(desc.buffer, 0, MM_WORDS);
    this.events = new Float64Array(desc.buffer, EVENTS_BYTE, MAX_CPUS * EVENT_STRIDE);
    this.mmapLock = RwSem.at(this.words, MMAP_LOCK_WORD, mmapLockClass);
    this.vma = arena.words;
    this.arena = arena;
  }

  describe(): MmLocksDescriptor {
    return { buffer: this.words.buffer as SharedArrayBuffer };
  }
}

// ---- mmap_lock ---------------------------------------------------------------------------------

/** mmap_write_lock: takes mmap_lock for write and opens a new lock sequence (odd). */
export function mmapWriteLock(locks: MmLocks, subclass = 0): void {
  locks.mmapLock.downWrite(subclass);
  if (!bumpLockSeq(locks, 0)) {
    locks.mmapLock.upWrite();
    throw new Error(
      'mmapWriteLock: the lock sequence was odd (a writer did not unlock through mmapWriteUnlock)',
    );
  }
}

/** mmap_write_unlock: bumps the sequence (releasing every VMA write lock) and releases mmap_lock. */
export function mmapWriteUnlock(locks: MmLocks): void {
  vmaEndWriteAll(locks);
  locks.mmapLock.upWrite();
}

/** mmap_write_downgrade: releases the VMA write locks and keeps mmap_lock for read. */
export function mmapWriteDowngrade(locks: MmLocks): void {
  vmaEndWriteAll(locks);
  locks.mmapLock.downgrade();
}

export function mmapReadLock(locks: MmLocks): void {
  locks.mmapLock.downRead();
}

export function mmapReadUnlock(locks: MmLocks): void {
  locks.mmapLock.upRead();
}

function vmaEndWriteAll(locks: MmLocks): void {
  if (!bumpLockSeq(locks, 1)) {
    throw new Error('mmapWriteUnlock: mmap_lock is not write-held through mmapWriteLock');
  }
}

/**
 * MM_LOCK_SEQ + 1 if its parity is `parity` (false, unchanged, otherwise). Only the holder of
 * mmap_lock for write changes the word, so a plain load and one atomic store do (an atomic add
 * would also order nothing more: the store is seq-cst, and the lock's own atomics order the rest).
 */
function bumpLockSeq(locks: MmLocks, parity: number): boolean {
  const seq = locks.words[MM_LOCK_SEQ];
  if ((seq & 1) !== parity) return false;
  Atomics.store(locks.words, MM_LOCK_SEQ, seq + 1);
  return true;
}

/** The current lock sequence (odd while mmap_lock is write-held). */
export function mmLockSeq(locks: MmLocks): number {
  return Atomics.load(locks.words, MM_LOCK_SEQ);
}

// ---- the read side (trylock, allocation-free) --------------------------------------------------

/**
 * vma_start_read: tries to read-lock VMA record `h`; READ_OK, or why not (READ_WRITE_LOCKED,
 * READ_DETACHED). Never waits. Call it inside the RCU read section that found `h`.
 */
export function vmaTryRead(locks: MmLocks, h: number): number {
  const w = locks.vma;
  const b = h * STRIDE;
  // Pessimistic early check with plain loads: a stale answer only costs a fallback.
  if (w[b + LOCK_SEQ] === locks.words[MM_LOCK_SEQ]) {
    statTryFailed(vmaLockClass);
    return READ_WRITE_LOCKED;
  }
  const old = Atomics.add(w, b + REFCNT, 1);
  if (old === 0 || old >= REF_LIMIT) {
    refPut(w, b + REFCNT);
    statTryFailed(vmaLockClass);
    return old === 0 ? READ_DETACHED : READ_WRITE_LOCKED;
  }
  // The increment succeeded after any writer's stamp was published (a writer stamps LOCK_SEQ
  // before taking WRITER_WAIT back), so LOCK_SEQ is current here; MM_LOCK_SEQ needs an atomic load
  // to order this reader's later loads after the unlock that released the VMA.
  if (w[b + LOCK_SEQ] === Atomics.load(locks.words, MM_LOCK_SEQ)) {
    refPut(w, b + REFCNT);
    statTryFailed(vmaLockClass);
    return READ_WRITE_LOCKED;
  }
  if (lockHooks.on) readAcquiredHooks(w, b);
  statAcquired(vmaLockClass, READ);
  return READ_OK;
}

/** vma_start_read as a boolean trylock. */
export function vmaStartRead(locks: MmLocks, h: number): boolean {
  return vmaTryRead(locks, h) === READ_OK;
}

/** vma_end_read: drops a read lock taken by vmaStartRead / vmaTryRead. */
export function vmaEndRead(locks: MmLocks, h: number): void {
  const w = locks.vma;
  const b = h * STRIDE;
  const old = Atomics.sub(w, b + REFCNT, 1);
  if (old < 2) {
    Atomics.add(w, b + REFCNT, 1);
    throw new Error(`vmaEndRead: VMA record ${h} is not read-locked (refcount ${old})`);
  }
  if (lockHooks.on) lockHooks.v.release(vmaLockClass, lockIdAt(w, b + LOCKDEP_ID));
  statReleased(vmaLockClass);
  if (old - 1 >= WRITER_WAIT) wakeWriter(w, b + REFCNT, old - 1);
}

function readAcquiredHooks(w: Int32Array, b: number): void {
  const id = lockIdAt(w, b + LOCKDEP_ID);
  lockHooks.v.acquire(vmaLockClass, 0, id, READ, true);
  lockHooks.v.acquired(vmaLockClass, 0, id, READ);
}

/** Takes back a reader's increment; wakes a writer waiting for the count it leaves. */
function refPut(w: Int32Array, i: number): void {
  const left = Atomics.sub(w, i, 1) - 1;
  if (left >= WRITER_WAIT) wakeWriter(w, i, left);
}

function wakeWriter(w: Int32Array, i: number, left: number): void {
  if (left <= WRITER_WAIT + 1) Atomics.notify(w, i);
}

// ---- the speculative read side (a seqcount reader of the stamp, spec-fault.ts) -----------------

/**
 * Begins a lockless read of record `h`'s fields: its stamp (LOCK_SEQ), or -1 while it is
 * write-locked, not yet stamped or detached. The stamp is loaded before the mm's sequence: a writer stamps with the sequence it
 * made odd, so a stamp loaded first and unequal to the sequence loaded after it is one no writer
 * holds now. Call it inside the RCU read section that found `h`.
 */
export function vmaSeqBegin(locks: MmLocks, h: number): number {
  const seq = Atomics.load(locks.vma, h * STRIDE + LOCK_SEQ);
  if (seq === 0 || seq === Atomics.load(locks.words, MM_LOCK_SEQ)) return -1;
  // Detached under this very stamp (the writer has unlocked since): a record the walk found in a
  // tree node already replaced. Its state was set before that unlock, so this load sees it.
  return locks.arena.state(h) === VMA_ATTACHED ? seq : -1;
}

/**
 * Whether record `h` was write-locked (changed, detached, freed and reused) since vmaSeqBegin
 * returned `seq`: every later write lock stamps a greater sequence, and a freed record is zeroed.
 * (A detach stamps first, so an attached record seen by vmaSeqBegin is still attached when this
 * is false.)
 */
export function vmaSeqRetry(locks: MmLocks, h: number, seq: number): boolean {
  return Atomics.load(locks.vma, h * STRIDE + LOCK_SEQ) !== seq;
}

// ---- the write side (caller holds mmap_lock for write via mmapWriteLock) -------------------------

/**
 * vma_start_write: write-locks VMA record `h` until mmapWriteUnlock. Waits for the readers inside
 * it to leave (readers arriving meanwhile fail). A no-op if it is already write-locked.
 */
export function vmaStartWrite(locks: MmLocks, h: number): void {
  const seq = writerSeq(locks, 'vmaStartWrite');
  const w = locks.vma;
  const b = h * STRIDE;
  if (w[b + LOCK_SEQ] === seq) return;
  const id = lockHooks.on ? writeAcquireHook(w, b) : 0;
  // Detached (a record being created, not yet in the tree): no reader can reach it (a freed record
  // is reused only after a grace period), so plain words, published by the tree's store. An
  // attached record's REFCNT never reads 0 (readers add to its 1): a plain load decides.
  if (w[b + REFCNT] === 0) {
    w[b + LOCK_SEQ] = seq;
    statAcquiredUnheld(vmaLockClass, WRITE, 0);
  } else stampAttached(locks, h, seq);
  if (id !== 0) {
    lockHooks.v.acquired(vmaLockClass, 0, id, WRITE | LOCK_SLEEPS);
    lockHooks.v.release(vmaLockClass, id);
  }
}

/** Announces the writer (readers arriving now fail), waits for the readers inside, then stamps. */
function stampAttached(locks: MmLocks, h: number, seq: number): void {
  const w = locks.vma;
  const b = h * STRIDE;
  const old = Atomics.add(w, b + REFCNT, WRITER_WAIT);
  if (old >= WRITER_WAIT) {
    Atomics.sub(w, b + REFCNT, WRITER_WAIT);
    throw new Error(`vmaStartWrite: VMA record ${h} already has a waiting writer`);
  }
  const waitedSince = old > 1 ? waitForReaders(locks, h, WRITER_WAIT + 1) : 0;
  Atomics.store(w, b + LOCK_SEQ, seq);
  Atomics.sub(w, b + REFCNT, WRITER_WAIT);
  statAcquiredUnheld(vmaLockClass, WRITE, waitedSince);
}

function writeAcquireHook(w: Int32Array, b: number): number {
  const id = lockIdAt(w, b + LOCKDEP_ID);
  lockHooks.v.acquire(vmaLockClass, 0, id, WRITE | LOCK_SLEEPS, false);
  return id;
}

/**
 * vma_mark_attached: a write-locked, detached record is about to be published in the tree. Plain
 * words, as vmaStartWrite's of a new record: no reader reaches the record before the tree's
 * store publishes it (and with it these words).
 */
export function vmaMarkAttached(locks: MmLocks, h: number): void {
  assertWriteLocked(locks, h, 'vmaMarkAttached');
  const i = h * STRIDE + REFCNT;
  if (locks.vma[i] !== 0) {
    throw new Error(`vmaMarkAttached: VMA record ${h} is attached already (refcount ${locks.vma[i]})`);
  }
  locks.vma[i] = 1;
  locks.arena.setStateUnpublished(h, VMA_ATTACHED);
}

/**
 * vma_mark_detached: a write-locked record has left the tree. Waits out readers that raced in and
 * are about to fail; afterwards every vmaStartRead of it fails. Free it after a grace period.
 */
export function vmaMarkDetached(locks: MmLocks, h: number): void {
  assertWriteLocked(locks, h, 'vmaMarkDetached');
  const w = locks.vma;
  const i = h * STRIDE + REFCNT;
  const old = Atomics.sub(w, i, 1);
  if (old !== 1) {
    if (old < 1 || old >= WRITER_WAIT) {
      Atomics.add(w, i, 1);
      throw new Error(`vmaMarkDetached: VMA record ${h} is not attached (refcount ${old})`);
    }
    Atomics.add(w, i, WRITER_WAIT);
    waitForReaders(locks, h, WRITER_WAIT);
    Atomics.sub(w, i, WRITER_WAIT);
  }
  locks.arena.setState(h, VMA_DETACHED);
}

/** The sequence a writer stamps: MM_LOCK_SEQ, which must be odd (mmap_lock write-held). */
function writerSeq(locks: MmLocks, what: string): number {
  const seq = locks.words[MM_LOCK_SEQ];
  if ((seq & 1) === 0) throw new Error(`${what} without mmap_lock held for write (mmapWriteLock)`);
  return seq;
}

function assertWriteLocked(locks: MmLocks, h: number, what: string): void {
  if (locks.vma[h * STRIDE + LOCK_SEQ] !== writerSeq(locks, what)) {
    throw new Error(`${what}: VMA record ${h} is not write-locked (vmaStartWrite first)`);
  }
}

/**
 * Blocks until REFCNT of `h` equals `target` (the writer's own bits: every reader has left).
 * Returns 0 when the readers left while it spun, else when it began to sleep (performance.now()).
 */
function waitForReaders(locks: MmLocks, h: number, target: number): number {
  const w = locks.vma;
  const i = h * STRIDE + REFCNT;
  for (let n = 0; n < WRITER_SPINS; n++) if (Atomics.load(w, i) === target) return 0;
  const since = performance.now();
  if (rcuReadLockHeld()) throw new Error('vma write lock: waiting for readers inside an RCU read section');
  countEvent(locks, EV_WRITER_WAITED);
  const cpu = currentCpu();
  const wasOnline = rcuBlockBegin();
  beginWait(cpu, WAIT_WRITE, vmaLockClass, 0, Atomics.load(w, i) - target);
  try {
    for (;;) {
      const count = Atomics.load(w, i);
      if (count === target) return since;
      const result = Atomics.wait(w, i, count, WAIT_SLICE_MS);
      if (result === 'timed-out' && waitTooLong(cpu, 0, Atomics.load(w, i) - target)) {
        throw hangError(cpu, `vma_lock of VMA record ${h} (waiting for its readers to leave)`);
      }
    }
  } finally {
    endWait(cpu);
    rcuBlockEnd(wasOnline);
  }
}

// ---- observation -------------------------------------------------------------------------------

/** True while `h` is write-locked (its stamp equals the current, odd, sequence). */
export function vmaIsWriteLocked(locks: MmLocks, h: number): boolean {
  const seq = Atomics.load(locks.words, MM_LOCK_SEQ);
  return (seq & 1) !== 0 && Atomics.load(locks.vma, h * STRIDE + LOCK_SEQ) === seq;
}

/** Readers holding (or transiently trying) `h`'s read lock. */
export function vmaReaders(locks: MmLocks, h: number): number {
  const count = Atomics.load(locks.vma, h * STRIDE + REFCNT) & REF_LIMIT;
  return locks.arena.state(h) === VMA_ATTACHED ? count - 1 : count;
}

/** Counts one event on this CPU's row (plain write: each CPU owns its row). */
export function countEvent(locks: MmLocks, event: number): void {
  locks.events[currentCpu() * EVENT_STRIDE + event]++;
}

/** Event `event` (EV_*) summed over all CPUs' rows. */
export function vmaLockEventSum(locks: MmLocks, event: number): number {
  let total = 0;
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) total += locks.events[cpu * EVENT_STRIDE + event];
  return total;
}

/** The VMA-lock event counters summed over all CPUs (the faults by path: vmstat.ts). */
export function vmaLockEvents(locks: MmLocks): VmaLockEvents {
  const sum = (event: number): number => vmaLockEventSum(locks, event);
  return {
    success: sum(EV_SUCCESS),
    noVma: sum(EV_ABORT_NO_VMA),
    locked: sum(EV_ABORT_LOCKED),
    detached: sum(EV_ABORT_DETACHED),
    moved: sum(EV_ABORT_MOVED),
    retries: sum(EV_RETRY),
    mmapFallbacks: sum(EV_MMAP_FALLBACK),
    writerWaits: sum(EV_WRITER_WAITED),
  };
}

/** Zeroes the event counters (between benchmark or lab phases). */
export function resetVmaLockEvents(locks: MmLocks): void {
  locks.events.fill(0);
}
