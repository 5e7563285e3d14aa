/**
 * Preallocation: after `preallocate(n)`, the next n writes take every node from the reserve, even
 * when the replaced nodes stay allocated until the end (as they do under RCU until a grace period
 * passes), and the reserve asked for n writes stays within what a tree of that size can need —
 * a commit of 1000 erasures on a 1000-entry tree fits the default arena.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Reclaimer } from '../../src/maple/reclaim.js';
import { reserveForStores } from '../../src/maple/reserve.js';
import { MapleTree } from '../../src/maple/tree.js';
import { type Arena, FailureInjector } from '../../src/shm/arena.js';
import { assertSame, bulkArgs, prng, RangeModel, randomRanges } from './model.js';

/** Keeps every retired node allocated until `flush` (a grace period that outlasts the writes). */
class HoldingReclaimer implements Reclaimer {
  private held: number[] = [];
  private arena: Arena | null = null;

  deferFree(arena: Arena, handle: number): void {
    this.arena = arena;
    this.held.push(handle);
  }

  flush(): void {
    for (const handle of this.held) this.arena?.free(handle);
    this.held = [];
  }
}

function newTree(injector: FailureInjector, reclaimer: Reclaimer): MapleTree {
  return MapleTree.create({ injector, reclaimer, poison: true, capacity: 256 });
}

test('a commit of 1000 erasures on a 1000-entry tree preallocates within the default arena', () => {
  const injector = new FailureInjector();
  const reclaimer = new HoldingReclaimer();
  const tree = newTree(injector, reclaimer);
  const model = new RangeModel();
  const PAGE = 4096;
  for (let i = 0; i < 1000; i++) {
    const first = 0x100000000 + i * 8 * PAGE;
    assert.equal(tree.store(first, first + 4 * PAGE - 1, 1 + (i % 2)), 0);
    model.store(first, first + 4 * PAGE - 1, 1 + (i % 2));
  }
  reclaimer.flush();
  assert.equal(tree.preallocate(1000), 0, 'the reserve for 1000 stores fits the arena');
  const reserved = tree.preallocated();
  // At most 3 nodes per level plus a root per store, and 1000 stores leave at most 3000 entries:
  // too few for a tree of 7 levels (>= 2 * 4^5 leaves of >= 3 entries each).
  assert.ok(reserved <= 1000 * (3 * 6 + 1), `reserve of ${reserved} nodes`);
  injector.failAfter(0);
  for (const e of [...model.entries]) {
    assert.equal(tree.store(e.first, e.last, 0), 0);
    model.store(e.first, e.last, 0);
  }
  assert.equal(injector.injected, 0, 'no erasure reached the arena');
  injector.disarm();
  assertSame(tree, model);
  tree.destroy();
  reclaimer.flush();
  assert.equal(tree.arena.live, 0);
});

type Write = (tree: MapleTree, model: RangeModel) => void;

/** Random writes of every kind: narrow and spanning stores, splits of entries, inserts, erases. */
function randomWrite(random: () => number, end: number, value: number): Write {
  const first = Math.floor(random() * end);
  const kind = Math.floor(random() * 6);
  const span = kind === 0 ? Math.floor(random() * end) : kind === 1 ? 0 : Math.floor(random() * 40);
  const last = first + span;
  if (kind === 2) {
    return (tree, model) => {
      assert.equal(tree.insert(first, last, value), model.insert(first, last, value));
    };
  }
  if (kind === 3) {
    return (tree, model) => {
      assert.equal(tree.erase(first), model.erase(first));
    };
  }
  const stored = kind === 4 ? 0 : value;
  return (tree, model) => {
    assert.equal(tree.store(first, last, stored), 0);
    model.store(first, last, stored);
  };
}

test('after preallocate(n), n random writes take no node from the arena', () => {
  const injector = new FailureInjector();
  let grew = 0;
  for (let seed = 0; seed < 40; seed++) {
    const random = prng(seed);
    const reclaimer = new HoldingReclaimer();
    const tree = newTree(injector, reclaimer);
    const model = new RangeModel();
    model.entries = randomRanges(Math.floor(random() * 3000), random, 0, 1 + (seed % 7), seed % 4);
    assert.equal(tree.bulkLoad(bulkArgs(model.entries)), 0);
    const end = (model.entries.at(-1)?.last ?? 1000) + 50;
    for (let batch = 0; batch < 4; batch++) {
      const n = 1 + Math.floor(random() * 80);
      const height = tree.height();
      assert.equal(tree.preallocate(n), 0);
      injector.failAfter(0);
      for (let i = 0; i < n; i++) randomWrite(random, end, 1 + i + 100 * batch)(tree, model);
      assert.equal(injector.injected, 0, `seed ${seed} batch ${batch}: a write reached the arena`);
      injector.disarm();
      if (tree.height() > height) grew++;
      assertSame(tree, model, `seed ${seed} batch ${batch}`);
      reclaimer.flush();
    }
    tree.destroy();
    reclaimer.flush();
    assert.equal(tree.arena.live, 0);
  }
  assert.ok(grew > 0, 'some batches grew the tree');
});

