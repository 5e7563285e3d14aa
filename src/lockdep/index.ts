/**
 * vmspace's lock validator (lockdep): proves from one run that a deadlock is possible, and flags
 * sleeping, allocation and I/O while mmap_lock is held. See docs/lockdep.md.
 *
 * The validator is per thread (each CPU installs its own into src/lockhooks.ts) over state shared
 * by every CPU: the dependency graph, the held-lock rows, the modes, counters and reports. Load this
 * module on the main thread before a Machine starts its CPUs, so its shared globals exist for them.
 */
import { isMainThread } from 'node:worker_threads';
import { currentCpu } from '../cpu/current.js';
import { installValidator, lockHooks } from '../lockhooks.js';
import { formatLockStat, lockStatRows } from '../sync/lockstat.js';
import {
  CHECKS,
  checkIndex,
  classViolationCount,
  clearCounts,
  type LockdepCheck,
  type LockdepMode,
  MODES,
  machineEnabled,
  modeIndex,
  modeOf,
  modesInitialised,
  setDefaultModes,
  setMachineEnabled,
  setMode,
  violationCount,
} from './checks.js';
import { clearDependencies, dependencies } from './graph.js';
import { clearHeld, depthOf, forgetHeld, rowOf } from './held.js';
import { reportLog, stackLog } from './logs.js';
import { lockName, showAllHeld } from './report.js';
import { clearSiteCounts, type SiteCount, siteCounts } from './sites.js';
import { LockdepError, Validator } from './validator.js';

export type { LockdepCheck, LockdepMode, SiteCount };
export { CHECKS, LockdepError, MODES };

let validator: Validator | null = null;

function thisThreadsValidator(): Validator {
  validator ??= new Validator();
  return validator;
}

/**
 * Switches the validator on for the whole machine: installs it on this thread, marks it on for
 * every CPU (a CPU that calls `enableLockdepFromEnv()` follows) and applies `modes` on top of the
 * current modes (the defaults the first time). Enable it before any lock is taken.
 */
export function enableLockdep(modes: Partial<Record<LockdepCheck, LockdepMode>> = {}): void {
  if (!modesInitialised()) setDefaultModes();
  for (const [check, mode] of Object.entries(modes)) setLockdepMode(check as LockdepCheck, mode);
  setMachineEnabled(true);
  installValidator(thisThreadsValidator());
}

/** Switches the validator off on this thread and for CPUs that start later. */
export function disableLockdep(): void {
  setMachineEnabled(false);
  installValidator(null);
}

/**
 * Call once per thread at startup: on the main thread (test setup, CLI) and in every CPU's worker
 * entry after it adopted the shared globals. Installs the validator when the environment variable
 * VMSPACE_LOCKDEP is set (and not "0"), or when the main thread switched it on for the machine.
 * VMSPACE_LOCKDEP_MMAP=off|count|warn|throw sets the three mmap_lock checks' mode. Returns whether
 * the validator is on.
 */
export function enableLockdepFromEnv(): boolean {
  const env = process.env.VMSPACE_LOCKDEP;
  const fromEnv = env !== undefined && env !== '' && env !== '0';
  if (!fromEnv && !machineEnabled()) return lockHooks.on;
  if (isMainThread && !modesInitialised()) {
    setDefaultModes();
    const mmap = process.env.VMSPACE_LOCKDEP_MMAP;
    if (mmap)
      for (const check of ['mmap_sleep', 'mmap_alloc', 'mmap_io'] as const)
        setLockdepMode(check, mmap as LockdepMode);
  }
  enableLockdep();
  return true;
}

export function setLockdepMode(check: LockdepCheck, mode: LockdepMode): void {
  setMode(checkIndex(check), modeIndex(mode));
}

export function lockdepMode(check: LockdepCheck): LockdepMode {
  return MODES[modeOf(checkIndex(check))];
}

/**
 * A fresh start for the next test: forgets every dependency, report, stack, count and held lock
 * (on every CPU) and puts the modes back to their defaults. Call it while no CPU holds a lock.
 */
export function lockdepReset(): void {
  clearDependencies();
  clearHeld();
  clearCounts();
  clearSiteCounts();
  reportLog.clear();
  stackLog.clear();
  setDefaultModes();
}

export interface LockdepReport {
  check: LockdepCheck;
  text: string;
}

/** Every report recorded (warn and throw modes; once per distinct report) since the last reset. */
export function lockdepReports(): LockdepReport[] {
  return reportLog.records().map((r) => ({ check: CHECKS[r.tag], text: r.text }));
}

