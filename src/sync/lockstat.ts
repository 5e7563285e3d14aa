/**
 * Lock statistics per lock class (like Linux's /proc/lock_stat), cheap enough to leave on:
 * each CPU counts into its own row with plain (non-atomic) writes, so the uncontended cost is a
 * couple of plain float adds; readers sum the rows of all CPUs. Wait times are measured only on
 * the contended path (which is about to sleep anyway); hold times are sampled, one acquisition in
 * HOLD_SAMPLE_EVERY per CPU and class, from that acquisition to the next release of the class on
 * the same CPU.
 *
 *   global 'sync.lockstat' (Float64): row (cpu, class) at ((cpu * MAX_CLASSES) + class) * FIELDS
 *   +----------+-----------+-----------+------------+----------+--------------+------------+
 *   | ACQ_READ | ACQ_WRITE | CONTENDED | WAIT_TOTAL | WAIT_MAX | HOLD_SAMPLES | HOLD_TOTAL |
 *   +----------+-----------+-----------+------------+----------+--------------+------------+
 *   | HOLD_MAX | HOLD_START | TRY_FAILED | WAIT_HIST x 24 | HOLD_HIST x 24 | (pad to 64) |
 *   +----------+------------+------------+----------------+----------------+-------------+
 *   global 'sync.lockstat.ctl' (Int32): word 0 = DISABLED (0: statistics on, the default)
 *
 * Times are nanoseconds. Histogram bucket 0 counts times < 256 ns, bucket k (1..22) counts
 * [2^(k+7), 2^(k+8)) ns, bucket 23 counts >= 2^30 ns (about 1 s). Only the owning CPU writes a row.
 *
 * While a CPU traces (locktrace.ts), every acquisition's hold is measured, and each hold and wait
 * of a traced class also goes to that CPU's trace ring (the lab's per-CPU timeline).
 */
import { assert } from '../assert.js';
import { currentCpu, MAX_CPUS } from '../cpu/current.js';
import { sharedGlobal } from '../shm/globals.js';
import { lockClassCount, lockClassName, MAX_CLASSES } from './lockclass.js';
import { KIND_HOLD, KIND_WAIT, trace, traceLockEvent } from './locktrace.js';

const ACQ_READ = 0;
const ACQ_WRITE = 1;
const CONTENDED = 2;
const WAIT_TOTAL = 3;
const WAIT_MAX = 4;
const HOLD_SAMPLES = 5;
const HOLD_TOTAL = 6;
const HOLD_MAX = 7;
const HOLD_START = 8;
const TRY_FAILED = 9;
const WAIT_HIST = 10;
const BUCKETS = 24;
const HOLD_HIST = WAIT_HIST + BUCKETS;
const FIELDS = 64;
assert(HOLD_HIST + BUCKETS <= FIELDS, 'lockstat: row layout overflows FIELDS');

/** One acquisition in this many (per CPU and class) has its hold time measured. */
export const HOLD_SAMPLE_EVERY = 64;
const SAMPLE_MASK = HOLD_SAMPLE_EVERY - 1;
const DISABLED = 0;

const table = new Float64Array(sharedGlobal('sync.lockstat', MAX_CPUS * MAX_CLASSES * FIELDS * 8));
const ctl = new Int32Array(sharedGlobal('sync.lockstat.ctl', 8 * 4));
/** This CPU's rows (its id is fixed before this module loads; a foreign worker counts into a scratch row set). */
const ROWS_PER_CPU = MAX_CLASSES * FIELDS;
const mine =
  currentCpu() >= 0
    ? table.subarray(currentCpu() * ROWS_PER_CPU, (currentCpu() + 1) * ROWS_PER_CPU)
    : new Float64Array(ROWS_PER_CPU);

/** Switches statistics on or off for every CPU. */
export function setLockStat(on: boolean): void {
  Atomics.store(ctl, DISABLED, on ? 0 : 1);
}

export function lockStatOn(): boolean {
  return Atomics.load(ctl, DISABLED) === 0;
}

/** Zeroes every counter (call it while no lock is in use to get an exact fresh start). */
export function resetLockStat(): void {
  table.fill(0);
}

/** An acquisition in `mode` (0 read, 1 write) that did not wait. */
export function statAcquired(classId: number, mode: number): void {
  if (ctl[DISABLED] !== 0) return;
  const row = classId * FIELDS;
  if (((++mine[row + mode] & SAMPLE_MASK) === 0 || trace.ring !== null) && mine[row + HOLD_START] === 0)
    mine[row + HOLD_START] = performance.now();
}

