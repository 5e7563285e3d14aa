/**
 * Batch iteration (`nextBatch`): every entry exactly once and in order, on empty, one-leaf and deep
 * trees, from any start and within any window, whatever the batch capacity; the reference
 * ArrayRangeIndex agrees; a walk resumed after writes between its calls sees the tree as it is
 * (in-place value changes without a SEQ move, structural changes with one). The walk beside a
 * writer on other CPUs is in concurrent.test.ts (tasks/churn.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EINVAL } from '../../src/errno.js';
import { rangeBatch } from '../../src/maple/api.js';
import { MAX_INDEX } from '../../src/maple/layout.js';
import { immediateReclaimer } from '../../src/maple/reclaim.js';
import { MapleTree } from '../../src/maple/tree.js';
import { ArrayRangeIndex } from '../support/array-range-index.js';
import { batchEntries, bulkArgs, type Entry, prng, RangeModel, randomRanges, treeEntries } from './model.js';

function newTree(): MapleTree {
  return MapleTree.create({
    reclaimer: immediateReclaimer,
    poison: true,
    capacity: 256,
    maxCapacity: 1 << 16,
  });
}

function teardown(tree: MapleTree): void {
  tree.destroy();
  assert.equal(tree.arena.live, 0, 'nodes leaked');
}

function inWindow(entries: Entry[], from: number, max: number): Entry[] {
  return entries.filter((e) => e.last >= from && e.first <= max);
}

/** An ArrayRangeIndex holding the model's entries. */
class ArrayRangeIndexOf extends ArrayRangeIndex {
  constructor(model: RangeModel) {
    super();
    for (const e of model.entries) this.store(e.first, e.last, e.value);
  }
}

test('an empty tree gives no entries, from anywhere', () => {
  const tree = newTree();
  const batch = rangeBatch(8);
  assert.equal(tree.nextBatch(0, MAX_INDEX, batch), 0);
  assert.equal(tree.nextBatch(12345, 20000, batch), 0);
  assert.equal(tree.nextBatch(MAX_INDEX, MAX_INDEX, batch), 0);
  assert.equal(tree.nextBatch(MAX_INDEX + 1, MAX_INDEX, batch), 0);
  assert.deepEqual(batchEntries(new ArrayRangeIndex(), 3), []);
  // Emptied by erasing everything: the kept position of an earlier walk must not be used.
  assert.equal(tree.store(10, 19, 1), 0);
  assert.equal(tree.store(30, 39, 2), 0);
  assert.equal(tree.nextBatch(0, MAX_INDEX, rangeBatch(1)), 1);
  assert.equal(tree.erase(10), 1);
  assert.equal(tree.erase(30), 2);
  assert.equal(tree.nextBatch(20, MAX_INDEX, rangeBatch(1)), 0);
  teardown(tree);
});

test('a one-leaf tree: every capacity, start and window', () => {
  const tree = newTree();
  const entries = randomRanges(7, prng(3), 100, 5, 4);
  assert.equal(tree.bulkLoad(bulkArgs(entries)), 0);
  assert.equal(tree.height(), 1);
  const end = entries[entries.length - 1].last + 3;
  for (let capacity = 1; capacity <= 14; capacity++) {
    assert.deepEqual(batchEntries(tree, capacity), entries, `capacity ${capacity}`);
    for (let from = 95; from <= end; from += 3) {
      for (const span of [0, 1, 4, 17, MAX_INDEX]) {
        const max = Math.min(MAX_INDEX, from + span);
        assert.deepEqual(
          batchEntries(tree, capacity, from, max),
          inWindow(entries, from, max),
          `capacity ${capacity} from ${from} to ${max}`,
        );
      }
    }
  }
  teardown(tree);
});

test('a start inside an entry gives that entry whole; windows end mid-leaf; the top of the index space', () => {
  const tree = newTree();
  const model = new RangeModel();
  for (const [first, last, value] of [
    [0, 0, 1],
    [5, 9, 2],
    [10, 10, 3],
    [20, 40, 4],
    [MAX_INDEX - 10, MAX_INDEX, 5],
  ]) {
    assert.equal(tree.store(first, last, value), 0);
    model.store(first, last, value);
  }
  const batch = rangeBatch(2);
  assert.equal(tree.nextBatch(7, MAX_INDEX, batch), 2);
  assert.deepEqual([batch.firsts[0], batch.lasts[0], batch.values[0]], [5, 9, 2]);
  assert.deepEqual([batch.firsts[1], batch.lasts[1], batch.values[1]], [10, 10, 3]);
  assert.equal(tree.nextBatch(11, 19, batch), 0, 'a window inside a gap');
  assert.equal(tree.nextBatch(11, 20, batch), 1, 'a window ending on the first index of an entry');
  assert.equal(tree.nextBatch(30, 25, batch), 1, 'index past max: the entry holding index starts before max');
  assert.deepEqual([batch.firsts[0], batch.lasts[0]], [20, 40]);
  assert.equal(tree.nextBatch(MAX_INDEX, MAX_INDEX, batch), 1);
  assert.equal(batch.lasts[0] + 1, MAX_INDEX + 1);
  assert.equal(tree.nextBatch(MAX_INDEX + 1, MAX_INDEX, batch), 0, 'past the end of the index space');
  for (let capacity = 1; capacity <= 6; capacity++) {
    assert.deepEqual(batchEntries(tree, capacity), model.entries);
    assert.deepEqual(batchEntries(new ArrayRangeIndexOf(model), capacity), model.entries);
  }
  teardown(tree);
});

