/**
 * The page index (src/fs/page-index.ts) on one CPU: inserts, lookups, erases and gang lookups
 * across every tree height up to the largest key, growth and root shrinking, -EEXIST and -ENOMEM
 * (injected at every node allocation of an insert) leaving the index exactly as it was, a seeded
 * model-based run against a Map, and every node freed after a grace period.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EEXIST, ENOMEM } from '../../src/errno.js';
import { FILE_CACHE_HEIGHT, FILE_CACHE_ROOT, FileTable } from '../../src/fs/file-table.js';
import { checkPageIndex, MAX_PAGE_INDEX } from '../../src/fs/page-index.js';
import { Rng } from '../../src/rng.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { entries, erase, insert, lookup, nextPresent } from './index-util.js';

function table(injector?: FailureInjector): { files: FileTable; id: number } {
  const files = FileTable.create({ injector });
  const id = files.add({ size: 0, writable: true, name: 'index' });
  return { files, id };
}

function height(files: FileTable, id: number): number {
  return files.words[files.word(id, FILE_CACHE_HEIGHT)];
}

function assertSound(files: FileTable, id: number): void {
  assert.equal(checkPageIndex(files, id), undefined);
}

test('insert, lookup and erase at every height, up to the largest page index', () => {
  const { files, id } = table();
  const keys = [0, 1, 63, 64, 4095, 4096, 262_143, 262_144, 2 ** 24, 2 ** 30 - 1, 2 ** 31, MAX_PAGE_INDEX];
  const heights = [1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6];
  for (const [k, key] of keys.entries()) {
    assert.equal(insert(files, id, key, k + 100), 0);
    assert.equal(height(files, id), heights[k], `height after inserting ${key}`);
    assertSound(files, id);
  }
  assert.equal(files.nrpages(id), keys.length);
  for (const [k, key] of keys.entries()) assert.equal(lookup(files, id, key), k + 100);
  for (const absent of [2, 65, 4097, 2 ** 31 + 1, MAX_PAGE_INDEX - 1])
    assert.equal(lookup(files, id, absent), 0);
  assert.deepEqual(
    entries(files, id).map(([i]) => i),
    keys,
  );
  // Erase from the top: the root comes back down as the high keys go.
  for (let k = keys.length - 1; k >= 0; k--) {
    assert.equal(erase(files, id, keys[k]), k + 100);
    assert.equal(erase(files, id, keys[k]), 0, 'a second erase finds nothing');
    assertSound(files, id);
    assert.equal(height(files, id), k === 0 ? 0 : heights[k - 1], `height after erasing ${keys[k]}`);
  }
  assert.equal(files.words[files.word(id, FILE_CACHE_ROOT)], 0);
  assert.equal(files.nrpages(id), 0);
  rcuBarrier();
  assert.equal(files.cacheNodes.live, 0, 'every node freed after a grace period');
  files.put(id);
});

test('the root shrinks when only its first child is left, and grows again', () => {
  const { files, id } = table();
  insert(files, id, 5, 1);
  insert(files, id, 1 << 20, 2);
  assert.equal(height(files, id), 4);
  erase(files, id, 1 << 20);
  assert.equal(height(files, id), 1, 'back to a single leaf');
  assertSound(files, id);
  assert.equal(lookup(files, id, 5), 1);
  insert(files, id, 70, 3);
  assert.equal(height(files, id), 2);
  erase(files, id, 5);
  assert.equal(height(files, id), 2, 'key 70 needs two levels: no shrink');
  assertSound(files, id);
  erase(files, id, 70);
  rcuBarrier();
  assert.equal(files.cacheNodes.live, 0);
  files.put(id);
});

test('an occupied slot is -EEXIST and changes nothing', () => {
  const { files, id } = table();
  assert.equal(insert(files, id, 77, 9), 0);
  const live = files.cacheNodes.live;
  assert.equal(insert(files, id, 77, 10), -EEXIST);
  assert.equal(lookup(files, id, 77), 9);
  assert.equal(files.nrpages(id), 1);
  assert.equal(files.cacheNodes.live, live);
  erase(files, id, 77);
  files.put(id);
});

test('ENOMEM at every node allocation of an insert: the index is exactly as before', () => {
  const injector = new FailureInjector();
  const { files, id } = table(injector);
  const base = [3, 64 * 5, 4096 * 7];
  for (const key of base) insert(files, id, key, key + 1);
  // Each target needs a different mix: growth only, growth and a new path, a new path inside.
  for (const target of [2 ** 31 + 12_345, 4096 * 7 + 64, 2 ** 20 + 1]) {
    const before = JSON.stringify({
      entries: entries(files, id),
      root: files.words[files.word(id, FILE_CACHE_ROOT)],
      height: height(files, id),
      live: files.cacheNodes.live,
    });
    let failures = 0;
    for (let successes = 0; ; successes++) {
      injector.failAfter(successes);
      const r = insert(files, id, target, 42);
      injector.disarm();
      if (r === 0) break;
      assert.equal(r, -ENOMEM);
      failures++;
      const after = JSON.stringify({
        entries: entries(files, id),
        root: files.words[files.word(id, FILE_CACHE_ROOT)],
        height: height(files, id),
        live: files.cacheNodes.live,
      });
      assert.equal(
        after,
        before,
        `insert ${target} failing after ${successes} allocations changed the index`,
      );
      assertSound(files, id);
    }
    assert.ok(failures >= 1, `insert of ${target} allocated nodes (${failures} failure points)`);
    assert.equal(lookup(files, id, target), 42);
    assertSound(files, id);
    erase(files, id, target);
  }
  for (const key of base) erase(files, id, key);
  rcuBarrier();
  assert.equal(files.cacheNodes.live, 0);
  files.put(id);
});

test('model: 30,000 seeded random inserts, erases, lookups and gang lookups against a Map', () => {
  const { files, id } = table();
  const model = new Map<number, number>();
  const rng = new Rng(0x5eed11);
  // Keys clustered (dense leaves), spread over a few levels, and anywhere up to 2^32 - 1.
  const key = (): number => {
    const r = rng.below(10);
    if (r < 5) return rng.below(300);
    if (r < 8) return rng.below(1 << 18);
    return rng.next();
  };
  const sorted = (): number[] => [...model.keys()].sort((a, b) => a - b);
  for (let step = 0; step < 30_000; step++) {
    const op = rng.below(10);
    const k = key();
    if (op < 4) {
      const value = 1 + rng.below(1 << 20);
      const r = insert(files, id, k, value);
      if (model.has(k)) assert.equal(r, -EEXIST, `step ${step}: insert ${k}`);
      else {
        assert.equal(r, 0, `step ${step}: insert ${k}`);
        model.set(k, value);
      }
    } else if (op < 7) {
      assert.equal(erase(files, id, k), model.get(k) ?? 0, `step ${step}: erase ${k}`);
      model.delete(k);
    } else if (op < 9) {
      assert.equal(lookup(files, id, k), model.get(k) ?? 0, `step ${step}: lookup ${k}`);
    } else {
      const expected = sorted().find((x) => x >= k) ?? -1;
      assert.equal(nextPresent(files, id, k), expected, `step ${step}: nextPresent ${k}`);
    }
    if (step % 500 === 0) {
      assertSound(files, id);
      assert.equal(files.nrpages(id), model.size);
    }
  }
  assert.deepEqual(
    entries(files, id),
    sorted().map((k) => [k, model.get(k)]),
  );
  for (const k of model.keys()) erase(files, id, k);
  assertSound(files, id);
  rcuBarrier();
  assert.equal(files.cacheNodes.live, 0, 'every node freed');
  files.put(id);
});
