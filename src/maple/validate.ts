/**
 * Full structural check of a quiescent tree (hold the writer lock): every invariant listed in
 * layout.ts, plus the header's entry count, and that no node is dead, freed or reachable twice.
 * Throws an Error naming the node and the broken rule; returns the tree's shape otherwise.
 */
import type { Arena } from '../shm/arena.js';
import { COUNT, ROOT } from './header.js';
import {
  COUNT_MASK,
  childWord,
  DEAD,
  GAPS,
  gapHint,
  INTERNAL_MIN,
  INTERNAL_SLOTS,
  LEAF_MIN,
  LEAF_SLOTS,
  LEVEL_MASK,
  LEVEL_SHIFT,
  MAX_INDEX,
  META,
  NODE_BYTES,
  NODE_F64,
  NODE_I32,
  type NodeViews,
  PIVOTS,
  VALUES,
} from './layout.js';

export interface TreeShape {
  /** Levels (0 for an empty tree). */
  height: number;
  nodes: number;
  leaves: number;
  entries: number;
  /** Node bytes. */
  bytes: number;
  /** Largest gap of the tree. */
  largestGap: number;
}

export function validateTree(views: NodeViews, header: Int32Array, arena: Arena): TreeShape {
  const root = Atomics.load(header, ROOT);
  const shape: TreeShape = {
    height: 0,
    nodes: 0,
    leaves: 0,
    entries: 0,
    bytes: 0,
    largestGap: MAX_INDEX + 1,
  };
  if (root !== 0) {
    const checker = new Checker(views, arena, shape);
    const meta = checker.meta(root);
    shape.height = ((meta & LEVEL_MASK) >> LEVEL_SHIFT) + 1;
    shape.largestGap = checker.node(root, shape.height - 1, 0, MAX_INDEX, true);
    shape.bytes = shape.nodes * NODE_BYTES;
  }
  const counted = Atomics.load(header, COUNT);
  if (counted !== shape.entries)
    fail(root, `header counts ${counted} entries, the leaves hold ${shape.entries}`);
  return shape;
}

function fail(node: number, what: string): never {
  throw new Error(`maple validate: node ${node}: ${what}`);
}

class Checker {
  private readonly seen = new Set<number>();

  constructor(
    private readonly views: NodeViews,
    private readonly arena: Arena,
    private readonly shape: TreeShape,
  ) {}

  meta(node: number): number {
    if (!this.arena.isLive(node)) fail(node, 'not a live arena record');
    return this.views.i32[node * NODE_I32 + META];
  }

  /** Checks the subtree of `node` covering [min, max]; returns its largest gap. */
  node(node: number, level: number, min: number, max: number, isRoot: boolean): number {
    if (this.seen.has(node)) fail(node, 'reachable twice');
    this.seen.add(node);
    this.shape.nodes++;
    const meta = this.meta(node);
    if ((meta & DEAD) !== 0) fail(node, 'dead but reachable');
    const actualLevel = (meta & LEVEL_MASK) >> LEVEL_SHIFT;
    if (actualLevel !== level) fail(node, `level ${actualLevel}, expected ${level}`);
    const count = meta & COUNT_MASK;
    const leaf = level === 0;
    const cap = leaf ? LEAF_SLOTS : INTERNAL_SLOTS;
    const least = isRoot ? (leaf ? 1 : 2) : leaf ? LEAF_MIN : INTERNAL_MIN;
    if (count < least || count > cap) fail(node, `${count} slots, limits ${least}..${cap}`);
    this.pivots(node, count, cap, min, max);
    return leaf ? this.leaf(node, count, min, max, isRoot) : this.internal(node, level, count, min, max);
  }

  private pivots(node: number, count: number, cap: number, min: number, max: number): void {
    const f64 = this.views.f64;
    const p = node * NODE_F64 + PIVOTS;
    let previous = min - 1;
    for (let i = 0; i < count - 1; i++) {
      const pivot = f64[p + i];
      if (!(pivot > previous && pivot < max)) {
        fail(node, `pivot ${i} = ${pivot} not in (${previous}, ${max}) (node covers [${min}, ${max}])`);
      }
      previous = pivot;
    }
    for (let i = count - 1; i < cap - 1; i++) {
      if (f64[p + i] !== MAX_INDEX) fail(node, `unused pivot ${i} = ${f64[p + i]}, expected MAX_INDEX`);
    }
  }

  private leaf(node: number, count: number, min: number, max: number, isRoot: boolean): number {
    const f64 = this.views.f64;
    const i32 = this.views.i32;
    const p = node * NODE_F64 + PIVOTS;
    const w = node * NODE_I32;
    this.shape.leaves++;
    let gap = 0;
    for (let i = 0; i < count; i++) {
      const value = i32[w + VALUES + i];
      const first = i === 0 ? min : f64[p + i - 1] + 1;
      const last = i === count - 1 ? max : f64[p + i];
      if (value < 0) fail(node, `slot ${i} holds negative value ${value}`);
      if (value > 0) {
        this.shape.entries++;
        continue;
      }
      if (i > 0 && i32[w + VALUES + i - 1] === 0) fail(node, `slots ${i - 1} and ${i} are adjacent gaps`);
      if (last - first + 1 > gap) gap = last - first + 1;
    }
    if (i32[w + VALUES + count - 1] === 0 && max !== MAX_INDEX)
      fail(node, 'a leaf other than the last ends with a gap');
    if (isRoot && count === 1 && i32[w + VALUES] === 0)
      fail(node, 'root leaf holding one gap (should be an empty tree)');
    for (let i = count; i < LEAF_SLOTS; i++) {
      if (i32[w + VALUES + i] !== 0) fail(node, `unused slot ${i} holds ${i32[w + VALUES + i]}`);
    }
    return gap;
  }

  private internal(node: number, level: number, count: number, min: number, max: number): number {
    const f64 = this.views.f64;
    const i32 = this.views.i32;
    const f32 = this.views.f32;
    const p = node * NODE_F64 + PIVOTS;
    const w = node * NODE_I32;
    let gap = 0;
    for (let i = 0; i < count; i++) {
      const child = i32[w + childWord(i)];
      if (child <= 0) fail(node, `child ${i} is ${child}`);
      const first = i === 0 ? min : f64[p + i - 1] + 1;
      const last = i === count - 1 ? max : f64[p + i];
      const childGap = this.node(child, level - 1, first, last, false);
      const hint = f32[w + GAPS + i];
      if (hint !== gapHint(childGap))
        fail(node, `gap hint ${i} = ${hint}, child ${child} has largest gap ${childGap}`);
      if (childGap > gap) gap = childGap;
    }
    for (let i = count; i < INTERNAL_SLOTS; i++) {
      if (i32[w + childWord(i)] !== 0 || f32[w + GAPS + i] !== 0) fail(node, `unused child ${i} is not zero`);
    }
    return gap;
  }
}