/** An acquisition that had to wait since `startMs` (performance.now() of this CPU). */
export function statContended(classId: number, mode: number, startMs: number): void {
  if (ctl[DISABLED] !== 0) return;
  const row = classId * FIELDS;
  const ns = (performance.now() - startMs) * 1e6;
  mine[row + CONTENDED]++;
  mine[row + WAIT_TOTAL] += ns;
  if (ns > mine[row + WAIT_MAX]) mine[row + WAIT_MAX] = ns;
  mine[row + WAIT_HIST + bucketOf(ns)]++;
  traceLockEvent(startMs, KIND_WAIT, classId, ns);
  statAcquired(classId, mode);
}

/**
 * An acquisition whose release is not seen on its own (a VMA write lock: mmap_lock's unlock
 * releases them all at once): counted, with its wait when it waited since `startMs` (0: it did
 * not), never sampled for a hold time.
 */
export function statAcquiredUnheld(classId: number, mode: number, startMs: number): void {
  if (ctl[DISABLED] !== 0) return;
  const row = classId * FIELDS;
  mine[row + mode]++;
  if (startMs === 0) return;
  const ns = (performance.now() - startMs) * 1e6;
  mine[row + CONTENDED]++;
  mine[row + WAIT_TOTAL] += ns;
  if (ns > mine[row + WAIT_MAX]) mine[row + WAIT_MAX] = ns;
  mine[row + WAIT_HIST + bucketOf(ns)]++;
  traceLockEvent(startMs, KIND_WAIT, classId, ns);
}

export function statReleased(classId: number): void {
  if (ctl[DISABLED] !== 0) return;
  const row = classId * FIELDS;
  if (mine[row + HOLD_START] !== 0) recordHold(row);
}

export function statTryFailed(classId: number): void {
  if (ctl[DISABLED] !== 0) return;
  mine[classId * FIELDS + TRY_FAILED]++;
}

function recordHold(row: number): void {
  const start = mine[row + HOLD_START];
  const ns = (performance.now() - start) * 1e6;
  mine[row + HOLD_START] = 0;
  traceLockEvent(start, KIND_HOLD, row / FIELDS, ns);
  mine[row + HOLD_SAMPLES]++;
  mine[row + HOLD_TOTAL] += ns;
  if (ns > mine[row + HOLD_MAX]) mine[row + HOLD_MAX] = ns;
  mine[row + HOLD_HIST + bucketOf(ns)]++;
}

function bucketOf(ns: number): number {
  if (ns < 256) return 0;
  return Math.min(BUCKETS - 1, Math.floor(Math.log2(ns)) - 7);
}

/** Upper bound (ns) of histogram bucket `k` (Infinity for the last). */
export function bucketLimit(k: number): number {
  return k === BUCKETS - 1 ? Number.POSITIVE_INFINITY : 2 ** (k + 8);
}

export interface LockStatRow {
  name: string;
  classId: number;
  acquisitionsRead: number;
  acquisitionsWrite: number;
  contentions: number;
  tryFailures: number;
  waitTotalNs: number;
  waitMaxNs: number;
  /** Upper bounds (ns) of the buckets holding the median and the 99th percentile (capped by the max). */
  waitP50Ns: number;
  waitP99Ns: number;
  holdSamples: number;
  holdAvgNs: number;
  holdMaxNs: number;
  holdP99Ns: number;
}

/**
 * Per-class sums over all CPUs (or over the CPU ids in `cpus`, e.g. one role's CPUs of a run), for
 * the classes that were used.
 */
