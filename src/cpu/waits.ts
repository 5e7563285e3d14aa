/**
 * Per-CPU wait words: what each CPU is doing and, while it is blocked, on what. Locks and RCU set
 * them on their slow paths only (never on a fast path), so the watchdog and a hang report can say
 * "CPU 1 has waited 2000 ms on mmap_lock (rwsem write), held for write by CPU 0".
 *
 *   i32 (global 'cpu.waits'): word 0 = wait limit in ms (0: none), then per CPU c at 8 + 8*c:
 *   +--------+------+-------+-------+--------+-----+-----+-----+
 *   | STATUS | KIND | CLASS | OWNER | DETAIL |  -  |  -  |  -  |
 *   +--------+------+-------+-------+--------+-----+-----+-----+
 *   f64 (global 'cpu.waits.since'): per CPU, Date.now() when the current wait began.
 *
 * Invariants: KIND is WAIT_NONE exactly when the CPU is not blocked; OWNER is a CPU id + 1 (0 when
 * unknown or shared); DETAIL is kind-specific (readers holding an rwsem, the awaited grace period).
 * Every blocking wait waits in slices and calls `waitTooLong` between them, so no wait outlives
 * the limit: the waiter throws a report of every CPU instead of hanging (with the lock validator
 * on, the report ends with every CPU's held locks).
 *
 * This layer sits below the locks and the validator, so the report reaches them through seams
 * instead of imports: lock class names through the namer src/sync/lockclass.ts registers when it
 * loads (`setLockClassNamer`), held locks through the installed validator (src/lockhooks.ts).
 */
import { assert } from '../assert.js';
import { lockHooks } from '../lockhooks.js';
import { sharedGlobal } from '../shm/globals.js';
import { MAIN_CPU, MAX_CPUS } from './current.js';

export const STATUS_ABSENT = 0;
export const STATUS_IDLE = 1;
export const STATUS_RUNNING = 2;

export const WAIT_NONE = 0;
export const WAIT_SPIN = 1;
export const WAIT_MUTEX = 2;
export const WAIT_READ = 3;
export const WAIT_WRITE = 4;
export const WAIT_GRACE_PERIOD = 5;
export const WAIT_SEQCOUNT = 6;
/** A page's PG_LOCKED bit (src/fs/page-lock.ts); DETAIL is the pfn. */
export const WAIT_PAGE_LOCK = 7;
/** A page's PG_WRITEBACK bit; DETAIL is the pfn. */
export const WAIT_WRITEBACK = 8;

const KIND_NAMES = [
  'none',
  'spinlock',
  'mutex',
  'rwsem read',
  'rwsem write',
  'rcu grace period',
  'seqcount',
  'page lock',
  'page writeback',
];

const LIMIT = 0;
const HEADER = 8;
const STRIDE = 8;
const STATUS = 0;
const KIND = 1;
const CLASS = 2;
const OWNER = 3;
const DETAIL = 4;

/** Until src/sync/lockclass.ts registers the real names (it does when it loads). */
let className: (classId: number) => string = (classId) => `lock class ${classId}`;

/** Called once by src/sync/lockclass.ts at load: how a report names the class a CPU waits on. */
export function setLockClassNamer(namer: (classId: number) => string): void {
  className = namer;
}

/** Default bound on any single blocking wait when no Machine set one. */
export const DEFAULT_WAIT_LIMIT_MS = 30_000;
/** Longest single Atomics.wait slice of a blocking wait. */
export const WAIT_SLICE_MS = 50;

const words = new Int32Array(sharedGlobal('cpu.waits', (HEADER + STRIDE * MAX_CPUS) * 4));
const since = new Float64Array(sharedGlobal('cpu.waits.since', MAX_CPUS * 8));
if (words[LIMIT] === 0) Atomics.compareExchange(words, LIMIT, 0, DEFAULT_WAIT_LIMIT_MS);

/** Bounds every blocking wait (the Machine's watchdog); applies to all CPUs at once. */
export function setWaitLimitMs(ms: number): void {
  if (!(Number.isInteger(ms) && ms > 0))
    throw new RangeError(`wait limit ${ms} ms is not a positive integer`);
  Atomics.store(words, LIMIT, ms);
}

