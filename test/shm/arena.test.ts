import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { Arena, FailureInjector, POISON_WORD } from '../../src/shm/arena.js';
import type { AllocArgs } from './tasks/alloc.js';

test('alloc and free, one by one and in batches, from several CPUs at once: no record handed out twice, accounting exact', async () => {
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

test('allocBatch takes between min and max records, or none; freeBatch frees all or throws', () => {
  const arena = Arena.create({ name: 'test.arena.batch', recordBytes: 16, capacity: 2, maxCapacity: 8 });
  const out = new Int32Array(10);
  assert.equal(arena.allocBatch(out, 1, 3, 5), 5, 'as many as asked while the arena has them');
  assert.equal(new Set(out.subarray(1, 6)).size, 5);
  assert.equal(arena.live, 5);
  assert.equal(arena.allocBatch(out, 6, 4, 4), 0, 'fewer than min: nothing taken');
  assert.equal(arena.live, 5);
  assert.equal(arena.stats().failures, 1);
  assert.equal(arena.stats().allocs, 5);
  assert.equal(arena.allocBatch(out, 6, 1, 4), 3, 'the opportunistic rest stops at the arena maximum');
  assert.equal(arena.live, 8);
  assert.equal(arena.stats().highWater, 8);
  assert.equal(arena.stats().failures, 1, 'a short opportunistic part is no failure');
  assert.throws(() => arena.allocBatch(out, 8, 1, 3), /outside/);
  const live = arena.live;
  out[0] = out[3];
  assert.throws(() => arena.freeBatch(out, 0, 4), /not live/, 'a handle twice');
  assert.equal(arena.live, live, 'and nothing was freed');
  assert.throws(
    () => arena.freeBatch(Int32Array.of(out[1], 9), 0, 2),
    /not live/,
    'a never allocated handle',
  );
  assert.equal(arena.live, live);
  assert.equal(arena.isLive(out[1]), true);
  arena.freeBatch(out, 1, 8);
  assert.equal(arena.live, 0);
  assert.equal(arena.stats().frees, 8);
});

test('a batch leaves records as they were; alloc still zeroes a reused record', () => {
  const arena = Arena.create({ name: 'test.arena.batch.words', recordBytes: 16, capacity: 4, poison: false });
  const out = new Int32Array(1);
  assert.equal(arena.allocBatch(out, 0, 1, 1), 1);
  const at = out[0] * arena.i32PerRecord;
  arena.i32.fill(7, at, at + 4);
  arena.free(out[0]);
  const h = arena.alloc();
  assert.equal(h, out[0], 'the record is reused first');
  assert.deepEqual([...arena.i32.subarray(at, at + 4)], [0, 0, 0, 0]);
  arena.i32.fill(7, at, at + 4);
  arena.free(h);
  assert.equal(arena.allocBatch(out, 0, 1, 1), 1);
  assert.deepEqual([...arena.i32.subarray(at + 1, at + 4)], [7, 7, 7], 'not zeroed');
  arena.freeBatch(out, 0, 1);
  assert.equal(arena.live, 0);
});

test('the failure injector sees the records a batch requires, not the opportunistic rest', () => {
  const injector = new FailureInjector();
  const arena = Arena.create({ name: 'test.arena.batch.inject', recordBytes: 8, capacity: 16, injector });
  const out = new Int32Array(8);
  injector.failAfter(1);
  assert.equal(arena.allocBatch(out, 0, 2, 8), 0, 'the second required record fails');
  assert.equal(injector.injected, 1);
  assert.equal(arena.live, 0);
  injector.failAfter(2);
  assert.equal(arena.allocBatch(out, 0, 2, 8), 8, 'two required, six more without injection');
  assert.equal(injector.injected, 0);
  assert.equal(arena.alloc(), 0, 'the countdown reached the next allocation');
  assert.equal(injector.injected, 1);
  arena.freeBatch(out, 0, 8);
  assert.equal(arena.live, 0);
});

test('a poisoned record written after its free is caught by allocBatch too', () => {
  const arena = Arena.create({ name: 'test.arena.batch.poison', recordBytes: 16, capacity: 2, poison: true });
  const out = new Int32Array(2);
  assert.equal(arena.allocBatch(out, 0, 2, 2), 2);
  arena.freeBatch(out, 0, 2);
  assert.equal(arena.i32[out[1] * arena.i32PerRecord + 3], POISON_WORD, 'freeBatch poisons');
  arena.i32[out[1] * arena.i32PerRecord + 3] = 1;
  assert.throws(() => arena.allocBatch(out, 0, 2, 2), /was written after it was freed/);
});
