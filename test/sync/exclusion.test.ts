import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { lockStatRows } from '../../src/sync/lockstat.js';
import { Mutex } from '../../src/sync/mutex.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { SpinLock } from '../../src/sync/spinlock.js';
import type { CounterArgs } from './tasks/counter.js';

const counter = new URL('./tasks/counter.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 3, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

for (const kind of ['spinlock', 'mutex', 'rwsem'] as const) {
  test(`${kind}: no lost updates with 3 CPUs contending`, async () => {
    const lock =
      kind === 'spinlock'
        ? SpinLock.create('test.counter.spin')
        : kind === 'mutex'
          ? Mutex.create('test.counter.mutex')
          : RwSem.create('test.counter.rwsem');
    const data = new SharedArrayBuffer(16);
    const args: CounterArgs = {
      kind,
      lock: lock.describe(),
      data,
      iterations: 200_000,
      deadlineMs: Date.now() + 3000,
    };
    const done = await machine.run<number>(counter, args);
    const total = done.reduce((a, b) => a + b, 0);
    assert.ok(
      done.every((n) => n > 0),
      `every CPU made progress: ${done}`,
    );
    assert.equal(new Int32Array(data)[0], total, 'the counter equals the number of increments');
    const stats = lockStatRows().find((r) => r.classId === lock.classId);
    assert.equal(stats?.acquisitionsWrite, total, 'lock statistics count every acquisition');
    assert.ok(stats.contentions > 0, 'the CPUs really contended');
  });
}
