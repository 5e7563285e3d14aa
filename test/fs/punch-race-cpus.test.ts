/**
 * Punch versus fault (issue 11, "Must hold"), on three worker CPUs for about 2 s (the long run is
 * punch-race.stress.ts): after a punch, a rewrite or a truncate returns, no CPU reads the range's
 * old data — through a shared mapping, a private one or pread — and a page past the new end is
 * SIGBUS at once; no dirty data outside a truncated range is lost (the file checked whole at the
 * end, in the host file too). A control run whose mutator announces each change before making it
 * shows the oracle catching stale reads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPunchRace } from './punch-race.js';

const SEED = Number(process.env.VMSPACE_SEED ?? 20_261_209);

test('punch, rewrite and truncate against faults and reads on other CPUs: zero stale reads, SIGBUS past the end at once', async () => {
  const s = await runPunchRace(SEED, 1800);
  if (process.env.FS_VERBOSE) console.log(s);
  assert.equal(s.stale, 0, `stale reads: ${s.firstBad}`);
  assert.equal(s.foreign, 0, `foreign reads: ${s.firstBad}`);
  const [punches, pwrites, stores, shrinks, grows] = s.ops;
  assert.ok(punches >= 50 && pwrites >= 50 && stores >= 10, `ops: ${s.ops}`);
  assert.ok(shrinks >= 5 && grows >= 5, `ops: ${s.ops}`);
  assert.ok(
    s.reads.every((n) => n >= 1000),
    `reads: ${s.reads}`,
  );
  assert.ok(s.sigbus > 0 && s.short > 0 && s.zeros > 0, 'truncated pages and holes were met');
  assert.ok(s.unjudged * 100 < s.reads[0] + s.reads[1] + s.reads[2], `unjudged: ${s.unjudged}`);
});

test('control: a mutator that announces each change before making it is caught reading stale', async () => {
  const s = await runPunchRace(SEED + 1, 700, true);
  if (process.env.FS_VERBOSE) console.log(s);
  assert.ok(s.stale > 0, 'the oracle sees the stale reads the lie allows');
});
