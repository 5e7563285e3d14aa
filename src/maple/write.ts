/**
 * The write side: every change is a rebuild of a contiguous run of nodes per level, published
 * with one atomic store.
 *
 * A store of [first, last] walks two paths, L to the leaf holding `first` and R to the leaf
 * holding `last`. Level by level, from the leaves up:
 *
 *   content(level) = [slots of L.node before L.off] + [new nodes of the level below, or the new
 *                    entry at the leaves] + [slots of R.node after R.off]
 *
 * Adjacent gaps are merged; if the content would leave a leaf ending in a gap, or fewer slots
 * than the fill minimum, the run takes in the neighbouring node (L or R moves one node over,
 * possibly under another parent). One common case is cheaper: a leaf left ending in a gap whose
 * right sibling (same parent) starts with a gap hands the trailing gap over by moving the pivot
 * between them; the sibling keeps its record and only the leaf and the parent are rebuilt.
 * The content is cut into 1-3 new nodes. The rebuild stops at
 * the first level where one node replaces one node (the parent's pivots still hold, so the new
 * node is stored into the parent's slot) or at the root (the root word is replaced; the height
 * grows by one when the old root splits, and shrinks when a root keeps a single child).
 * Nothing is visible before that one atomic store; afterwards every node of the replaced runs
 * (including whole subtrees a spanning store covered) is marked DEAD and handed to the
 * reclaimer. Gap hints of the ancestors above the publishing point are raised before the store
 * and lowered after it, so they stay upper bounds for lock-free gap searches.
 *
 * Three changes touch one word instead: giving an existing entry a new value, filling a gap slot
 * exactly, and erasing an entry whose neighbours in its leaf are entries (Atomics.store of the
 * leaf value).
 *
 * New nodes come from the writer's NodePool; if one cannot be had, every node taken so far goes
 * back and the store returns -ENOMEM with the tree untouched.
 */
import { EEXIST, ENOMEM } from '../errno.js';
import type { Arena } from '../shm/arena.js';
import * as headerExports from './header.js';
import type { NodeViews } from './layout.js';
import * as layoutExports from './layout.js';
import { writeInternal, writeLeaf } from './node.js';
import { Path } from './path.js';
import { NodePool } from './pool.js';
import type { Reclaimer } from './reclaim.js';
import { MAX_SPLIT, reserveForStores, type TreeNow } from './reserve.js';

/**
 * preallocate's shortcut: a reserve at most this far above the plain bound of one or two stores
 * is never trimmed by a fill (the bound exceeds the exact need by at most 14 nodes: 46 in all, and the pool
 * trims only a reserve more than TRIM_ABOVE = 64 above the need).
 */
const PLAIN_BOUND_SLACK = 32;

// Module-local copies of the layout's bindings (hot paths: see "Imported bindings" in layout.ts).
const {
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
  leafSlotOf,
  MAX_HEIGHT,
  MAX_INDEX,
  META,
  NODE_F64,
  NODE_I32,
  PIVOTS,
  VALUES,
} = layoutExports;
const { COUNT, ROOT, SEQ } = headerExports;

/** Largest content of one level: two nodes' worth of slots plus the change and a neighbour. */
const CONTENT = 4 * LEAF_SLOTS;

export class TreeWriter {
  readonly pool: NodePool;
  private readonly L: Path;
  private readonly R: Path;
  /** Root level of the tree being changed. */
  private top = 0;
  /** R shares L's path above the leaf and has not copied it yet (see shareLeafPath). */
  private rAbovePending = false;

  /** Content of the level being rebuilt: slot maxima, values (or child handles), child hints. */
  private readonly cMax = new Float64Array(CONTENT);
  private readonly cVal = new Int32Array(CONTENT);
  private readonly cGap = new Float64Array(CONTENT);
  private n = 0;
  /** Content positions of the changed slots, which steer how the content is cut. */
  private chgFirst = 0;
  private chgLast = 0;

  private readonly sizes = new Int32Array(MAX_SPLIT + 1);
  /** The new nodes of the level just built. */
  private readonly newH = new Int32Array(MAX_SPLIT);
  private readonly newMax = new Float64Array(MAX_SPLIT);
  private readonly newGap = new Float64Array(MAX_SPLIT);
  private k = 0;
  private entriesAdded = 0;
  /** Entries a store inside one leaf adds (negative: removes), from composeLeaf. */
  private leafDelta = 0;

