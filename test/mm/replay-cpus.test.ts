/**
 * Traces replayed with their operations taking turns on two (or three) CPUs sharing one address space:
 * every op's result and VMA list must be what Linux recorded, whichever CPU runs it, so no
 * per-process state may live in one CPU's objects.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { replayOnCpus } from '../../src/cli/replay.js';
import { Machine } from '../../src/machine/machine.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/mm/fixtures');

function traces(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl.gz'))
    .sort()
    .map((f) => join(dir, f));
}
/** Every shipped Linux trace (the grows ones from a kernel without the zero page), and the recorded ones. */
const all = [...traces(join(FIXTURES, 'linux')), ...traces(FIXTURES)];

let machine: Machine;
before(async () => {
  machine = await Machine.start({ cpus: 3, watchdogMs: 60_000 });
});
after(async () => {
  await machine.stop();
});

for (const path of all) {
  test(`replays ${path.slice(FIXTURES.length + 1)} with its ops taking turns on two CPUs`, async () => {
    assert.equal(await replayOnCpus(machine, path, 2, true), '');
  });
}

test('three CPUs taking turns on one shipped trace of each profile', async () => {
  const firstOfEach = traces(join(FIXTURES, 'linux')).filter(
    (f, i, list) => i === 0 || f.split('-')[0] !== list[i - 1].split('-')[0],
  );
  for (const path of firstOfEach) assert.equal(await replayOnCpus(machine, path, 3, true), '', path);
});
