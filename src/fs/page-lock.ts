/**
 * The page lock and writeback waits (docs/fs.md, "Page state"): sleeping on a page's PG_LOCKED
 * and PG_WRITEBACK bits (PhysMem FLAGS, src/mem/page.ts) like Linux's folio_lock and
 * folio_wait_writeback. The bits live in the page descriptor; the sleepers wait on one of 256
 * kernel-wide hashed wait words, as Linux's folio_waitqueue hashes folios into a fixed table.
 *
 *   global 'fs.page_wait' (Int32): bucket b at b * BUCKET_WORDS (one cache line each)
 *   +-----+---------+---- ... ----+
 *   | SEQ | WAITERS | (pad)       |   SEQ: bumped by every wake-up of the bucket
 *   +-----+---------+---- ... ----+   WAITERS: CPUs sleeping (or about to) on any page of the bucket
 *
 * Protocol (no lost wake-up): a sleeper adds itself to WAITERS, loads SEQ, tests the bit, and
 * waits on SEQ only if the bit is still set; a releaser clears the bit, then loads WAITERS and,
 * if it is not 0, bumps SEQ and notifies every sleeper of the bucket. All of it is seq-cst: either
 * the sleeper's test sees the bit clear, or the releaser sees the sleeper counted and bumps SEQ,
 * which the sleeper's wait then sees changed (or is woken from). Pages sharing a bucket cause
 * spurious wake-ups only: a woken sleeper tests its own bit again.
 *
 * Guards: PG_LOCKED is set by lockPage/trylockPage (an atomic test-and-set) and cleared by its
 * holder (unlockPage); PG_WRITEBACK is set under the page lock (setPageWriteback) and cleared by
 * whoever set it (endPageWriteback). SEQ and WAITERS are atomics.
 *
 * The validator sees class `page_lock` (a sleeping lock, instance id = pfn): lockPage as a
 * WRITE | LOCK_SLEEPS acquisition, trylockPage as a trylock. Waits are bounded by the watchdog's
 * limit and reported by src/cpu/waits.ts (kinds WAIT_PAGE_LOCK, WAIT_WRITEBACK; detail = pfn).
 * Preconditions of every call: the caller holds a reference to the frame.
 */
import { VmAssertionError } from '../assert.js';
import { currentCpu } from '../cpu/current.js';
import {
  beginWait,
  endWait,
  hangError,
  WAIT_PAGE_LOCK,
  WAIT_SLICE_MS,
  WAIT_WRITEBACK,
  waitTooLong,
} from '../cpu/waits.js';
import { LOCK_SLEEPS, lockHooks, WRITE } from '../lockhooks.js';
import type { PhysMem } from '../mem/frames.js';
import { PG_LOCKED, PG_WRITEBACK } from '../mem/page.js';
import { sharedGlobal } from '../shm/globals.js';
import { lockClass } from '../sync/lockclass.js';
import { statAcquired, statContended, statReleased, statTryFailed } from '../sync/lockstat.js';
import { blockingInReadSection, mightSleep, rcuBlockBegin, rcuBlockEnd, rcuCpu } from '../sync/rcu.js';

/** Lock class of every page lock (docs/locking.md: under invalidate_lock, over the VMA write lock). */
export const pageLockClass = lockClass('page_lock');

/** Hashed wait buckets (a power of two). */
export const PAGE_WAIT_BUCKETS = 256;
const BUCKET_WORDS = 16;
const SEQ = 0;
const WAITERS = 1;
/** Polls of a held bit before the waiter sleeps. */
const SPINS = 100;
const HOOK_MODE = WRITE | LOCK_SLEEPS;
/** Statistics count page locks as exclusive acquisitions. */
const STAT_WRITE = 1;
/** Local aliases: V8 folds module-local consts (see src/sync/exclusive.ts). */
const hooks = lockHooks;
const rcu = rcuCpu;

const table = new Int32Array(sharedGlobal('fs.page_wait', PAGE_WAIT_BUCKETS * BUCKET_WORDS * 4));

/** Word index of pfn's bucket (a multiplicative hash: neighbouring pfns land in different buckets). */
function bucketOf(pfn: number): number {
  return (Math.imul(pfn, 0x9e3779b1) >>> 24) * BUCKET_WORDS;
}

/** folio_lock: takes the page lock, sleeping while another CPU holds it. */
export function lockPage(mem: PhysMem, pfn: number): void {
  if (rcu.depth !== 0) blockingInReadSection('lock_page');
  if (hooks.on) hooks.v.acquire(pageLockClass, 0, pfn, HOOK_MODE, false);
  if ((Atomics.or(mem.flags, pfn, PG_LOCKED) & PG_LOCKED) === 0) statAcquired(pageLockClass, STAT_WRITE);
  else lockPageSlow(mem, pfn);
  if (hooks.on) hooks.v.acquired(pageLockClass, 0, pfn, HOOK_MODE);
}

/** folio_trylock: the page lock if it is free; never sleeps. */
export function trylockPage(mem: PhysMem, pfn: number): boolean {
  return trylockPageFlags(mem, pfn) >= 0;
}

