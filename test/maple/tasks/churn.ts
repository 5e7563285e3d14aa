/**
 * Concurrency scenario for the maple tree: one CPU writes, another reads at full speed.
 *
 * The index space is cut into regions of REGION indices. "Stable" regions hold one entry that
 * nobody ever changes; the others churn: the writer replaces, overlays, overwrites in place and
 * erases their entries, and now and then wipes a whole zone of them with one spanning store and
 * refills it, so nodes around the stable entries split, merge and move all the time.
 *
 * A value encodes where its range may be: value - 1 = region << 18 | shape << 8 | write, and
 * shapeRange(region, shape) is the range the writer stored it with (later overlays can only cut
 * it into pieces). A reader therefore checks, for everything it sees, that the range is inside
 * the one its value allows (never torn) and holds the index it asked for, and that every stable
 * entry, which exists throughout, is found exactly (never missed) by lookups, by iteration both
 * ways (cursor) and forwards in batches (nextBatch, leaving and re-entering the read section
 * between calls, so that a kept position is resumed across grace periods), is never skipped by
 * next/prev and is never overlapped by a gap or by what gap search returns. The arena poisons
 * freed nodes, so an entry read from a freed or reused node fails these checks.
 */
import { EBUSY } from '../../../src/errno.js';
import { type RangeBatch, type RangeOut, rangeBatch, rangeOut } from '../../../src/maple/api.js';
import { immediateReclaimer, rcuReclaimer } from '../../../src/maple/reclaim.js';
import { MapleTree, type MapleTreeDescriptor } from '../../../src/maple/tree.js';
import { rcuBarrier, rcuReadLock, rcuReadUnlock } from '../../../src/sync/rcu.js';
import { prng } from '../model.js';

export const REGION = 1024;
const STABLE_SHAPE = 1023;

export interface ChurnArgs {
  role: 'writer' | 'reader';
  tree: MapleTreeDescriptor;
  /** Word 0: CPUs ready; word 1: writer done. */
  sync: SharedArrayBuffer;
  regions: number;
  /** Churn regions [zoneFirst, zoneLast] are wiped together now and then. */
  zoneFirst: number;
  zoneLast: number;
  seed: number;
  iterations: number;
  deadlineMs: number;
}

export interface ChurnResult {
  operations: number;
  checks: number;
}

export function isStable(args: ChurnArgs, region: number): boolean {
  return region % 3 === 1 && (region < args.zoneFirst || region > args.zoneLast);
}

/** [first, last] of `shape` in `region`. */
export function shapeFirst(region: number, shape: number): number {
  return region * REGION + (shape === STABLE_SHAPE ? 100 : (shape * 37) % 400);
}

export function shapeLast(region: number, shape: number): number {
  return shape === STABLE_SHAPE ? region * REGION + 899 : shapeFirst(region, shape) + ((shape * 53) % 500);
}

export function entryValue(region: number, shape: number, write: number): number {
  return 1 + region * 2 ** 18 + shape * 256 + (write & 255);
}

export function stableValue(region: number): number {
  return entryValue(region, STABLE_SHAPE, 0);
}

/** The starting state: the stable entries and one entry in every other region. */
export function initialEntries(args: ChurnArgs): { firsts: number[]; lasts: number[]; values: number[] } {
  const firsts: number[] = [];
  const lasts: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < args.regions; r++) {
    const shape = isStable(args, r) ? STABLE_SHAPE : r % 64;
    firsts.push(shapeFirst(r, shape));
    lasts.push(shapeLast(r, shape));
    values.push(isStable(args, r) ? stableValue(r) : entryValue(r, shape, 0));
  }
  return { firsts, lasts, values };
}

export default function churn(_cpu: number, args: ChurnArgs): ChurnResult {
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2 && Date.now() < args.deadlineMs) {
    // Start together.
  }
  try {
    return args.role === 'writer' ? write(args, sync) : read(args, sync);
  } catch (error) {
    Atomics.store(sync, 1, 1);
    (error as Error).message = `seed ${args.seed}: ${(error as Error).message}`;
    throw error;
  }
}

