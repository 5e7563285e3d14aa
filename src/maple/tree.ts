/**
 * MapleTree: the RangeIndex of vmspace, a B-tree of non-overlapping ranges with per-subtree gap
 * hints, in shared memory, read lock-free under RCU while one writer at a time changes it.
 *
 *   MapleTree (one object per CPU, views only)
 *     header SAB: ROOT | SEQ COUNT | LOCK            (header.ts)
 *     node arena: 192-byte records                    (layout.ts; may be shared by many trees)
 *     reads: lookup, next/prev (read.ts), Walker/MapleCursor (cursor.ts), GapSearch (gap.ts)
 *     writes: TreeWriter (write.ts) + NodePool (pool.ts), bulk build and copy (build.ts)
 *
 * Locking: reads need an RCU read section (or the writer lock). Writes need the writer lock: the
 * tree's own spinlock (taken inside each write call), or, when the tree was created with
 * `externalLock`, that lock held by the caller (the tree then takes none). Replaced nodes go to
 * the reclaimer (RCU by default). Arguments out of range give -EINVAL and change nothing.
 */
import { EINVAL } from '../errno.js';
import { Arena, type ArenaDescriptor, type FailureInjector } from '../shm/arena.js';
import { lockClass } from '../sync/lockclass.js';
import { SpinLock } from '../sync/spinlock.js';
import type { RangeBatch, RangeIndex, RangeOut } from './api.js';
import { bulkBuild, copyTree, rangesAreValid, type SortedRanges } from './build.js';
import { MapleCursor } from './cursor.js';
import { GapSearch } from './gap.js';
import { COUNT, HEADER_BYTES, LOCK, ROOT } from './header.js';
import { LEVEL_MASK, LEVEL_SHIFT, MAX_INDEX, META, NODE_BYTES, NODE_I32, NodeViews } from './layout.js';
import { lookup, nextEntry, prevEntry, ScanPath, scanEntries } from './read.js';
import { type Reclaimer, rcuReclaimer } from './reclaim.js';
import { type TreeShape, validateTree } from './validate.js';
import { TreeWriter } from './write.js';

/** Lock class of the trees' own writer locks. */
export const MAPLE_LOCK_CLASS = 'maple_tree';
const lockClassId = lockClass(MAPLE_LOCK_CLASS);

export interface MapleArenaSpec {
  name?: string;
  /** Nodes available at creation (default 64). */
  capacity?: number;
  /** Most nodes (default 2^16 = 12 MiB of records, reserved up front, committed when touched). */
  maxCapacity?: number;
  poison?: boolean;
  injector?: FailureInjector;
}

export interface MapleTreeOptions extends MapleArenaSpec {
  /** Node arena to use (shared by several trees, e.g. all address spaces); default: a new one. */
  arena?: Arena;
  /** Name of the lock callers hold for every write (e.g. 'mmap_lock'); the tree then takes none. */
  externalLock?: string;
  /** Where replaced nodes go (default: RCU deferred free). */
  reclaimer?: Reclaimer;
}

export interface MapleTreeDescriptor {
  name: string;
  arena: ArenaDescriptor;
  header: SharedArrayBuffer;
  externalLock: string | null;
}

export class MapleTree implements RangeIndex {
  readonly name: string;
  readonly arena: Arena;
  readonly externalLock: string | null;
  private readonly header: Int32Array;
  private readonly views: NodeViews;
  private readonly lock: SpinLock | null;
  private readonly reclaimer: Reclaimer;
  private writerState: TreeWriter | null = null;
  /** Scratch of next/prev: the range of the leaf they read. */
  private readonly range = new Float64Array(2);
  private gapState: GapSearch | null = null;
  private scanPath: ScanPath | null = null;

  /** A node arena for trees (records of NODE_BYTES). */
  static createArena(spec: MapleArenaSpec = {}): Arena {
    return Arena.create({
      name: spec.name ?? 'maple.nodes',
      recordBytes: NODE_BYTES,
      capacity: spec.capacity ?? 64,
      maxCapacity: spec.maxCapacity ?? 2 ** 16,
      poison: spec.poison ?? false,
      injector: spec.injector,
    });
  }

