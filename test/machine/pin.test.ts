import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { allowedCores, coreOf } from '../../src/machine/pin.js';

const task = new URL('./tasks/cores.js', import.meta.url);
const linux = process.platform === 'linux';

test('pinned: CPU i runs on host core i mod cores, and only there', { skip: !linux }, async () => {
  const cpus = availableParallelism() + 1; // one more than cores: the last shares core 0
  const machine = await Machine.start({ cpus, pinCpus: true });
  try {
    assert.equal(machine.unpinned, '', machine.unpinned);
    assert.equal(machine.pinned, true);
    const seen = await machine.run<{ cpu: number; cores: string | null }>(task, {});
    assert.deepEqual(
      seen.map((s) => s.cores),
      seen.map((s) => String(coreOf(s.cpu))),
    );
    assert.equal(coreOf(cpus - 1), 0);
  } finally {
    await machine.stop();
  }
});

test('not asked: the threads keep the whole host (nothing pinned)', { skip: !linux }, async () => {
  const machine = await Machine.start({ cpus: 2 });
  try {
    assert.equal(machine.pinned, false);
    const seen = await machine.run<{ cores: string | null }>(task, {});
    const all = allowedCores(); // the main thread's: never pinned by a Machine
    assert.ok(all !== null);
    for (const s of seen) assert.equal(s.cores, all);
  } finally {
    await machine.stop();
  }
});