test('a preallocated batch that grows the tree by several levels takes nothing from the arena', () => {
  // Splitting entries adds two slots per store, the fastest a tree can grow; sequential inserts
  // both ways fill nodes completely before they split.
  const patterns: [string, (i: number) => [number, number]][] = [
    ['ascending', (i) => [i * 10, i * 10 + 4]],
    ['descending', (i) => [1e9 - i * 10, 1e9 - i * 10 + 4]],
    ['splitting one entry', (i) => [1e6 + i * 4 + 1, 1e6 + i * 4 + 2]],
  ];
  const injector = new FailureInjector();
  for (const [what, range] of patterns) {
    for (const n of [1, 7, 40, 300, 2500]) {
      const reclaimer = new HoldingReclaimer();
      const tree = newTree(injector, reclaimer);
      const model = new RangeModel();
      if (what === 'splitting one entry') {
        assert.equal(tree.store(1e6, 1e6 + 4 * n + 8, 1), 0);
        model.store(1e6, 1e6 + 4 * n + 8, 1);
      }
      assert.equal(tree.preallocate(n), 0);
      injector.failAfter(0);
      for (let i = 0; i < n; i++) {
        const [first, last] = range(i);
        assert.equal(tree.store(first, last, 2 + i), 0);
        model.store(first, last, 2 + i);
      }
      assert.equal(injector.injected, 0, `${what}, ${n} stores: a store reached the arena`);
      injector.disarm();
      assertSame(tree, model, `${what}, ${n} stores`);
      tree.destroy();
      reclaimer.flush();
      assert.equal(tree.arena.live, 0);
    }
  }
});

test('the bound: 3 nodes per level and a root per store, levels added only as the tree can grow', () => {
  const limit = 2 ** 31;
  // One store: every level of the path split three ways, plus a root when the root may split.
  assert.equal(reserveForStores(1, { height: 3, rootCount: 5, entries: 500 }, limit), 9);
  assert.equal(reserveForStores(1, { height: 3, rootCount: 11, entries: 500 }, limit), 10);
  assert.equal(reserveForStores(1, { height: 1, rootCount: 14, entries: 7 }, limit), 3);
  assert.equal(reserveForStores(1, { height: 1, rootCount: 15, entries: 7 }, limit), 4);
  assert.equal(reserveForStores(1, { height: 0, rootCount: 0, entries: 0 }, limit), 1);
  // 20 stores on 3 levels whose root has 3 children: a 4th level needs the root's children to
  // reach 12 (9 stores); a 5th needs 48 nodes at that level and 384 entries (92 stores).
  assert.equal(reserveForStores(20, { height: 3, rootCount: 3, entries: 200 }, limit), 9 * 9 + 1 + 11 * 12);
  // The old ramp (one more level per store) asked 770.
  // From empty: a root leaf, its split after 8 stores, a third level after 12.
  assert.equal(
    reserveForStores(12, { height: 0, rootCount: 0, entries: 0 }, limit),
    1 + 7 * 3 + 1 + 4 * 6 + 1,
  );
  // 1000 stores on a 1000-entry tree stay below 1000 times the worst store at height 6.
  const big = reserveForStores(1000, { height: 4, rootCount: 2, entries: 1000 }, limit);
  assert.ok(big < 1000 * (3 * 6 + 1), `${big}`);
  assert.ok(
    reserveForStores(1000, { height: 4, rootCount: 2, entries: 1000 }, 5000) > 5000,
    'stops past the limit',
  );
  for (let n = 1; n < 3000; n += 37) {
    const now = { height: 2, rootCount: 4, entries: 40 };
    assert.ok(reserveForStores(n + 1, now, limit) >= reserveForStores(n, now, limit) + 6, 'grows with n');
  }
});