function write(args: ChurnArgs, sync: Int32Array): ChurnResult {
  const tree = MapleTree.attach(args.tree, rcuReclaimer);
  const random = prng(args.seed);
  const cleanShape = new Int32Array(args.regions).fill(-1);
  const writes = new Int32Array(args.regions);
  let n = 0;
  for (; n < args.iterations; n++) {
    if ((n & 63) === 0 && Date.now() > args.deadlineMs) break;
    if (n % 5000 === 4999) {
      wipeZone(tree, args, random, cleanShape);
      continue;
    }
    let r = Math.floor(random() * args.regions);
    if (isStable(args, r)) r = (r + 1) % args.regions;
    const shape = Math.floor(random() * 1000);
    const w = ++writes[r];
    const op = random();
    if (op < 0.05) expect(tree.preallocate(2), 0, 'preallocate');
    if (op < 0.35) {
      expect(tree.store(r * REGION, r * REGION + REGION - 1, 0), 0, 'clear region');
      expect(tree.insert(shapeFirst(r, shape), shapeLast(r, shape), entryValue(r, shape, w)), 0, 'insert');
      cleanShape[r] = shape;
    } else if (op < 0.6 && cleanShape[r] >= 0) {
      const s = cleanShape[r];
      expect(tree.store(shapeFirst(r, s), shapeLast(r, s), entryValue(r, s, w)), 0, 'overwrite in place');
    } else if (op < 0.8) {
      expect(tree.store(shapeFirst(r, shape), shapeLast(r, shape), entryValue(r, shape, w)), 0, 'overlay');
      cleanShape[r] = -1;
    } else {
      const erased = tree.erase(r * REGION + Math.floor(random() * REGION));
      if (erased < 0) throw new Error(`erase failed: ${erased}`);
      cleanShape[r] = -1;
    }
  }
  Atomics.store(sync, 1, 1);
  tree.releasePreallocated();
  rcuBarrier();
  return { operations: n, checks: 0 };
}

/** Wipes a random stretch of the zone with one store, then refills it region by region. */
function wipeZone(tree: MapleTree, args: ChurnArgs, random: () => number, cleanShape: Int32Array): void {
  const from = args.zoneFirst + Math.floor(random() * (args.zoneLast - args.zoneFirst));
  const to = from + Math.floor(random() * (args.zoneLast - from + 1));
  expect(tree.store(from * REGION, to * REGION + REGION - 1, 0), 0, 'wipe zone');
  for (let r = from; r <= to; r++) {
    const shape = Math.floor(random() * 1000);
    expect(tree.insert(shapeFirst(r, shape), shapeLast(r, shape), entryValue(r, shape, 0)), 0, 'refill zone');
    cleanShape[r] = shape;
  }
}

function expect(got: number, want: number, what: string): void {
  if (got !== want) throw new Error(`${what}: returned ${got}, expected ${want}`);
}

class Reader {
  readonly out = rangeOut();
  checks = 0;

  constructor(
    readonly tree: MapleTree,
    readonly args: ChurnArgs,
  ) {}

  /** An entry seen holding `index`: inside the range its value allows, stable entries exact. */
  entry(index: number, e: RangeOut): void {
    const region = Math.floor(index / REGION);
    const v = e.value - 1;
    const vRegion = Math.floor(v / 2 ** 18);
    const shape = (v >> 8) & 1023;
    if (vRegion !== region || !(e.first <= index && index <= e.last)) {
      throw new Error(`torn: index ${index} got [${e.first}, ${e.last}] = ${e.value} (region ${vRegion})`);
    }
    if (e.first < shapeFirst(region, shape) || e.last > shapeLast(region, shape)) {
      throw new Error(`torn: [${e.first}, ${e.last}] = ${e.value} outside its shape ${shape}`);
    }
    if (isStable(this.args, region) && (shape !== STABLE_SHAPE || e.value !== stableValue(region))) {
      throw new Error(`stable region ${region} shows ${e.value}`);
    }
    this.checks++;
  }