test('bad arguments give EINVAL', () => {
  const tree = newTree();
  assert.equal(tree.store(5, 9, 2), 0);
  const batch = rangeBatch(4);
  assert.equal(tree.nextBatch(-1, 10, batch), -EINVAL);
  assert.equal(tree.nextBatch(1.5, 10, batch), -EINVAL);
  assert.equal(tree.nextBatch(2 ** 53 + 2, MAX_INDEX, batch), -EINVAL);
  assert.equal(tree.nextBatch(0, -1, batch), -EINVAL);
  assert.equal(tree.nextBatch(0, MAX_INDEX + 1, batch), -EINVAL);
  const short = { firsts: new Float64Array(4), lasts: new Float64Array(3), values: new Int32Array(4) };
  assert.equal(tree.nextBatch(0, 10, short), -EINVAL);
  assert.throws(() => rangeBatch(0), RangeError);
  teardown(tree);
});

test('deep trees after random writes: the tree, the cursor and the reference index agree', () => {
  for (const seed of [1, 2, 3]) {
    const random = prng(seed);
    const tree = newTree();
    const reference = new ArrayRangeIndex();
    const entries = randomRanges(20_000, random, 0, 8, 6);
    assert.equal(tree.bulkLoad(bulkArgs(entries)), 0);
    for (const e of entries) reference.store(e.first, e.last, e.value);
    const end = entries[entries.length - 1].last;
    // Random stores, erasures and holes, so that nodes are of every fill and the tree unbalanced.
    for (let i = 0; i < 1500; i++) {
      const first = Math.floor(random() * end);
      const last = first + Math.floor(random() * (random() < 0.05 ? 400 : 12));
      const value = random() < 0.3 ? 0 : 1 + Math.floor(random() * 1e6);
      assert.equal(tree.store(first, last, value), 0);
      reference.store(first, last, value);
    }
    const shape = tree.validate();
    assert.ok(shape.height >= 4, `height ${shape.height}`);
    const all = treeEntries(tree);
    assert.equal(all.length, tree.count());
    for (const capacity of [1, 7, 64, 1000]) {
      assert.deepEqual(batchEntries(tree, capacity), all, `seed ${seed} capacity ${capacity}`);
    }
    assert.deepEqual(batchEntries(reference, 33), all, 'the reference index');
    for (let i = 0; i < 200; i++) {
      const from = Math.floor(random() * (end + 10));
      const max = random() < 0.2 ? MAX_INDEX : from + Math.floor(random() * 3000);
      const capacity = 1 + Math.floor(random() * 40);
      const want = inWindow(all, from, max);
      assert.deepEqual(batchEntries(tree, capacity, from, max), want, `from ${from} to ${max}`);
      assert.deepEqual(
        batchEntries(reference, capacity, from, max),
        want,
        `reference from ${from} to ${max}`,
      );
    }
    teardown(tree);
  }
});

test('a walk with writes between its calls sees each part of the tree as it is when read', () => {
  for (const seed of [7, 8, 9, 10]) {
    const random = prng(seed);
    const tree = newTree();
    const model = new RangeModel();
    model.entries = randomRanges(3000, random, 0, 6, 4);
    assert.equal(tree.bulkLoad(bulkArgs(model.entries)), 0);
    const end = model.entries[model.entries.length - 1].last;
    const batch = rangeBatch(1 + Math.floor(random() * 9));
    const capacity = batch.firsts.length;
    const seen: Entry[] = [];
    let expected: Entry[] = [];
    for (let at = 0, n = capacity; n === capacity; at = batch.lasts[n - 1] + 1) {
      // Every entry from `at` on, as the tree holds them now, is what the rest of the walk must see.
      expected = model.entries.filter((e) => e.last >= at);
      n = tree.nextBatch(at, MAX_INDEX, batch);
      for (let i = 0; i < n; i++) {
        const e = { first: batch.firsts[i], last: batch.lasts[i], value: batch.values[i] };
        assert.deepEqual(e, expected[i], `seed ${seed}: entry ${seen.length} from ${at}`);
        seen.push(e);
      }
      if (n < capacity) {
        assert.equal(n, expected.length, `seed ${seed}: the walk ended early`);
        break;
      }
      // A write ahead of the walk, behind it, or over where it stopped.
      const next = batch.lasts[n - 1] + 1;
      const op = random();
      const near = next + Math.floor((random() - 0.3) * 60);
      const first = Math.max(0, Math.min(end, near));
      const last = first + Math.floor(random() * 8);
      if (op < 0.3) {
        // Same range, new value: one word in place (SEQ does not move) when it is an entry.
        const e = model.at(first);
        if (e) {
          assert.equal(tree.store(e.first, e.last, e.value + 1), 0);
          model.store(e.first, e.last, e.value + 1);
        }
      } else if (op < 0.6) {
        assert.equal(tree.erase(first), model.erase(first));
      } else {
        const value = random() < 0.2 ? 0 : 1 + Math.floor(random() * 1e6);
        assert.equal(tree.store(first, last, value), 0);
        model.store(first, last, value);
      }
    }
    tree.validate();
    assert.ok(seen.length > 2000, `seed ${seed}: saw ${seen.length}`);
    teardown(tree);
  }
});