  /** Ancestor hints to lower once the change is published. */
  private readonly lowerAt = new Int32Array(MAX_HEIGHT);
  private readonly lowerTo = new Float64Array(MAX_HEIGHT);
  private lowerCount = 0;

  /**
   * Per level l >= 1, the replaced children of level l-1 as they sat before level l took in any
   * neighbour: from child fromOff of fromNode to child toOff of toNode.
   */
  private readonly fromNode = new Int32Array(MAX_HEIGHT);
  private readonly fromOff = new Int32Array(MAX_HEIGHT);
  private readonly toNode = new Int32Array(MAX_HEIGHT);
  private readonly toOff = new Int32Array(MAX_HEIGHT);

  /** Replaced nodes of two adjacent levels while retiring. */
  private runA: Int32Array = new Int32Array(64);
  private runB: Int32Array = new Int32Array(64);

  /** The tree's shape as preallocate reads it. */
  private readonly shape: TreeNow = { height: 0, rootCount: 0, entries: 0 };

  constructor(
    private readonly views: NodeViews,
    private readonly header: Int32Array,
    private readonly arena: Arena,
    private readonly reclaimer: Reclaimer,
  ) {
    this.pool = new NodePool(arena);
    this.L = new Path(views);
    this.R = new Path(views);
  }

  /**
   * Reserves nodes for the next `stores` stores (reserve.ts); -ENOMEM (reserve unchanged) when
   * the arena cannot hold them. Reads the tree's shape without the writer lock: exact when the
   * caller holds it or no other CPU writes, otherwise only a hint (a store then may allocate).
   */
  preallocate(stores: number): number {
    const root = this.header[ROOT];
    const shape = this.shape;
    shape.entries = Math.max(0, this.header[COUNT]);
    if (root === 0) {
      shape.height = 0;
      shape.rootCount = 0;
    } else {
      // Clamped: without the lock the root may have been replaced and its record reused.
      shape.height = Math.min(this.levelOf(root) + 1, MAX_HEIGHT);
      shape.rootCount = Math.min(this.countOf(root), LEAF_SLOTS);
    }
    if (stores <= 2) {
      // The common commit (one or two stores): the reserve left by the last refill usually covers
      // the plain bound of reserve.ts (each store at most MAX_SPLIT nodes per level, a level more
      // per store, a root per store); then the fill would change nothing (the reserve is neither
      // short nor far enough above the need to be trimmed), so the exact bound is not computed.
      const bound = stores * (MAX_SPLIT * (shape.height + stores) + 1);
      const have = this.pool.size;
      if (have >= bound && have <= bound + PLAIN_BOUND_SLACK) return 0;
    }
    const limit = this.arena.maxCapacity;
    const need = reserveForStores(stores, shape, limit);
    return need <= limit && this.pool.fill(need) ? 0 : -ENOMEM;
  }

  height(): number {
    const root = this.header[ROOT];
    return root === 0 ? 0 : this.levelOf(root) + 1;
  }

  /** Stores `value` over [first, last] (0 erases). Arguments are valid; the writer lock is held. */
  store(first: number, last: number, value: number): number {
    const root = this.header[ROOT];
    if (root === 0) return value === 0 ? 0 : this.storeIntoEmpty(first, last, value);
    this.top = this.levelOf(root);
    this.L.descend(root, this.top, 0, MAX_INDEX, first);
    if (last <= this.L.max[0]) {
      this.shareLeafPath();
      const k = this.L.off[0];
      const p = this.L.node[0] * NODE_F64 + PIVOTS;
      const f64 = this.views.f64;
      this.R.off[0] = k === LEAF_SLOTS - 1 || f64[p + k] >= last ? k : leafSlotOf(f64, p, last);
    } else {
      this.R.descend(root, this.top, 0, MAX_INDEX, last);
      this.rAbovePending = false;
    }
    return this.storeWalked(first, last, value);
  }

  /** Like store, but -EEXIST when any index of [first, last] holds an entry. */
  insert(first: number, last: number, value: number): number {
    const root = this.header[ROOT];
    if (root === 0) return this.storeIntoEmpty(first, last, value);
    this.top = this.levelOf(root);
    this.L.descend(root, this.top, 0, MAX_INDEX, first);
    const leaf = this.L.node[0];
    const k = this.L.off[0];
    if (this.valueAt(leaf, k) !== 0 || this.slotLast(this.L, k) < last) return -EEXIST;
    this.shareLeafPath();
    return this.storeWalked(first, last, value);
  }

