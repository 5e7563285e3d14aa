/**
 * Latency histograms of the lab: one row of fixed log-linear buckets per CPU in one
 * SharedArrayBuffer. A CPU records into its own row with plain writes (no allocation, no atomic);
 * the main thread merges rows once the CPUs stopped.
 *
 *   row (Float64, ROW_STRIDE per CPU): COUNT  SUM_NS  MAX_NS  (pad)  BUCKET x BUCKETS
 *   bucket 0       < 2^MIN_EXP ns (64 ns)
 *   bucket k >= 1  [lower(k), lower(k + 1)): SUB buckets per power of two from 64 ns, so a bucket
 *                  is at most 12.5% wide; the last bucket takes everything from 2^MAX_EXP ns (17 s)
 */
import { assert } from '../assert.js';

const MIN_EXP = 6;
const MAX_EXP = 34;
const SUB = 8;
/** Buckets per row. */
export const BUCKETS = (MAX_EXP - MIN_EXP) * SUB + 2;
const COUNT = 0;
const SUM = 1;
const MAX = 2;
const FIRST_BUCKET = 4;
/** Float64s per CPU row, a multiple of 8 (64-byte lines). */
const ROW_STRIDE = Math.ceil((FIRST_BUCKET + BUCKETS) / 8) * 8;

/** The bucket of a latency of `ns` nanoseconds. */
export function bucketOf(ns: number): number {
  if (!(ns >= 2 ** MIN_EXP)) return 0;
  const e = Math.floor(Math.log2(ns));
  if (e >= MAX_EXP) return BUCKETS - 1;
  const m = Math.floor((ns / 2 ** e - 1) * SUB);
  return 1 + (e - MIN_EXP) * SUB + Math.min(m, SUB - 1);
}

/** The smallest latency (ns) bucket `k` holds (0 for bucket 0). */
export function bucketLower(k: number): number {
  if (k === 0) return 0;
  const e = MIN_EXP + Math.floor((k - 1) / SUB);
  return 2 ** e * (1 + ((k - 1) % SUB) / SUB);
}

/** The latency (ns) bucket `k` ends below (the last bucket's lower bound doubled). */
export function bucketUpper(k: number): number {
  return k === BUCKETS - 1 ? 2 ** (MAX_EXP + 1) : bucketLower(k + 1);
}

export interface HistogramDescriptor {
  buffer: SharedArrayBuffer;
}

/** What a merge of rows gives: counts per bucket, with the exact count, mean and max. */
export interface LatencySummary {
  count: number;
  meanNs: number;
  maxNs: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  p999Ns: number;
  /** Counts per bucket (BUCKETS of them; bucket k ends at bucketUpper(k)). */
  buckets: number[];
}

export class LatencyHistograms {
  readonly cpus: number;
  private readonly f: Float64Array;

  /** Rows for CPUs 0..cpus-1. */
  static create(cpus: number): LatencyHistograms {
    assert(Number.isInteger(cpus) && cpus > 0, 'LatencyHistograms: cpus');
    return new LatencyHistograms({ buffer: new SharedArrayBuffer(cpus * ROW_STRIDE * 8) });
  }

  static attach(desc: HistogramDescriptor): LatencyHistograms {
    return new LatencyHistograms(desc);
  }

  private constructor(desc: HistogramDescriptor) {
    this.f = new Float64Array(desc.buffer);
    this.cpus = this.f.length / ROW_STRIDE;
  }

  describe(): HistogramDescriptor {
    return { buffer: this.f.buffer as SharedArrayBuffer };
  }

  /** Records one latency of `ns` on `cpu`'s row. Preconditions: called by that CPU only. */
  record(cpu: number, ns: number): void {
    const f = this.f;
    const row = cpu * ROW_STRIDE;
    f[row + COUNT]++;
    f[row + SUM] += ns;
    if (ns > f[row + MAX]) f[row + MAX] = ns;
    f[row + FIRST_BUCKET + bucketOf(ns)]++;
  }

  /** The rows of `cpus` merged (read once those CPUs stopped recording). */
  summary(cpus: readonly number[]): LatencySummary {
    const f = this.f;
    const buckets = new Array<number>(BUCKETS).fill(0);
    let count = 0;
    let sum = 0;
    let max = 0;
    for (const cpu of cpus) {
      assert(cpu >= 0 && cpu < this.cpus, `LatencyHistograms: no row for cpu ${cpu}`);
      const row = cpu * ROW_STRIDE;
      count += f[row + COUNT];
      sum += f[row + SUM];
      max = Math.max(max, f[row + MAX]);
      for (let k = 0; k < BUCKETS; k++) buckets[k] += f[row + FIRST_BUCKET + k];
    }
    const q = (p: number) => Math.min(max, quantile(buckets, count, p));
    return {
      count,
      meanNs: count === 0 ? 0 : sum / count,
      maxNs: max,
      p50Ns: q(0.5),
      p90Ns: q(0.9),
      p99Ns: q(0.99),
      p999Ns: q(0.999),
      buckets,
    };
  }
}

/** The upper bound of the bucket holding quantile `p` of `count` values (0 when empty). */
function quantile(buckets: readonly number[], count: number, p: number): number {
  if (count === 0) return 0;
  let seen = 0;
  for (let k = 0; k < buckets.length; k++) {
    seen += buckets[k];
    if (seen >= p * count) return bucketUpper(k);
  }
  return bucketUpper(buckets.length - 1);
}

/** The CDF of a summary: (upper bound of each non-empty bucket, fraction at or below it). */
export function cdfPoints(s: LatencySummary): { ns: number; fraction: number }[] {
  const out: { ns: number; fraction: number }[] = [];
  let seen = 0;
  for (let k = 0; k < s.buckets.length; k++) {
    if (s.buckets[k] === 0) continue;
    seen += s.buckets[k];
    out.push({ ns: Math.min(bucketUpper(k), Math.max(s.maxNs, bucketLower(k))), fraction: seen / s.count });
  }
  return out;
}
