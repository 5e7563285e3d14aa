/**
 * Maple tree figures. On the same data (1k, 100k and 1M page-aligned ranges of 1-16 pages with
 * gaps of 0-15 pages, as byte addresses), vmspace's tree against `sorted-btree` (floor lookup of a
 * map first -> last) and `@js-sdsl/ordered-map` (a red-black tree): containing-range lookup of
 * random addresses, insert (random order, EEXIST semantics: the baselines check the floor entry
 * first), erase (an independent random order, entry found by a floor lookup), forward iteration, gap search and
 * bytes per range. Single-CPU figures run on the main thread with the RCU reclaimer, as in use.
 *
 * Two-CPU figures (a Machine): one CPU looks up random addresses (one RCU read section per lookup)
 * while the other erases and re-inserts random ranges flat out; against `sorted-btree` behind the
 * foundation's RwSem (down_read per lookup, down_write per change). JS objects cannot be shared
 * between CPUs, so each CPU holds its own replica of the sorted-btree; the writer changes its
 * replica under the write lock, so lock hold times and contention are those of one shared tree.
 *
 * This module is also the task module of the two-CPU figures (its default export).
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OrderedMap } from '@js-sdsl/ordered-map';
import BTreeModule from 'sorted-btree';
import { ENOMEM } from '../../src/errno.js';
import { Machine } from '../../src/machine/machine.js';
import { rangeBatch, rangeOut } from '../../src/maple/api.js';
import { rcuReclaimer } from '../../src/maple/reclaim.js';
import { MAX_INDEX, MapleTree, type MapleTreeDescriptor } from '../../src/maple/tree.js';
import type { LockDescriptor } from '../../src/sync/lockview.js';
import { rcuBarrier, rcuReadLock, rcuReadUnlock } from '../../src/sync/rcu.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { type BenchOptions, type BenchSuite, median, nsPerOp, Report } from '../harness.js';

const BTree = BTreeModule.default;

setFlagsFromString('--expose-gc');
/** A full garbage collection: run before each measurement so that no baseline's garbage is collected inside it. */
const gc = runInNewContext('gc') as () => void;
const PAGE = 4096;
const BATCH = 1024;
const QUERIES = 1 << 20;

interface Data {
  firsts: Float64Array;
  lasts: Float64Array;
  values: Int32Array;
  end: number;
}