  /** Erases the entry holding `index`; returns its value (0 if a gap) or -ENOMEM. */
  erase(index: number): number {
    const root = this.header[ROOT];
    if (root === 0) return 0;
    this.top = this.levelOf(root);
    this.L.descend(root, this.top, 0, MAX_INDEX, index);
    const k = this.L.off[0];
    const value = this.valueAt(this.L.node[0], k);
    if (value === 0) return 0;
    this.shareLeafPath();
    const ret = this.storeWalked(this.slotFirst(this.L, k), this.slotLast(this.L, k), 0);
    return ret < 0 ? ret : value;
  }

  /** Retires every node (the tree must be quiescent or its readers covered by the reclaimer). */
  destroy(): void {
    const root = this.header[ROOT];
    if (root === 0) return;
    this.top = this.levelOf(root);
    this.L.descend(root, this.top, 0, MAX_INDEX, 0);
    this.R.descend(root, this.top, 0, MAX_INDEX, MAX_INDEX);
    this.rAbovePending = false;
    for (let level = 1; level <= this.top; level++) this.markBounds(level);
    Atomics.store(this.header, ROOT, 0);
    this.retireRuns(this.top);
    this.header[COUNT] = 0;
    this.bumpSeq();
  }

  /**
   * SEQ + 1 after a change that retired nodes. Only the writer (holding the tree's writer lock)
   * changes SEQ: a plain load and one atomic store, which publishes it as the add did.
   */
  private bumpSeq(): void {
    Atomics.store(this.header, SEQ, this.header[SEQ] + 1);
  }

  // ---- the store, once L and R point at the leaves holding first and last ----

  private storeWalked(first: number, last: number, value: number): number {
    this.entriesAdded = 0;
    const oneLeaf = this.L.node[0] === this.R.node[0];
    if (oneLeaf && this.L.off[0] === this.R.off[0] && this.storeInPlace(first, last, value)) return 0;
    this.composeLeaf(first, last, value);
    if (oneLeaf && this.fitsTheLeaf()) return this.replaceLeaf();
    if (this.rAbovePending) {
      this.R.copyFrom(this.L, 1, this.top);
      this.rAbovePending = false;
    }
    // The hint of the right sibling that takes over the leaf's trailing gap, or -1.
    let siblingHint = -1;
    if (this.cVal[this.n - 1] === 0 && this.R.max[0] !== MAX_INDEX) {
      if (oneLeaf) siblingHint = this.handOverEndGap();
      if (siblingHint < 0) {
        this.R.moveRight(0);
        this.appendNode(0, this.R.node[0], this.R.max[0]);
      }
    }
    if (this.n < LEAF_MIN && this.top > 0) this.fixUnderflow(0);
    if (this.n === 1 && this.cVal[0] === 0) {
      for (let above = 1; above <= this.top; above++) this.markBounds(above);
      Atomics.store(this.header, ROOT, 0);
      this.finish(this.top);
      return 0;
    }
    if (!this.buildLevel(0, this.L.min[0])) return this.fail();
    let level = 0;
    for (;;) {
      if (level === this.top) {
        if (this.k > 1) {
          if (level + 1 >= MAX_HEIGHT) throw new Error('maple: tree too tall');
          this.composeFromNew();
          if (!this.buildLevel(level + 1, 0)) return this.fail();
        }
        Atomics.store(this.header, ROOT, this.newH[0]);
        break;
      }
      // One node in place of one, over the same range: the parent's pivots still hold.
      if (this.k === 1 && this.L.node[level] === this.R.node[level] && this.newMax[0] === this.R.max[level]) {
        this.publishChild(level, this.newH[0], this.newGap[0]);
        break;
      }
      level++;
      this.composeInternal(level);
      if (level === 1 && siblingHint >= 0) this.cGap[this.chgLast + 1] = siblingHint;
      if (this.n < INTERNAL_MIN && level < this.top) this.fixUnderflow(level);
      if (this.n === 1) {
        this.assertWholeLevel(level);
        for (let above = level + 1; above <= this.top; above++) this.markBounds(above);
        Atomics.store(this.header, ROOT, this.cVal[0]);
        level = this.top;
        break;
      }
      if (!this.buildLevel(level, 0)) return this.fail();
    }
    this.pool.commit();
    this.finish(level);
    return 0;
  }

