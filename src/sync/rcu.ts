/**
 * RCU (read-copy-update), process-wide like the kernel's, QSBR flavour: a read section costs a
 * thread-local counter (no atomics, no shared write); grace periods are detected from quiescent
 * states the CPUs report. A CPU reports one whenever it leaves its outermost read section while a
 * grace period is pending (one plain load to find out), at `rcuQuiescent()`, and while it blocks;
 * an idle or offline CPU (between Machine tasks, or the main thread by default) is in an extended
 * quiescent state and never delays a grace period. See docs/rcu.md for the measurements behind
 * the choice of QSBR over an epoch scheme.
 *
 *   global 'sync.rcu' (Int32):
 *   +----+------+----------+-------+----+-----+--------------------------+
 *   | GP | DONE | SLEEPERS | EVENT | ID | ... | QS[0] ... QS[MAX_CPUS-1] |   (QS at word 8)
 *   +----+------+----------+-------+----+-----+--------------------------+
 *   GP: newest grace period started (starts at 1, grows by one per start)
 *   DONE: newest grace period known complete      SLEEPERS/EVENT: wake-up of waiting updaters
 *   QS[c]: OFFLINE (0), or the newest GP that CPU c has acknowledged (passed a quiescent state in)
 *
 * Invariants: grace period g is complete when every QS[c] is OFFLINE or >= g; a CPU that is online
 * is never inside a read section it entered before acknowledging a GP it reports; a CPU goes
 * offline only outside read sections, and an offline CPU that enters a read section first publishes
 * QS[c] = GP (one seq-cst store, which orders its reads after any updater's earlier unpublish).
 * GP numbers compare modulo 2^32.
 *
 * Deferred frees (`rcuDeferFree`, like call_rcu) queue per CPU: a `next` batch that grows until
 * BATCH records or until the previous batch's grace period completes, and a `waiting` batch tagged
 * with the GP that must complete before its records go back to their arenas. Nothing allocates
 * per call; the batches' arrays double when full.
 */
import { currentCpu, MAX_CPUS } from '../cpu/current.js';
import {
  beginWait,
  endWait,
  hangError,
  WAIT_GRACE_PERIOD,
  WAIT_SLICE_MS,
  waitTooLong,
} from '../cpu/waits.js';
import { LOCK_ATOMIC, LOCK_RECURSIVE_READ, lockHooks, READ } from '../lockhooks.js';
import type { Arena } from '../shm/arena.js';
import { sharedGlobal } from '../shm/globals.js';
import { lockClass, lockIdAt } from './lockclass.js';

const GP = 0;
const DONE = 1;
const SLEEPERS = 2;
const EVENT = 3;
const ID = 4;
const QS = 8;
const OFFLINE = 0;

/** Deferred frees per batch before a grace period is started for them. */
export const RCU_BATCH = 128;
/** Polls of a pending grace period before an updater sleeps. */
const SPIN_POLLS = 64;

const state = new Int32Array(sharedGlobal('sync.rcu', (QS + MAX_CPUS) * 4));
if (state[GP] === 0) Atomics.compareExchange(state, GP, 0, 1);

/** The class the lock validator sees for read sections. */
export const RCU_CLASS = lockClass('rcu_read_lock');

/** What the validator sees: a recursive read side that is atomic context. */
const RCU_HOOK_MODE = READ | LOCK_ATOMIC | LOCK_RECURSIVE_READ;
/** A module-local alias: V8 folds it, while it loads an imported binding through its module cell. */
const hooks = lockHooks;

/** This CPU's RCU state (thread-local: each CPU is one thread). */
export const rcuCpu = {
  /** Read-section nesting depth. */
  depth: 0,
  /** Online: QS[cpu] tracks this CPU, which must report quiescent states. */
  online: false,
  /** The newest GP this CPU has acknowledged. */
  seen: 0,
};

/** Enters a read section (nestable). Records read inside stay allocated until the outermost exit. */
export function rcuReadLock(): void {
  const s = rcuCpu;
  if (s.depth++ === 0 && !s.online) publishOnline();
  if (hooks.on) hookAcquire();
}

/** Leaves a read section; the outermost exit is a quiescent state. */
export function rcuReadUnlock(): void {
  const s = rcuCpu;
  if (hooks.on) hookRelease();
  if (--s.depth === 0) {
    if (!s.online) publishOffline();
    else if (state[GP] !== s.seen) reportQuiescent();
  } else if (s.depth < 0) {
    s.depth = 0;
    throw new Error('rcuReadUnlock without a matching rcuReadLock');
  }
}

function hookAcquire(): void {
  const id = lockIdAt(state, ID);
  lockHooks.v.acquire(RCU_CLASS, 0, id, RCU_HOOK_MODE, false);
  lockHooks.v.acquired(RCU_CLASS, 0, id, RCU_HOOK_MODE);
}

function hookRelease(): void {
  lockHooks.v.release(RCU_CLASS, lockIdAt(state, ID));
}

