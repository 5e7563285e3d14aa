/**
 * Allocation failure injected at each node allocation of a write: the write returns -ENOMEM,
 * validate() passes, the contents equal the model before the write and no node leaks; the same
 * write then succeeds once the arena lets it through.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENOMEM } from '../../src/errno.js';
import { MAX_INDEX } from '../../src/maple/layout.js';
import { immediateReclaimer } from '../../src/maple/reclaim.js';
import { MapleTree } from '../../src/maple/tree.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { assertSame, bulkArgs, prng, RangeModel, randomRanges } from './model.js';

interface Write {
  what: string;
  run(tree: MapleTree): number;
  apply(model: RangeModel): number;
}

function store(first: number, last: number, value: number): Write {
  return {
    what: `store(${first}, ${last}, ${value})`,
    run: (tree) => tree.store(first, last, value),
    apply: (model) => {
      model.store(first, last, value);
      return 0;
    },
  };
}

function insert(first: number, last: number, value: number): Write {
  return {
    what: `insert(${first}, ${last}, ${value})`,
    run: (tree) => tree.insert(first, last, value),
    apply: (model) => model.insert(first, last, value),
  };
}

function erase(index: number): Write {
  return { what: `erase(${index})`, run: (tree) => tree.erase(index), apply: (model) => model.erase(index) };
}

/** Fails allocation 0, 1, 2, ... of `write` until it succeeds; returns how many failed. */
function failEachAllocation(
  tree: MapleTree,
  injector: FailureInjector,
  model: RangeModel,
  write: Write,
): number {
  const live = tree.arena.live;
  for (let k = 0; ; k++) {
    injector.failAfter(k);
    const ret = write.run(tree);
    const failed = injector.injected;
    injector.disarm();
    if (ret === -ENOMEM) {
      assert.equal(failed, 1, `${write.what}: ENOMEM without an injected failure`);
      assertSame(tree, model, `${write.what} failing allocation ${k}`);
      assert.equal(tree.arena.live, live, `${write.what} failing allocation ${k} leaked nodes`);
      continue;
    }
    assert.equal(failed, 0, `${write.what}: allocation ${k} failed but the write did not report ENOMEM`);
    assert.equal(ret, write.apply(model), write.what);
    assertSame(tree, model, `${write.what} after success`);
    return k;
  }
}

function newTree(injector: FailureInjector): MapleTree {
  return MapleTree.create({ reclaimer: immediateReclaimer, poison: true, injector, capacity: 256 });
}

test('ENOMEM at every allocation of random stores, inserts and erases leaves the tree unchanged', () => {
  const injector = new FailureInjector();
  let multiLevel = 0;
  for (let seed = 0; seed < 60; seed++) {
    const random = prng(seed);
    const tree = newTree(injector);
    const model = new RangeModel();
    model.entries = randomRanges(Math.floor(random() * 2500), random, 0, 1 + (seed % 9), seed % 5);
    assert.equal(tree.bulkLoad(bulkArgs(model.entries)), 0);
    const end = model.entries.length > 0 ? model.entries[model.entries.length - 1].last + 10 : 1000;
    for (let i = 0; i < 12; i++) {
      const first = Math.floor(random() * end);
      const span = i % 4 === 0 ? Math.floor(random() * end) : Math.floor(random() * 12);
      const last = Math.min(MAX_INDEX, first + span);
      const kind = Math.floor(random() * 4);
      const write =
        kind === 0
          ? store(first, last, 0)
          : kind === 1
            ? insert(first, last, 1 + i)
            : kind === 2
              ? erase(first)
              : store(first, last, 1 + i);
      if (failEachAllocation(tree, injector, model, write) >= 3) multiLevel++;
    }
    tree.destroy();
    assert.equal(tree.arena.live, 0);
  }
  assert.ok(multiLevel > 20, `only ${multiLevel} writes needed 3 or more nodes`);
});

test('ENOMEM while growing the root, filling an empty tree, bulk loading and copying', () => {
  const injector = new FailureInjector();
  const tree = newTree(injector);
  const model = new RangeModel();
  let rootSplits = 0;
  for (let i = 0; i < 600; i++) {
    const height = tree.height();
    failEachAllocation(tree, injector, model, insert(i * 4, i * 4 + 1, i + 1));
    if (tree.height() > height) rootSplits++;
  }
  assert.ok(rootSplits >= 3, `root split ${rootSplits} times`);

  const entries = randomRanges(3000, prng(4));
  const bulk = newTree(injector);
  for (let k = 0; ; k++) {
    injector.failAfter(k);
    const ret = bulk.bulkLoad(bulkArgs(entries));
    injector.disarm();
    if (ret === 0) break;
    assert.equal(ret, -ENOMEM);
    assert.equal(bulk.count(), 0);
    assert.equal(bulk.arena.live, 0);
  }
  const copy = newTree(injector);
  for (let k = 0; ; k++) {
    injector.failAfter(k);
    const ret = copy.copyFrom(bulk);
    injector.disarm();
    if (ret === 0) break;
    assert.equal(ret, -ENOMEM);
    assert.equal(copy.count(), 0);
    assert.equal(copy.arena.live, 0);
  }
  assert.equal(copy.count(), 3000);
  copy.validate();
  for (const t of [tree, bulk, copy]) {
    t.destroy();
    assert.equal(t.arena.live, 0);
  }
});

test('preallocate reports ENOMEM and keeps its reserve as it was', () => {
  const injector = new FailureInjector();
  const tree = newTree(injector);
  tree.bulkLoad(bulkArgs(randomRanges(2000, prng(2))));
  assert.equal(tree.preallocate(1), 0);
  const reserved = tree.preallocated();
  const live = tree.arena.live;
  injector.failAfter(3);
  assert.equal(tree.preallocate(4), -ENOMEM);
  injector.disarm();
  assert.equal(tree.preallocated(), reserved);
  assert.equal(tree.arena.live, live);
  tree.destroy();
  assert.equal(tree.arena.live, 0);
});
