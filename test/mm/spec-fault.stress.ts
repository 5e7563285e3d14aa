/**
 * Stress: the speculative-fault race of spec-fault-cpus.test.ts (spec-race-fixture.ts) for 10
 * rounds of a second, each with its own seed: CPU 1 faults without VMA locks while CPU 0 munmaps,
 * mprotects, replaces and mremaps the VMA, the page tables checked after every call. The seed is
 * printed first; VMSPACE_SEED=n replays its calls (not the CPUs' interleaving).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { raceSpeculative } from './spec-race-fixture.js';

const seed = Number(process.env.VMSPACE_SEED ?? Date.now() % 100_000);

let machine: Machine;
before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
});

test(`speculative faults against VMA changes, 10 rounds, seed ${seed}: never an entry in a VMA that changed`, async () => {
  console.log(`speculative race: seed ${seed} (VMSPACE_SEED=${seed} replays it)`);
  const r = await raceSpeculative(machine, { seed, roundMs: 1000, minRounds: 10, maxRounds: 12 });
  console.log(
    `speculative race seed ${seed}: ${r.rounds} rounds, ${r.mutator.ops} calls, ${r.mutator.checks} pages ` +
      `checked, ${r.faulter.ops} accesses (${r.faulter.signals} signals); faults ${r.vmstat.faultsSpeculative} ` +
      `speculative, ${r.vmstat.faultsVmaLock} vma-lock, ${r.vmstat.faultsMmapLock} mmap_lock; ` +
      `${r.vmstat.speculativeAborts} aborts, ${r.vmstat.speculativeSkips} skips`,
  );
  assert.ok(r.vmstat.speculativeAborts > 0, 'no speculative fault was aborted');
  assert.ok(r.vmstat.faultsSpeculative > 1000, `only ${r.vmstat.faultsSpeculative} speculative faults`);
});