/** True inside a read section. */
export function rcuReadLockHeld(): boolean {
  return rcuCpu.depth !== 0;
}

/**
 * Declares a quiescent state: this CPU holds no reference obtained in an earlier read section.
 * Long-running tasks that do not use RCU call it now and then (like cond_resched()). Cheap.
 */
export function rcuQuiescent(): void {
  const s = rcuCpu;
  if (s.depth !== 0) throw new Error('rcuQuiescent inside an RCU read section');
  if (s.online && state[GP] !== s.seen) reportQuiescent();
}

function reportQuiescent(): void {
  const g = Atomics.load(state, GP);
  rcuCpu.seen = g;
  Atomics.store(state, QS + currentCpu(), g);
  wakeUpdaters();
}

function wakeUpdaters(): void {
  if (Atomics.load(state, SLEEPERS) !== 0) {
    Atomics.add(state, EVENT, 1);
    Atomics.notify(state, EVENT);
  }
}

function publishOnline(): void {
  const g = Atomics.load(state, GP);
  rcuCpu.seen = g;
  Atomics.store(state, QS + currentCpu(), g);
}

function publishOffline(): void {
  Atomics.store(state, QS + currentCpu(), OFFLINE);
  wakeUpdaters();
}

/** Makes this CPU report quiescent states itself (the Machine does it around each task). */
export function rcuOnline(): void {
  if (rcuCpu.online) return;
  rcuCpu.online = true;
  if (rcuCpu.depth === 0) publishOnline();
}

/** Puts this CPU in an extended quiescent state (idle); read sections then publish themselves. */
export function rcuOffline(): void {
  if (rcuCpu.depth !== 0) throw new Error('rcuOffline inside an RCU read section');
  if (!rcuCpu.online) return;
  rcuCpu.online = false;
  publishOffline();
}

/** Before a blocking wait: an online CPU outside read sections is quiescent while it blocks. */
export function rcuBlockBegin(): boolean {
  if (rcuCpu.depth !== 0 || !rcuCpu.online) return false;
  publishOffline();
  return true;
}

export function rcuBlockEnd(wasOnline: boolean): void {
  if (wasOnline) publishOnline();
}

function startGracePeriod(): number {
  return (Atomics.add(state, GP, 1) + 1) | 0;
}

/** True when grace period `gp` has completed (every CPU offline or past it). */
function gracePeriodDone(gp: number): boolean {
  if (((Atomics.load(state, DONE) - gp) | 0) >= 0) return true;
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    const qs = Atomics.load(state, QS + cpu);
    if (qs !== OFFLINE && ((qs - gp) | 0) < 0) return false;
  }
  let done = Atomics.load(state, DONE);
  while (((done - gp) | 0) < 0) {
    const seen = Atomics.compareExchange(state, DONE, done, gp);
    if (seen === done) break;
    done = seen;
  }
  return true;
}

function lateCpus(gp: number): string {
  const late: number[] = [];
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    const qs = Atomics.load(state, QS + cpu);
    if (qs !== OFFLINE && ((qs - gp) | 0) < 0) late.push(cpu);
  }
  return late.join(', ');
}

/** Blocks until grace period `gp` completes. */
function waitGracePeriod(gp: number): void {
  if (rcuCpu.online && rcuCpu.depth === 0) reportQuiescent();
  for (let i = 0; i < SPIN_POLLS; i++) if (gracePeriodDone(gp)) return;
  const cpu = currentCpu();
  const wasOnline = rcuBlockBegin();
  beginWait(cpu, WAIT_GRACE_PERIOD, RCU_CLASS, 0, gp);
  Atomics.add(state, SLEEPERS, 1);
  try {
    for (;;) {
      const event = Atomics.load(state, EVENT);
      if (gracePeriodDone(gp)) return;
      if (Atomics.wait(state, EVENT, event, WAIT_SLICE_MS) === 'timed-out' && waitTooLong(cpu, 0, gp)) {
        throw hangError(cpu, `rcu grace period ${gp} (cpus not yet quiescent: ${lateCpus(gp)})`);
      }
    }
  } finally {
    Atomics.sub(state, SLEEPERS, 1);
    endWait(cpu);
    rcuBlockEnd(wasOnline);
  }
}

/**
 * Every call that may block, other than a lock acquisition, calls this first (like might_sleep()):
 * blocking inside a read section is an error (it could stall grace periods forever), and the lock
 * validator hears about it (under mmap_lock it counts as sleeping there).
 */
export function mightSleep(site: string): void {
  if (rcuCpu.depth !== 0) blockingInReadSection(site);
  if (lockHooks.on) lockHooks.v.mightSleep(site);
}

/**
 * A wait for the other CPUs' progress alone (a TLB shootdown waiting for acknowledgements): like
 * mightSleep inside a read section or in atomic context, but not sleeping under mmap_lock. The
 * CPUs it waits for acknowledge at their next access, miss or quiescent point, and a CPU that may
 * block goes offline first (docs/mm.md, "Deadlock rule"): the wait is bounded by their progress,
 * never by I/O or a lock, as Linux's wait for its TLB-flush IPIs is a spin.
 */