export function lockStatRows(cpus?: readonly number[]): LockStatRow[] {
  const rows: LockStatRow[] = [];
  const waitHist = new Float64Array(BUCKETS);
  const holdHist = new Float64Array(BUCKETS);
  const sum = new Float64Array(HOLD_HIST);
  for (let cls = 1; cls <= lockClassCount(); cls++) {
    sum.fill(0);
    waitHist.fill(0);
    holdHist.fill(0);
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
      if (cpus !== undefined && !cpus.includes(cpu)) continue;
      const row = (cpu * MAX_CLASSES + cls) * FIELDS;
      for (let f = 0; f < WAIT_HIST; f++) {
        sum[f] =
          f === WAIT_MAX || f === HOLD_MAX ? Math.max(sum[f], table[row + f]) : sum[f] + table[row + f];
      }
      for (let k = 0; k < BUCKETS; k++) {
        waitHist[k] += table[row + WAIT_HIST + k];
        holdHist[k] += table[row + HOLD_HIST + k];
      }
    }
    if (sum[ACQ_READ] + sum[ACQ_WRITE] + sum[TRY_FAILED] === 0) continue;
    rows.push({
      name: lockClassName(cls),
      classId: cls,
      acquisitionsRead: sum[ACQ_READ],
      acquisitionsWrite: sum[ACQ_WRITE],
      contentions: sum[CONTENDED],
      tryFailures: sum[TRY_FAILED],
      waitTotalNs: sum[WAIT_TOTAL],
      waitMaxNs: sum[WAIT_MAX],
      waitP50Ns: Math.min(sum[WAIT_MAX], percentile(waitHist, 0.5)),
      waitP99Ns: Math.min(sum[WAIT_MAX], percentile(waitHist, 0.99)),
      holdSamples: sum[HOLD_SAMPLES],
      holdAvgNs: sum[HOLD_SAMPLES] === 0 ? 0 : sum[HOLD_TOTAL] / sum[HOLD_SAMPLES],
      holdMaxNs: sum[HOLD_MAX],
      holdP99Ns: Math.min(sum[HOLD_MAX], percentile(holdHist, 0.99)),
    });
  }
  return rows;
}

/** Buckets of the wait and hold histograms (bucket k ends at bucketLimit(k)). */
export const LOCKSTAT_BUCKETS = BUCKETS;

export interface LockStatHistogram {
  /** Waits of contended acquisitions, per bucket. */
  wait: number[];
  /** Sampled hold times, per bucket. */
  hold: number[];
}

/** The wait and hold histograms of class `classId`, summed over all CPUs (or those in `cpus`). */
export function lockStatHistogram(classId: number, cpus?: readonly number[]): LockStatHistogram {
  const wait = new Array<number>(BUCKETS).fill(0);
  const hold = new Array<number>(BUCKETS).fill(0);
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    if (cpus !== undefined && !cpus.includes(cpu)) continue;
    const row = (cpu * MAX_CLASSES + classId) * FIELDS;
    for (let k = 0; k < BUCKETS; k++) {
      wait[k] += table[row + WAIT_HIST + k];
      hold[k] += table[row + HOLD_HIST + k];
    }
  }
  return { wait, hold };
}

function percentile(hist: Float64Array, q: number): number {
  let total = 0;
  for (let k = 0; k < BUCKETS; k++) total += hist[k];
  if (total === 0) return 0;
  let seen = 0;
  for (let k = 0; k < BUCKETS; k++) {
    seen += hist[k];
    if (seen >= q * total) return bucketLimit(k);
  }
  return bucketLimit(BUCKETS - 1);
}

/** A column a higher layer adds to the table (the lock validator's counts): header and cells. */
export interface LockStatColumn {
  header: string;
  cell(row: LockStatRow): string;
}

/**
 * The statistics as a text table (times in microseconds; p50/p99 are histogram bucket bounds),
 * with `extra` columns at the end.
 */
export function formatLockStat(
  rows: LockStatRow[] = lockStatRows(),
  extra: readonly LockStatColumn[] = [],
): string {
  const us = (ns: number) =>
    ns === Number.POSITIVE_INFINITY ? '>1e6' : (ns / 1000).toFixed(ns < 10_000 ? 2 : 0);
  const header = [
    'class',
    'acq-read',
    'acq-write',
    'contended',
    'try-fail',
    'wait-avg',
    'wait-p50',
    'wait-p99',
    'wait-max',
    'hold-avg',
    'hold-p99',
    'hold-max',
    ...extra.map((c) => c.header),
  ];
  const body = rows.map((r) => [
    r.name,
    String(r.acquisitionsRead),
    String(r.acquisitionsWrite),
    String(r.contentions),
    String(r.tryFailures),
    us(r.contentions === 0 ? 0 : r.waitTotalNs / r.contentions),
    us(r.waitP50Ns),
    us(r.waitP99Ns),
    us(r.waitMaxNs),
    us(r.holdAvgNs),
    us(r.holdP99Ns),
    us(r.holdMaxNs),
    ...extra.map((c) => c.cell(r)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [
    `lock statistics (times in us; hold times sampled 1/${HOLD_SAMPLE_EVERY})`,
    line(header),
    ...body.map(line),
  ].join('\n');
}
