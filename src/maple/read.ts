/**
 * The read side: lock-free walks from the root. Readers write no shared memory: they load the
 * root handle with one Atomics.load and then use plain loads (published nodes are immutable apart
 * from single-word atomic replacements, see layout.ts). A reader that meets a node marked DEAD
 * re-walks from the root. Callers run reads inside an RCU read section (or hold the writer lock),
 * which keeps every node they can reach from being reused under them.
 */
import type { RangeBatch, RangeOut } from './api.js';
import * as headerExports from './header.js';
import type { NodeViews } from './layout.js';
import * as layoutExports from './layout.js';

// Module-local copies of the layout's bindings (hot paths: see "Imported bindings" in layout.ts).
const {
  COUNT_MASK,
  childSlotOf,
  childWord,
  DEAD,
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
const { RESTART_LIMIT, ROOT, SEQ } = headerExports;

/**
 * The entry or gap holding `index`: its value (0 for a gap), its range in `out`. The walk keeps
 * the positions of the pivots bounding its node, not their values, and updates them without a
 * branch (k is random at every level); the two bounds are read once, at the leaf.
 */
export function lookup(views: NodeViews, header: Int32Array, index: number, out: RangeOut): number {
  const f64 = views.f64;
  const i32 = views.i32;
  let restarts = 0;
  let node = Atomics.load(header, ROOT);
  // f64 positions of the pivots just below and at the current node's range (-1: index 0 / MAX_INDEX).
  let minAt = -1;
  let maxAt = -1;
  while (node !== 0) {
    const w = node * NODE_I32;
    const meta = i32[w + META];
    if ((meta & DEAD) !== 0) {
      if (++restarts > RESTART_LIMIT) throw new Error('maple: reader keeps meeting dead nodes');
      node = Atomics.load(header, ROOT);
      minAt = maxAt = -1;
      continue;
    }
    const p = node * NODE_F64 + PIVOTS;
    const last = (meta & COUNT_MASK) - 1;
    if ((meta & LEVEL_MASK) === 0) {
      // Loaded before the slot is known, so that the values' cache line is fetched together
      // with the pivots' lines instead of after them (one memory round trip less per lookup).
      const value0 = i32[w + VALUES];
      const k = leafSlotOf(f64, p, index);
      minAt += (p + k - 1 - minAt) & -(k > 0);
      maxAt += (p + k - maxAt) & -(k < last);
      const value = k === 0 ? value0 : i32[w + VALUES + k];
      out.first = minAt < 0 ? 0 : f64[minAt] + 1;
      out.last = maxAt < 0 ? MAX_INDEX : f64[maxAt];
      out.value = value;
      return value;
    }
    const k = childSlotOf(f64, p, index);
    minAt += (p + k - 1 - minAt) & -(k > 0);
    maxAt += (p + k - maxAt) & -(k < last);
    node = i32[w + childWord(k)];
  }
  out.first = 0;
  out.last = MAX_INDEX;
  out.value = 0;
  return 0;
}

/**
 * The leaf holding `index` (0 for an empty tree), its range written to range[0] (first) and
 * range[1] (last). Re-walks from the root past dead nodes, like `lookup`.
 */
function leafHolding(views: NodeViews, header: Int32Array, index: number, range: Float64Array): number {
  const f64 = views.f64;
  const i32 = views.i32;
  let restarts = 0;
  restart: for (;;) {
    let node = Atomics.load(header, ROOT);
    let min = 0;
    let max = MAX_INDEX;
    while (node !== 0) {
      const meta = i32[node * NODE_I32 + META];
      if ((meta & DEAD) !== 0) {
        if (++restarts > RESTART_LIMIT) throw new Error('maple: reader keeps meeting dead nodes');
        continue restart;
      }
      if ((meta & LEVEL_MASK) === 0) break;
      const p = node * NODE_F64 + PIVOTS;
      const k = childSlotOf(f64, p, index);
      if (k > 0) min = f64[p + k - 1] + 1;
      if (k < (meta & COUNT_MASK) - 1) max = f64[p + k];
      node = i32[node * NODE_I32 + childWord(k)];
    }
    range[0] = min;
    range[1] = max;
    return node;
  }
}

/**
 * The first entry ending at or after `index` and starting at or before `max` (its value, 0 if
 * none; `out` gets it). One descent: the entry is in the leaf holding `index`, since no leaf but
 * the rightmost ends with a gap (nor ever shows one at its end: a slot is emptied in place only
 * between two entries). `range` is scratch (2 slots).
 */
export function nextEntry(
  views: NodeViews,
  header: Int32Array,
  index: number,
  max: number,
  out: RangeOut,
  range: Float64Array,
): number {
  const f64 = views.f64;
  const i32 = views.i32;
  const leaf = leafHolding(views, header, index, range);
  if (leaf === 0) return 0;
  const p = leaf * NODE_F64 + PIVOTS;
  const v = leaf * NODE_I32 + VALUES;
  const count = i32[leaf * NODE_I32 + META] & COUNT_MASK;
  let k = leafSlotOf(f64, p, index);
  let first = k === 0 ? range[0] : f64[p + k - 1] + 1;
  for (; k < count; k++) {
    if (first > max) return 0;
    const last = k === count - 1 ? range[1] : f64[p + k];
    const value = i32[v + k];
    if (value !== 0) return found(out, first, last, value);
    first = last + 1;
  }
  if (range[1] !== MAX_INDEX) throw new Error(`maple: leaf ${leaf} ends with a gap before ${range[1]}`);
  return 0;
}

/**
 * The last entry starting at or before `index` and ending at or after `min` (mirror of
 * nextEntry); when the leaf starts with the gap holding `index`, the entry ends the leaf before.
 */
export function prevEntry(
  views: NodeViews,
  header: Int32Array,
  index: number,
  min: number,
  out: RangeOut,
  range: Float64Array,
): number {
  const f64 = views.f64;
  const i32 = views.i32;
  for (let at = index; ; ) {
    const leaf = leafHolding(views, header, at, range);
    if (leaf === 0) return 0;
    const p = leaf * NODE_F64 + PIVOTS;
    const v = leaf * NODE_I32 + VALUES;
    const count = i32[leaf * NODE_I32 + META] & COUNT_MASK;
    let k = leafSlotOf(f64, p, at);
    let last = k === count - 1 ? range[1] : f64[p + k];
    for (; k >= 0; k--) {
      if (last < min) return 0;
      const first = k === 0 ? range[0] : f64[p + k - 1] + 1;
      const value = i32[v + k];
      if (value !== 0) return found(out, first, last, value);
      last = first - 1;
    }
    if (range[0] === 0) return 0;
    at = range[0] - 1;
  }
}

/**
 * State of `scanEntries` on one tree object (each CPU has its own): the path of the walk, levels
 * 1 (the leaves' parents) to `top`, node[l] covering up to max[l] with child off[l] taken; and
 * where the last call stopped, so that the next call from there goes on without a descent.
 */
export class ScanPath {
  readonly node = new Int32Array(MAX_HEIGHT);
  readonly off = new Int32Array(MAX_HEIGHT);
  readonly max = new Float64Array(MAX_HEIGHT);
  top = 0;
  /** The leaf the last call stopped in, the slot it stopped before (may be its count), its range end. */
  leaf = 0;
  slot = 0;
  hi = 0;
  /** Index that slot starts at (-1: nothing to resume), and SEQ read before the path was checked. */
  resume = -1;
  seq = 0;
}

/**
 * In-order walk for `nextBatch`: the entries with last >= index and first <= max copied into
 * `batch` (up to `cap`); returns how many. One descent to the leaf holding `index`, then leaf to
 * leaf: at the end of a leaf it climbs its path to the nearest ancestor with a next child and
 * descends that child's left edge (O(1) nodes per leaf amortised, no per-entry descent). A call
 * that fills the batch leaves its position in `path`; the next call from the index after the last
 * entry resumes there instead of descending, if SEQ has not moved.
 *
 * Lock-free like `lookup`: every node entered, and every ancestor climbed through, is checked for
 * DEAD. A published node's pivots never change (a replaced child covers the same range), so the
 * ranges read along the path stay right while its nodes are live; a leaf's values may be replaced
 * in place, one word at a time. On a dead node the walk re-descends from the root at the position
 * it reached (the start of the slot it was about to read): entries already copied stay (each
 * existed when read), and the rest come from the current tree. An entry found after such a
 * re-descent may start before that position (it was stored meanwhile) but always ends after it.
 *
 * Resuming across read sections (as the cursor does): every node of the kept path was seen live
 * in a call that read SEQ = path.seq first. A node is reused only after the write that retired
 * it bumped SEQ, so if SEQ still reads path.seq none has been reused; one retired meanwhile can be
 * freed during this call only if this CPU acknowledged the grace period started after it was
 * marked DEAD, so its mark is visible here, and each kept node is checked for DEAD before use.
 */
export function scanEntries(
  views: NodeViews,
  header: Int32Array,
  index: number,
  max: number,
  batch: RangeBatch,
  cap: number,
  path: ScanPath,
): number {
  const f64 = views.f64;
  const i32 = views.i32;
  const firsts = batch.firsts;
  const lasts = batch.lasts;
  const values = batch.values;
  const pathNode = path.node;
  const pathOff = path.off;
  const pathMax = path.max;
  const seq = Atomics.load(header, SEQ);
  let resume = path.resume === index && path.seq === seq;
  path.resume = -1;
  let n = 0;
  // The start of the next slot to read.
  let pos = index;
  restart: for (let restarts = 0; ; restarts++) {
    if (restarts > RESTART_LIMIT) throw new Error('maple: reader keeps meeting dead nodes');
    let leaf: number;
    let meta: number;
    let top: number;
    let hi: number;
    let k: number;
    let first: number;
    if (resume) {
      resume = false;
      leaf = path.leaf;
      meta = i32[leaf * NODE_I32 + META];
      if ((meta & DEAD) !== 0) continue;
      top = path.top;
      hi = path.hi;
      k = path.slot;
      first = pos;
    } else {
      leaf = Atomics.load(header, ROOT);
      if (leaf === 0) return n;
      meta = i32[leaf * NODE_I32 + META];
      if ((meta & DEAD) !== 0) continue;
      top = (meta & LEVEL_MASK) >> LEVEL_SHIFT;
      // The leaf's range [lo, hi].
      let lo = 0;
      hi = MAX_INDEX;
      for (let level = top; level > 0; level--) {
        const p = leaf * NODE_F64 + PIVOTS;
        const c = childSlotOf(f64, p, pos);
        pathNode[level] = leaf;
        pathOff[level] = c;
        pathMax[level] = hi;
        if (c > 0) lo = f64[p + c - 1] + 1;
        if (c < (meta & COUNT_MASK) - 1) hi = f64[p + c];
        leaf = i32[leaf * NODE_I32 + childWord(c)];
        meta = i32[leaf * NODE_I32 + META];
        if ((meta & DEAD) !== 0) continue restart;
      }
      k = leafSlotOf(f64, leaf * NODE_F64 + PIVOTS, pos);
      first = k === 0 ? lo : f64[leaf * NODE_F64 + PIVOTS + k - 1] + 1;
    }
    for (;;) {
      // Slots k.. of `leaf`, the last one ending at hi.
      const p = leaf * NODE_F64 + PIVOTS;
      const v = leaf * NODE_I32 + VALUES;
      const end = (meta & COUNT_MASK) - 1;
      if (k > end) {
        // Resumed past the leaf's last slot.
      } else if (hi <= max && end - k < cap - n) {
        // The rest of the leaf fits in the batch and the window: no checks per slot.
        for (; k < end; k++) {
          const last = f64[p + k];
          const value = i32[v + k];
          if (value !== 0) {
            firsts[n] = first;
            lasts[n] = last;
            values[n] = value;
            n++;
          }
          first = last + 1;
        }
        const value = i32[v + end];
        if (value !== 0) {
          firsts[n] = first;
          lasts[n] = hi;
          values[n] = value;
          if (++n === cap) return stop(path, top, leaf, end + 1, hi, hi + 1, seq, n);
        }
      } else {
        for (; k <= end; k++) {
          if (first > max) return n;
          const last = k === end ? hi : f64[p + k];
          const value = i32[v + k];
          if (value !== 0) {
            firsts[n] = first;
            lasts[n] = last;
            values[n] = value;
            if (++n === cap) return stop(path, top, leaf, k + 1, hi, last + 1, seq, n);
          }
          first = last + 1;
        }
      }
      if (hi === MAX_INDEX || hi >= max) return n;
      pos = hi + 1;
      // Climb to the nearest ancestor with a next child (none: the path is stale, re-descend).
      let level = 1;
      for (; level <= top; level++) {
        const m = i32[pathNode[level] * NODE_I32 + META];
        if ((m & DEAD) !== 0) continue restart;
        if (pathOff[level] + 1 < (m & COUNT_MASK)) break;
      }
      if (level > top) continue restart;
      pathOff[level]++;
      // Down its left edge.
      for (; level > 0; level--) {
        const parent = pathNode[level];
        const c = pathOff[level];
        const count = i32[parent * NODE_I32 + META] & COUNT_MASK;
        const child = i32[parent * NODE_I32 + childWord(c)];
        hi = c === count - 1 ? pathMax[level] : f64[parent * NODE_F64 + PIVOTS + c];
        meta = i32[child * NODE_I32 + META];
        if ((meta & DEAD) !== 0) continue restart;
        if (level > 1) {
          pathNode[level - 1] = child;
          pathOff[level - 1] = 0;
          pathMax[level - 1] = hi;
        } else leaf = child;
      }
      k = 0;
      first = pos;
    }
  }
}

/** A full batch: keeps where the walk stopped in `path` for the next call; returns n. */
function stop(
  path: ScanPath,
  top: number,
  leaf: number,
  slot: number,
  hi: number,
  resume: number,
  seq: number,
  n: number,
): number {
  path.top = top;
  path.leaf = leaf;
  path.slot = slot;
  path.hi = hi;
  path.resume = resume;
  path.seq = seq;
  return n;
}

function found(out: RangeOut, first: number, last: number, value: number): number {
  out.first = first;
  out.last = last;
  out.value = value;
  return value;
}

/**
 * A position in the tree: the path from the root to one leaf slot, so that stepping to the next
 * or previous slot costs O(1) amortised. Levels are numbered from the leaves (0) up to the root
 * (`top`); `node[l]` covers [min[l], max[l]] and `off[l]` is the slot taken in it.
 */
export class Walker {
  readonly node = new Int32Array(MAX_HEIGHT);
  readonly off = new Int32Array(MAX_HEIGHT);
  readonly min = new Float64Array(MAX_HEIGHT);
  readonly max = new Float64Array(MAX_HEIGHT);
  /** Root level of the walked path; -1 when the tree was empty. */
  top = -1;
  /** The current slot. */
  first = 0;
  last = MAX_INDEX;
  value = 0;

  constructor(
    private readonly views: NodeViews,
    private readonly header: Int32Array,
  ) {}

  /** Positions on the slot holding `index`. */
  seek(index: number): void {
    for (let restarts = 0; !this.trySeek(index); restarts++) {
      if (restarts > RESTART_LIMIT) throw new Error('maple: reader keeps meeting dead nodes');
    }
  }

  /**
   * Re-reads the current slot (its value may have been replaced in place); false (nothing read)
   * when its leaf is DEAD. A caller keeping the walker across read sections checks SEQ first:
   * the leaf may then have been retired (and freed during this section) but not reused.
   */
  reload(): boolean {
    if (this.top < 0) return true;
    if ((this.meta(this.node[0]) & DEAD) !== 0) return false;
    this.loadSlot();
    return true;
  }

  /** Moves to the next slot; false (and no move) at the end of the index space. */
  step(): boolean {
    if (this.last === MAX_INDEX) return false;
    const target = this.last + 1;
    const leaf = this.node[0];
    const meta = this.top < 0 ? DEAD : this.views.i32[leaf * NODE_I32 + META];
    const k = this.off[0] + 1;
    if ((meta & DEAD) === 0 && k < (meta & COUNT_MASK)) {
      this.off[0] = k;
      this.first = target;
      this.last = k === (meta & COUNT_MASK) - 1 ? this.max[0] : this.views.f64[leaf * NODE_F64 + PIVOTS + k];
      this.value = this.views.i32[leaf * NODE_I32 + VALUES + k];
      return true;
    }
    if (!this.tryClimb(true)) this.seek(target);
    return true;
  }

  /** Moves to the previous slot; false (and no move) at index 0. */
  stepBack(): boolean {
    if (this.first === 0) return false;
    const target = this.first - 1;
    const leaf = this.node[0];
    const meta = this.top < 0 ? DEAD : this.views.i32[leaf * NODE_I32 + META];
    const k = this.off[0] - 1;
    if ((meta & DEAD) === 0 && k >= 0) {
      this.off[0] = k;
      this.last = target;
      this.first = k === 0 ? this.min[0] : this.views.f64[leaf * NODE_F64 + PIVOTS + k - 1] + 1;
      this.value = this.views.i32[leaf * NODE_I32 + VALUES + k];
      return true;
    }
    if (!this.tryClimb(false)) this.seek(target);
    return true;
  }

  private meta(node: number): number {
    return this.views.i32[node * NODE_I32 + META];
  }

  private trySeek(index: number): boolean {
    let node = Atomics.load(this.header, ROOT);
    if (node === 0) {
      this.top = -1;
      this.first = 0;
      this.last = MAX_INDEX;
      this.value = 0;
      return true;
    }
    let min = 0;
    let max = MAX_INDEX;
    let meta = this.meta(node);
    this.top = (meta & LEVEL_MASK) >> LEVEL_SHIFT;
    for (let level = this.top; ; level--) {
      if ((meta & DEAD) !== 0) return false;
      this.node[level] = node;
      this.min[level] = min;
      this.max[level] = max;
      const f64 = this.views.f64;
      const p = node * NODE_F64 + PIVOTS;
      if (level === 0) {
        this.off[0] = leafSlotOf(f64, p, index);
        this.loadSlot();
        return true;
      }
      const k = childSlotOf(f64, p, index);
      this.off[level] = k;
      if (k > 0) min = f64[p + k - 1] + 1;
      if (k < (meta & COUNT_MASK) - 1) max = f64[p + k];
      node = this.views.i32[node * NODE_I32 + childWord(k)];
      meta = this.meta(node);
    }
  }

  /** Reads the current leaf slot's range and value. */
  private loadSlot(): void {
    const leaf = this.node[0];
    const k = this.off[0];
    const f64 = this.views.f64;
    const p = leaf * NODE_F64 + PIVOTS;
    const count = this.views.i32[leaf * NODE_I32 + META] & COUNT_MASK;
    this.first = k === 0 ? this.min[0] : f64[p + k - 1] + 1;
    this.last = k === count - 1 ? this.max[0] : f64[p + k];
    this.value = this.views.i32[leaf * NODE_I32 + VALUES + k];
  }

  /**
   * At the last (first) slot of the leaf: climbs to the nearest ancestor with a next (previous)
   * child and descends its edge. False when a node on the way is dead or the tree ends here.
   */
  private tryClimb(forward: boolean): boolean {
    if (this.top < 0 || (this.meta(this.node[0]) & DEAD) !== 0) return false;
    let level = 1;
    for (; level <= this.top; level++) {
      const meta = this.meta(this.node[level]);
      if ((meta & DEAD) !== 0) return false;
      if (forward ? this.off[level] + 1 < (meta & COUNT_MASK) : this.off[level] > 0) break;
    }
    if (level > this.top) return false;
    this.off[level] += forward ? 1 : -1;
    return this.descendEdge(level, forward);
  }

  /** From node[level] at off[level], descends along the first (or last) children to a leaf. */
  private descendEdge(level: number, leftmost: boolean): boolean {
    for (; level > 0; level--) {
      const parent = this.node[level];
      const k = this.off[level];
      const p = parent * NODE_F64 + PIVOTS;
      const count = this.views.i32[parent * NODE_I32 + META] & COUNT_MASK;
      const child = this.views.i32[parent * NODE_I32 + childWord(k)];
      this.min[level - 1] = k === 0 ? this.min[level] : this.views.f64[p + k - 1] + 1;
      this.max[level - 1] = k === count - 1 ? this.max[level] : this.views.f64[p + k];
      this.node[level - 1] = child;
      const meta = this.meta(child);
      if ((meta & DEAD) !== 0) return false;
      this.off[level - 1] = leftmost ? 0 : (meta & COUNT_MASK) - 1;
    }
    this.loadSlot();
    return true;
  }
}
