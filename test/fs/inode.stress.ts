/**
 * Open racing the last close (inode-race.ts) for 4000 rounds per CPU per seed: zero stale reads.
 * VMSPACE_SEED picks the first seed; the counts (opens, waits for dying records) are printed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { runInodeRace } from './inode-race.js';

const FIRST = Number(process.env.VMSPACE_SEED ?? 12_000);
let dir = '';
let machine: Machine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-inode-stress-'));
  machine = await Machine.start({ cpus: 2, watchdogMs: 60_000 });
});
after(async () => {
  await machine.stop();
  rmSync(dir, { recursive: true, force: true });
});

for (const seed of [FIRST, FIRST + 1]) {
  test(`open vs last close, seed ${seed}, 4000 rounds per CPU: zero stale reads`, async () => {
    console.log(JSON.stringify(await runInodeRace(machine, join(dir, `race-${seed}.bin`), seed, 4000)));
  });
}