function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` page-aligned ranges over shared buffers (so the CPUs get the same data). */
function makeData(n: number, seed = 1): Data {
  const random = prng(seed);
  const firsts = new Float64Array(new SharedArrayBuffer(n * 8));
  const lasts = new Float64Array(new SharedArrayBuffer(n * 8));
  const values = new Int32Array(new SharedArrayBuffer(n * 4));
  let at = 0x10000 * PAGE;
  for (let i = 0; i < n; i++) {
    at += Math.floor(random() * 16) * PAGE;
    const length = (1 + Math.floor(random() * 16)) * PAGE;
    firsts[i] = at;
    lasts[i] = at + length - 1;
    values[i] = i + 1;
    at += length;
  }
  return { firsts, lasts, values, end: at };
}

function queries(data: Data, seed: number): Float64Array {
  const random = prng(seed);
  const q = new Float64Array(QUERIES);
  const span = data.end - data.firsts[0];
  for (let i = 0; i < QUERIES; i++) q[i] = data.firsts[0] + Math.floor(random() * span);
  return q;
}

function shuffled(n: number, seed: number): Int32Array {
  const random = prng(seed);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

function newTree(n: number): MapleTree {
  return MapleTree.create({
    name: 'bench.maple',
    capacity: 1024,
    maxCapacity: Math.max(4096, Math.ceil(n / 2)),
    reclaimer: rcuReclaimer,
  });
}

function bulkTree(data: Data): MapleTree {
  const tree = newTree(data.firsts.length);
  const ret = tree.bulkLoad({ firsts: data.firsts, lasts: data.lasts, values: data.values });
  if (ret !== 0) throw new Error(`bench: bulk load failed: ${ret}`);
  return tree;
}

function sortedBTree(data: Data): InstanceType<typeof BTree<number, number>> {
  const tree = new BTree<number, number>();
  for (let i = 0; i < data.firsts.length; i++) tree.set(data.firsts[i], data.lasts[i]);
  return tree;
}

function orderedMap(data: Data): OrderedMap<number, number> {
  const map = new OrderedMap<number, number>();
  for (let i = 0; i < data.firsts.length; i++) map.setElement(data.firsts[i], data.lasts[i]);
  return map;
}

function label(n: number): string {
  return n >= 1_000_000 ? `${n / 1_000_000}m` : `${n / 1000}k`;
}

/**
 * CPU time this process has used, in ms (user + system, all threads: after gc() the JIT and GC
 * helpers are idle, so it is the main thread's). Unlike wall time it does not count the time the
 * host gives to other processes.
 */
function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** Fastest of `reps` runs of `run` (each after an untimed `setup`), in ms. */
function bestMs(reps: number, run: () => void, setup: () => void = () => {}): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    setup();
    gc();
    const start = performance.now();
    run();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

export const suite: BenchSuite = {
  name: 'maple',
  async run(report: Report, options: BenchOptions): Promise<void> {
    // Warm-up: compile every path on small data first (figures discarded), so that the first
    // size measured is not charged for the JIT.
    await singleCpu(new Report(), { quick: true }, 20_000);
    for (const n of [1000, 100_000, 1_000_000]) await singleCpu(report, options, n);
    await twoCpus(report, options);
  },
};

async function singleCpu(report: Report, options: BenchOptions, n: number): Promise<void> {
  const data = makeData(n);
  await lookups(report, options, data);
  updates(report, options, data);
  construction(report, options, data);
  iteration(report, options, data);
  await gapSearch(report, options, data);
  if (n === 100_000) memory(report, data);
  rcuBarrier();
}

async function lookups(report: Report, options: BenchOptions, data: Data): Promise<void> {
  const n = data.firsts.length;
  const q = queries(data, 7);
  let at = 0;
  const next = () => {
    at = (at + BATCH) & (QUERIES - 1);
    return at;
  };
  const measure = async (loop: () => number) => {
    gc();
    return 1000 / (await nsPerOp(loop, BATCH, options));
  };
  const btId = `sorted_btree.lookup.${label(n)}.mops`;
  const bt = sortedBTree(data);
  const pair: [number, number] = [0, 0];
  report.add(
    btId,
    await measure(() => {
      const from = next();
      let hits = 0;
      for (let i = from; i < from + BATCH; i++) {
        const p = bt.getPairOrNextLower(q[i], pair);
        if (p !== undefined && q[i] <= p[1]) hits++;
      }
      return hits;
    }),
    'Mops/s',
  );
  bt.clear();
  const map = orderedMap(data);
  report.add(
    `js_sdsl.lookup.${label(n)}.mops`,
    await measure(() => {
      const from = next();
      let hits = 0;
      for (let i = from; i < from + BATCH; i++) {
        const it = map.reverseLowerBound(q[i]);
        if (it.isAccessible() && q[i] <= it.pointer[1]) hits++;
      }
      return hits;
    }),
    'Mops/s',
    btId,
  );
  map.clear();
  const tree = bulkTree(data);
  const out = rangeOut();
  report.add(
    `maple.lookup.${label(n)}.mops`,
    await measure(() => {
      const from = next();
      let hits = 0;
      for (let i = from; i < from + BATCH; i++) if (tree.load(q[i], out) !== 0) hits++;
      return hits;
    }),
    'Mops/s',
    btId,
  );
  tree.destroy();
}

/** One library in the insert/erase figures: an empty structure, then all ranges in, then all out. */
interface Updater {
  fresh(): void;
  insertAll(): void;
  eraseAll(): void;
}

/**
 * Insert all ranges (random order) into an empty structure, then erase them all (an independent
 * random order). The libraries take turns within each of `reps` rounds, so that a slow phase of the
 * machine hits all of them alike; each figure is a library's fastest round. Returns [insert ms,
 * erase ms] per library.
 */
function insertThenErase(reps: number, updaters: Updater[]): number[][] {
  const best = updaters.map(() => [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
  for (let r = 0; r < reps; r++) {
    updaters.forEach((u, i) => {
      u.fresh();
      gc();
      let start = performance.now();
      u.insertAll();
      best[i][0] = Math.min(best[i][0], performance.now() - start);
      gc();
      start = performance.now();
      u.eraseAll();
      best[i][1] = Math.min(best[i][1], performance.now() - start);
    });
  }
  return best;
}

function updates(report: Report, options: BenchOptions, data: Data): void {
  const n = data.firsts.length;
  const reps = options.quick || n >= 1_000_000 ? 1 : 5;
  const order: Order = { insert: shuffled(n, 3), erase: shuffled(n, 4) };
  const maple = mapleUpdater(data, order);
  const [[btInsert, btErase], [mapInsert, mapErase], [treeInsert, treeErase]] = insertThenErase(reps, [
    sortedBTreeUpdater(data, order),
    orderedMapUpdater(data, order),
    maple,
  ]);
  const size = label(n);
  const mops = (ms: number) => n / ms / 1000;
  report.add(`sorted_btree.insert.${size}.mops`, mops(btInsert), 'Mops/s');
  report.add(`js_sdsl.insert.${size}.mops`, mops(mapInsert), 'Mops/s', `sorted_btree.insert.${size}.mops`);
  report.add(`maple.insert.${size}.mops`, mops(treeInsert), 'Mops/s', `sorted_btree.insert.${size}.mops`);
  report.add(`sorted_btree.erase.${size}.mops`, mops(btErase), 'Mops/s');
  report.add(`js_sdsl.erase.${size}.mops`, mops(mapErase), 'Mops/s', `sorted_btree.erase.${size}.mops`);
  report.add(`maple.erase.${size}.mops`, mops(treeErase), 'Mops/s', `sorted_btree.erase.${size}.mops`);
  if (n === 100_000) {
    // Memory of the tree as random-order inserts leave it (validate() counts its nodes).
    maple.fresh();
    maple.insertAll();
    report.add('maple.bytes_per_range.100k', maple.bytes() / n, 'B');
  }
  maple.fresh();
}

interface Order {
  insert: Int32Array;
  erase: Int32Array;
}

/** Insert checks the floor entry first (EEXIST semantics); erase finds the entry by a floor lookup. */
function sortedBTreeUpdater({ firsts, lasts }: Data, order: Order): Updater {
  const n = firsts.length;
  const pair: [number, number] = [0, 0];
  let bt = new BTree<number, number>();
  return {
    fresh() {
      bt = new BTree<number, number>();
    },
    insertAll() {
      for (let i = 0; i < n; i++) {
        const j = order.insert[i];
        const p = bt.getPairOrNextLower(lasts[j], pair);
        if (p !== undefined && p[1] >= firsts[j]) throw new Error('bench: overlap');
        bt.set(firsts[j], lasts[j]);
      }
    },
    eraseAll() {
      for (let i = 0; i < n; i++) {
        const first = firsts[order.erase[i]];
        const p = bt.getPairOrNextLower(first, pair);
        if (p === undefined || p[1] < first) throw new Error('bench: missing');
        bt.delete(p[0]);
      }
    },
  };
}

function orderedMapUpdater({ firsts, lasts }: Data, order: Order): Updater {
  const n = firsts.length;
  let map = new OrderedMap<number, number>();
  return {
    fresh() {
      map = new OrderedMap<number, number>();
    },
    insertAll() {
      for (let i = 0; i < n; i++) {
        const j = order.insert[i];
        const it = map.reverseLowerBound(lasts[j]);
        if (it.isAccessible() && it.pointer[1] >= firsts[j]) throw new Error('bench: overlap');
        map.setElement(firsts[j], lasts[j]);
      }
    },
    eraseAll() {
      for (let i = 0; i < n; i++) {
        const it = map.reverseLowerBound(firsts[order.erase[i]]);
        if (!it.isAccessible()) throw new Error('bench: missing');
        map.eraseElementByKey(it.pointer[0]);
      }
    },
  };
}

/** The tree on its own arena, emptied (and its nodes reclaimed) by `fresh`. */
function mapleUpdater({ firsts, lasts }: Data, order: Order): Updater & { bytes(): number } {
  const n = firsts.length;
  const arena = MapleTree.createArena({
    name: 'bench.maple.updates',
    capacity: 1024,
    maxCapacity: Math.max(4096, n),
  });
  const tree = MapleTree.create({ arena, reclaimer: rcuReclaimer });
  return {
    fresh() {
      tree.destroy();
      rcuBarrier();
    },
    insertAll() {
      for (let i = 0; i < n; i++) {
        const j = order.insert[i];
        if (tree.insert(firsts[j], lasts[j], j + 1) !== 0) throw new Error('bench: insert failed');
      }
    },
    eraseAll() {
      for (let i = 0; i < n; i++) {
        if (tree.erase(firsts[order.erase[i]]) <= 0) throw new Error('bench: erase failed');
      }
    },
    bytes: () => tree.validate().bytes,
  };
}

/** Bulk build from sorted ranges and whole-tree copy (fork), against inserting one by one. */
function construction(report: Report, options: BenchOptions, data: Data): void {
  const n = data.firsts.length;
  const reps = options.quick ? 2 : 5;
  const arena = MapleTree.createArena({
    name: 'bench.maple.build',
    capacity: 1024,
    maxCapacity: Math.max(4096, n),
  });
  let tree = MapleTree.create({ arena, reclaimer: rcuReclaimer });
  const bulkMs = bestMs(
    reps,
    () => {
      if (tree.bulkLoad({ firsts: data.firsts, lasts: data.lasts, values: data.values }) !== 0) {
        throw new Error('bench: bulk load failed');
      }
    },
    () => {
      tree.destroy();
      rcuBarrier();
      tree = MapleTree.create({ arena, reclaimer: rcuReclaimer });
    },
  );
  let copy = MapleTree.create({ arena, reclaimer: rcuReclaimer });
  const copyMs = bestMs(
    reps,
    () => {
      if (copy.copyFrom(tree) !== 0) throw new Error('bench: copy failed');
    },
    () => {
      copy.destroy();
      rcuBarrier();
      copy = MapleTree.create({ arena, reclaimer: rcuReclaimer });
    },
  );
  copy.destroy();
  tree.destroy();
  rcuBarrier();
  const id = `maple.insert.${label(n)}.mops`;
  report.add(`maple.bulk_build.${label(n)}.mops`, n / bulkMs / 1000, 'Mops/s', id);
  report.add(`maple.copy.${label(n)}.mops`, n / copyMs / 1000, 'Mops/s', id);
}

/** Entries visited per timed sample of iteration: whole walks of the tree repeated up to this many. */
const WALK_ENTRIES = 1 << 20;
/** Entries per `nextBatch` call in the maple walk. */
const WALK_BATCH = 64;

/**
 * Forward iteration over every entry, each library reading every entry's range (sorted-btree's
 * pairs are first -> last; maple's walk also reads the value, checked by a checksum). Every
 * sample is enough whole walks to visit WALK_ENTRIES entries (at 1k entries a single walk lasts
 * ~10 µs, too short to time); the libraries take turns within each round, in an order rotated
 * from round to round, and each figure is a library's median over the rounds. Samples are timed
 * in CPU time (`cpuMs`): on this shared 2-core host other processes preempt a sample for
 * milliseconds at a time, which wall time charges to whichever library was running. Each walk's
 * sum of range lengths is checked, so every library provably visits every entry.
 *
 * The maple walk is `nextBatch` (WALK_BATCH entries per call, one RCU read section per call, as
 * /proc/PID/maps would); the cursor (one `find` call per entry) is measured beside it.
 */
function iteration(report: Report, options: BenchOptions, data: Data): void {
  const n = data.firsts.length;
  const rounds = options.quick ? 3 : 15;
  const walks = Math.max(1, Math.round(WALK_ENTRIES / n));
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += data.lasts[i] - data.firsts[i] + 1;
  const valueSum = (n * (n + 1)) / 2;
  const bt = sortedBTree(data);
  const map = orderedMap(data);
  const tree = bulkTree(data);
  const batch = rangeBatch(WALK_BATCH);
  const out = rangeOut();
  let values = 0;
  const walkers: Array<() => number> = [
    () => {
      let sum = 0;
      bt.forEachPair((first, last) => {
        sum += last - first + 1;
      });
      return sum;
    },
    () => {
      let sum = 0;
      map.forEach((pair) => {
        sum += pair[1] - pair[0] + 1;
      });
      return sum;
    },
    () => {
      const { firsts, lasts, values: vs } = batch;
      let sum = 0;
      let check = 0;
      for (let at = 0, got = WALK_BATCH; got === WALK_BATCH; at = lasts[got - 1] + 1) {
        rcuReadLock();
        got = tree.nextBatch(at, MAX_INDEX, batch);
        rcuReadUnlock();
        for (let i = 0; i < got; i++) {
          sum += lasts[i] - firsts[i] + 1;
          check += vs[i];
        }
      }
      values = check;
      return sum;
    },
    () => {
      const cursor = tree.cursor(0);
      let sum = 0;
      let check = 0;
      while (cursor.find(MAX_INDEX, out) !== 0) {
        sum += out.last - out.first + 1;
        check += out.value;
      }
      values = check;
      return sum;
    },
  ];
  const ms = walkers.map(() => [] as number[]);
  // One collection before the rounds, not one per sample: the walks allocate next to nothing, and
  // a collection leaves the GC's helper threads sweeping (charged to the sample's CPU time) and
  // the caches cold (a walk of 1M entries right after gc() ran 4-5 times slower, for every
  // library). The untimed walks let the sweeping finish.
  gc();
  for (const walk of walkers) walk();
  for (let round = 0; round < rounds; round++) {
    for (let j = 0; j < walkers.length; j++) {
      const w = (round + j) % walkers.length;
      const walk = walkers[w];
      values = valueSum;
      const start = cpuMs();
      let sum = 0;
      for (let r = 0; r < walks; r++) sum += walk();
      ms[w].push(cpuMs() - start);
      if (sum !== bytes * walks || values !== valueSum)
        throw new Error(`bench: iteration ${w} missed entries`);
    }
  }
  bt.clear();
  map.clear();
  tree.destroy();
  const mops = (w: number) => (n * walks) / median(ms[w]) / 1000;
  const id = `sorted_btree.iterate.${label(n)}.mops`;
  report.add(id, mops(0), 'Mops/s');
  report.add(`js_sdsl.iterate.${label(n)}.mops`, mops(1), 'Mops/s', id);
  report.add(`maple.iterate.${label(n)}.mops`, mops(2), 'Mops/s', id);
  report.add(`maple.iterate_cursor.${label(n)}.mops`, mops(3), 'Mops/s', id);
}

/**
 * Lowest and highest fits of 32 pages (page-aligned) from random window starts; the data's own
 * gaps are at most 15 pages, so each search is steered by the gap hints to one of 64 holes of
 * 40 pages punched at random: O(log n) node visits.
 */
async function gapSearch(report: Report, options: BenchOptions, data: Data): Promise<void> {
  const n = data.firsts.length;
  const tree = bulkTree(data);
  const random = prng(11);
  for (let h = 0; h < 64; h++) {
    const at = data.firsts[0] + Math.floor((random() * (data.end - data.firsts[0])) / PAGE) * PAGE;
    tree.store(at, at + 40 * PAGE - 1, 0);
  }
  const starts = queries(data, 13);
  let at = 0;
  const loop = () => {
    let found = 0;
    for (let i = 0; i < 64; i++) {
      at = (at + 1) & (QUERIES - 1);
      const min = starts[at] - (starts[at] % PAGE);
      const lowest = tree.gapLowest(min, data.end * 2, 32 * PAGE, PAGE);
      const highest = tree.gapHighest(0, min, 32 * PAGE, PAGE);
      if (lowest >= 0) found++;
      if (highest >= 0) found++;
    }
    return found;
  };
  gc();
  report.add(`maple.gap_search.${label(n)}.ns`, await nsPerOp(loop, 128, options), 'ns');
  tree.destroy();
}

/** Heap bytes per range of the baselines (after gc), node bytes per range of the tree. */
function memory(report: Report, data: Data): void {
  const n = data.firsts.length;
  const heap = (build: () => unknown): number => {
    gc();
    const before = process.memoryUsage().heapUsed;
    const kept = build();
    gc();
    const bytes = process.memoryUsage().heapUsed - before;
    if (kept === null) throw new Error('unreachable');
    return bytes / n;
  };
  report.add(
    'sorted_btree.bytes_per_range.100k',
    heap(() => sortedBTree(data)),
    'B',
  );
  report.add(
    'js_sdsl.bytes_per_range.100k',
    heap(() => orderedMap(data)),
    'B',
  );
  const tree = bulkTree(data);
  report.add('maple.bytes_per_range_bulk.100k', tree.validate().bytes / n, 'B');
  tree.destroy();
}

// ---- two CPUs ----

/** Phase length of a duty-cycled writer. */
const DUTY_MS = 50;
/** Words of PairArgs.control. */
const READY = 0;
const GO = 1;
const STOP = 2;
/** WRITING while a duty-cycled writer writes, 0 while it spins. */
const PHASE = 3;
const WRITING = 1;

interface PairArgs {
  role: 'maple-reader' | 'maple-writer' | 'rwsem-reader' | 'rwsem-writer';
  tree: MapleTreeDescriptor | null;
  rwsem: LockDescriptor | null;
  firsts: Float64Array;
  lasts: Float64Array;
  end: number;
  /** A maple writer alternates dutyMs of writing with dutyMs of spinning (0: writes throughout). */
  dutyMs: number;
  /** Int32 words READY (count), GO, STOP, PHASE. */
  control: SharedArrayBuffer;
}

interface PairResult {
  operations: number;
  ms: number;
  /** A maple reader's lookups and time while a duty-cycled writer wrote / spun. */
  writingOps: number;
  writingMs: number;
  pausedOps: number;
  pausedMs: number;
}

/** Task of the two-CPU figures. */
export default function pairTask(cpu: number, args: PairArgs): PairResult {
  const control = new Int32Array(args.control);
  const data: Data = { firsts: args.firsts, lasts: args.lasts, values: new Int32Array(0), end: args.end };
  const reader = args.role.endsWith('reader');
  const q = reader ? queries(data, 17 + cpu) : new Float64Array(0);
  const bt = args.role.startsWith('rwsem') ? sortedBTree(data) : null;
  const tree = args.tree ? MapleTree.attach(args.tree, rcuReclaimer) : null;
  const rwsem = args.rwsem ? RwSem.attach(args.rwsem) : null;
  const result: PairResult = { operations: 0, ms: 0, writingOps: 0, writingMs: 0, pausedOps: 0, pausedMs: 0 };
  Atomics.add(control, READY, 1);
  while (Atomics.load(control, GO) === 0) Atomics.wait(control, GO, 0, 50);
  const start = performance.now();
  if (args.role === 'maple-reader') mapleReader(tree!, q, control, result);
  else if (args.role === 'rwsem-reader') result.operations = rwsemReader(bt!, rwsem!, q, control);
  else if (args.role === 'maple-writer') result.operations = mapleWriter(tree!, data, control, args.dutyMs);
  else result.operations = rwsemWriter(bt!, rwsem!, data, control);
  result.ms = performance.now() - start;
  if (tree) {
    tree.releasePreallocated();
    rcuBarrier();
  }
  return result;
}

/**
 * Random lookups in batches of 256, each in its own read section. Each batch is charged to the
 * writer's phase (writing or spinning) when the phase was the same before and after it.
 */
function mapleReader(tree: MapleTree, q: Float64Array, control: Int32Array, result: PairResult): void {
  const out = rangeOut();
  let n = 0;
  let hits = 0;
  let phase = Atomics.load(control, PHASE);
  let before = performance.now();
  while (Atomics.load(control, STOP) === 0) {
    for (let i = 0; i < 256; i++) {
      rcuReadLock();
      if (tree.load(q[(n + i) & (QUERIES - 1)], out) !== 0) hits++;
      rcuReadUnlock();
    }
    n += 256;
    const after = performance.now();
    const phaseAfter = Atomics.load(control, PHASE);
    if (phaseAfter === phase && phase === WRITING) {
      result.writingOps += 256;
      result.writingMs += after - before;
    } else if (phaseAfter === phase) {
      result.pausedOps += 256;
      result.pausedMs += after - before;
    }
    phase = phaseAfter;
    before = after;
  }
  result.operations = hits >= 0 ? n : 0;
}

function rwsemReader(
  bt: InstanceType<typeof BTree<number, number>>,
  rwsem: RwSem,
  q: Float64Array,
  control: Int32Array,
): number {
  const pair: [number, number] = [0, 0];
  let n = 0;
  let hits = 0;
  while (Atomics.load(control, STOP) === 0) {
    for (let i = 0; i < 256; i++) {
      const x = q[(n + i) & (QUERIES - 1)];
      rwsem.downRead();
      const p = bt.getPairOrNextLower(x, pair);
      if (p !== undefined && x <= p[1]) hits++;
      rwsem.upRead();
    }
    n += 256;
  }
  return hits >= 0 ? n : 0;
}

/**
 * Erases a random range and inserts it back, flat out; counts changes. A change that finds the
 * arena full (-ENOMEM: the replaced nodes wait for a grace period, which a reader CPU the host
 * has descheduled holds up: ~30k spare nodes last the writer some ms) waits for its frees
 * (rcuBarrier) and is tried again. With dutyMs > 0, every
 * dutyMs it switches between writing and spinning without touching memory (so that the machine
 * stays in the same state), and publishes which in PHASE.
 */
function mapleWriter(tree: MapleTree, data: Data, control: Int32Array, dutyMs: number): number {
  const random = prng(5);
  const n = data.firsts.length;
  let changes = 0;
  let writing = true;
  let switchAt = performance.now() + dutyMs;
  let spun = 1;
  Atomics.store(control, PHASE, WRITING);
  while (Atomics.load(control, STOP) === 0) {
    if (dutyMs > 0 && performance.now() >= switchAt) {
      writing = !writing;
      switchAt += dutyMs;
      Atomics.store(control, PHASE, writing ? WRITING : 0);
    }
    if (!writing) {
      for (let i = 0; i < 4096; i++) spun = (Math.imul(spun, 31) + 7) | 0;
      continue;
    }
    for (let i = 0; i < 64; i++) {
      const j = Math.floor(random() * n);
      let erased = tree.erase(data.firsts[j]);
      if (erased === -ENOMEM) {
        rcuBarrier();
        erased = tree.erase(data.firsts[j]);
      }
      if (erased <= 0) throw new Error(`bench: writer erase failed: ${erased}`);
      let inserted = tree.insert(data.firsts[j], data.lasts[j], j + 1);
      if (inserted === -ENOMEM) {
        rcuBarrier();
        inserted = tree.insert(data.firsts[j], data.lasts[j], j + 1);
      }
      if (inserted !== 0) throw new Error(`bench: writer insert failed: ${inserted}`);
    }
    changes += 128;
  }
  return spun === 0 ? -1 : changes;
}

function rwsemWriter(
  bt: InstanceType<typeof BTree<number, number>>,
  rwsem: RwSem,
  data: Data,
  control: Int32Array,
): number {
  const random = prng(5);
  const n = data.firsts.length;
  const pair: [number, number] = [0, 0];
  let changes = 0;
  while (Atomics.load(control, STOP) === 0) {
    for (let i = 0; i < 64; i++) {
      const j = Math.floor(random() * n);
      rwsem.downWrite();
      const p = bt.getPairOrNextLower(data.firsts[j], pair);
      if (p === undefined || p[1] < data.firsts[j]) throw new Error('bench: writer lost a range');
      bt.delete(p[0]);
      rwsem.upWrite();
      rwsem.downWrite();
      const q = bt.getPairOrNextLower(data.lasts[j], pair);
      if (q !== undefined && q[1] >= data.firsts[j]) throw new Error('bench: writer overlap');
      bt.set(data.firsts[j], data.lasts[j]);
      rwsem.upWrite();
    }
    changes += 128;
  }
  return changes;
}

/** Runs `roles` on CPUs 0.. together for `ms`; returns each CPU's result. */
async function together(machine: Machine, roles: PairArgs[], ms: number): Promise<PairResult[]> {
  const control = new Int32Array(roles[0].control);
  control.fill(0);
  const task = new URL(import.meta.url);
  const running = Promise.all(roles.map((args, cpu) => machine.run<PairResult>(task, args, [cpu])));
  while (Atomics.load(control, READY) < roles.length) await sleep(5);
  Atomics.store(control, GO, 1);
  Atomics.notify(control, GO);
  await sleep(ms);
  Atomics.store(control, STOP, 1);
  return (await running).map(([result]) => result);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The reader beside a writer, against the reader alone. The machine's speed drifts within
 * seconds (a shared host), so "alone" and "beside" are measured interleaved, not one after the
 * other: the writer alternates DUTY_MS of writing with DUTY_MS of spinning without touching
 * memory, and the reader charges each batch of lookups to the phase it ran in. The ratio is the
 * reader's throughput while the writer writes over its throughput while the writer spins.
 *
 * The same with the writer changing an unrelated tree of the same shape gives what the machine
 * costs (two busy cores, shared caches and memory bandwidth); the rest is what sharing the tree
 * costs: lines the writer dirtied that the reader then misses, whose price depends on where the
 * host runs the two virtual CPUs (measured between 0.76 and 0.98 from one minute to the next).
 * Readers under a continuously writing writer, maple (RCU) against the rwsem-guarded
 * sorted-btree, come last. Each round runs all four; every figure is the median over the rounds.
 */
async function twoCpus(report: Report, options: BenchOptions): Promise<void> {
  const data = makeData(100_000);
  const tree = bulkTree(data);
  const unrelated = bulkTree(data);
  const rwsem = RwSem.create('bench.maple.rwsem');
  const base = {
    firsts: data.firsts,
    lasts: data.lasts,
    end: data.end,
    control: new SharedArrayBuffer(16),
    tree: tree.describe(),
    rwsem: rwsem.describe(),
    dutyMs: 0,
  };
  const rounds = options.quick ? 1 : 3;
  const dutyRunMs = options.quick ? 400 : 2000;
  const runMs = options.quick ? 150 : 300;
  const machine = await Machine.start({ cpus: 2 });
  try {
    const figures: Record<string, number[]> = {
      alone: [],
      unrelated: [],
      beside: [],
      vsUnrelated: [],
      maple: [],
      writes: [],
      underLock: [],
    };
    const mops = (r: PairResult) => r.operations / r.ms / 1000;
    const ratio = (r: PairResult) => r.writingOps / r.writingMs / (r.pausedOps / r.pausedMs);
    for (let round = 0; round < rounds; round++) {
      const [, besideUnrelated] = await together(
        machine,
        [
          { ...base, role: 'maple-writer', tree: unrelated.describe(), dutyMs: DUTY_MS },
          { ...base, role: 'maple-reader' },
        ],
        dutyRunMs,
      );
      const [, beside] = await together(
        machine,
        [
          { ...base, role: 'maple-writer', dutyMs: DUTY_MS },
          { ...base, role: 'maple-reader' },
        ],
        dutyRunMs,
      );
      const [rcuWriter, rcuReader] = await together(
        machine,
        [
          { ...base, role: 'maple-writer' },
          { ...base, role: 'maple-reader' },
        ],
        runMs,
      );
      const [, rwsemReader] = await together(
        machine,
        [
          { ...base, role: 'rwsem-writer' },
          { ...base, role: 'rwsem-reader' },
        ],
        runMs,
      );
      figures.alone.push(beside.pausedOps / beside.pausedMs / 1000);
      figures.unrelated.push(ratio(besideUnrelated));
      figures.beside.push(ratio(beside));
      figures.vsUnrelated.push(ratio(beside) / ratio(besideUnrelated));
      figures.maple.push(mops(rcuReader));
      figures.writes.push(mops(rcuWriter));
      figures.underLock.push(mops(rwsemReader));
    }
    report.add('maple.read_alone.mops', median(figures.alone), 'Mops/s');
    report.add('maple.read_beside_unrelated_writer.ratio', median(figures.unrelated), 'ratio');
    report.add('maple.rcu_read_beside_writer.ratio', median(figures.beside), 'ratio');
    // What sharing the tree with its writer costs, the machine's two-busy-cores cost factored out.
    report.add('maple.rcu_read_beside_writer_vs_unrelated.ratio', median(figures.vsUnrelated), 'ratio');
    report.add('maple.writer_beside_reader.mops', median(figures.writes), 'Mops/s');
    report.add('rwsem_sorted_btree.readers_under_writer.mops', median(figures.underLock), 'Mops/s');
    report.add(
      'maple.readers_under_writer.mops',
      median(figures.maple),
      'Mops/s',
      'rwsem_sorted_btree.readers_under_writer.mops',
    );
    tree.validate();
    unrelated.validate();
  } finally {
    await machine.stop();
  }
  tree.destroy();
  unrelated.destroy();
  rcuBarrier();
}
