/**
 * Stress: every lock and RCU together on all CPUs with a seeded random mix, several seeds, each
 * bounded in time. Set VMSPACE_SEED to replay one seed; a failure prints its seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { Arena } from '../../src/shm/arena.js';
import { Mutex } from '../../src/sync/mutex.js';
import { RwSem } from '../../src/sync/rwsem.js';
import type { MixArgs } from './tasks/stress-mix.js';

const seeds = process.env.VMSPACE_SEED ? [Number(process.env.VMSPACE_SEED)] : [1, 2, 3, Date.now() % 100_000];

for (const seed of seeds) {
  test(`locks + RCU random mix, seed ${seed}`, async () => {
    const cpus = 3;
    const rw = RwSem.create('stress.rwsem');
    const mutex = Mutex.create('stress.mutex');
    const arena = Arena.create({
      name: 'stress.records',
      recordBytes: 16,
      capacity: 1024,
      maxCapacity: 1 << 20,
      poison: true,
    });
    const words = new SharedArrayBuffer(32);
    const machine = await Machine.start({ cpus, watchdogMs: 15_000 });
    try {
      const args: MixArgs = {
        seed,
        cpus,
        rw: rw.describe(),
        mutex: mutex.describe(),
        arena: arena.describe(),
        words,
        deadlineMs: Date.now() + 4000,
        maxOps: 5_000_000,
      };
      const ops = await machine.run<number>(new URL('./tasks/stress-mix.js', import.meta.url), args);
      const w = new Int32Array(words);
      assert.ok(ops.every((n) => n > 0));
      assert.equal(w[5], 0, 'no violation');
      assert.equal(w[2], w[3], 'no lost mutex update');
      const last = Atomics.exchange(w, 4, 0);
      if (last !== 0) arena.free(last);
      assert.equal(arena.live, 0, 'every record reclaimed');
      assert.deepEqual(rw.state(), { readers: 0, writer: false, queued: 0 });
    } catch (error) {
      console.error(`stress failed with seed ${seed} (replay: VMSPACE_SEED=${seed} npm run stress)`);
      throw error;
    } finally {
      await machine.stop();
    }
  });
}
