import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { allowedCores, coreOf } from '../../src/machine/pin.js';

const task = new URL('./tasks/cores.js', import.meta.url);
const linux = process.platform === 'linux';

test('pinned: CPU i runs on host core i mod cores, and only there (elsewhere than Linux: says why not)', async () => {
  const cpus = availableParallelism() + 1; // one more than cores: the last shares core 0
  const machine = await Machine.start({ cpus, pinCpus: true });
  try {
    assert.equal(coreOf(cpus - 1), 0);
    if (!linux) {
      assert.equal(machine.pinned, false);
      assert.match(machine.unpinned, /^cpu 0: pinning needs Linux/);
      return;
    }
    assert.equal(machine.unpinned, '', machine.unpinned);
    assert.equal(machine.pinned, true);
    const seen = await machine.run<{ cpu: number; cores: string | null }>(task, {});
    assert.deepEqual(
      seen.map((s) => s.cores),
      seen.map((s) => String(coreOf(s.cpu))),
    );
  } finally {
    await machine.stop();
  }
});

test('not asked: the threads keep the host cores the main thread has (nothing pinned)', async () => {
  const machine = await Machine.start({ cpus: 2 });
  try {
    assert.equal(machine.pinned, false);
    assert.equal(machine.unpinned, '');
    const seen = await machine.run<{ cores: string | null }>(task, {});
    const all = allowedCores(); // the main thread's (null where the host does not say)
    assert.equal(all === null, !linux);
    for (const s of seen) assert.equal(s.cores, all);
  } finally {
    await machine.stop();
  }
});
