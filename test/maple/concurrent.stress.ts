/**
 * The churn scenario of concurrent.test.ts for longer (MAPLE_STRESS_MS, default 12 s) over
 * several seeds: one CPU writes flat out while another looks up, iterates and searches gaps.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { runChurn } from './concurrent.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
});

test('readers beside a writer for many seconds see only entries that existed and miss none', async () => {
  const ms = Number(process.env.MAPLE_STRESS_MS ?? 12_000);
  const deadline = Date.now() + ms;
  const first = Number(process.env.MAPLE_SEED ?? Date.now() % 100_000);
  let operations = 0;
  let checks = 0;
  for (let seed = first; Date.now() < deadline; seed++) {
    const [wrote, read] = await runChurn(machine, seed, Math.max(500, Math.min(4000, deadline - Date.now())));
    operations += wrote.operations;
    checks += read.checks;
  }
  console.log(`maple concurrent stress: ${operations} writes, ${checks} reader checks, seeds from ${first}`);
  assert.ok(operations > 10_000 && checks > 100_000);
});