  /**
   * Whether the content of a store inside one leaf makes one valid leaf in its place (or, at a
   * root leaf, the single gap of an emptied tree): not over full, not under the fill minimum
   * unless it is the root, and ending with an entry unless it is the rightmost leaf.
   */
  private fitsTheLeaf(): boolean {
    const n = this.n;
    if (n > LEAF_SLOTS) return false;
    if (this.cVal[n - 1] === 0 && this.R.max[0] !== MAX_INDEX) return false;
    return this.top === 0 || n >= LEAF_MIN;
  }

  /** The content becomes one new leaf (none for a single gap), published in place of the old one. */
  private replaceLeaf(): number {
    const old = this.L.node[0];
    if (this.n === 1 && this.cVal[0] === 0) {
      Atomics.store(this.header, ROOT, 0);
    } else {
      const leaf = this.pool.take();
      if (leaf === 0) return this.fail();
      const hint = writeLeaf(this.views, leaf, this.cMax, this.cVal, 0, this.n, this.L.min[0]);
      if (this.top === 0) Atomics.store(this.header, ROOT, leaf);
      else this.publishChild(0, leaf, hint);
      this.pool.commit();
    }
    this.retireNode(old);
    this.header[COUNT] += this.leafDelta;
    this.bumpSeq();
    return 0;
  }

  /**
   * A store inside one leaf left it ending with a gap (it erased the leaf's last entry). When the
   * leaf's right sibling under the same parent starts with a gap, that gap simply grows down to
   * take in the trailing one: the sibling keeps its record (its minimum comes from the parent's
   * pivot), the leaf is rebuilt without its last slot, and the parent with the moved pivot.
   * Drops the trailing slot from the content and returns the sibling's new hint, or -1 (content
   * unchanged) when the sibling is elsewhere, starts with an entry, or the leaf would underflow.
   */
  private handOverEndGap(): number {
    const parent = this.L.node[1];
    const off = this.L.off[1];
    const n = this.n;
    if (off === this.countOf(parent) - 1 || n - 1 < LEAF_MIN || n - 1 > LEAF_SLOTS) return -1;
    const sibling = this.childAt(parent, off + 1);
    if (this.valueAt(sibling, 0) !== 0) return -1;
    const siblingFirstLast = this.views.f64[sibling * NODE_F64 + PIVOTS];
    this.n = n - 1;
    return Math.max(this.hintAt(parent, off + 1), gapHint(siblingFirstLast - this.cMax[n - 2]));
  }

  /**
   * R := L at the leaf level (the caller sets R.off[0]); R's levels above are copied only when
   * a store goes past one leaf.
   */
  private shareLeafPath(): void {
    this.R.copyFrom(this.L, 0, 0);
    this.rAbovePending = this.top > 0;
  }

  /** One-word changes of a single slot holding exactly [first, last]; false if not applicable. */
  private storeInPlace(first: number, last: number, value: number): boolean {
    const L = this.L;
    const leaf = L.node[0];
    const k = L.off[0];
    const f64 = this.views.f64;
    const i32 = this.views.i32;
    const p = leaf * NODE_F64 + PIVOTS;
    const count = i32[leaf * NODE_I32 + META] & COUNT_MASK;
    if ((k === 0 ? L.min[0] : f64[p + k - 1] + 1) !== first) return false;
    if ((k === count - 1 ? L.max[0] : f64[p + k]) !== last) return false;
    const at = leaf * NODE_I32 + VALUES + k;
    const old = i32[at];
    if (old === value) return true;
    if (old !== 0 && value !== 0) {
      Atomics.store(i32, at, value);
      return true;
    }
    if (value === 0) {
      const leftIsEntry = k === 0 || i32[at - 1] !== 0;
      const rightIsEntry = k === count - 1 ? L.max[0] === MAX_INDEX : i32[at + 1] !== 0;
      if (!leftIsEntry || !rightIsEntry) return false;
    }
    if (this.top > 0) this.prepareHints(1, gapHint(this.leafGapWith(leaf, count, k, value)));
    Atomics.store(i32, at, value);
    this.finishHints();
    this.header[COUNT] += value === 0 ? -1 : 1;
    return true;
  }