  /** A gap [first, last] seen holding `index` must not cover any stable entry. */
  gap(index: number, first: number, last: number): void {
    if (!(first <= index && index <= last)) throw new Error(`gap [${first}, ${last}] misses index ${index}`);
    const to = Math.min(Math.floor(last / REGION), this.args.regions - 1);
    for (let r = Math.floor(first / REGION); r <= to; r++) {
      if (
        isStable(this.args, r) &&
        first <= shapeLast(r, STABLE_SHAPE) &&
        last >= shapeFirst(r, STABLE_SHAPE)
      ) {
        throw new Error(`missed: gap [${first}, ${last}] covers the stable entry of region ${r}`);
      }
    }
    this.checks++;
  }

  lookup(index: number): void {
    const value = this.tree.load(index, this.out);
    if (value !== 0) this.entry(index, this.out);
    else this.gap(index, this.out.first, this.out.last);
  }

  /** Forward or backward iteration over `regions` regions from `index`. */
  iterate(index: number, regions: number, forward: boolean): void {
    const cursor = this.tree.cursor(index);
    const limit = forward ? index + regions * REGION : Math.max(0, index - regions * REGION);
    // Each entry found ends past (starts before) the previous one; it may overlap it when the
    // writer stored it meanwhile.
    let previous = forward ? -1 : Number.MAX_SAFE_INTEGER;
    let stableSeen = 0;
    for (;;) {
      const value = forward ? cursor.find(limit, this.out) : cursor.findRev(limit, this.out);
      if (value === 0) break;
      const e = this.out;
      if (forward ? e.last <= previous : e.first >= previous) throw new Error('iteration went backwards');
      previous = forward ? e.last : e.first;
      this.entry(e.first, e);
      if (isStable(this.args, Math.floor(e.first / REGION))) stableSeen++;
    }
    let stableThere = 0;
    const lo = forward ? index : limit;
    const hi = forward ? limit : index;
    for (let r = Math.floor(lo / REGION); r <= Math.floor(hi / REGION) && r < this.args.regions; r++) {
      if (isStable(this.args, r) && shapeLast(r, STABLE_SHAPE) >= lo && shapeFirst(r, STABLE_SHAPE) <= hi) {
        stableThere++;
      }
    }
    if (stableSeen !== stableThere) {
      throw new Error(`missed: iteration from ${index} saw ${stableSeen} of ${stableThere} stable entries`);
    }
  }

  /**
   * Forward in batches of `batch`'s capacity from `index` over `regions` regions (all regions: to
   * the end of the tree), leaving the read section between calls: entries in order (each ending
   * after the one before), each valid, and every stable entry of the window seen once.
   */
  iterateBatch(index: number, regions: number, batch: RangeBatch, pauseMs: number): void {
    const capacity = batch.firsts.length;
    const limit = Math.min(index + regions * REGION, 2 ** 53 - 1);
    let previous = -1;
    let stableSeen = 0;
    for (let at = index, n = capacity; n === capacity; at = batch.lasts[n - 1] + 1) {
      if (at !== index) {
        // Outside the read section for a while: grace periods end, the writer frees and reuses
        // nodes, and the position kept by the last call must not be trusted unless SEQ is unchanged.
        rcuReadUnlock();
        for (const until = performance.now() + pauseMs; performance.now() < until; ) {}
        rcuReadLock();
      }
      n = this.tree.nextBatch(at, limit, batch);
      if (n < 0) throw new Error(`nextBatch(${at}, ${limit}) returned ${n}`);
      for (let i = 0; i < n; i++) {
        const e = this.out;
        e.first = batch.firsts[i];
        e.last = batch.lasts[i];
        e.value = batch.values[i];
        if (e.last <= previous || e.last < at || e.first > limit)
          throw new Error(`batch from ${at} went backwards or out of its window: [${e.first}, ${e.last}]`);
        previous = e.last;
        this.entry(e.first, e);
        if (isStable(this.args, Math.floor(e.first / REGION))) stableSeen++;
      }
    }
    let stableThere = 0;
    for (let r = Math.floor(index / REGION); r <= Math.floor(limit / REGION) && r < this.args.regions; r++) {
      if (
        isStable(this.args, r) &&
        shapeLast(r, STABLE_SHAPE) >= index &&
        shapeFirst(r, STABLE_SHAPE) <= limit
      ) {
        stableThere++;
      }
    }
    if (stableSeen !== stableThere) {
      throw new Error(`missed: batches from ${index} saw ${stableSeen} of ${stableThere} stable entries`);
    }
  }

