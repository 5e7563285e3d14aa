/**
 * The plain reference model the maple tests compare against: a sorted array of disjoint entries,
 * with every operation written the obvious way (linear scans), plus helpers shared by the tests.
 */
import assert from 'node:assert/strict';
import { EBUSY, EEXIST } from '../../src/errno.js';
import { type RangeIndex, rangeBatch, rangeOut } from '../../src/maple/api.js';
import { MAX_INDEX } from '../../src/maple/layout.js';
import type { MapleTree } from '../../src/maple/tree.js';

export interface Entry {
  first: number;
  last: number;
  value: number;
}

export class RangeModel {
  entries: Entry[] = [];

  clone(): RangeModel {
    const copy = new RangeModel();
    copy.entries = this.entries.map((e) => ({ ...e }));
    return copy;
  }

  store(first: number, last: number, value: number): void {
    const kept: Entry[] = [];
    for (const e of this.entries) {
      if (e.last < first || e.first > last) {
        kept.push(e);
        continue;
      }
      if (e.first < first) kept.push({ first: e.first, last: first - 1, value: e.value });
      if (e.last > last) kept.push({ first: last + 1, last: e.last, value: e.value });
    }
    if (value !== 0) kept.push({ first, last, value });
    kept.sort((a, b) => a.first - b.first);
    this.entries = kept;
  }

  insert(first: number, last: number, value: number): number {
    if (this.entries.some((e) => e.last >= first && e.first <= last)) return -EEXIST;
    this.store(first, last, value);
    return 0;
  }

  erase(index: number): number {
    const e = this.at(index);
    if (e === undefined) return 0;
    this.store(e.first, e.last, 0);
    return e.value;
  }

  at(index: number): Entry | undefined {
    return this.entries.find((e) => e.first <= index && index <= e.last);
  }

  /** The entry or gap holding `index`, as the tree's load reports it. */
  load(index: number): Entry {
    const e = this.at(index);
    if (e) return { ...e };
    let first = 0;
    let last = MAX_INDEX;
    for (const x of this.entries) {
      if (x.last < index) first = x.last + 1;
      else if (x.first > index) {
        last = x.first - 1;
        break;
      }
    }
    return { first, last, value: 0 };
  }

  next(index: number, max: number): Entry | undefined {
    return this.entries.find((e) => e.last >= index && e.first <= max);
  }

  prev(index: number, min: number): Entry | undefined {
    return this.entries.findLast((e) => e.first <= index && e.last >= min);
  }

  /** The gaps (maximal free runs) in ascending order. */
  gaps(): Entry[] {
    const gaps: Entry[] = [];
    let next = 0;
    for (const e of this.entries) {
      if (e.first > next) gaps.push({ first: next, last: e.first - 1, value: 0 });
      next = e.last + 1;
    }
    if (next <= MAX_INDEX) gaps.push({ first: next, last: MAX_INDEX, value: 0 });
    return gaps;
  }

  gapLowest(min: number, max: number, size: number, align: number): number {
    for (const g of this.gaps()) {
      const from = Math.max(g.first, min);
      const to = Math.min(g.last, max);
      const start = from % align === 0 ? from : from + (align - (from % align));
      if (start <= to - size + 1) return start;
    }
    return -EBUSY;
  }

  gapHighest(min: number, max: number, size: number, align: number): number {
    for (const g of this.gaps().reverse()) {
      const from = Math.max(g.first, min);
      const to = Math.min(g.last, max);
      const last = to - size + 1;
      if (last < from) continue;
      const start = last - (last % align);
      if (start >= from) return start;
    }
    return -EBUSY;
  }
}

/** Every entry of the tree, in order, read with a cursor. */
export function treeEntries(tree: MapleTree): Entry[] {
  const out = rangeOut();
  const cursor = tree.cursor(0);
  const entries: Entry[] = [];
  for (let value = cursor.find(MAX_INDEX, out); value !== 0; value = cursor.find(MAX_INDEX, out)) {
    entries.push({ first: out.first, last: out.last, value });
  }
  return entries;
}

/**
 * The entries with last >= index and first <= max read with `nextBatch`, `capacity` at a time,
 * each call going on from the end of the last entry the one before returned.
 */
export function batchEntries(
  index: RangeIndex,
  capacity: number,
  from = 0,
  max = MAX_INDEX,
  between: () => void = () => {},
): Entry[] {
  const batch = rangeBatch(capacity);
  const entries: Entry[] = [];
  for (let at = from, n = capacity; n === capacity; at = batch.lasts[n - 1] + 1) {
    if (entries.length > 0) between();
    n = index.nextBatch(at, max, batch);
    assert.ok(n >= 0 && n <= capacity, `nextBatch returned ${n}`);
    for (let i = 0; i < n; i++) {
      entries.push({ first: batch.firsts[i], last: batch.lasts[i], value: batch.values[i] });
    }
  }
  return entries;
}

/** The tree holds exactly the model's entries (read by cursor and by batches), passes validate() and counts right. */
export function assertSame(tree: MapleTree, model: RangeModel, what = ''): void {
  tree.validate();
  assert.deepEqual(treeEntries(tree), model.entries, what);
  assert.deepEqual(batchEntries(tree, 5), model.entries, `${what} (nextBatch)`);
  assert.equal(tree.count(), model.entries.length, what);
}

/** Deterministic PRNG (mulberry32) for seeded tests. */
export function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` sorted disjoint ranges in [base, ...), random lengths and gaps (gap 0 allowed). */
export function randomRanges(n: number, random: () => number, base = 0, maxLen = 16, maxGap = 16): Entry[] {
  const entries: Entry[] = [];
  let at = base;
  for (let i = 0; i < n; i++) {
    at += Math.floor(random() * (maxGap + 1));
    const len = 1 + Math.floor(random() * maxLen);
    entries.push({ first: at, last: at + len - 1, value: 1 + Math.floor(random() * 1_000_000) });
    at += len;
  }
  return entries;
}

export function bulkArgs(entries: Entry[]): { firsts: number[]; lasts: number[]; values: number[] } {
  return {
    firsts: entries.map((e) => e.first),
    lasts: entries.map((e) => e.last),
    values: entries.map((e) => e.value),
  };
}
