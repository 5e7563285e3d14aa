/**
 * Stress: the memory race (memory-race.ts) for 12 s: two accessor CPUs store and load patterns
 * through their Mmus while this thread runs random munmap/mmap/mprotect/mremap/madvise/fork on the
 * same pages with predicted outcomes, checking every fork child, with a full checkpoint (page
 * contents, page tables against VMAs, map counts of every frame) every second and at the end.
 * Under load it runs on (up to a minute more) until 2000 calls and 50 forks were made. The seed is
 * printed first; VMSPACE_SEED=n replays its sequence of calls (not the accessors' interleaving).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeRace, raceMemory } from './memory-race.js';

const seed = Number(process.env.VMSPACE_SEED ?? Date.now() % 100_000);

test(`memory race, 12 s, seed ${seed}: loads and stores on two CPUs against random syscalls and forks`, async () => {
  console.log(`memory race: seed ${seed} (VMSPACE_SEED=${seed} replays it)`);
  const r = await raceMemory({ seed, durationMs: 12_000, minCalls: 2000, minForks: 50, giveUpMs: 60_000 });
  console.log(describeRace(seed, r));
  assert.ok(r.calls >= 2000, `only ${r.calls} calls`);
  assert.ok(r.mutator.forks >= 50, `only ${r.mutator.forks} forks`);
  assert.ok(r.checkpoints >= 10, `only ${r.checkpoints} checkpoints`);
});

test(`memory race under the speculative design, 8 s, seed ${seed + 1}: the same checks with lockless faults`, async () => {
  const r = await raceMemory({
    seed: seed + 1,
    durationMs: 8_000,
    minCalls: 1500,
    minForks: 30,
    giveUpMs: 60_000,
    design: 'speculative',
  });
  console.log(describeRace(seed + 1, r));
  assert.ok(r.calls >= 1500, `only ${r.calls} calls`);
  assert.ok(r.vmstat.faultsSpeculative > 0, 'speculative faults ran');
  assert.ok(r.checkpoints >= 7, `only ${r.checkpoints} checkpoints`);
});
