/**
 * Cases of the kinds Linux's maple-tree test suite covers: overlapping, adjacent and nested
 * stores; sequential inserts both ways forcing splits; erasures merging gaps; stores spanning
 * nodes and levels; gap search in windows until EBUSY; iterator edges; duplication and bulk
 * build of trees of every height; argument errors; preallocation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EBUSY, EEXIST, EINVAL } from '../../src/errno.js';
import { rangeOut } from '../../src/maple/api.js';
import { MAX_INDEX } from '../../src/maple/layout.js';
import { immediateReclaimer } from '../../src/maple/reclaim.js';
import { MapleTree, type MapleTreeOptions } from '../../src/maple/tree.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { assertSame, bulkArgs, prng, RangeModel, randomRanges, treeEntries } from './model.js';

const PAGE = 4096;

function newTree(options: MapleTreeOptions = {}): MapleTree {
  return MapleTree.create({
    reclaimer: immediateReclaimer,
    poison: true,
    capacity: 256,
    maxCapacity: 1 << 16,
    ...options,
  });
}

function both(tree: MapleTree, model: RangeModel, first: number, last: number, value: number): void {
  assert.equal(tree.store(first, last, value), 0);
  model.store(first, last, value);
}

function teardown(tree: MapleTree): void {
  tree.destroy();
  assert.equal(tree.arena.live, 0, 'nodes leaked');
}

test('an empty tree is one gap over the whole index space', () => {
  const tree = newTree();
  const out = rangeOut();
  assert.equal(tree.load(12345, out), 0);
  assert.deepEqual(out, { first: 0, last: MAX_INDEX, value: 0 });
  assert.equal(tree.next(0, MAX_INDEX, out), 0);
  assert.equal(tree.prev(MAX_INDEX, 0, out), 0);
  assert.equal(tree.gapLowest(0, MAX_INDEX, 10, 1), 0);
  assert.equal(tree.gapHighest(0, MAX_INDEX, 10, 1), MAX_INDEX - 9);
  assert.equal(tree.gapHighest(0, MAX_INDEX, 10, PAGE), Math.floor((MAX_INDEX - 9) / PAGE) * PAGE);
  assert.equal(tree.erase(5), 0);
  assert.equal(tree.store(5, 10, 0), 0);
  assert.equal(tree.count(), 0);
  assert.equal(tree.height(), 0);
  assert.equal(tree.validate().nodes, 0);
  assert.equal(tree.arena.live, 0);
});

test('a tree emptied by its last erase counts zero and frees its root', () => {
  const tree = newTree();
  assert.equal(tree.insert(0, 13, 1), 0);
  assert.equal(tree.erase(0), 1);
  assert.equal(tree.count(), 0);
  assert.equal(tree.height(), 0);
  assert.equal(tree.insert(MAX_INDEX - 3, MAX_INDEX, 2), 0);
  assert.equal(tree.store(0, MAX_INDEX, 0), 0);
  assert.equal(tree.count(), 0);
  tree.validate();
  assert.equal(tree.arena.live, 0);
});

test('overlapping, adjacent and nested stores split and replace their neighbours', () => {
  const tree = newTree();
  const model = new RangeModel();
  both(tree, model, 100, 199, 1);
  both(tree, model, 200, 299, 2); // adjacent on the right
  both(tree, model, 50, 99, 3); // adjacent on the left
  assertSame(tree, model, 'adjacent');
  both(tree, model, 150, 249, 4); // overlaps two entries
  assertSame(tree, model, 'overlap');
  both(tree, model, 160, 170, 5); // nested inside
  both(tree, model, 165, 165, 6); // nested inside the nested one
  assertSame(tree, model, 'nested');
  both(tree, model, 40, 310, 7); // covers everything
  assertSame(tree, model, 'covering');
  assert.equal(tree.count(), 1);
  both(tree, model, 100, 200, 0); // punches a hole
  assertSame(tree, model, 'hole');
  assert.equal(tree.insert(150, 160, 8), 0);
  model.insert(150, 160, 8);
  assert.equal(tree.insert(99, 150, 9), -EEXIST);
  assert.equal(tree.insert(160, 161, 9), -EEXIST);
  assertSame(tree, model, 'after EEXIST');
  for (const index of [39, 40, 99, 100, 149, 150, 160, 161, 200, 201, 310, 311]) {
    const out = rangeOut();
    const value = tree.load(index, out);
    assert.deepEqual({ ...out, value }, model.load(index), `load(${index})`);
  }
  teardown(tree);
});

test('ascending and descending sequential inserts split nodes up to several levels', () => {
  for (const descending of [false, true]) {
    const tree = newTree();
    const model = new RangeModel();
    const n = 6000;
    for (let i = 0; i < n; i++) {
      const slot = descending ? n - 1 - i : i;
      const first = (1000 + slot * 3) * PAGE;
      assert.equal(tree.insert(first, first + 2 * PAGE - 1, i + 1), 0);
      model.insert(first, first + 2 * PAGE - 1, i + 1);
      if (i % 500 === 0) assertSame(tree, model, `after ${i} inserts`);
    }
    assertSame(tree, model, descending ? 'descending' : 'ascending');
    const shape = tree.validate();
    assert.ok(shape.height >= 3, `height ${shape.height}`);
    // Sequential inserts pack nodes: 2 slots per range (entry and gap) at >= 10 slots per leaf.
    assert.ok(shape.leaves <= Math.ceil((2 * n + 1) / 10), `${shape.leaves} leaves for ${n} ranges`);
    teardown(tree);
  }
});

test('erasures merge the gaps around them', () => {
  const tree = newTree();
  const model = new RangeModel();
  for (let i = 0; i < 400; i++) both(tree, model, i * 10, i * 10 + 4, i + 1);
  for (let i = 1; i < 400; i += 2) {
    assert.equal(tree.erase(i * 10 + 2), i + 1);
    model.erase(i * 10 + 2);
  }
  assertSame(tree, model, 'every other erased');
  const out = rangeOut();
  assert.equal(tree.load(17, out), 0);
  assert.deepEqual([out.first, out.last], [5, 19], 'the gap spans the erased entry and both gaps beside it');
  // Erase the rest from the middle outwards: everything merges into one gap.
  for (let i = 0; i < 400; i += 2) {
    assert.equal(tree.erase(i * 10), i + 1);
    model.erase(i * 10);
    if (i % 40 === 0) assertSame(tree, model, `erasing ${i}`);
  }
  assertSame(tree, model, 'all erased');
  assert.equal(tree.height(), 0);
  assert.equal(tree.arena.live, 0);
});

test("erasing a leaf's last entry hands its gap to the sibling, which keeps its record", () => {
  const tree = newTree();
  const model = new RangeModel();
  // One-page entries with one-page gaps: every leaf ends with an entry and starts with a gap.
  for (let i = 0; i < 200; i++) both(tree, model, (2 * i + 1) * PAGE, (2 * i + 2) * PAGE - 1, i + 1);
  const rebuilt = new Map<string, number>();
  for (let i = 0; i < 200; i += 3) {
    const before = tree.arena.stats();
    assert.equal(tree.erase((2 * i + 1) * PAGE), i + 1);
    model.erase((2 * i + 1) * PAGE);
    const after = tree.arena.stats();
    const key = `${after.allocs - before.allocs} new / ${after.frees - before.frees} freed`;
    rebuilt.set(key, (rebuilt.get(key) ?? 0) + 1);
    tree.validate();
  }
  assertSame(tree, model, 'every third erased');
  // A leaf's last entry: the leaf and its parent are rebuilt, the sibling is neither copied nor
  // freed (taking the sibling in would build two leaves and a parent: 3 new / 3 freed).
  assert.ok((rebuilt.get('2 new / 2 freed') ?? 0) > 0, `${[...rebuilt]}`);
  assert.equal(rebuilt.get('3 new / 3 freed'), undefined, `${[...rebuilt]}`);
  teardown(tree);
});
test('stores spanning several nodes and levels rebuild only the edges', () => {
  const random = prng(7);
  for (const [from, to] of [
    [0.1, 0.3],
    [0.45, 0.55],
    [0, 1],
    [0.2, 0.9],
  ]) {
    const tree = newTree();
    const model = new RangeModel();
    model.entries = randomRanges(3000, random, 0, 8, 8);
    assert.equal(tree.bulkLoad(bulkArgs(model.entries)), 0);
    const end = model.entries[model.entries.length - 1].last;
    const first = Math.floor(end * from);
    const last = Math.floor(end * to);
    both(tree, model, first, last, 77);
    assertSame(tree, model, `store [${first}, ${last}]`);
    both(tree, model, first + 1, last - 1, 0);
    assertSame(tree, model, `erase [${first + 1}, ${last - 1}]`);
    both(tree, model, 0, MAX_INDEX, 0);
    assertSame(tree, model, 'erase everything');
    assert.equal(tree.height(), 0);
    assert.equal(tree.arena.live, 0);
  }
  const tree = newTree();
  const model = new RangeModel();
  model.entries = randomRanges(2000, random);
  tree.bulkLoad(bulkArgs(model.entries));
  both(tree, model, 0, MAX_INDEX, 5);
  assertSame(tree, model, 'one entry over everything');
  assert.equal(tree.validate().nodes, 1);
  teardown(tree);
});

test('gap search in windows, repeated until EBUSY, matches the model', () => {
  for (const highest of [false, true]) {
    for (const align of [1, PAGE, 3 * PAGE]) {
      const tree = newTree();
      const model = new RangeModel();
      model.entries = randomRanges(300, prng(align + (highest ? 1 : 0)), 64 * PAGE, 4 * PAGE, 6 * PAGE).map(
        (e) => ({ ...e, first: e.first - (e.first % PAGE), last: e.last - (e.last % PAGE) + PAGE - 1 }),
      );
      model.entries = model.entries.filter((e, i, all) => i === 0 || e.first > all[i - 1].last);
      assert.equal(tree.bulkLoad(bulkArgs(model.entries)), 0);
      const min = 80 * PAGE + 7;
      const max = model.entries[150].last + 123;
      const size = 2 * PAGE;
      let placed = 0;
      for (;;) {
        const got = highest ? tree.gapHighest(min, max, size, align) : tree.gapLowest(min, max, size, align);
        const want = highest
          ? model.gapHighest(min, max, size, align)
          : model.gapLowest(min, max, size, align);
        assert.equal(got, want, `search ${placed}`);
        if (got === -EBUSY) break;
        assert.ok(got >= min && got + size - 1 <= max && got % align === 0);
        assert.equal(tree.insert(got, got + size - 1, 1000 + placed), 0);
        model.insert(got, got + size - 1, 1000 + placed);
        placed++;
      }
      assert.ok(placed > 10, `placed ${placed}`);
      assertSame(tree, model, 'after filling the window');
      teardown(tree);
    }
  }
});

test('gap search hints: sizes larger than any gap give EBUSY, the largest gap is found', () => {
  const tree = newTree();
  const model = new RangeModel();
  model.entries = randomRanges(5000, prng(3), 0, 5, 5);
  tree.bulkLoad(bulkArgs(model.entries));
  const end = model.entries[model.entries.length - 1].last;
  both(tree, model, 20000, 20099, 0); // one gap of 100 (plus neighbouring gaps) in the middle
  const shape = tree.validate();
  const widest = Math.max(
    ...model
      .gaps()
      .filter((g) => g.last < end)
      .map((g) => g.last - g.first + 1),
  );
  assert.equal(tree.gapLowest(0, end, widest + 1, 1), -EBUSY);
  assert.equal(tree.gapLowest(0, end, widest, 1), model.gapLowest(0, end, widest, 1));
  assert.equal(tree.gapHighest(0, end, widest, 1), model.gapHighest(0, end, widest, 1));
  assert.equal(shape.largestGap, MAX_INDEX - end);
  teardown(tree);
});

test('iterators at the edges of the index space and of windows', () => {
  const tree = newTree();
  const out = rangeOut();
  assert.equal(tree.store(0, 0, 1), 0);
  assert.equal(tree.store(MAX_INDEX, MAX_INDEX, 2), 0);
  assert.equal(tree.store(100, 200, 3), 0);
  const cursor = tree.cursor(0);
  assert.equal(cursor.find(MAX_INDEX, out), 1);
  assert.deepEqual(out, { first: 0, last: 0, value: 1 });
  assert.equal(cursor.find(99, out), 0, 'window ends before the next entry');
  assert.equal(cursor.find(100, out), 3, 'window ends on the first index of the next entry');
  assert.equal(cursor.find(MAX_INDEX, out), 2);
  assert.equal(cursor.position, MAX_INDEX + 1);
  assert.equal(cursor.find(MAX_INDEX, out), 0, 'past the end');
  assert.equal(cursor.find(MAX_INDEX, out), 0, 'still past the end');
  assert.equal(cursor.findRev(0, out), 2, 'backwards from past the end');
  assert.equal(cursor.findRev(201, out), 0, 'window starts after the previous entry');
  assert.equal(cursor.findRev(200, out), 3);
  assert.equal(cursor.findRev(0, out), 1);
  assert.equal(cursor.position, -1);
  assert.equal(cursor.findRev(0, out), 0, 'before the start');
  cursor.reset(150);
  assert.equal(cursor.find(150, out), 3, 'starting inside an entry returns it');
  assert.equal(tree.next(201, MAX_INDEX - 1, out), 0, 'next: entry beyond max');
  assert.equal(tree.next(201, MAX_INDEX, out), 2);
  assert.equal(tree.prev(99, 1, out), 0, 'prev: entry below min');
  assert.equal(tree.prev(99, 0, out), 1);
  assert.equal(tree.prev(MAX_INDEX, MAX_INDEX, out), 2);
  assert.equal(tree.load(MAX_INDEX, out), 2);
  assert.equal(tree.load(1, out), 0);
  assert.deepEqual([out.first, out.last], [1, 99]);
  assert.throws(() => cursor.reset(-2), /EINVAL/);
  teardown(tree);
});

test('a cursor survives writes between its calls', () => {
  const tree = newTree();
  const model = new RangeModel();
  model.entries = randomRanges(2000, prng(11));
  tree.bulkLoad(bulkArgs(model.entries));
  const out = rangeOut();
  const cursor = tree.cursor(0);
  const seen: number[] = [];
  for (let i = 0; cursor.find(MAX_INDEX, out) !== 0; i++) {
    seen.push(out.first);
    // Erase an entry well ahead, and overwrite the next one in place.
    const ahead = model.entries[Math.min(model.entries.length - 1, i * 2 + 40)];
    if (i % 3 === 0 && model.at(ahead.first)) {
      assert.equal(tree.erase(ahead.first), model.erase(ahead.first));
    }
    const next = model.next(out.last + 1, MAX_INDEX);
    if (next) both(tree, model, next.first, next.last, next.value + 1);
  }
  assert.deepEqual(
    seen,
    [...new Set(seen)].sort((a, b) => a - b),
    'strictly increasing',
  );
  for (const e of model.entries)
    assert.ok(seen.includes(e.first), `entry ${e.first} never erased must be seen`);
  teardown(tree);
});

test('duplicating trees of every height gives equal, independent trees', () => {
  const arena = MapleTree.createArena({ capacity: 256, maxCapacity: 1 << 16, poison: true });
  const sizes = [0, 1, 7, 40, 500, 6000];
  const heights = new Set<number>();
  for (const n of sizes) {
    const source = newTree({ arena });
    const model = new RangeModel();
    model.entries = randomRanges(n, prng(n));
    assert.equal(source.bulkLoad(bulkArgs(model.entries)), 0);
    if (n > 0) both(source, model, model.entries[0].first, model.entries[0].last, 123); // a non-bulk change
    const copy = newTree({ arena });
    assert.equal(copy.copyFrom(source), 0);
    assertSame(copy, model, `copy of ${n}`);
    heights.add(copy.height());
    assert.equal(copy.height(), source.height());
    both(copy, model.clone(), 0, MAX_INDEX, 9);
    assertSame(source, model, 'the source is unchanged by changes to the copy');
    assert.equal(copy.copyFrom(source), -EEXIST);
    copy.destroy();
    source.destroy();
  }
  assert.deepEqual([...heights].sort(), [0, 1, 2, 3, 4]);
  assert.equal(arena.live, 0);
});

test('bulk build equals inserting one by one and rejects bad input', () => {
  const model = new RangeModel();
  model.entries = randomRanges(3000, prng(5));
  const bulk = newTree();
  const single = newTree();
  assert.equal(bulk.bulkLoad(bulkArgs(model.entries)), 0);
  for (const e of model.entries) assert.equal(single.insert(e.first, e.last, e.value), 0);
  assertSame(bulk, model, 'bulk');
  assertSame(single, model, 'single');
  assert.ok(bulk.validate().nodes <= single.validate().nodes, 'bulk packs at least as densely');
  assert.equal(bulk.bulkLoad(bulkArgs(model.entries)), -EEXIST);
  teardown(bulk);
  teardown(single);
  const empty = newTree();
  const overlapping = { firsts: [0, 5], lasts: [5, 9], values: [1, 2] };
  const unsorted = { firsts: [10, 0], lasts: [12, 2], values: [1, 2] };
  const badValue = { firsts: [0], lasts: [1], values: [0] };
  const ragged = { firsts: [0, 4], lasts: [1], values: [1] };
  for (const bad of [overlapping, unsorted, badValue, ragged]) assert.equal(empty.bulkLoad(bad), -EINVAL);
  assert.equal(empty.count(), 0);
  assert.equal(empty.height(), 0);
});

test('bad arguments give EINVAL and change nothing', () => {
  const tree = newTree();
  const model = new RangeModel();
  both(tree, model, 10, 20, 1);
  const out = rangeOut();
  const calls: [string, () => number][] = [
    ['store first > last', () => tree.store(5, 4, 1)],
    ['store negative', () => tree.store(-1, 4, 1)],
    ['store beyond MAX_INDEX', () => tree.store(0, MAX_INDEX + 1, 1)],
    ['store fraction', () => tree.store(1.5, 4, 1)],
    ['store negative value', () => tree.store(0, 4, -3)],
    ['store value beyond Int32', () => tree.store(0, 4, 2 ** 31)],
    ['insert value 0', () => tree.insert(0, 4, 0)],
    ['erase NaN', () => tree.erase(Number.NaN)],
    ['load negative', () => tree.load(-1, out)],
    ['next max NaN', () => tree.next(0, Number.NaN, out)],
    ['prev fraction', () => tree.prev(0.5, 0, out)],
    ['gap size 0', () => tree.gapLowest(0, 100, 0, 1)],
    ['gap align 0', () => tree.gapHighest(0, 100, 1, 0)],
    ['gap min > max', () => tree.gapLowest(100, 0, 1, 1)],
    ['preallocate -1', () => tree.preallocate(-1)],
  ];
  for (const [what, call] of calls) assert.equal(call(), -EINVAL, what);
  assert.equal(tree.copyFrom(tree), -EINVAL);
  assertSame(tree, model);
  teardown(tree);
});

test('after preallocate, stores do not allocate', () => {
  const injector = new FailureInjector();
  const tree = newTree({ injector });
  const model = new RangeModel();
  model.entries = randomRanges(4000, prng(9));
  tree.bulkLoad(bulkArgs(model.entries));
  const random = prng(10);
  for (let round = 0; round < 20; round++) {
    const stores = 1 + (round % 4);
    assert.equal(tree.preallocate(stores), 0);
    const reserved = tree.preallocated();
    injector.failAfter(0); // the arena now fails its next allocation
    for (let i = 0; i < stores; i++) {
      const first = Math.floor(random() * 40000);
      const last = first + Math.floor(random() * (round % 5 === 0 ? 20000 : 30));
      both(tree, model, first, last, i % 2 === 0 ? 0 : 1 + round);
    }
    assert.equal(injector.injected, 0, 'no allocation reached the arena');
    injector.disarm();
    assert.ok(tree.preallocated() <= reserved);
    assertSame(tree, model, `round ${round}`);
  }
  const live = tree.arena.live;
  const left = tree.preallocated();
  tree.releasePreallocated();
  assert.equal(tree.arena.live, live - left);
  teardown(tree);
});

test('a tree attached from its descriptor shares the same nodes', () => {
  const tree = newTree();
  const model = new RangeModel();
  model.entries = randomRanges(500, prng(12));
  tree.bulkLoad(bulkArgs(model.entries));
  const other = MapleTree.attach(tree.describe(), immediateReclaimer);
  assert.deepEqual(treeEntries(other), model.entries);
  assert.equal(other.store(0, 10, 4), 0);
  model.store(0, 10, 4);
  assertSame(tree, model, 'a write through one view is seen through the other');
  other.destroy();
  assert.equal(tree.count(), 0);
  assert.equal(tree.arena.live, 0);
});
