/**
 * GUP over a slow file racing munmap/mremap/mprotect (gup-slow-race.ts) for 6 s per design and
 * seed: the same oracle as the quick test, longer. VMSPACE_SEED picks the first seed; the counts
 * are printed.
 */
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { FAULT_DESIGNS } from '../../src/mm/fault-design.js';
import { assertGupSlowRace, runGupSlowRace } from './gup-slow-race.js';

const FIRST = Number(process.env.VMSPACE_SEED ?? 12_000);
const DURATION_MS = 6000;
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 60_000 });
});
after(async () => {
  await machine.stop();
});

for (const seed of [FIRST, FIRST + 1]) {
  for (const design of FAULT_DESIGNS) {
    test(`GUP over a slow file vs munmap/mremap/mprotect, ${design}, seed ${seed}, 6 s`, async () => {
      const s = await runGupSlowRace(machine, design, seed, DURATION_MS, false, { ops: 500, calls: 2000 });
      console.log(JSON.stringify(s));
      assertGupSlowRace(s, 2000);
    });
  }
}
