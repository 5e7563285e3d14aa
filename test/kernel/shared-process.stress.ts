import assert from 'node:assert/strict';
import { test } from 'node:test';
import { raceSharedProcess } from './shared-process.js';

test('shared process, 12 s: random syscalls from two CPUs and fault-path lookups; log replay, recounts, no leak', async () => {
  const r = await raceSharedProcess(Number(process.env.VMSPACE_SEED ?? 20261207), 12_000);
  assert.ok(r.syscalls > 10_000, `only ${r.syscalls} syscalls`);
  console.log(
    `shared process: ${r.syscalls} logged calls (${r.populates} populate stages), ${r.lookups} fault-path lookups`,
  );
});
