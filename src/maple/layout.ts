/**
 * Maple node layout: one 192-byte arena record per node (three cache lines), Float64 pivots,
 * Int32 slots and metadata, Float32 gap hints. Leaves and internal nodes share the record size.
 *
 *   leaf (level 0)                                  internal (level >= 1)
 *   byte   0 +------------------------------+       byte   0 +------------------------------+
 *            | meta  Int32 | (reserved)     |                | meta  Int32 | child[0] Int32 |
 *          8 +------------------------------+              8 +------------------------------+
 *            | pivot[0..14]  Float64 x 15   |                | pivot[0..9]   Float64 x 10   |
 *        128 +------------------------------+             88 +------------------------------+
 *            | value[0..15]  Int32 x 16     |                | child[1..10]  Int32 x 10     |
 *        192 +------------------------------+            128 +------------------------------+
 *                                                            | gap[0..10]    Float32 x 11   |
 *                                                        172 +------------------------------+
 *                                                            | (unused)                     |
 *                                                        192 +------------------------------+
 *
 *   meta = count (bits 0-7) | level << 8 | DEAD
 *
 * A record is three whole cache lines (the arena's records start on a line, see arena.ts), so no
 * two nodes share a line. A reader reads the meta word, the pivots and one slot: in an internal
 * node, exactly the first two lines. Writers rewrite gap hints along their path on most changes,
 * so the hints sit alone in the third line (11 children are what fits that way: child 0 takes the
 * word beside the meta word).
 *
 * Slot i of a node covers [pivot[i-1] + 1, pivot[i]]; slot 0 starts at the node's minimum and
 * the last used slot ends at the node's maximum, both implied by the parent (or by the whole
 * index space [0, MAX_INDEX] at the root). Unused pivots hold MAX_INDEX, so a reader finds the
 * slot of `index` by counting pivots below it with no data-dependent branch.
 *
 * Imported bindings: the hot modules (read, path, write, node, gap) copy what they import from
 * here into module-local consts. V8 (Node 20) reads an imported binding through its module cell,
 * with a hole check, at every use, but folds a local const: measured, 11 of the 93 ns of a random
 * lookup at 100k ranges.
 *
 * Invariants (checked by `validate`):
 * - pivots strictly increase inside the node's range; count is within the fill limits
 *   (root: >= 1 slot for a leaf, >= 2 children for an internal node);
 * - every leaf is at level 0 and a child's level is its parent's minus one;
 * - a leaf value is 0 (a gap) or a positive Int32; no two adjacent slots are gaps, and a leaf
 *   other than the rightmost never ends with a gap, so every maximal gap is a single slot;
 * - gap[i] of an internal node is `gapHint` of the largest gap in child i's subtree;
 * - published nodes are never modified except: a child handle replaced by one atomic store
 *   (the new child covers exactly the same range), a leaf value replaced in place by one
 *   atomic store, gap hints raised before and lowered after such a store, and DEAD set once
 *   the node is unreachable.
 */
import type { Arena } from '../shm/arena.js';

export const MAX_INDEX = 2 ** 53 - 1;

export const NODE_BYTES = 192;
export const NODE_I32 = NODE_BYTES / 4;
export const NODE_F64 = NODE_BYTES / 8;

export const LEAF_SLOTS = 16;
export const LEAF_MIN = 6;
export const INTERNAL_SLOTS = 11;
export const INTERNAL_MIN = 4;

/** Int32 offset of the meta word. */
export const META = 0;
/** Float64 offset of pivot 0. */
export const PIVOTS = 1;
/** Int32 offset of a leaf's values. */
export const VALUES = 32;
/** Int32 offset of an internal node's child 0 (beside the meta word). */
export const CHILD0 = 1;
/** Int32 offset of an internal node's children 1-10 (after the pivots). */
export const CHILDREN = 22;
/** Float32 offset of an internal node's gap hints. */
export const GAPS = 32;

/** Int32 offset of child k of an internal node. */
export function childWord(k: number): number {
  return k === 0 ? CHILD0 : CHILDREN + k - 1;
}

export const COUNT_MASK = 0xff;
export const LEVEL_SHIFT = 8;
export const LEVEL_MASK = 0xff << LEVEL_SHIFT;
export const DEAD = 1 << 16;

/** Deeper than any tree the arena can hold (every internal node has >= 2 children). */
export const MAX_HEIGHT = 32;

/** Typed views of a node arena's records (fixed-length: the arena reserves its maximum up front). */
export class NodeViews {
  readonly f64: Float64Array;
  readonly i32: Int32Array;
  readonly f32: Float32Array;

  constructor(readonly arena: Arena) {
    if (arena.recordBytes !== NODE_BYTES) {
      throw new RangeError(
        `maple: arena ${arena.name} has ${arena.recordBytes}-byte records, nodes need ${NODE_BYTES}`,
      );
    }
    this.f64 = arena.f64;
    this.i32 = arena.i32;
    const records = arena.describe().records;
    this.f32 = new Float32Array(records, 0, records.byteLength >> 2);
  }
}

const hintF32 = new Float32Array(1);
const hintU32 = new Uint32Array(hintF32.buffer);

/**
 * The gap hint stored for a subtree whose largest gap is `gap`: the smallest Float32 >= gap.
 * Exact for gaps below 2^24; never below the true gap, so pruning by hint never skips a fit.
 */
export function gapHint(gap: number): number {
  hintF32[0] = gap;
  if (hintF32[0] < gap) hintU32[0]++;
  return hintF32[0];
}

/** Number of the 15 leaf pivots at f64[p..p+14] below x: the slot holding x. */
export function leafSlotOf(f: Float64Array, p: number, x: number): number {
  return (
    +(f[p] < x) +
    +(f[p + 1] < x) +
    +(f[p + 2] < x) +
    +(f[p + 3] < x) +
    +(f[p + 4] < x) +
    +(f[p + 5] < x) +
    +(f[p + 6] < x) +
    +(f[p + 7] < x) +
    +(f[p + 8] < x) +
    +(f[p + 9] < x) +
    +(f[p + 10] < x) +
    +(f[p + 11] < x) +
    +(f[p + 12] < x) +
    +(f[p + 13] < x) +
    +(f[p + 14] < x)
  );
}

/** Number of the 10 internal pivots at f64[p..p+9] below x: the child holding x. */
export function childSlotOf(f: Float64Array, p: number, x: number): number {
  return (
    +(f[p] < x) +
    +(f[p + 1] < x) +
    +(f[p + 2] < x) +
    +(f[p + 3] < x) +
    +(f[p + 4] < x) +
    +(f[p + 5] < x) +
    +(f[p + 6] < x) +
    +(f[p + 7] < x) +
    +(f[p + 8] < x) +
    +(f[p + 9] < x)
  );
}
