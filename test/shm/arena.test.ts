import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/cpu/machine.js';
import { Arena, FailureInjector, POISON_WORD } from '../../src/shm/arena.js';
import type { AllocArgs } from './tasks/alloc.js';

test('alloc and free from several CPUs at once: no record handed out twice, accounting exact', async () => {
  const cpus = 3;
  const count = 3000;
  const arena = Arena.create({
    name: 'test.arena.shared',
    recordBytes: 16,
    capacity: 256,
    maxCapacity: 16_384,
  });
  const handles = new SharedArrayBuffer(4 * (1 + cpus * count));
  const machine = await Machine.start({ cpus });
  try {
    const args: AllocArgs = { arena: arena.describe(), handles, count, cpus };
    const intact = await machine.run<number>(new URL('./tasks/alloc.js', import.meta.url), args);
    assert.deepEqual(intact, [count, count, count], 'every CPU found all its records as it stamped them');
  } finally {
    await machine.stop();
  }
  const all = new Int32Array(handles).subarray(1);
  assert.equal(new Set(all).size, cpus * count, 'handles were unique while live');
  const stats = arena.stats();
  assert.equal(stats.live, 0);
  assert.equal(stats.allocs, cpus * count);
  assert.equal(stats.frees, cpus * count);
  assert.ok(stats.highWater <= cpus * count && stats.highWater >= count);
  assert.ok(stats.capacity > 256, 'the arena grew');
});

test('failure injection fails exactly the chosen allocation, once', () => {
  const injector = new FailureInjector();
  const arena = Arena.create({ name: 'test.arena.inject', recordBytes: 8, capacity: 8, injector });
  injector.failAfter(2);
  const a = arena.alloc();
  const b = arena.alloc();
  assert.ok(a > 0 && b > 0);
  assert.equal(arena.alloc(), 0, 'the third allocation fails');
  assert.equal(injector.injected, 1);
  const c = arena.alloc();
  assert.ok(c > 0, 'then allocation works again');
  assert.equal(arena.stats().failures, 1);
  assert.equal(arena.live, 3);
  const shared = Arena.attach(arena.describe());
  injector.failAfter(0);
  assert.equal(shared.alloc(), 0, 'an attached view shares the injector');
  for (const h of [a, b, c]) arena.free(h);
  assert.equal(arena.live, 0);
});

test('freed records are poisoned, and a write after free is caught at the next allocation', () => {
  const arena = Arena.create({ name: 'test.arena.poison', recordBytes: 16, capacity: 2, poison: true });
  const h = arena.alloc();
  const at = h * arena.i32PerRecord;
  arena.i32.fill(5, at, at + 4);
  arena.free(h);
  assert.deepEqual([...arena.i32.subarray(at + 1, at + 4)], [POISON_WORD, POISON_WORD, POISON_WORD]);
  assert.equal(arena.isLive(h), false);
  arena.i32[at + 2] = 1234;
  assert.throws(() => arena.alloc(), /record 1 was written after it was freed/);
});

test('growth keeps handles valid up to maxCapacity; past it alloc returns 0 and counts a failure', () => {
  const arena = Arena.create({ name: 'test.arena.grow', recordBytes: 8, capacity: 2, maxCapacity: 9 });
  const view = Arena.attach(arena.describe());
  const got: number[] = [];
  for (let i = 0; i < 9; i++) got.push(arena.alloc());
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  view.i32[9 * view.i32PerRecord] = 42;
  assert.equal(arena.i32[9 * arena.i32PerRecord], 42, 'another view follows the growth');
  assert.equal(arena.alloc(), 0);
  assert.equal(arena.stats().failures, 1);
  assert.equal(arena.stats().capacity, 9);
  for (const h of got) arena.free(h);
  assert.equal(arena.live, 0);
});

test('bad arguments and misuse get clear errors and change nothing', () => {
  assert.throws(
    () => Arena.create({ name: 'x', recordBytes: 12, capacity: 4 }),
    /EINVAL: arena x: recordBytes 12/,
  );
  assert.throws(() => Arena.create({ name: 'x', recordBytes: 8, capacity: 0 }), /EINVAL/);
  assert.throws(() => Arena.create({ name: 'x', recordBytes: 8, capacity: 4, maxCapacity: 2 }), /EINVAL/);
  assert.throws(() => Arena.create({ name: 'x', recordBytes: 8, capacity: 1.5 }), /EINVAL/);
  const arena = Arena.create({ name: 'test.arena.misuse', recordBytes: 8, capacity: 4 });
  const h = arena.alloc();
  assert.throws(() => arena.free(3), /free of never allocated handle 3/);
  arena.free(h);
  assert.throws(() => arena.free(h), /double free/);
  assert.equal(arena.stats().frees, 1);
  assert.equal(arena.live, 0);
});