/** How often each check fired since the last reset (in every mode but off). */
export function lockdepCounts(): Record<LockdepCheck, number> {
  return Object.fromEntries(CHECKS.map((c, i) => [c, violationCount(i)])) as Record<LockdepCheck, number>;
}

/**
 * The counts attributed to one lock class, for the lock statistics table: the mmap_lock checks
 * count against mmap_lock, a cycle or recursion against the class acquired, a bad unlock against
 * the class released, sleeping in atomic context against the spinlock or RCU class held.
 */
export function lockdepClassCounts(classId: number): Record<LockdepCheck, number> {
  return Object.fromEntries(CHECKS.map((c, i) => [c, classViolationCount(classId, i)])) as Record<
    LockdepCheck,
    number
  >;
}

/**
 * The lock statistics table with one more column: the validator's checks that fired against each
 * class since the last reset (`mmap_io:2 circular:1`), `-` when none did, `off` with the validator off.
 */
export function formatLockStatWithValidator(): string {
  return formatLockStat(lockStatRows(), [{ header: 'lockdep', cell: (row) => validatorCell(row.classId) }]);
}

function validatorCell(classId: number): string {
  if (!lockHooks.on) return 'off';
  const fired = Object.entries(lockdepClassCounts(classId)).filter(([, n]) => n > 0);
  return fired.length === 0 ? '-' : fired.map(([check, n]) => `${check}:${n}`).join(' ');
}

/** Where the mmap_lock checks fired (in every mode but off), busiest site first. */
export function lockdepSiteCounts(): SiteCount[] {
  return siteCounts();
}

/**
 * For the Machine's task runner and the syscall layer: reports (per the `held_at_return` mode)
 * when this CPU still holds a lock as `context` (e.g. "task", "syscall mmap") returns.
 */
export function lockdepAssertNoneHeld(context: string): void {
  if (lockHooks.on && depthOf(rowOf(currentCpu())) > userCopy.base)
    thisThreadsValidator().assertNoneHeld(context, userCopy.base);
}

/** This thread's user-copy base: locks held below it belong to a caller copying user memory. */
const userCopy = { base: 0 };

/**
 * For the file read/write path (src/kernel/file-rw.ts), which copies to and from user memory
 * holding f_pos_lock and i_rwsem, as Linux's does: until `lockdepUserCopyEnd`, a fault's (or any
 * nested context's) "nothing held at return" check ignores the locks held now. Returns the
 * previous base, for `lockdepUserCopyEnd`. Free when the validator is off.
 */
export function lockdepUserCopyBegin(): number {
  const prev = userCopy.base;
  if (lockHooks.on) userCopy.base = depthOf(rowOf(currentCpu()));
  return prev;
}

export function lockdepUserCopyEnd(prev: number): void {
  userCopy.base = prev;
}

/**
 * For the Machine's task runner when a task failed: forgets what this CPU still holds without a
 * report (the task's own error is the report), so the CPU's next task starts clean.
 */
export function lockdepForgetHeld(): void {
  if (lockHooks.on) forgetHeld(rowOf(currentCpu()));
}

/**
 * Annotation for code about to do I/O (the file layer, before it calls a user's read or write
 * callback): reported when this CPU holds mmap_lock or is in atomic context. Free when off.
 */
export function mightIO(site: string): void {
  if (lockHooks.on) lockHooks.v.mightIO(site);
}

/** Annotation for an allocation site (arenas call the hook themselves). Free when off. */
export function mightAlloc(site: string): void {
  if (lockHooks.on) lockHooks.v.mightAlloc(site);
}

/** Every CPU's held locks, for a hang report. */
export function lockdepShowHeld(): string {
  return showAllHeld();
}

export interface LockdepDependency {
  from: string;
  to: string;
  /** Kinds seen: E/S = first lock held exclusive/shared; N/R = second taken non-recursively/as recursive read. */
  kinds: string[];
}

const KIND_NAMES = ['EN', 'ER', 'SN', 'SR'];

/** The dependency graph as recorded so far ("(i_rwsem) -> (mmap_lock)"). */
export function lockdepDependencies(): LockdepDependency[] {
  return dependencies().map((d) => ({
    from: lockName(d.from),
    to: lockName(d.to),
    kinds: KIND_NAMES.filter((_, k) => (d.kinds & (1 << k)) !== 0),
  }));
}