export function waitLimitMs(): number {
  return Atomics.load(words, LIMIT);
}

export function setCpuStatus(cpu: number, status: number): void {
  Atomics.store(words, HEADER + STRIDE * cpu + STATUS, status);
}

/** Marks `cpu` blocked on a lock of `classId` (slow path only). */
export function beginWait(cpu: number, kind: number, classId: number, owner: number, detail: number): void {
  // KIND is WAIT_NONE exactly when the CPU is not blocked (the invariant above).
  assert(kind > WAIT_NONE && kind < KIND_NAMES.length, 'beginWait: not a wait kind');
  const at = HEADER + STRIDE * cpu;
  since[cpu] = Date.now();
  Atomics.store(words, at + CLASS, classId);
  Atomics.store(words, at + OWNER, owner);
  Atomics.store(words, at + DETAIL, detail);
  Atomics.store(words, at + KIND, kind);
}

/** Refreshes who holds what the CPU waits for; true when the wait has outlived the limit. */
export function waitTooLong(cpu: number, owner: number, detail: number): boolean {
  const at = HEADER + STRIDE * cpu;
  Atomics.store(words, at + OWNER, owner);
  Atomics.store(words, at + DETAIL, detail);
  return Date.now() - since[cpu] > Atomics.load(words, LIMIT);
}

export function endWait(cpu: number): void {
  Atomics.store(words, HEADER + STRIDE * cpu + KIND, WAIT_NONE);
}

export interface CpuWait {
  cpu: number;
  status: number;
  kind: number;
  classId: number;
  owner: number;
  detail: number;
  waitedMs: number;
}

/** A snapshot of every CPU that exists or waits. */
export function cpuWaits(): CpuWait[] {
  const now = Date.now();
  const out: CpuWait[] = [];
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    const at = HEADER + STRIDE * cpu;
    const status = Atomics.load(words, at + STATUS);
    const kind = Atomics.load(words, at + KIND);
    if (status === STATUS_ABSENT && kind === WAIT_NONE) continue;
    out.push({
      cpu,
      status,
      kind,
      classId: Atomics.load(words, at + CLASS),
      owner: Atomics.load(words, at + OWNER),
      detail: Atomics.load(words, at + DETAIL),
      waitedMs: kind === WAIT_NONE ? 0 : now - since[cpu],
    });
  }
  return out;
}

/** One line per CPU: "cpu 1: waits 2003 ms on mmap_lock (rwsem write), held by cpu 0". */
export function describeCpus(): string {
  const lines = cpuWaits().map((w) => {
    const who = w.cpu === MAIN_CPU ? 'main' : `cpu ${w.cpu}`;
    if (w.kind === WAIT_NONE) return `${who}: ${w.status === STATUS_RUNNING ? 'running' : 'idle'}`;
    const what = w.kind === WAIT_GRACE_PERIOD ? `grace period ${w.detail}` : className(w.classId);
    const owner =
      w.owner === 0 ? '' : `, held by ${w.owner - 1 === MAIN_CPU ? 'main' : `cpu ${w.owner - 1}`}`;
    const readers = w.kind === WAIT_WRITE && w.detail > 0 ? `, ${w.detail} reader(s) inside` : '';
    const page = w.kind === WAIT_PAGE_LOCK || w.kind === WAIT_WRITEBACK ? ` of pfn ${w.detail}` : '';
    return `${who}: waits ${Math.round(w.waitedMs)} ms on ${what}${page} (${KIND_NAMES[w.kind]})${owner}${readers}`;
  });
  return lines.join('\n');
}

/**
 * The error a wait throws when it outlives the limit: what it waited on, every CPU's state and,
 * with the lock validator on, what every CPU holds.
 */
export function hangError(cpu: number, what: string): Error {
  const who = cpu === MAIN_CPU ? 'main thread' : `cpu ${cpu}`;
  const held = lockHooks.on ? `\n${lockHooks.v.showHeld()}` : '';
  return new Error(
    `watchdog: ${who} waited more than ${waitLimitMs()} ms on ${what}\n${describeCpus()}${held}`,
  );
}
