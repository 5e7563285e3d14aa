/**
 * Lock-free readers beside a writer on real worker CPUs (short run; concurrent.stress.ts runs the
 * same scenario for longer over several seeds).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { runChurn } from './concurrent.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test('a reader walking and iterating at full speed sees only entries that existed and misses none', async () => {
  const seed = Number(process.env.MAPLE_SEED ?? Date.now() % 100_000);
  const [wrote, read] = await runChurn(machine, seed, 1500);
  assert.ok(wrote.operations > 1000, `seed ${seed}: the writer made ${wrote.operations} changes`);
  assert.ok(read.checks > 10_000, `seed ${seed}: the reader made ${read.checks} checks`);
});
