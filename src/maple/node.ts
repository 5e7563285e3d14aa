/**
 * Writing a whole node record from parallel arrays (the writer's content, a bulk build's level):
 * every word of the record is written, so a node taken from a reserve needs no clearing. Plain
 * loops, not TypedArray.fill: the records are small and the builtin's call costs more.
 */
import type { NodeViews } from './layout.js';
import * as layoutExports from './layout.js';

// Module-local copies of the layout's bindings (hot paths: see "Imported bindings" in layout.ts).
const {
  childWord,
  GAPS,
  gapHint,
  INTERNAL_SLOTS,
  LEAF_SLOTS,
  LEVEL_SHIFT,
  MAX_INDEX,
  META,
  NODE_F64,
  NODE_I32,
  PIVOTS,
  VALUES,
} = layoutExports;

/** Leaf `node` := slots [start, start + size) of (maxes, values), its first slot starting at `min`; returns its gap hint. */
export function writeLeaf(
  views: NodeViews,
  node: number,
  maxes: Float64Array,
  values: Int32Array,
  start: number,
  size: number,
  min: number,
): number {
  const f64 = views.f64;
  const i32 = views.i32;
  const p = node * NODE_F64 + PIVOTS - start;
  const v = node * NODE_I32 + VALUES - start;
  const end = start + size;
  let gap = 0;
  for (let i = start; i < end - 1; i++) f64[p + i] = maxes[i];
  for (let i = end - 1; i < start + LEAF_SLOTS - 1; i++) f64[p + i] = MAX_INDEX;
  for (let i = start; i < end; i++) {
    const value = values[i];
    i32[v + i] = value;
    if (value === 0) {
      const width = maxes[i] - (i === start ? min : maxes[i - 1] + 1) + 1;
      if (width > gap) gap = width;
    }
  }
  for (let i = end; i < start + LEAF_SLOTS; i++) i32[v + i] = 0;
  i32[node * NODE_I32 + META] = size;
  i32[node * NODE_I32 + META + 1] = 0;
  return gap === 0 ? 0 : gapHint(gap);
}

/** Internal `node` at `level` := children [start, start + size) of (maxes, children, hints); returns its gap hint. */
export function writeInternal(
  views: NodeViews,
  node: number,
  level: number,
  maxes: Float64Array,
  children: Int32Array,
  hints: Float64Array,
  start: number,
  size: number,
): number {
  const f64 = views.f64;
  const i32 = views.i32;
  const f32 = views.f32;
  const p = node * NODE_F64 + PIVOTS;
  const w = node * NODE_I32;
  let gap = 0;
  for (let i = 0; i < size; i++) {
    if (i < size - 1) f64[p + i] = maxes[start + i];
    i32[w + childWord(i)] = children[start + i];
    const hint = hints[start + i];
    f32[w + GAPS + i] = hint;
    if (hint > gap) gap = hint;
  }
  for (let i = size - 1; i < INTERNAL_SLOTS - 1; i++) f64[p + i] = MAX_INDEX;
  for (let i = size; i < INTERNAL_SLOTS; i++) {
    i32[w + childWord(i)] = 0;
    f32[w + GAPS + i] = 0;
  }
  i32[w + META] = size | (level << LEVEL_SHIFT);
  return gap;
}