/**
 * trylockPage that also tells the page's flags: the flags word as the lock found it (PG_LOCKED
 * clear), or -1 when another holder has it. The fault path reads up-to-date and dirty from it
 * instead of loading the word again.
 */
export function trylockPageFlags(mem: PhysMem, pfn: number): number {
  const old = Atomics.or(mem.flags, pfn, PG_LOCKED);
  if ((old & PG_LOCKED) !== 0) {
    statTryFailed(pageLockClass);
    return -1;
  }
  statAcquired(pageLockClass, STAT_WRITE);
  if (hooks.on) {
    hooks.v.acquire(pageLockClass, 0, pfn, WRITE, true);
    hooks.v.acquired(pageLockClass, 0, pfn, WRITE);
  }
  return old;
}

/** folio_unlock. Preconditions: this CPU holds the page lock. */
export function unlockPage(mem: PhysMem, pfn: number): void {
  if ((Atomics.and(mem.flags, pfn, ~PG_LOCKED) & PG_LOCKED) === 0) {
    throw new VmAssertionError(`unlockPage of pfn ${pfn}, which is not locked`);
  }
  if (hooks.on) hooks.v.release(pageLockClass, pfn);
  statReleased(pageLockClass);
  wakeBucket(pfn);
}

/** folio_test_locked (a snapshot). */
export function pageLocked(mem: PhysMem, pfn: number): boolean {
  return (Atomics.load(mem.flags, pfn) & PG_LOCKED) !== 0;
}

/** folio_start_writeback. Preconditions: the page lock held; the page is not under writeback. */
export function setPageWriteback(mem: PhysMem, pfn: number): void {
  if ((Atomics.or(mem.flags, pfn, PG_WRITEBACK) & PG_WRITEBACK) !== 0) {
    throw new VmAssertionError(`setPageWriteback of pfn ${pfn}, already under writeback`);
  }
}

/** folio_end_writeback: clears PG_WRITEBACK and wakes its waiters. Preconditions: it was set by this writer. */
export function endPageWriteback(mem: PhysMem, pfn: number): void {
  if ((Atomics.and(mem.flags, pfn, ~PG_WRITEBACK) & PG_WRITEBACK) === 0) {
    throw new VmAssertionError(`endPageWriteback of pfn ${pfn}, which is not under writeback`);
  }
  wakeBucket(pfn);
}

/** folio_wait_writeback: returns once PG_WRITEBACK is clear (at once when it is). */
export function waitOnPageWriteback(mem: PhysMem, pfn: number): void {
  if ((Atomics.load(mem.flags, pfn) & PG_WRITEBACK) === 0) return;
  mightSleep('wait_on_page_writeback');
  sleepOnBit(mem, pfn, PG_WRITEBACK, WAIT_WRITEBACK);
}

function wakeBucket(pfn: number): void {
  const b = bucketOf(pfn);
  if (Atomics.load(table, b + WAITERS) === 0) return;
  Atomics.add(table, b + SEQ, 1);
  Atomics.notify(table, b + SEQ);
}

function lockPageSlow(mem: PhysMem, pfn: number): void {
  const start = performance.now();
  for (let i = 0; i < SPINS; i++) {
    if (
      (Atomics.load(mem.flags, pfn) & PG_LOCKED) === 0 &&
      (Atomics.or(mem.flags, pfn, PG_LOCKED) & PG_LOCKED) === 0
    ) {
      statContended(pageLockClass, STAT_WRITE, start);
      return;
    }
  }
  sleepOnBit(mem, pfn, PG_LOCKED, WAIT_PAGE_LOCK);
  statContended(pageLockClass, STAT_WRITE, start);
}

/**
 * Sleeps until `bit` of pfn's FLAGS is clear; for PG_LOCKED, until this CPU has set it. Bounded:
 * a wait past the watchdog's limit throws the hang report.
 */
function sleepOnBit(mem: PhysMem, pfn: number, bit: number, kind: number): void {
  const cpu = currentCpu();
  const b = bucketOf(pfn);
  const wasOnline = rcuBlockBegin();
  beginWait(cpu, kind, pageLockClass, 0, pfn);
  Atomics.add(table, b + WAITERS, 1);
  try {
    for (;;) {
      const seq = Atomics.load(table, b + SEQ);
      if (bit === PG_LOCKED) {
        if ((Atomics.or(mem.flags, pfn, PG_LOCKED) & PG_LOCKED) === 0) return;
      } else if ((Atomics.load(mem.flags, pfn) & bit) === 0) return;
      if (Atomics.wait(table, b + SEQ, seq, WAIT_SLICE_MS) === 'timed-out' && waitTooLong(cpu, 0, pfn)) {
        throw hangError(cpu, `${bit === PG_LOCKED ? 'the page lock' : 'writeback'} of pfn ${pfn}`);
      }
    }
  } finally {
    Atomics.sub(table, b + WAITERS, 1);
    endWait(cpu);
    rcuBlockEnd(wasOnline);
  }
}
