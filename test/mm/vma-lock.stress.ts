/**
 * Stress: the per-VMA lock race (random mmap/munmap/mprotect/mremap/touch on one CPU, VMA lookups
 * at full speed on the others) for several seeds, 12 s in all. VMSPACE_SEED replays one seed;
 * a failure prints its seed.
 */
import { test } from 'node:test';
import { raceVmaLocks } from './vma-lock-race.js';

const seeds = process.env.VMSPACE_SEED ? [Number(process.env.VMSPACE_SEED)] : [11, 12, Date.now() % 100_000];

for (const seed of seeds) {
  test(`per-VMA locks under random syscalls, seed ${seed}`, async () => {
    await raceVmaLocks(seed, 2, 12_000 / seeds.length);
  });
}
