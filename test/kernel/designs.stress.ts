/**
 * Stress: the all-designs run (designs-stress.ts) for 12 s per design (four designs) on three worker CPUs (the
 * CPUs share the two cores of the CI machine: each still runs at least 2000 steps, up to 30 s
 * more when loaded), each CPU's lane and files checked against its model, a checkpoint of the
 * whole structure every 1.8 s, the watchdog at 10 s without progress. The seed is printed first;
 * VMSPACE_SEED=n replays each CPU's op sequence (not the CPUs' interleaving).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAULT_DESIGNS } from '../../src/mm/fault-design.js';
import { describeRuns, stressAllDesigns } from './designs-stress.js';

const seed = Number(process.env.VMSPACE_SEED ?? Date.now() % 100_000);

test(`all designs, 12 s each, seed ${seed}: random syscalls, faults, fork and file I/O on three CPUs`, async () => {
  console.log(`designs stress: seed ${seed} (VMSPACE_SEED=${seed} replays it)`);
  const runs = await stressAllDesigns({
    seed,
    cpus: 3,
    durationMs: 12_000,
    checkpointMs: 1800,
    watchdogMs: 10_000,
    minSteps: 2000,
    giveUpMs: 30_000,
  });
  console.log(describeRuns(seed, runs));
  assert.deepEqual(
    runs.map((r) => r.design),
    FAULT_DESIGNS,
  );
  for (const r of runs) {
    for (const c of r.cpus) assert.ok(c.steps >= 2000, `${r.design}: a CPU made only ${c.steps} steps`);
    assert.ok(r.checkpoints >= 5, `${r.design}: ${r.checkpoints} checkpoints`);
  }
});