export function mightWaitCpus(site: string): void {
  if (rcuCpu.depth !== 0) blockingInReadSection(site);
  if (lockHooks.on) lockHooks.v.mightWaitCpus(site);
}

/**
 * Sleeping locks call this when `rcuCpu.depth !== 0`, whether or not they would wait. They do not
 * call mightSleep: the validator sees their acquisition with LOCK_SLEEPS instead, and taking a
 * sleeping lock under mmap_lock is not sleeping under it in the mmap_lock check's sense.
 */
export function blockingInReadSection(site: string): never {
  throw new Error(`${site} inside an RCU read section: blocking is not allowed there`);
}

/** Returns after a full grace period: every read section that began before the call has ended. */
export function synchronizeRcu(): void {
  mightSleep('synchronize_rcu');
  waitGracePeriod(startGracePeriod());
}

/**
 * A batch of deferred frees, kept per arena (a VMA commit interleaves records and tree nodes):
 * `freeAll` then takes each arena's lock once, not once per change of arena.
 */
class Batch {
  /** The arenas this batch holds handles of (few: every arena a CPU frees into under RCU). */
  arenas: Arena[] = [];
  /** handles[k] and counts[k]: arena k's handles (the lists stay for the next batch, the arenas do not). */
  handles: Int32Array[] = [];
  counts: number[] = [];
  /** The arena of the last push, and its index (most pushes repeat one of two arenas). */
  private lastArena: Arena | null = null;
  private lastIndex = 0;
  count = 0;
  gp = 0;

  push(arena: Arena, handle: number): void {
    const k = arena === this.lastArena ? this.lastIndex : this.indexOf(arena);
    let list = this.handles[k];
    const n = this.counts[k];
    if (n === list.length) {
      const grown = new Int32Array(n * 2);
      grown.set(list);
      this.handles[k] = list = grown;
    }
    list[n] = handle;
    this.counts[k] = n + 1;
    this.count++;
  }

  private indexOf(arena: Arena): number {
    // A loop, not Array.prototype.indexOf: a commit alternates two arenas (records, tree nodes).
    let k = -1;
    for (let i = 0; i < this.arenas.length; i++) {
      if (this.arenas[i] === arena) {
        k = i;
        break;
      }
    }
    if (k < 0) {
      k = this.arenas.length;
      this.arenas.push(arena);
      if (k === this.handles.length) {
        this.handles.push(new Int32Array(RCU_BATCH));
        this.counts.push(0);
      }
    }
    this.lastArena = arena;
    this.lastIndex = k;
    return k;
  }

  /**
   * Frees every record, one arena lock round trip per arena, and forgets the arenas (an address
   * space's arenas must not live on here after it is gone).
   */
  freeAll(): void {
    for (let k = 0; k < this.arenas.length; k++) {
      if (this.counts[k] !== 0) this.arenas[k].freeBatch(this.handles[k], 0, this.counts[k]);
      this.counts[k] = 0;
    }
    this.arenas.length = 0;
    this.lastArena = null;
    this.count = 0;
  }
}

let next = new Batch();
let waiting = new Batch();

/** Frees `handle` of `arena` once every read section that might still see it has ended (call_rcu). */
export function rcuDeferFree(arena: Arena, handle: number): void {
  if (!arena.isLiveOwned(handle)) throw new Error(`rcuDeferFree: ${arena.name} handle ${handle} is not live`);
  next.push(arena, handle);
  if (next.count >= RCU_BATCH) advanceDeferred();
}

/** Frees the waiting batch if its grace period is over and starts one for the next batch. Never blocks. */
export function advanceDeferred(): void {
  if (waiting.count !== 0) {
    if (!gracePeriodDone(waiting.gp)) return;
    waiting.freeAll();
  }
  if (next.count === 0) return;
  const batch = waiting;
  waiting = next;
  next = batch;
  waiting.gp = startGracePeriod();
  if (rcuCpu.online && rcuCpu.depth === 0) reportQuiescent();
}

/** Blocks until every free this CPU deferred so far is done. */
export function rcuBarrier(): void {
  mightSleep('rcu_barrier');
  if (waiting.count !== 0) {
    waitGracePeriod(waiting.gp);
    waiting.freeAll();
  }
  if (next.count !== 0) {
    advanceDeferred();
    waitGracePeriod(waiting.gp);
    waiting.freeAll();
  }
}

/** Records this CPU has deferred and not yet freed. */
export function rcuPendingFrees(): number {
  return next.count + waiting.count;
}

export interface RcuStats {
  /** Newest grace period started / known complete. */
  started: number;
  completed: number;
  /** CPUs currently online (reporting quiescent states or inside a read section). */
  online: number;
}

export function rcuStats(): RcuStats {
  let online = 0;
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) if (Atomics.load(state, QS + cpu) !== OFFLINE) online++;
  return { started: Atomics.load(state, GP), completed: Atomics.load(state, DONE), online };
}
