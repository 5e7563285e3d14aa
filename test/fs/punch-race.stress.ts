/**
 * The punch-versus-fault race (punch-race.ts) for 12 s per seed: zero stale or foreign reads.
 * VMSPACE_SEED picks the first seed; the counts are printed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPunchRace } from './punch-race.js';

const FIRST = Number(process.env.VMSPACE_SEED ?? 11_000);

for (const seed of [FIRST, FIRST + 1]) {
  test(`punch race, seed ${seed}, 12 s: zero stale reads`, async () => {
    const s = await runPunchRace(seed, 12_000);
    console.log(JSON.stringify(s));
    assert.equal(s.stale, 0, `stale reads: ${s.firstBad}`);
    assert.equal(s.foreign, 0, `foreign reads: ${s.firstBad}`);
    assert.ok(s.sigbus > 0 && s.short > 0 && s.zeros > 0);
  });
}