  private storeIntoEmpty(first: number, last: number, value: number): number {
    this.n = 0;
    if (first > 0) this.pushSlot(first - 1, 0);
    this.pushSlot(last, value);
    this.chgFirst = this.chgLast = this.n - 1;
    if (last < MAX_INDEX) this.pushSlot(MAX_INDEX, 0);
    const leaf = this.pool.take();
    if (leaf === 0) return this.fail();
    writeLeaf(this.views, leaf, this.cMax, this.cVal, 0, this.n, 0);
    this.pool.commit();
    Atomics.store(this.header, ROOT, leaf);
    this.header[COUNT] = 1;
    this.bumpSeq();
    return 0;
  }

  private fail(): number {
    this.pool.rollback();
    return -ENOMEM;
  }

  /** After publishing: retire the replaced runs from `level` down, update count and sequence. */
  private finish(level: number): void {
    const removed = this.retireRuns(level);
    this.header[COUNT] += this.entriesAdded - removed;
    this.entriesAdded = 0;
    this.bumpSeq();
  }

  // ---- content ----

  /**
   * Leaf content: the slots around [first, last] with the new entry in between. When L and R
   * are one leaf, also the change in its entry count (leafDelta). Slots copied as they are need
   * no merging (no two slots of a leaf are adjacent gaps); the pieces around the change do.
   */
  private composeLeaf(first: number, last: number, value: number): void {
    const f64 = this.views.f64;
    const i32 = this.views.i32;
    const cMax = this.cMax;
    const cVal = this.cVal;
    const left = this.L.node[0];
    const kL = this.L.off[0];
    const lp = left * NODE_F64 + PIVOTS;
    const lv = left * NODE_I32 + VALUES;
    for (let i = 0; i < kL; i++) {
      cMax[i] = f64[lp + i];
      cVal[i] = i32[lv + i];
    }
    this.n = kL;
    const leftValue = i32[lv + kL];
    const leftCut = (kL === 0 ? this.L.min[0] : f64[lp + kL - 1] + 1) < first;
    if (leftCut) this.pushSlot(first - 1, leftValue);
    this.pushSlot(last, value);
    this.chgFirst = this.chgLast = this.n - 1;
    const right = this.R.node[0];
    const kR = this.R.off[0];
    const rp = right * NODE_F64 + PIVOTS;
    const rv = right * NODE_I32 + VALUES;
    const count = i32[right * NODE_I32 + META] & COUNT_MASK;
    const rightValue = i32[rv + kR];
    const end = kR === count - 1 ? this.R.max[0] : f64[rp + kR];
    const rightCut = end > last;
    if (rightCut) this.pushSlot(end, rightValue);
    if (kR + 1 < count)
      this.pushSlot(kR + 1 === count - 1 ? this.R.max[0] : f64[rp + kR + 1], i32[rv + kR + 1]);
    let n = this.n;
    for (let i = kR + 2; i < count; i++) {
      cMax[n] = i === count - 1 ? this.R.max[0] : f64[rp + i];
      cVal[n++] = i32[rv + i];
    }
    this.n = n;
    if (left !== right) return;
    let delta = value !== 0 ? 1 : 0;
    for (let i = kL; i <= kR; i++) if (i32[lv + i] !== 0) delta--;
    if (leftCut && leftValue !== 0) delta++;
    if (rightCut && rightValue !== 0) delta++;
    this.leafDelta = delta;
  }

  /** Internal content at `level`: L's children before the run, the new nodes, R's after it. */
  private composeInternal(level: number): void {
    const L = this.L;
    const R = this.R;
    this.markBounds(level);
    this.n = 0;
    let node = L.node[level];
    for (let i = 0; i < L.off[level]; i++) {
      this.pushChild(
        this.views.f64[node * NODE_F64 + PIVOTS + i],
        this.childAt(node, i),
        this.hintAt(node, i),
      );
    }
    this.chgFirst = this.n;
    for (let j = 0; j < this.k; j++) this.pushChild(this.newMax[j], this.newH[j], this.newGap[j]);
    this.chgLast = this.n - 1;
    node = R.node[level];
    const count = this.countOf(node);
    for (let i = R.off[level] + 1; i < count; i++) {
      const max = i === count - 1 ? R.max[level] : this.views.f64[node * NODE_F64 + PIVOTS + i];
      this.pushChild(max, this.childAt(node, i), this.hintAt(node, i));
    }
  }

