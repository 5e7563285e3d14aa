/**
 * The memory race (memory-race.ts) for 1.5 s, two accessor CPUs and this thread as the mutator:
 * the quick version of `memory.stress.ts`. VMSPACE_SEED replays a seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeRace, raceMemory } from './memory-race.js';

test('memory race, 1.5 s: patterns checked on two CPUs against random syscalls and forks; nothing leaked', async () => {
  const seed = Number(process.env.VMSPACE_SEED ?? 1010);
  const r = await raceMemory({ seed, durationMs: 1500, checkpointMs: 500, minCalls: 300, minForks: 5 });
  if (process.env.MEMORY_VERBOSE) console.log(describeRace(seed, r));
  const stable = r.accessors.reduce((x, a) => x + a.stable, 0);
  assert.ok(stable > 1000, `only ${stable} accesses checked exactly`);
  assert.ok(r.calls >= 300, `only ${r.calls} calls`);
  assert.ok(
    r.mutator.forks >= 5 && r.mutator.childChecks >= 2 * r.mutator.forks,
    'children forked and checked twice',
  );
  assert.ok(r.checkpoints >= 3, `only ${r.checkpoints} checkpoints`);
});

test('memory race under the speculative design, 1.5 s: the same checks; lockless faults ran beside the calls', async () => {
  const seed = Number(process.env.VMSPACE_SEED ?? 1011);
  const r = await raceMemory({
    seed,
    durationMs: 1500,
    checkpointMs: 500,
    minCalls: 300,
    minForks: 5,
    design: 'speculative',
  });
  if (process.env.MEMORY_VERBOSE) console.log(describeRace(seed, r));
  const stable = r.accessors.reduce((x, a) => x + a.stable, 0);
  assert.ok(stable > 1000, `only ${stable} accesses checked exactly`);
  assert.ok(r.calls >= 300, `only ${r.calls} calls`);
  assert.equal(r.vmstat.design, 'speculative');
  assert.ok(r.vmstat.faultsSpeculative > 0, 'speculative faults ran');
  assert.ok(r.checkpoints >= 3, `only ${r.checkpoints} checkpoints`);
});
