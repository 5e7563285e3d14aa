/**
 * Traces replayed with their operations alternated between two CPUs on one shared address space:
 * every op's result and VMA list must be what Linux recorded, whichever CPU runs it, so no
 * per-process state may live in one CPU's objects.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Machine } from '../../src/machine/machine.js';
import { MapleTree } from '../../src/maple/tree.js';
import { readTrace } from '../../src/mm/trace/format.js';
import { seedAddressSpace } from '../../src/mm/trace/replay.js';
import { FAILED, TURN, type TurnArgs } from './tasks/replay-turns.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/mm/fixtures');
/**
 * One trace of each kind, recorded here and shipped from Linux (the grows traces come from a kernel
 * without the zero page); every trace is replayed on one CPU elsewhere.
 */
function onePerKind(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl.gz'))
    .sort()
    .filter((f, i, all) => i === 0 || f.split('-')[0] !== all[i - 1].split('-')[0])
    .map((f) => join(dir, f));
}
const picked = [...onePerKind(FIXTURES), ...onePerKind(join(FIXTURES, 'linux'))];

let machine: Machine;
before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 60_000 });
});
after(async () => {
  await machine.stop();
});

for (const path of picked) {
  test(`replays ${path.slice(FIXTURES.length + 1)} with its ops alternated between two CPUs`, async () => {
    const trace = readTrace(path);
    const { mm, fds } = seedAddressSpace(trace, MapleTree.create({ externalLock: 'mmap_lock' }));
    const control = new SharedArrayBuffer(8);
    const args: TurnArgs = { mm: mm.describe(), trace: path, fds: [...fds], control };
    const reports = await machine.run<string>(
      new URL('./tasks/replay-turns.js', import.meta.url),
      args,
      [0, 1],
    );
    assert.deepEqual(reports, ['', '']);
    assert.equal(Atomics.load(new Int32Array(control), FAILED), 0);
    assert.equal(Atomics.load(new Int32Array(control), TURN), trace.ops.length);
  });
}