  /** Remembers which children of level `level` the run below replaces (before any take-in). */
  private markBounds(level: number): void {
    this.fromNode[level] = this.L.node[level];
    this.fromOff[level] = this.L.off[level];
    this.toNode[level] = this.R.node[level];
    this.toOff[level] = this.R.off[level];
  }

  /** Content of a new root: the nodes the old root split into. */
  private composeFromNew(): void {
    this.n = 0;
    this.chgFirst = 0;
    for (let j = 0; j < this.k; j++) this.pushChild(this.newMax[j], this.newH[j], this.newGap[j]);
    this.chgLast = this.n - 1;
  }

  /** Appends a leaf slot, merging it into the previous slot when both are gaps. */
  private pushSlot(max: number, value: number): void {
    const n = this.n;
    if (value === 0 && n > 0 && this.cVal[n - 1] === 0) {
      this.cMax[n - 1] = max;
      return;
    }
    if (n === CONTENT) throw new Error('maple: leaf content overflow');
    this.cMax[n] = max;
    this.cVal[n] = value;
    this.n = n + 1;
  }

  private pushChild(max: number, child: number, hint: number): void {
    const n = this.n;
    if (n === CONTENT) throw new Error('maple: internal content overflow');
    this.cMax[n] = max;
    this.cVal[n] = child;
    this.cGap[n] = hint;
    this.n = n + 1;
  }

  /** Too few slots: take in the left neighbour at `level`, or the right one if there is none. */
  private fixUnderflow(level: number): void {
    if (this.L.min[level] > 0) {
      this.L.moveLeft(level);
      this.prependNode(level, this.L.node[level], this.L.max[level]);
    } else if (this.R.max[level] < MAX_INDEX) {
      this.R.moveRight(level);
      this.appendNode(level, this.R.node[level], this.R.max[level]);
    }
  }

  /** Appends every slot of `node` (covering up to `max`) to the content. */
  private appendNode(level: number, node: number, max: number): void {
    const count = this.countOf(node);
    const p = node * NODE_F64 + PIVOTS;
    for (let i = 0; i < count; i++) {
      const slotMax = i === count - 1 ? max : this.views.f64[p + i];
      if (level === 0) this.pushSlot(slotMax, this.valueAt(node, i));
      else this.pushChild(slotMax, this.childAt(node, i), this.hintAt(node, i));
    }
  }

  /** Puts every slot of `node` (covering up to `max`) before the content. */
  private prependNode(level: number, node: number, max: number): void {
    const count = this.countOf(node);
    const n = this.n;
    if (n + count > CONTENT) throw new Error('maple: content overflow');
    for (let i = n - 1; i >= 0; i--) {
      this.cMax[i + count] = this.cMax[i];
      this.cVal[i + count] = this.cVal[i];
      this.cGap[i + count] = this.cGap[i];
    }
    const p = node * NODE_F64 + PIVOTS;
    for (let i = 0; i < count; i++) {
      this.cMax[i] = i === count - 1 ? max : this.views.f64[p + i];
      if (level === 0) {
        this.cVal[i] = this.valueAt(node, i);
      } else {
        this.cVal[i] = this.childAt(node, i);
        this.cGap[i] = this.hintAt(node, i);
      }
    }
    if (level === 0 && this.cVal[count - 1] === 0 && this.cVal[count] === 0) {
      throw new Error('maple: a leaf other than the last ends with a gap');
    }
    this.n = n + count;
    this.chgFirst += count;
    this.chgLast += count;
  }

  // ---- cutting the content into nodes ----

