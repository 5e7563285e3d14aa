/**
 * A writer's path from the root to a leaf slot, and the moves a rebuild needs: descend to an
 * index, and step to the previous or next node of a level (which may change the path above it).
 * Levels count from the leaves (0) to the root (`top`); node[l] covers [min[l], max[l]] and
 * off[l] is the slot of node[l] on the path (for level 0: the slot holding the index).
 */
import type { NodeViews } from './layout.js';
import * as layoutExports from './layout.js';

// Module-local copies of the layout's bindings (hot paths: see "Imported bindings" in layout.ts).
const { COUNT_MASK, childSlotOf, childWord, leafSlotOf, MAX_HEIGHT, META, NODE_F64, NODE_I32, PIVOTS } =
  layoutExports;

export class Path {
  readonly node = new Int32Array(MAX_HEIGHT);
  readonly off = new Int32Array(MAX_HEIGHT);
  readonly min = new Float64Array(MAX_HEIGHT);
  readonly max = new Float64Array(MAX_HEIGHT);

  constructor(private readonly views: NodeViews) {}

  /** Walks from `root` (at level `top`, covering everything) to the leaf slot holding `index`. */
  descend(root: number, top: number, min: number, max: number, index: number): void {
    let node = root;
    for (let level = top; ; level--) {
      this.node[level] = node;
      this.min[level] = min;
      this.max[level] = max;
      const f64 = this.views.f64;
      const p = node * NODE_F64 + PIVOTS;
      if (level === 0) {
        this.off[0] = leafSlotOf(f64, p, index);
        return;
      }
      const k = childSlotOf(f64, p, index);
      this.off[level] = k;
      if (k > 0) min = f64[p + k - 1] + 1;
      if (k < this.count(node) - 1) max = f64[p + k];
      node = this.views.i32[node * NODE_I32 + childWord(k)];
    }
  }

  /** Copies levels [from, top] of `other`. */
  copyFrom(other: Path, from: number, top: number): void {
    for (let level = from; level <= top; level++) {
      this.node[level] = other.node[level];
      this.off[level] = other.off[level];
      this.min[level] = other.min[level];
      this.max[level] = other.max[level];
    }
  }

  /** Moves node[level] to its left neighbour (which must exist: min[level] > 0). */
  moveLeft(level: number): void {
    let j = level + 1;
    while (this.off[j] === 0) j++;
    this.off[j]--;
    for (; j > level; j--) {
      this.enterChild(j);
      if (j - 1 > level) this.off[j - 1] = this.count(this.node[j - 1]) - 1;
    }
  }

  /** Moves node[level] to its right neighbour (which must exist: max[level] < MAX_INDEX). */
  moveRight(level: number): void {
    let j = level + 1;
    while (this.off[j] === this.count(this.node[j]) - 1) j++;
    this.off[j]++;
    for (; j > level; j--) {
      this.enterChild(j);
      if (j - 1 > level) this.off[j - 1] = 0;
    }
  }

  count(node: number): number {
    return this.views.i32[node * NODE_I32 + META] & COUNT_MASK;
  }

  /** Sets node/min/max of level j-1 from child off[j] of node[j]. */
  private enterChild(j: number): void {
    const parent = this.node[j];
    const k = this.off[j];
    const p = parent * NODE_F64 + PIVOTS;
    const f64 = this.views.f64;
    this.node[j - 1] = this.views.i32[parent * NODE_I32 + childWord(k)];
    this.min[j - 1] = k === 0 ? this.min[j] : f64[p + k - 1] + 1;
    this.max[j - 1] = k === this.count(parent) - 1 ? this.max[j] : f64[p + k];
  }
}
