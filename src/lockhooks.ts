/**
 * The seam between the code that takes locks or allocates (src/shm, src/sync, src/mm) and the lock
 * validator (src/lockdep). It imports nothing, so it sits below every layer that calls it, and the
 * validator, which sits above them, plugs itself in with `installValidator`.
 *
 * Locks call `lockHooks.v.acquire/acquired/release` only when `lockHooks.on` is true, so a
 * validator that is compiled in but switched off costs one predictable branch per lock operation.
 * The annotations `mightSleep`, `mightAlloc` and `mightIO` are called by blocking waits, record
 * allocation and the file I/O layer; the validator reports them when the CPU holds `mmap_lock`.
 * `mightWaitCpus` (TLB shootdowns) is checked for atomic context only.
 * `showHeld` lets the watchdog's hang report (src/cpu/waits.ts) list what every CPU holds.
 *
 * Lock modes: READ for the shared side of an rwsem (and RCU read sections), WRITE for everything
 * exclusive.
 */
export const READ = 0;
export const WRITE = 1;

/**
 * Optional kind bits a lock ORs into `mode` (additive: the side is `mode & WRITE`; a lock that
 * passes none is still validated for lock order, recursion and balance).
 *   LOCK_ATOMIC:         holding it is atomic context, nothing may sleep until release (spinlocks)
 *   LOCK_SLEEPS:         acquiring it may block (mutex, rwsem): invalid in atomic context
 *   LOCK_RECURSIVE_READ: a read side that never waits behind a queued writer (RCU, seqcount readers)
 * The class named "rcu_read_lock" is always treated as LOCK_ATOMIC | LOCK_RECURSIVE_READ.
 */
export const LOCK_ATOMIC = 2;
export const LOCK_SLEEPS = 4;
export const LOCK_RECURSIVE_READ = 8;

export interface LockValidator {
  /** Before a (possibly blocking) acquisition of `lockId` of `classId`; `trylock` cannot deadlock. */
  acquire(classId: number, subclass: number, lockId: number, mode: number, trylock: boolean): void;
  /** After a successful acquisition. */
  acquired(classId: number, subclass: number, lockId: number, mode: number): void;
  /** At release. */
  release(classId: number, lockId: number): void;
  mightSleep(site: string): void;
  mightAlloc(site: string): void;
  mightIO(site: string): void;
  /**
   * A wait for the other CPUs' progress that never waits for I/O or a lock (a TLB shootdown's wait
   * for acknowledgements, as Linux spins for its flush IPIs): checked for atomic context only.
   */
  mightWaitCpus(site: string): void;
  /** Every CPU's held locks, one block per CPU (for a hang report; not on any fast path). */
  showHeld(): string;
}

const none: LockValidator = {
  acquire() {},
  acquired() {},
  release() {},
  mightSleep() {},
  mightAlloc() {},
  mightIO() {},
  mightWaitCpus() {},
  showHeld() {
    return '';
  },
};

/** The installed validator; `on` is false until one is installed. */
export const lockHooks: { on: boolean; v: LockValidator } = { on: false, v: none };

export function installValidator(v: LockValidator | null): void {
  lockHooks.v = v ?? none;
  lockHooks.on = v !== null;
}