  static create(options: MapleTreeOptions = {}): MapleTree {
    const name = options.name ?? 'maple';
    const arena = options.arena ?? MapleTree.createArena({ ...options, name: `${name}.nodes` });
    const header = new SharedArrayBuffer(HEADER_BYTES);
    return new MapleTree(
      name,
      arena,
      header,
      options.externalLock ?? null,
      options.reclaimer ?? rcuReclaimer,
    );
  }

  /** This tree on another CPU (or a second view on this one). */
  static attach(desc: MapleTreeDescriptor, reclaimer: Reclaimer = rcuReclaimer): MapleTree {
    return new MapleTree(desc.name, Arena.attach(desc.arena), desc.header, desc.externalLock, reclaimer);
  }

  private constructor(
    name: string,
    arena: Arena,
    header: SharedArrayBuffer,
    externalLock: string | null,
    reclaimer: Reclaimer,
  ) {
    this.name = name;
    this.arena = arena;
    this.externalLock = externalLock;
    this.header = new Int32Array(header);
    this.views = new NodeViews(arena);
    this.lock = externalLock === null ? SpinLock.at(this.header, LOCK, lockClassId) : null;
    this.reclaimer = reclaimer;
  }

  describe(): MapleTreeDescriptor {
    return {
      name: this.name,
      arena: this.arena.describe(),
      header: this.header.buffer as SharedArrayBuffer,
      externalLock: this.externalLock,
    };
  }

  // ---- reads: inside an RCU read section, or under the writer lock ----

  load(index: number, out: RangeOut): number {
    if (!isIndex(index)) return -EINVAL;
    return lookup(this.views, this.header, index, out);
  }

  next(index: number, max: number, out: RangeOut): number {
    if (!isIndex(index) || !isIndex(max)) return -EINVAL;
    return nextEntry(this.views, this.header, index, max, out, this.range);
  }

  /**
   * In-order walk in batches (see RangeIndex): one descent per call, then leaf to leaf; about
   * as fast per entry as reading the leaves. Walk a whole window with
   *   for (let at = lo, n = cap; n === cap; at = batch.lasts[n - 1] + 1) n = tree.nextBatch(at, hi, batch);
   * taking an RCU read section per call if you like (nothing is kept between calls).
   */
  nextBatch(index: number, max: number, batch: RangeBatch): number {
    if (!(isIndex(index) || index === MAX_INDEX + 1) || !isIndex(max)) return -EINVAL;
    const cap = batch.firsts.length;
    if (batch.lasts.length < cap || batch.values.length < cap) return -EINVAL;
    if (index > MAX_INDEX || cap === 0) return 0;
    if (this.scanPath === null) this.scanPath = new ScanPath();
    return scanEntries(this.views, this.header, index, max, batch, cap, this.scanPath);
  }

  prev(index: number, min: number, out: RangeOut): number {
    if (!isIndex(index) || !isIndex(min)) return -EINVAL;
    return prevEntry(this.views, this.header, index, min, out, this.range);
  }

  gapLowest(min: number, max: number, size: number, align: number): number {
    const bad = checkGapArgs(min, max, size, align);
    if (bad !== 0) return bad;
    return this.gaps().lowest(min, max, size, align);
  }

  gapHighest(min: number, max: number, size: number, align: number): number {
    const bad = checkGapArgs(min, max, size, align);
    if (bad !== 0) return bad;
    return this.gaps().highest(min, max, size, align);
  }

  count(): number {
    return Atomics.load(this.header, COUNT);
  }

  /** Levels of the tree (0 when empty). */
  height(): number {
    const root = Atomics.load(this.header, ROOT);
    if (root === 0) return 0;
    return ((this.views.i32[root * NODE_I32 + META] & LEVEL_MASK) >> LEVEL_SHIFT) + 1;
  }

  /** A cursor starting at `index` (see cursor.ts); each call is a read. */
  cursor(index = 0): MapleCursor {
    if (!isIndex(index)) throw new RangeError(`EINVAL: cursor position ${index}`);
    return new MapleCursor(this.views, this.header, index);
  }

  // ---- writes: under the writer lock ----

