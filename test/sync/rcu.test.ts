import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { Arena } from '../../src/shm/arena.js';
import { Mutex } from '../../src/sync/mutex.js';
import {
  rcuBarrier,
  rcuDeferFree,
  rcuPendingFrees,
  rcuReadLock,
  rcuReadUnlock,
  rcuStats,
  synchronizeRcu,
} from '../../src/sync/rcu.js';
import { assertMisuse } from './misuse.js';
import type { ChurnArgs } from './tasks/rcu-churn.js';
import type { SyncArgs } from './tasks/rcu-sync.js';

const churn = new URL('./tasks/rcu-churn.js', import.meta.url);
const sync = new URL('./tasks/rcu-sync.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 3, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test('a reader never sees a freed record while another CPU replaces and frees records flat out', async () => {
  const arena = Arena.create({
    name: 'test.rcu.records',
    recordBytes: 16,
    capacity: 1024,
    maxCapacity: 1 << 20,
    poison: true,
  });
  const slot = new SharedArrayBuffer(16);
  const base = { arena: arena.describe(), slot, iterations: 2_000_000, deadlineMs: Date.now() + 1500 };
  const replace: ChurnArgs = { ...base, role: 'replace' };
  const read: ChurnArgs = { ...base, role: 'read' };
  const [[replaced], [reads]] = await Promise.all([
    machine.run<number>(churn, replace, [0]),
    machine.run<number>(churn, read, [1]),
  ]);
  assert.ok(replaced > 1000, `the updater replaced ${replaced} records`);
  assert.ok(reads > 1000, `the reader made ${reads} reads`);
  assert.equal(arena.stats().frees, replaced, 'every replaced record was freed after its grace period');
  assert.equal(arena.live, 0);
});

test('synchronize returns only after every reader that started before it has finished', async () => {
  const words = new SharedArrayBuffer(16);
  const base = { words, rounds: 20, holdMs: 5 };
  const reader: SyncArgs = { ...base, role: 'reader' };
  const updater: SyncArgs = { ...base, role: 'updater' };
  const [[early]] = await Promise.all([
    machine.run<number>(sync, updater, [2]),
    machine.run<number>(sync, reader, [0]),
  ]);
  assert.equal(early, 0, 'synchronize returned while a pre-existing reader was inside');
});

test('idle CPUs never delay a grace period; the main thread can read and synchronize', () => {
  const before = rcuStats();
  assert.equal(before.online, 0, 'idle CPUs and the main thread are offline');
  rcuReadLock();
  assert.equal(rcuStats().online, 1, 'a read section on an offline CPU publishes itself');
  rcuReadUnlock();
  synchronizeRcu();
  const after = rcuStats();
  assert.ok(after.completed - before.completed >= 1);
  assert.ok(after.started > before.started);
});

test('deferred frees on the main thread are batched and all reclaimed by rcuBarrier', () => {
  const arena = Arena.create({ name: 'test.rcu.main', recordBytes: 8, capacity: 1000, poison: true });
  for (let i = 0; i < 700; i++) rcuDeferFree(arena, arena.alloc());
  assert.ok(rcuPendingFrees() > 0);
  rcuBarrier();
  assert.equal(rcuPendingFrees(), 0);
  assert.equal(arena.live, 0);
  assert.throws(() => rcuDeferFree(arena, 5), /not live/);
});

test('deferred frees interleaved across arenas each go back to their own arena', () => {
  // Batches keep a list per arena: a handle must be freed into the arena it came from, and a
  // record of another arena with the same handle number must stay live.
  const arenas = [8, 16, 24].map((bytes, k) =>
    Arena.create({
      name: `test.rcu.mixed${k}`,
      recordBytes: bytes,
      capacity: 64,
      maxCapacity: 2048,
      poison: true,
    }),
  );
  const kept = arenas.map((arena) => [arena.alloc(), arena.alloc()]);
  const freed = [0, 0, 0];
  for (let i = 0; i < 1000; i++) {
    const k = (i * 7 + (i >> 3)) % 3; // runs of one arena and single switches, as commits make
    rcuDeferFree(arenas[k], arenas[k].alloc());
    freed[k]++;
  }
  rcuBarrier();
  assert.equal(rcuPendingFrees(), 0);
  arenas.forEach((arena, k) => {
    assert.equal(arena.stats().frees, freed[k], `arena ${k} got back exactly its own records`);
    assert.equal(arena.live, 2, `arena ${k}'s records that were not freed stay live`);
    for (const h of kept[k]) assert.ok(arena.isLive(h));
  });
});

test('blocking inside a read section is refused; unbalanced unlock throws', () => {
  const m = Mutex.create('test.rcu.block');
  rcuReadLock();
  try {
    assert.throws(() => synchronizeRcu(), /synchronize_rcu inside an RCU read section/);
    assert.throws(() => rcuBarrier(), /rcu_barrier inside an RCU read section/);
    assert.throws(() => m.lock(), /mutex_lock inside an RCU read section/);
  } finally {
    rcuReadUnlock();
  }
  assertMisuse(() => rcuReadUnlock(), 'bad_unlock', /without a matching rcuReadLock/);
  m.lock();
  m.unlock();
});

test('a task that returns inside a read section is reported', async () => {
  await assert.rejects(
    machine.run(new URL('./tasks/rcu-leak.js', import.meta.url), undefined, [1]),
    /cpu 1: task returned inside 1 RCU read section/,
  );
  const words = new SharedArrayBuffer(16);
  const [[early]] = await Promise.all([
    machine.run<number>(sync, { words, rounds: 2, holdMs: 1, role: 'updater' } satisfies SyncArgs, [2]),
    machine.run<number>(sync, { words, rounds: 2, holdMs: 1, role: 'reader' } satisfies SyncArgs, [1]),
  ]);
  assert.equal(early, 0, 'the CPU is usable again');
});
