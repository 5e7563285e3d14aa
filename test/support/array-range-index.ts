/**
 * A reference RangeIndex over sorted typed arrays: correct and simple, not fast (stores are
 * O(n)). Tests and the replayer use it as an oracle and as a stand-in until the maple tree is
 * available. An optional FailureInjector makes `preallocate` fail like a node arena would.
 *
 *   firsts: Float64Array  [f0 f1 f2 ...]   sorted, entries non-overlapping
 *   lasts:  Float64Array  [l0 l1 l2 ...]   fi <= li < f(i+1)
 *   values: Int32Array    [v0 v1 v2 ...]   non-zero
 */
import { EBUSY, EEXIST, ENOMEM } from '../../src/errno.js';
import type { RangeBatch, RangeIndex, RangeOut } from '../../src/maple/api.js';
import type { FailureInjector } from '../../src/shm/arena.js';

const LIMIT = 2 ** 53 - 1;

export class ArrayRangeIndex implements RangeIndex {
  private firsts = new Float64Array(16);
  private lasts = new Float64Array(16);
  private values = new Int32Array(16);
  private n = 0;
  private readonly injector: FailureInjector | null;

  constructor(injector: FailureInjector | null = null) {
    this.injector = injector;
  }

  count(): number {
    return this.n;
  }

  /** Index of the first entry with last >= index (n if none). */
  private lowerBound(index: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lasts[mid] < index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  load(index: number, out: RangeOut): number {
    const i = this.lowerBound(index);
    if (i < this.n && this.firsts[i] <= index) {
      out.first = this.firsts[i];
      out.last = this.lasts[i];
      out.value = this.values[i];
      return out.value;
    }
    out.first = i > 0 ? this.lasts[i - 1] + 1 : 0;
    out.last = i < this.n ? this.firsts[i] - 1 : LIMIT;
    out.value = 0;
    return 0;
  }

  next(index: number, max: number, out: RangeOut): number {
    const i = this.lowerBound(index);
    if (i >= this.n || this.firsts[i] > max) return 0;
    return this.fill(i, out);
  }

  nextBatch(index: number, max: number, batch: RangeBatch): number {
    const cap = batch.firsts.length;
    let k = 0;
    for (let i = this.lowerBound(index); k < cap && i < this.n && this.firsts[i] <= max; i++, k++) {
      batch.firsts[k] = this.firsts[i];
      batch.lasts[k] = this.lasts[i];
      batch.values[k] = this.values[i];
    }
    return k;
  }

  prev(index: number, min: number, out: RangeOut): number {
    let i = this.lowerBound(index);
    if (i >= this.n || this.firsts[i] > index) i--;
    if (i < 0 || this.lasts[i] < min) return 0;
    return this.fill(i, out);
  }

  private fill(i: number, out: RangeOut): number {
    out.first = this.firsts[i];
    out.last = this.lasts[i];
    out.value = this.values[i];
    return out.value;
  }

  store(first: number, last: number, value: number): number {
    if (!(first <= last && first >= 0 && last <= LIMIT))
      throw new Error(`store: bad range [${first}, ${last}]`);
    const i = this.lowerBound(first);
    // Entries overlapping [first, last] are i .. j-1.
    let j = i;
    while (j < this.n && this.firsts[j] <= last) j++;
    const pieces: number[] = [];
    if (i < j && this.firsts[i] < first) pieces.push(this.firsts[i], first - 1, this.values[i]);
    if (value !== 0) pieces.push(first, last, value);
    if (i < j && this.lasts[j - 1] > last) pieces.push(last + 1, this.lasts[j - 1], this.values[j - 1]);
    this.splice(i, j - i, pieces);
    return 0;
  }

  insert(first: number, last: number, value: number): number {
    const i = this.lowerBound(first);
    if (i < this.n && this.firsts[i] <= last) return -EEXIST;
    return this.store(first, last, value);
  }

  erase(index: number): number {
    const i = this.lowerBound(index);
    if (i >= this.n || this.firsts[i] > index) return 0;
    const value = this.values[i];
    this.splice(i, 1, []);
    return value;
  }

  gapLowest(min: number, max: number, size: number, align: number): number {
    let cursor = min;
    for (let i = this.lowerBound(min); ; i++) {
      const gapEnd = i < this.n ? Math.min(this.firsts[i] - 1, max) : max;
      const s = Math.ceil(cursor / align) * align;
      if (s + size - 1 <= gapEnd) return s;
      if (i >= this.n || this.firsts[i] > max) return -EBUSY;
      cursor = this.lasts[i] + 1;
    }
  }

  gapHighest(min: number, max: number, size: number, align: number): number {
    let cursor = max;
    let i = this.lowerBound(max);
    if (i < this.n && this.firsts[i] <= max) {
      cursor = this.firsts[i] - 1;
    }
    for (i--; ; i--) {
      const gapStart = i >= 0 ? Math.max(this.lasts[i] + 1, min) : min;
      const s = Math.floor((cursor - size + 1) / align) * align;
      if (cursor >= min && s >= gapStart) return s;
      if (i < 0 || this.lasts[i] < min) return -EBUSY;
      cursor = this.firsts[i] - 1;
    }
  }

  preallocate(_count: number): number {
    if (this.injector?.shouldFail()) return -ENOMEM;
    return 0;
  }

  private splice(at: number, remove: number, pieces: number[]): void {
    const add = pieces.length / 3;
    const n = this.n - remove + add;
    if (n > this.firsts.length) this.grow(n);
    const tail = this.n - (at + remove);
    this.firsts.copyWithin(at + add, at + remove, at + remove + tail);
    this.lasts.copyWithin(at + add, at + remove, at + remove + tail);
    this.values.copyWithin(at + add, at + remove, at + remove + tail);
    for (let k = 0; k < add; k++) {
      this.firsts[at + k] = pieces[3 * k];
      this.lasts[at + k] = pieces[3 * k + 1];
      this.values[at + k] = pieces[3 * k + 2];
    }
    this.n = n;
    for (let k = Math.max(1, at - 1); k < Math.min(this.n, at + add + 1); k++) {
      if (this.firsts[k] <= this.lasts[k - 1]) throw new Error('ArrayRangeIndex: overlapping entries');
    }
  }

  private grow(n: number): void {
    const cap = Math.max(n, this.firsts.length * 2);
    const f = new Float64Array(cap);
    const l = new Float64Array(cap);
    const v = new Int32Array(cap);
    f.set(this.firsts.subarray(0, this.n));
    l.set(this.lasts.subarray(0, this.n));
    v.set(this.values.subarray(0, this.n));
    this.firsts = f;
    this.lasts = l;
    this.values = v;
  }
}
