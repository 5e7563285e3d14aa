/**
 * The validator's checks, the mode of each and their counters, shared by every CPU (a mode set on
 * the main thread applies on every CPU at once).
 *
 *   global 'lockdep.config' (Int32):
 *   +---------+-------------+---------+--------------------+---------------------+------------------------------+
 *   | ENABLED | INITIALISED | (6 pad) | MODE x CHECKS (8)  | COUNT x CHECKS (8)  | BY_CLASS: MAX_CLASSES x CHECKS |
 *   +---------+-------------+---------+--------------------+---------------------+------------------------------+
 *   global 'lockdep.reported' (Int32): open-addressed set of report keys (0 = empty)
 *
 * A check in mode `off` does nothing; `count` counts; `warn` also records the report in the shared
 * report log (once per distinct report) and prints it; `throw` records it and throws it at the
 * offending call. BY_CLASS attributes each count to a lock class (the class acquired, released or
 * held) so the lock statistics can show them per class. Invariant: counts only grow until `reset`.
 */
import { sharedGlobal } from '../shm/globals.js';
import { MAX_CLASSES } from '../sync/lockclass.js';

export const CHECKS = [
  'circular',
  'recursive',
  'bad_unlock',
  'held_at_return',
  'sleep_in_atomic',
  'mmap_sleep',
  'mmap_alloc',
  'mmap_io',
] as const;
export type LockdepCheck = (typeof CHECKS)[number];

export const CIRCULAR = 0;
export const RECURSIVE = 1;
export const BAD_UNLOCK = 2;
export const HELD_AT_RETURN = 3;
export const SLEEP_IN_ATOMIC = 4;
export const MMAP_SLEEP = 5;
export const MMAP_ALLOC = 6;
export const MMAP_IO = 7;

export const MODES = ['off', 'count', 'warn', 'throw'] as const;
export type LockdepMode = (typeof MODES)[number];

export const OFF = 0;
export const COUNT = 1;
export const WARN = 2;
export const THROW = 3;

/**
 * Modes after `enableLockdep()` or a reset: every deadlock check throws; the mmap_lock checks count,
 * because the `global` and `retry` fault designs do I/O or allocate under mmap_lock on purpose (the
 * lab shows those counts); tests of the mmap_lock rule raise them to `warn` or `throw`.
 */
const DEFAULT_MODES = [THROW, THROW, THROW, THROW, THROW, COUNT, COUNT, COUNT];

const ENABLED = 0;
const INITIALISED = 1;
const MODE = 8;
const COUNTS = MODE + CHECKS.length;
const BY_CLASS = COUNTS + CHECKS.length;
const CONFIG_WORDS = BY_CLASS + MAX_CLASSES * CHECKS.length;
const REPORTED_SLOTS = 4096;

const config = new Int32Array(sharedGlobal('lockdep.config', CONFIG_WORDS * 4));
const reported = new Int32Array(sharedGlobal('lockdep.reported', REPORTED_SLOTS * 4));

export function checkIndex(name: string): number {
  const index = (CHECKS as readonly string[]).indexOf(name);
  if (index < 0) throw new RangeError(`lockdep: unknown check "${name}" (one of ${CHECKS.join(', ')})`);
  return index;
}

export function modeIndex(name: string): number {
  const index = (MODES as readonly string[]).indexOf(name);
  if (index < 0) throw new RangeError(`lockdep: unknown mode "${name}" (one of ${MODES.join(', ')})`);
  return index;
}

export function modeOf(check: number): number {
  return Atomics.load(config, MODE + check);
}

export function setMode(check: number, mode: number): void {
  Atomics.store(config, MODE + check, mode);
}

/** Puts every check back to its default mode and marks the modes initialised. */
export function setDefaultModes(): void {
  for (let c = 0; c < CHECKS.length; c++) setMode(c, DEFAULT_MODES[c]);
  Atomics.store(config, INITIALISED, 1);
}

export function modesInitialised(): boolean {
  return Atomics.load(config, INITIALISED) !== 0;
}

/** Whether the validator is on for the whole machine (CPUs starting later follow it). */
export function machineEnabled(): boolean {
  return Atomics.load(config, ENABLED) !== 0;
}

export function setMachineEnabled(on: boolean): void {
  Atomics.store(config, ENABLED, on ? 1 : 0);
}

/** Counts one violation of `check`, attributed to `classId` (0: no class). */
export function countViolation(check: number, classId: number): void {
  Atomics.add(config, COUNTS + check, 1);
  if (classId > 0) Atomics.add(config, BY_CLASS + classId * CHECKS.length + check, 1);
}

export function violationCount(check: number): number {
  return Atomics.load(config, COUNTS + check);
}

export function classViolationCount(classId: number, check: number): number {
  if (!(Number.isInteger(classId) && classId >= 1 && classId < MAX_CLASSES)) {
    throw new RangeError(`lockdep: lock class ${classId} is out of range 1..${MAX_CLASSES - 1}`);
  }
  return Atomics.load(config, BY_CLASS + classId * CHECKS.length + check);
}

/**
 * True the first time the report identified by (check, a, b) is seen since the last reset, so a
 * report is logged and printed once however often it happens.
 */
export function firstReport(check: number, a: number, b: number): boolean {
  const key = mix(mix(mix(check + 1) ^ a) ^ b) | 1;
  let slot = key & (REPORTED_SLOTS - 1);
  for (let probes = 0; probes < REPORTED_SLOTS; probes++) {
    const seen = Atomics.compareExchange(reported, slot, 0, key);
    if (seen === 0) return true;
    if (seen === key) return false;
    slot = (slot + 1) & (REPORTED_SLOTS - 1);
  }
  return true;
}

/** A 32-bit integer hash (also used for strings' hashes by `hashText`). */
export function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return x ^ (x >>> 16);
}

export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return mix(h);
}

/** Zeroes every counter and forgets which reports were seen (modes are reset by the caller). */
export function clearCounts(): void {
  for (let i = COUNTS; i < CONFIG_WORDS; i++) Atomics.store(config, i, 0);
  for (let i = 0; i < REPORTED_SLOTS; i++) Atomics.store(reported, i, 0);
}