  /**
   * Cuts the content into 1-3 nodes (sizes): evenly, or, when the change sits at one end of the
   * content (sequential inserts), packing the nodes away from the change so that they stay full.
   * A leaf boundary never falls right after a gap.
   */
  private split(level: number): number {
    const leaf = level === 0;
    const cap = leaf ? LEAF_SLOTS : INTERNAL_SLOTS;
    const minFill = leaf ? LEAF_MIN : INTERNAL_MIN;
    const n = this.n;
    const sizes = this.sizes;
    if (n <= cap) {
      sizes[0] = n;
      return 1;
    }
    const fill = leaf ? cap - 1 : cap;
    const k = Math.ceil(n / fill);
    if (k > MAX_SPLIT) throw new Error(`maple: content of ${n} slots needs ${k} nodes`);
    if (this.chgLast >= n - 2) {
      for (let j = 0; j < k - 1; j++) sizes[j] = fill;
      sizes[k - 1] = n - fill * (k - 1);
      if (sizes[k - 1] < minFill) {
        sizes[k - 2] -= minFill - sizes[k - 1];
        sizes[k - 1] = minFill;
      }
    } else if (this.chgFirst <= 1) {
      for (let j = 1; j < k; j++) sizes[j] = fill;
      sizes[0] = n - fill * (k - 1);
      if (sizes[0] < minFill) {
        sizes[1] -= minFill - sizes[0];
        sizes[0] = minFill;
      }
    } else {
      const base = Math.floor(n / k);
      for (let j = 0; j < k; j++) sizes[j] = base + (j < n % k ? 1 : 0);
    }
    if (leaf) this.keepGapsInside(k);
    for (let j = 0; j < k; j++) {
      if (sizes[j] < minFill || sizes[j] > cap) {
        throw new Error(`maple: split of ${n} slots gave a node of ${sizes[j]}`);
      }
    }
    return k;
  }

  /** Moves each leaf boundary that falls right after a gap by one slot, into the larger node. */
  private keepGapsInside(k: number): void {
    const sizes = this.sizes;
    let boundary = 0;
    for (let j = 0; j < k - 1; j++) {
      boundary += sizes[j];
      if (this.cVal[boundary - 1] !== 0) continue;
      if (sizes[j] > sizes[j + 1]) {
        sizes[j]--;
        sizes[j + 1]++;
        boundary--;
      } else {
        sizes[j]++;
        sizes[j + 1]--;
        boundary++;
      }
    }
  }

  /** Builds the content's nodes at `level` (the first starting at `min`); false if out of nodes. */
  private buildLevel(level: number, min: number): boolean {
    const k = this.split(level);
    let start = 0;
    for (let j = 0; j < k; j++) {
      const size = this.sizes[j];
      const node = this.pool.take();
      if (node === 0) return false;
      if (level === 0) {
        this.newGap[j] = writeLeaf(this.views, node, this.cMax, this.cVal, start, size, min);
        for (let i = start; i < start + size; i++) if (this.cVal[i] !== 0) this.entriesAdded++;
      } else {
        this.newGap[j] = writeInternal(this.views, node, level, this.cMax, this.cVal, this.cGap, start, size);
      }
      this.newH[j] = node;
      this.newMax[j] = this.cMax[start + size - 1];
      min = this.newMax[j] + 1;
      start += size;
    }
    this.k = k;
    return true;
  }

  // ---- publishing ----

  /** Replaces node L.node[level] by `node` in its parent with one atomic store. */
  private publishChild(level: number, node: number, hint: number): void {
    const parent = this.L.node[level + 1];
    this.prepareHints(level + 1, hint);
    Atomics.store(this.views.i32, parent * NODE_I32 + childWord(this.L.off[level + 1]), node);
    this.finishHints();
  }

  /**
   * The hint of the path child of L.node[level] becomes `hint`; propagates up the path. Raises
   * are written now, lowerings are remembered for finishHints (after the publishing store). A
   * node's largest hint is the hint its parent keeps for it, so only a lowering of a node's
   * largest hint (or a change at the root) scans the node's other hints.
   */
  private prepareHints(level: number, hint: number): void {
    const f32 = this.views.f32;
    this.lowerCount = 0;
    for (; level <= this.top; level++) {
      const at = this.hintWord(level);
      const old = f32[at];
      if (old === hint) return;
      const oldMax = level < this.top ? f32[this.hintWord(level + 1)] : this.largestHint(level, -1);
      let newMax = Math.max(hint, oldMax);
      if (hint > old) {
        f32[at] = hint;
      } else {
        this.lowerAt[this.lowerCount] = at;
        this.lowerTo[this.lowerCount++] = hint;
        if (old === oldMax) newMax = Math.max(hint, this.largestHint(level, at));
      }
      if (newMax === oldMax) return;
      hint = newMax;
    }
  }

  /** Float32 word of the hint that L.node[level] keeps for its path child. */
  private hintWord(level: number): number {
    return this.L.node[level] * NODE_I32 + GAPS + this.L.off[level];
  }

