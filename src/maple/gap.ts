/**
 * Gap search: the lowest or highest aligned start of a free run of `size` indices inside a window
 * [lo, hi]. A depth-first walk in index order that enters a child only when its gap hint (the
 * largest gap of its subtree, rounded up) is at least `size`, so with exact hints it touches
 * O(log n) nodes plus the misses at the window's edge; alignment is checked on the real gap in
 * the leaf. Runs lock-free like the other reads: hints are only ever upper bounds while a writer
 * works (raised before, lowered after a change is published), so a gap present throughout the
 * search is never skipped; a DEAD node restarts the search.
 */
import { EBUSY } from '../errno.js';
import * as headerExports from './header.js';
import type { NodeViews } from './layout.js';
import * as layoutExports from './layout.js';

// Module-local copies of the layout's bindings (hot paths: see "Imported bindings" in layout.ts).
const {
  COUNT_MASK,
  childSlotOf,
  childWord,
  DEAD,
  GAPS,
  LEVEL_MASK,
  LEVEL_SHIFT,
  leafSlotOf,
  MAX_HEIGHT,
  MAX_INDEX,
  META,
  NODE_F64,
  NODE_I32,
  PIVOTS,
  VALUES,
} = layoutExports;
const { RESTART_LIMIT, ROOT } = headerExports;

/** Outcome of one attempt: a start (>= 0), none, or a dead node met (search again). */
const NONE = -1;
const DEAD_NODE = -2;

export class GapSearch {
  private readonly node = new Int32Array(MAX_HEIGHT);
  private readonly off = new Int32Array(MAX_HEIGHT);
  private readonly min = new Float64Array(MAX_HEIGHT);
  private readonly max = new Float64Array(MAX_HEIGHT);

  constructor(
    private readonly views: NodeViews,
    private readonly header: Int32Array,
  ) {}

  /** Lowest aligned start of `size` free indices inside [lo, hi]; -EBUSY if none. */
  lowest(lo: number, hi: number, size: number, align: number): number {
    for (let restarts = 0; restarts <= RESTART_LIMIT; restarts++) {
      const found = this.tryLowest(lo, hi, size, align);
      if (found !== DEAD_NODE) return found === NONE ? -EBUSY : found;
    }
    throw new Error('maple: gap search keeps meeting dead nodes');
  }

  /** Highest aligned start of `size` free indices inside [lo, hi]; -EBUSY if none. */
  highest(lo: number, hi: number, size: number, align: number): number {
    for (let restarts = 0; restarts <= RESTART_LIMIT; restarts++) {
      const found = this.tryHighest(lo, hi, size, align);
      if (found !== DEAD_NODE) return found === NONE ? -EBUSY : found;
    }
    throw new Error('maple: gap search keeps meeting dead nodes');
  }

  private meta(node: number): number {
    return this.views.i32[node * NODE_I32 + META];
  }

  /** Positions node[level] (covering [min, max]) on the slot holding `index`. */
  private enter(level: number, node: number, min: number, max: number, index: number): void {
    this.node[level] = node;
    this.min[level] = min;
    this.max[level] = max;
    const p = node * NODE_F64 + PIVOTS;
    this.off[level] =
      level === 0 ? leafSlotOf(this.views.f64, p, index) : childSlotOf(this.views.f64, p, index);
  }

  private tryLowest(lo: number, hi: number, size: number, align: number): number {
    const root = Atomics.load(this.header, ROOT);
    if (root === 0) return fitLow(0, MAX_INDEX, lo, hi, size, align);
    const top = (this.meta(root) & LEVEL_MASK) >> LEVEL_SHIFT;
    this.enter(top, root, 0, MAX_INDEX, lo);
    let level = top;
    for (;;) {
      const node = this.node[level];
      const meta = this.meta(node);
      if ((meta & DEAD) !== 0) return DEAD_NODE;
      const count = meta & COUNT_MASK;
      const f64 = this.views.f64;
      const p = node * NODE_F64 + PIVOTS;
      let descended = false;
      for (let k = this.off[level]; k < count; k++) {
        const a = k === 0 ? this.min[level] : f64[p + k - 1] + 1;
        if (a > hi) return NONE;
        const b = k === count - 1 ? this.max[level] : f64[p + k];
        if (level === 0) {
          if (this.views.i32[node * NODE_I32 + VALUES + k] !== 0) continue;
          const start = fitLow(a, b, lo, hi, size, align);
          if (start !== NONE) return start;
        } else if (this.views.f32[node * NODE_I32 + GAPS + k] >= size) {
          this.off[level] = k;
          const child = this.views.i32[node * NODE_I32 + childWord(k)];
          this.enter(level - 1, child, a, b, Math.max(a, lo));
          level--;
          descended = true;
          break;
        }
      }
      if (descended) continue;
      if (++level > top) return NONE;
      this.off[level]++;
    }
  }

  private tryHighest(lo: number, hi: number, size: number, align: number): number {
    const root = Atomics.load(this.header, ROOT);
    if (root === 0) return fitHigh(0, MAX_INDEX, lo, hi, size, align);
    const top = (this.meta(root) & LEVEL_MASK) >> LEVEL_SHIFT;
    this.enter(top, root, 0, MAX_INDEX, hi);
    let level = top;
    for (;;) {
      const node = this.node[level];
      const meta = this.meta(node);
      if ((meta & DEAD) !== 0) return DEAD_NODE;
      const count = meta & COUNT_MASK;
      const f64 = this.views.f64;
      const p = node * NODE_F64 + PIVOTS;
      let descended = false;
      for (let k = this.off[level]; k >= 0; k--) {
        const b = k === count - 1 ? this.max[level] : f64[p + k];
        if (b < lo) return NONE;
        const a = k === 0 ? this.min[level] : f64[p + k - 1] + 1;
        if (level === 0) {
          if (this.views.i32[node * NODE_I32 + VALUES + k] !== 0) continue;
          const start = fitHigh(a, b, lo, hi, size, align);
          if (start !== NONE) return start;
        } else if (this.views.f32[node * NODE_I32 + GAPS + k] >= size) {
          this.off[level] = k;
          const child = this.views.i32[node * NODE_I32 + childWord(k)];
          this.enter(level - 1, child, a, b, Math.min(b, hi));
          level--;
          descended = true;
          break;
        }
      }
      if (descended) continue;
      if (++level > top) return NONE;
      this.off[level]--;
    }
  }
}

/** Lowest aligned start of `size` indices inside the gap [a, b] and the window [lo, hi]. */
function fitLow(a: number, b: number, lo: number, hi: number, size: number, align: number): number {
  const from = Math.max(a, lo);
  const to = Math.min(b, hi);
  const rest = from % align;
  const start = rest === 0 ? from : from + (align - rest);
  return start <= to - size + 1 ? start : NONE;
}

/** Highest aligned start of `size` indices inside the gap [a, b] and the window [lo, hi]. */
function fitHigh(a: number, b: number, lo: number, hi: number, size: number, align: number): number {
  const from = Math.max(a, lo);
  const to = Math.min(b, hi);
  const last = to - size + 1;
  if (last < from) return NONE;
  const start = last - (last % align);
  return start >= from ? start : NONE;
}
