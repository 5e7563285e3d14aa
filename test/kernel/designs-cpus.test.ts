/**
 * The all-designs stress (designs-stress.ts) for 1.2 s per design on two worker CPUs: the quick
 * version of `designs.stress.ts`. VMSPACE_SEED replays a seed's op sequence per CPU.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lockHooks } from '../../src/lockhooks.js';
import { Machine } from '../../src/machine/machine.js';
import { FAULT_DESIGNS } from '../../src/mm/fault-design.js';
import { describeRuns, stressAllDesigns, stressDesign } from './designs-stress.js';

test('every design under random syscalls, faults, fork and file I/O on two CPUs: models hold, invariants hold, nothing leaked', async () => {
  const seed = Number(process.env.VMSPACE_SEED ?? 1212);
  const runs = await stressAllDesigns({
    seed,
    cpus: 2,
    durationMs: 1200,
    checkpointMs: 400,
    watchdogMs: 20_000,
    minSteps: 400,
    giveUpMs: 30_000,
  });
  if (process.env.DESIGNS_VERBOSE) console.log(describeRuns(seed, runs));
  assert.deepEqual(
    runs.map((r) => r.design),
    FAULT_DESIGNS,
  );
  for (const r of runs) {
    for (const c of r.cpus) assert.ok(c.steps >= 400, `${r.design}: a CPU made only ${c.steps} steps`);
    assert.ok(r.checkpoints >= 2, `${r.design}: ${r.checkpoints} checkpoints`);
    assert.ok(r.cpus.every((c) => (c.counts?.forks ?? 0) > 0 && c.pauses > 0));
    assert.ok(r.vmstat.faults > 0);
  }
});

test('the watchdog: a CPU stuck holding mmap_lock fails the run with who waits, who holds which lock, and lock statistics', async () => {
  const machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
  try {
    await assert.rejects(
      stressDesign(machine, 'vma-lock', {
        seed: 77,
        cpus: 2,
        durationMs: 10_000,
        checkpointMs: 60_000,
        watchdogMs: 1000,
        minSteps: 0,
        giveUpMs: 20_000,
        stallAfter: 50,
        stallMs: 2500,
      }),
      (error: Error) => {
        assert.match(error.message, /^watchdog: cpu [01] made no progress for \d+ ms/);
        assert.match(error.message, /cpu 1: waits \d+ ms on mmap_lock \(rwsem (read|write)\), held by cpu 0/);
        if (lockHooks.on) assert.match(error.message, /held by CPU0:\n #0: \(mmap_lock\)\{write\}/);
        assert.match(error.message, /lock statistics \(most contended\):\n {2}mmap_lock: \d+ contentions/);
        return true;
      },
    );
  } finally {
    await machine.stop();
  }
});
