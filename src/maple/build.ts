/**
 * Whole-tree construction without per-entry stores: a bulk build from sorted ranges (packs
 * leaves and internal nodes nearly full, bottom-up, O(n)) and duplication for fork (copies every
 * node record and rewires child handles, O(nodes)). Both fill an empty tree, take their nodes
 * from the writer's pool and publish the root with one atomic store; on -ENOMEM every node taken
 * goes back and the tree stays empty.
 */
import { EEXIST, ENOMEM } from '../errno.js';
import { COUNT, ROOT, SEQ } from './header.js';
import {
  COUNT_MASK,
  childWord,
  INTERNAL_MIN,
  INTERNAL_SLOTS,
  LEAF_MIN,
  LEAF_SLOTS,
  LEVEL_MASK,
  MAX_INDEX,
  META,
  NODE_I32,
  type NodeViews,
} from './layout.js';
import { writeInternal, writeLeaf } from './node.js';
import type { NodePool } from './pool.js';

/** Sorted, non-overlapping ranges with their values. */
export interface SortedRanges {
  firsts: ArrayLike<number>;
  lasts: ArrayLike<number>;
  values: ArrayLike<number>;
}

/** Whether `ranges` are integers in [0, MAX_INDEX], ascending, disjoint, with positive Int32 values. */
export function rangesAreValid(ranges: SortedRanges): boolean {
  const { firsts, lasts, values } = ranges;
  const n = firsts.length;
  if (lasts.length !== n || values.length !== n) return false;
  let previous = -1;
  for (let i = 0; i < n; i++) {
    const first = firsts[i];
    const last = lasts[i];
    const value = values[i];
    if (!(Number.isInteger(first) && Number.isInteger(last) && first > previous && last >= first))
      return false;
    if (last > MAX_INDEX || !(Number.isInteger(value) && value >= 1 && value <= 0x7fffffff)) return false;
    previous = last;
  }
  return true;
}

/** Builds the tree from `ranges` (validated by the caller) into the empty tree of `header`. */
export function bulkBuild(
  views: NodeViews,
  header: Int32Array,
  pool: NodePool,
  ranges: SortedRanges,
): number {
  if (header[ROOT] !== 0) return -EEXIST;
  const n = ranges.firsts.length;
  if (n === 0) return 0;
  const [slotMax, slotVal] = slotsOf(ranges);
  let level = 0;
  let width = slotMax.length;
  let maxes = slotMax;
  let items = slotVal;
  let hints = new Float64Array(0);
  while (level === 0 || width > 1) {
    const sizes = packing(
      width,
      level === 0 ? LEAF_SLOTS : INTERNAL_SLOTS,
      level === 0 ? LEAF_MIN : INTERNAL_MIN,
      items,
      level === 0,
    );
    const nextMaxes = new Float64Array(sizes.length);
    const nextItems = new Int32Array(sizes.length);
    const nextHints = new Float64Array(sizes.length);
    let start = 0;
    let min = 0;
    for (let j = 0; j < sizes.length; j++) {
      const node = pool.take();
      if (node === 0) {
        pool.rollback();
        return -ENOMEM;
      }
      const size = sizes[j];
      nextHints[j] =
        level === 0
          ? writeLeaf(views, node, maxes, items, start, size, min)
          : writeInternal(views, node, level, maxes, items, hints, start, size);
      nextItems[j] = node;
      nextMaxes[j] = maxes[start + size - 1];
      min = nextMaxes[j] + 1;
      start += size;
    }
    maxes = nextMaxes;
    items = nextItems;
    hints = nextHints;
    width = sizes.length;
    level++;
  }
  pool.commit();
  Atomics.store(header, ROOT, items[0]);
  Atomics.store(header, COUNT, n);
  Atomics.add(header, SEQ, 1);
  return 0;
}

/** The leaf slots of `ranges`: entries and the gaps between them, up to MAX_INDEX. */
function slotsOf(ranges: SortedRanges): [Float64Array, Int32Array] {
  const { firsts, lasts, values } = ranges;
  const n = firsts.length;
  const maxes = new Float64Array(2 * n + 1);
  const items = new Int32Array(2 * n + 1);
  let count = 0;
  let next = 0;
  for (let i = 0; i < n; i++) {
    if (firsts[i] > next) {
      maxes[count] = firsts[i] - 1;
      items[count++] = 0;
    }
    maxes[count] = lasts[i];
    items[count++] = values[i];
    next = lasts[i] + 1;
  }
  if (next <= MAX_INDEX) {
    maxes[count] = MAX_INDEX;
    items[count++] = 0;
  }
  return [maxes.subarray(0, count), items.subarray(0, count)];
}

/** Node sizes for `width` items: full nodes, the last two balanced, no leaf ending on a gap. */
function packing(width: number, cap: number, minFill: number, items: Int32Array, leaf: boolean): number[] {
  const sizes: number[] = [];
  for (let at = 0; at < width; ) {
    const remaining = width - at;
    let size = remaining;
    if (remaining > cap) {
      size = remaining - cap < minFill ? remaining - minFill : cap;
      if (leaf && items[at + size - 1] === 0) size--;
    }
    sizes.push(size);
    at += size;
  }
  return sizes;
}

/**
 * Copies the tree of (`from`, `fromHeader`) into the empty tree of (`to`, `toHeader`). The
 * source must not change meanwhile (its writer lock is held).
 */
export function copyTree(
  from: NodeViews,
  fromHeader: Int32Array,
  to: NodeViews,
  toHeader: Int32Array,
  pool: NodePool,
): number {
  if (toHeader[ROOT] !== 0) return -EEXIST;
  const root = fromHeader[ROOT];
  if (root === 0) return 0;
  const copy = pool.take();
  if (copy === 0) return -ENOMEM;
  copyRecord(from, root, to, copy);
  // Internal copies whose child handles still name source nodes.
  let pending = new Int32Array(64);
  let depth = 0;
  if (isInternal(to, copy)) pending[depth++] = copy;
  while (depth > 0) {
    const node = pending[--depth];
    const count = to.i32[node * NODE_I32 + META] & COUNT_MASK;
    for (let c = 0; c < count; c++) {
      const at = node * NODE_I32 + childWord(c);
      const child = pool.take();
      if (child === 0) {
        pool.rollback();
        return -ENOMEM;
      }
      copyRecord(from, to.i32[at], to, child);
      to.i32[at] = child;
      if (isInternal(to, child)) {
        if (depth === pending.length) {
          const grown = new Int32Array(depth * 2);
          grown.set(pending);
          pending = grown;
        }
        pending[depth++] = child;
      }
    }
  }
  pool.commit();
  Atomics.store(toHeader, COUNT, Atomics.load(fromHeader, COUNT));
  Atomics.store(toHeader, ROOT, copy);
  Atomics.add(toHeader, SEQ, 1);
  return 0;
}

function isInternal(views: NodeViews, node: number): boolean {
  return (views.i32[node * NODE_I32 + META] & LEVEL_MASK) !== 0;
}

function copyRecord(from: NodeViews, source: number, to: NodeViews, target: number): void {
  const s = source * NODE_I32;
  const t = target * NODE_I32;
  if (from.i32.buffer === to.i32.buffer) {
    to.i32.copyWithin(t, s, s + NODE_I32);
  } else {
    for (let i = 0; i < NODE_I32; i++) to.i32[t + i] = from.i32[s + i];
  }
}