  /**
   * next (prev) from `index` within `regions` regions: what it returns is a valid entry on the
   * right side of `index`, and it is no further away than the nearest stable entry there, which
   * exists throughout and so can never be skipped.
   */
  neighbour(index: number, regions: number, forward: boolean): void {
    const limit = forward ? index + regions * REGION : Math.max(0, index - regions * REGION);
    const value = forward ? this.tree.next(index, limit, this.out) : this.tree.prev(index, limit, this.out);
    const e = this.out;
    if (value !== 0) {
      if (forward ? e.last < index || e.first > limit : e.first > index || e.last < limit)
        throw new Error(`${forward ? 'next' : 'prev'}(${index}, ${limit}) gave [${e.first}, ${e.last}]`);
      this.entry(e.first, e);
    }
    const step = forward ? 1 : -1;
    for (
      let r = Math.floor(index / REGION);
      forward ? r <= Math.floor(limit / REGION) : r >= Math.floor(limit / REGION);
      r += step
    ) {
      if (r < 0 || r >= this.args.regions || !isStable(this.args, r)) continue;
      const first = shapeFirst(r, STABLE_SHAPE);
      const last = shapeLast(r, STABLE_SHAPE);
      if (forward ? last < index || first > limit : first > index || last < limit) continue;
      if (value === 0 || (forward ? e.first > last : e.last < first)) {
        throw new Error(
          `missed: ${forward ? 'next' : 'prev'} from ${index} skipped the stable entry of region ${r}`,
        );
      }
      break;
    }
    this.checks++;
  }

  gapSearch(index: number, highest: boolean, align: number): void {
    const max = index + 8 * REGION;
    const size = 64;
    const start = highest
      ? this.tree.gapHighest(index, max, size, align)
      : this.tree.gapLowest(index, max, size, align);
    if (start === -EBUSY) return;
    if (start < index || start + size - 1 > max || start % align !== 0)
      throw new Error(`gap search gave ${start}`);
    this.gap(start, start, start + size - 1);
  }
}

function read(args: ChurnArgs, sync: Int32Array): ChurnResult {
  const tree = MapleTree.attach(args.tree, immediateReclaimer);
  const reader = new Reader(tree, args);
  const batches = [rangeBatch(1), rangeBatch(7), rangeBatch(64)];
  const random = prng(args.seed ^ 0x5bd1e995);
  const end = args.regions * REGION;
  let n = 0;
  for (; n < args.iterations && Atomics.load(sync, 1) === 0; n++) {
    if ((n & 15) === 0 && Date.now() > args.deadlineMs) break;
    rcuReadLock();
    try {
      for (let i = 0; i < 64; i++) reader.lookup(Math.floor(random() * end));
      const index = Math.floor(random() * end);
      if (n % 12 === 8)
        reader.iterateBatch(
          index,
          n % 120 === 8 ? args.regions : 24,
          batches[Math.floor(n / 12) % 3],
          n % 24 === 8 ? 0.05 : 0,
        );
      else if (n % 4 === 0) reader.iterate(index, 24, n % 8 === 0);
      else if (n % 4 === 1) reader.neighbour(index, 1 + (n % 5), n % 8 === 1);
      else reader.gapSearch(index, n % 2 === 0, n % 3 === 0 ? 16 : 1);
    } finally {
      rcuReadUnlock();
    }
  }
  return { operations: n, checks: reader.checks };
}
