/**
 * The lab's latency histograms (src/lab/histogram.ts): every latency lands in the bucket whose
 * bounds hold it, buckets are contiguous and at most 12.5% wide, rows of different CPUs merge, and
 * the percentiles bound the exact ones from above by at most one bucket.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BUCKETS,
  bucketLower,
  bucketOf,
  bucketUpper,
  cdfPoints,
  LatencyHistograms,
} from '../../src/lab/histogram.js';
import { Rng } from '../../src/rng.js';

test('buckets: contiguous, each value inside its own bucket, at most 12.5% wide', () => {
  for (let k = 1; k < BUCKETS - 1; k++) {
    assert.equal(bucketUpper(k), bucketLower(k + 1));
    assert.ok(bucketUpper(k) / bucketLower(k) <= 1.125 + 1e-12, `bucket ${k}`);
  }
  const rng = new Rng(3);
  for (let i = 0; i < 20_000; i++) {
    const ns = 2 ** ((rng.next() / 2 ** 32) * 36) + (rng.next() % 7);
    const k = bucketOf(ns);
    assert.ok(k >= 0 && k < BUCKETS);
    if (k < BUCKETS - 1) assert.ok(bucketLower(k) <= ns && ns < bucketUpper(k), `${ns} in bucket ${k}`);
    else assert.ok(ns >= bucketLower(k));
  }
  assert.equal(bucketOf(0), 0);
  assert.equal(bucketOf(-5), 0);
  assert.equal(bucketOf(Number.NaN), 0);
  assert.equal(bucketOf(1e15), BUCKETS - 1);
});

test('rows merge; percentiles are the upper bound of the bucket holding the exact one', () => {
  const h = LatencyHistograms.create(3);
  const rng = new Rng(9);
  const values: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const ns = 100 + (rng.next() % 1_000_000);
    values.push(ns);
    h.record(i % 2, ns);
    h.record(2, 1); // a row left out of the merge below
  }
  values.sort((a, b) => a - b);
  const s = h.summary([0, 1]);
  assert.equal(s.count, 5000);
  assert.equal(s.maxNs, values[values.length - 1]);
  assert.ok(Math.abs(s.meanNs - values.reduce((a, b) => a + b, 0) / 5000) < 1e-6 * s.meanNs);
  for (const [p, got] of [
    [0.5, s.p50Ns],
    [0.9, s.p90Ns],
    [0.99, s.p99Ns],
  ] as const) {
    const exact = values[Math.ceil(p * values.length) - 1];
    assert.ok(got >= exact && got <= exact * 1.125 + 1, `p${p * 100}: ${got} for ${exact}`);
  }
  const cdf = cdfPoints(s);
  assert.equal(cdf[cdf.length - 1].fraction, 1);
  for (let i = 1; i < cdf.length; i++)
    assert.ok(cdf[i].ns > cdf[i - 1].ns && cdf[i].fraction > cdf[i - 1].fraction);
  assert.equal(h.summary([2]).count, 5000);
  assert.deepEqual(h.summary([]).count, 0);
  assert.throws(() => h.summary([3]));
});