  store(first: number, last: number, value: number): number {
    if (!isRange(first, last) || !isValue(value, 0)) return -EINVAL;
    const writer = this.writer();
    this.lockWrites();
    try {
      return writer.store(first, last, value);
    } finally {
      this.unlockWrites();
    }
  }

  insert(first: number, last: number, value: number): number {
    if (!isRange(first, last) || !isValue(value, 1)) return -EINVAL;
    const writer = this.writer();
    this.lockWrites();
    try {
      return writer.insert(first, last, value);
    } finally {
      this.unlockWrites();
    }
  }

  erase(index: number): number {
    if (!isIndex(index)) return -EINVAL;
    const writer = this.writer();
    this.lockWrites();
    try {
      return writer.erase(index);
    } finally {
      this.unlockWrites();
    }
  }

  /**
   * Reserves nodes so that the next `count` stores (insert, erase) by this CPU's tree object do
   * not allocate; call it before taking a lock under which allocation is forbidden.
   */
  preallocate(count: number): number {
    if (!(Number.isInteger(count) && count >= 0)) return -EINVAL;
    return this.writer().preallocate(count);
  }

  /** Gives back the nodes `preallocate` reserved and no store used. */
  releasePreallocated(): void {
    this.writerState?.pool.release();
  }

  /** Nodes reserved by `preallocate` and not yet used. */
  preallocated(): number {
    return this.writerState?.pool.size ?? 0;
  }

  /** Fills this empty tree from sorted, disjoint ranges; -EINVAL, -EEXIST (not empty), -ENOMEM. */
  bulkLoad(ranges: SortedRanges): number {
    if (!rangesAreValid(ranges)) return -EINVAL;
    const writer = this.writer();
    this.lockWrites();
    try {
      return bulkBuild(this.views, this.header, writer.pool, ranges);
    } finally {
      this.unlockWrites();
    }
  }

  /**
   * Fills this empty tree with a copy of `source` (fork). The source must not change meanwhile:
   * its own lock is taken here, an external lock must be held by the caller.
   */
  copyFrom(source: MapleTree): number {
    if (source === this || source.header === this.header) return -EINVAL;
    const writer = this.writer();
    source.lock?.lock();
    this.lock?.lock(1);
    try {
      return copyTree(source.views, source.header, this.views, this.header, writer.pool);
    } finally {
      this.lock?.unlock();
      source.lock?.unlock();
    }
  }

  /** Retires every node and this CPU's reserve; the tree is empty afterwards and still usable. */
  destroy(): void {
    const writer = this.writer();
    this.lockWrites();
    try {
      writer.destroy();
      writer.pool.release();
    } finally {
      this.unlockWrites();
    }
  }

  /** Checks every invariant (throws on the first broken one); the tree must not change meanwhile. */
  validate(): TreeShape {
    this.lockWrites();
    try {
      return validateTree(this.views, this.header, this.arena);
    } finally {
      this.unlockWrites();
    }
  }

  private lockWrites(): void {
    this.lock?.lock();
  }

  private unlockWrites(): void {
    this.lock?.unlock();
  }

  private writer(): TreeWriter {
    if (this.writerState === null) {
      this.writerState = new TreeWriter(this.views, this.header, this.arena, this.reclaimer);
    }
    return this.writerState;
  }

  private gaps(): GapSearch {
    if (this.gapState === null) this.gapState = new GapSearch(this.views, this.header);
    return this.gapState;
  }
}

function isIndex(index: number): boolean {
  return index >= 0 && index <= MAX_INDEX && Math.floor(index) === index;
}

function isRange(first: number, last: number): boolean {
  return isIndex(first) && isIndex(last) && first <= last;
}

function isValue(value: number, least: number): boolean {
  return value >= least && value <= 0x7fffffff && Math.floor(value) === value;
}

function checkGapArgs(min: number, max: number, size: number, align: number): number {
  if (!isRange(min, max) || !(size >= 1 && size <= MAX_INDEX + 1 && Math.floor(size) === size))
    return -EINVAL;
  if (!(align >= 1 && align <= MAX_INDEX && Math.floor(align) === align)) return -EINVAL;
  return 0;
}

export { MAX_INDEX };
