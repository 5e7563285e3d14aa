/**
 * The lock-inversion run (inversion.ts) for 10 s per seed: no deadlock, no validator report, right
 * data. VMSPACE_SEED picks the first seed; the counts are printed.
 */
import { test } from 'node:test';
import { runInversion } from './inversion.js';
import { quietValidator, validatorCounts } from './quiet-validator.js';

const FIRST = Number(process.env.VMSPACE_SEED ?? 12_000);

for (const seed of [FIRST, FIRST + 1]) {
  test(`inversion, seed ${seed}, 10 s: no deadlock, no report, right data`, async () => {
    const counts = validatorCounts();
    const s = await runInversion(seed, 10_000);
    console.log(JSON.stringify(s));
    quietValidator(counts);
  });
}