  /** Largest hint of L.node[level], leaving out the word `skip`. */
  private largestHint(level: number, skip: number): number {
    const f32 = this.views.f32;
    const node = this.L.node[level];
    const base = node * NODE_I32 + GAPS;
    const end = base + this.countOf(node);
    let largest = 0;
    for (let i = base; i < end; i++) if (i !== skip && f32[i] > largest) largest = f32[i];
    return largest;
  }

  private finishHints(): void {
    for (let i = 0; i < this.lowerCount; i++) this.views.f32[this.lowerAt[i]] = this.lowerTo[i];
    this.lowerCount = 0;
  }

  /**
   * Marks dead and retires the replaced run of `level` and, level by level below it, the replaced
   * children of each run (children of a neighbour that was taken in whole are kept); returns the
   * entries the replaced leaves held.
   */
  private retireRuns(level: number): number {
    let run = this.runA;
    let next = this.runB;
    run[0] = this.L.node[level];
    let runLength = 1;
    for (; level > 0; level--) {
      let nextLength = 0;
      let inside = false;
      for (let i = 0; i < runLength; i++) {
        const node = run[i];
        let from = 0;
        let to = this.countOf(node) - 1;
        if (node === this.fromNode[level]) {
          inside = true;
          from = this.fromOff[level];
        }
        if (inside) {
          const last = node === this.toNode[level];
          if (last) to = this.toOff[level];
          if (nextLength + to - from + 1 > next.length) next = this.growRun(next, nextLength + to - from + 1);
          for (let c = from; c <= to; c++) next[nextLength++] = this.childAt(node, c);
          if (last) inside = false;
        }
        this.retireNode(node);
      }
      [run, next] = [next, run];
      runLength = nextLength;
    }
    let removed = 0;
    for (let i = 0; i < runLength; i++) {
      const leaf = run[i];
      const count = this.countOf(leaf);
      for (let s = 0; s < count; s++) if (this.valueAt(leaf, s) !== 0) removed++;
      this.retireNode(leaf);
    }
    this.runA = run;
    this.runB = next;
    return removed;
  }

  private retireNode(node: number): void {
    this.views.i32[node * NODE_I32 + META] |= DEAD;
    this.reclaimer.deferFree(this.arena, node);
  }

  private growRun(run: Int32Array, need: number): Int32Array {
    const bigger = new Int32Array(Math.max(need, run.length * 2));
    bigger.set(run);
    return bigger;
  }

  private assertWholeLevel(level: number): void {
    if (this.L.min[level] !== 0 || this.R.max[level] !== MAX_INDEX) {
      throw new Error(`maple: single-child content at level ${level} is not the whole level`);
    }
  }

  // ---- node accessors ----

  private levelOf(node: number): number {
    return (this.views.i32[node * NODE_I32 + META] & LEVEL_MASK) >> LEVEL_SHIFT;
  }

  private countOf(node: number): number {
    return this.views.i32[node * NODE_I32 + META] & COUNT_MASK;
  }

  private valueAt(leaf: number, slot: number): number {
    return this.views.i32[leaf * NODE_I32 + VALUES + slot];
  }

  private childAt(node: number, slot: number): number {
    return this.views.i32[node * NODE_I32 + childWord(slot)];
  }

  private hintAt(node: number, slot: number): number {
    return this.views.f32[node * NODE_I32 + GAPS + slot];
  }

  private slotFirst(path: Path, k: number): number {
    return k === 0 ? path.min[0] : this.views.f64[path.node[0] * NODE_F64 + PIVOTS + k - 1] + 1;
  }

  private slotLast(path: Path, k: number): number {
    return k === this.countOf(path.node[0]) - 1
      ? path.max[0]
      : this.views.f64[path.node[0] * NODE_F64 + PIVOTS + k];
  }

  /** Largest gap of `leaf` (L's leaf, of `count` slots) if slot k held `value`. */
  private leafGapWith(leaf: number, count: number, k: number, value: number): number {
    const f64 = this.views.f64;
    const i32 = this.views.i32;
    const p = leaf * NODE_F64 + PIVOTS;
    const v = leaf * NODE_I32 + VALUES;
    let gap = 0;
    let min = this.L.min[0];
    for (let i = 0; i < count; i++) {
      const max = i === count - 1 ? this.L.max[0] : f64[p + i];
      if ((i === k ? value : i32[v + i]) === 0 && max - min + 1 > gap) gap = max - min + 1;
      min = max + 1;
    }
    return gap;
  }
}
