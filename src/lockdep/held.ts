/**
 * The locks each CPU holds, in shared memory: the owning CPU pushes and pops its own row with plain
 * writes (no atomics on the validator's steady-state path); any CPU may read every row racily, so a
 * hang report can list what every CPU holds.
 *
 *   global 'lockdep.held' (Int32), one row per CPU (MAX_CPUS rows of ROW_WORDS):
 *   +-------+-----------+-------------+-----+--------------------------------------------+
 *   | DEPTH | MMAP_HELD | ATOMIC_HELD | pad | MAX_DEPTH entries: NODE LOCK_ID FLAGS SITE |
 *   +-------+-----------+-------------+-----+--------------------------------------------+
 *   NODE = class * SUBCLASSES + subclass; FLAGS = the mode bits of src/lockhooks.ts
 *   (WRITE, LOCK_ATOMIC, LOCK_SLEEPS, LOCK_RECURSIVE_READ) | HELD_MMAP; SITE = stack-log id of
 *   where it was taken if that acquisition recorded a new dependency, else 0.
 *
 * Invariants: entries 0..DEPTH-1 are the held locks, oldest first; MMAP_HELD counts entries with
 * HELD_MMAP (the per-CPU "holds mmap_lock" flag of the mmap_lock check) and ATOMIC_HELD entries
 * with LOCK_ATOMIC (spinlocks, RCU read sections).
 */
import { MAX_CPUS } from '../cpu/current.js';
import { LOCK_ATOMIC } from '../lockhooks.js';
import { sharedGlobal } from '../shm/globals.js';
import { SUBCLASSES } from './graph.js';

/** Most locks one CPU may hold at once (as in Linux). */
export const MAX_DEPTH = 48;
/** In FLAGS: the entry is a lock of the mmap_lock class. */
export const HELD_MMAP = 0x100;

const DEPTH = 0;
const MMAP_HELD = 1;
const ATOMIC_HELD = 2;
const HEADER = 4;
const ENTRY = 4;
const NODE = 0;
const LOCK_ID = 1;
const FLAGS = 2;
const SITE = 3;
const ROW_WORDS = HEADER + MAX_DEPTH * ENTRY;

const rows = new Int32Array(sharedGlobal('lockdep.held', MAX_CPUS * ROW_WORDS * 4));

/** The first word of `cpu`'s row; throws for a thread that is not a CPU. */
export function rowOf(cpu: number): number {
  if (!(cpu >= 0 && cpu < MAX_CPUS)) {
    throw new Error(
      `lockdep: this thread is not a vmspace CPU (cpu ${cpu}); start workers with Machine.start()`,
    );
  }
  return cpu * ROW_WORDS;
}

export function depthOf(row: number): number {
  return rows[row + DEPTH];
}

export function mmapHeld(row: number): boolean {
  return rows[row + MMAP_HELD] !== 0;
}

export function atomicHeld(row: number): boolean {
  return rows[row + ATOMIC_HELD] !== 0;
}

export function heldNode(row: number, i: number): number {
  return rows[row + HEADER + i * ENTRY + NODE];
}

export function heldFlags(row: number, i: number): number {
  return rows[row + HEADER + i * ENTRY + FLAGS];
}

/** Pushes a held lock; throws past MAX_DEPTH. */
export function pushHeld(row: number, node: number, lockId: number, flags: number, site: number): void {
  const depth = rows[row + DEPTH];
  if (depth === MAX_DEPTH) throw new Error(`lockdep: a CPU holds more than ${MAX_DEPTH} locks`);
  const at = row + HEADER + depth * ENTRY;
  rows[at + NODE] = node;
  rows[at + LOCK_ID] = lockId;
  rows[at + FLAGS] = flags;
  rows[at + SITE] = site;
  if ((flags & HELD_MMAP) !== 0) rows[row + MMAP_HELD]++;
  if ((flags & LOCK_ATOMIC) !== 0) rows[row + ATOMIC_HELD]++;
  rows[row + DEPTH] = depth + 1;
}

/** Index of the most recent entry of class `classId` and `lockId` (-1 if none). */
export function findHeld(row: number, classId: number, lockId: number): number {
  for (let i = rows[row + DEPTH] - 1; i >= 0; i--) {
    const at = row + HEADER + i * ENTRY;
    if (rows[at + LOCK_ID] === lockId && Math.floor(rows[at + NODE] / SUBCLASSES) === classId) return i;
  }
  return -1;
}

/** Removes entry `i`, keeping the order of the others. */
export function removeHeld(row: number, i: number): void {
  const depth = rows[row + DEPTH];
  const flags = rows[row + HEADER + i * ENTRY + FLAGS];
  if (i !== depth - 1) {
    rows.copyWithin(row + HEADER + i * ENTRY, row + HEADER + (i + 1) * ENTRY, row + HEADER + depth * ENTRY);
  }
  if ((flags & HELD_MMAP) !== 0) rows[row + MMAP_HELD]--;
  if ((flags & LOCK_ATOMIC) !== 0) rows[row + ATOMIC_HELD]--;
  rows[row + DEPTH] = depth - 1;
}

export interface HeldLock {
  node: number;
  lockId: number;
  flags: number;
  site: number;
}

/** A snapshot of `cpu`'s held locks, oldest first. */
export function heldLocks(cpu: number): HeldLock[] {
  const row = rowOf(cpu);
  const out: HeldLock[] = [];
  const depth = Math.min(rows[row + DEPTH], MAX_DEPTH);
  for (let i = 0; i < depth; i++) {
    const at = row + HEADER + i * ENTRY;
    out.push({
      node: rows[at + NODE],
      lockId: rows[at + LOCK_ID],
      flags: rows[at + FLAGS],
      site: rows[at + SITE],
    });
  }
  return out;
}

/**
 * Forgets what a CPU holds (its context ended with locks held, which was reported): every entry
 * from index `base` on (0: all of them; a context nested in held locks keeps those).
 */
export function forgetHeld(row: number, base = 0): void {
  // Bounded by MAX_DEPTH.
  for (let i = Math.min(rows[row + DEPTH], MAX_DEPTH) - 1; i >= base; i--) {
    const flags = rows[row + HEADER + i * ENTRY + FLAGS];
    if ((flags & HELD_MMAP) !== 0) rows[row + MMAP_HELD]--;
    if ((flags & LOCK_ATOMIC) !== 0) rows[row + ATOMIC_HELD]--;
  }
  rows[row + DEPTH] = Math.min(rows[row + DEPTH], base);
}

/** Empties every CPU's row (no CPU may hold a lock meanwhile). */
export function clearHeld(): void {
  rows.fill(0);
}
