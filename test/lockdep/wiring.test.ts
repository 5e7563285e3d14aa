/**
 * The test runner's wiring (scripts/run-tests.js): with VMSPACE_LOCKDEP set, the preload switched
 * the validator on in this test process, and every Machine CPU switched it on in its worker entry,
 * without any call from the test. Skipped when the tests run without the validator.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/cpu/machine.js';
import { lockHooks } from '../../src/sync/hooks.js';

const fromEnv = !['', '0', undefined].includes(process.env.VMSPACE_LOCKDEP);

test('the validator is on in the test process and on every CPU', { skip: !fromEnv }, async () => {
  assert.equal(lockHooks.on, true, 'the preload switched it on on the main thread');
  const machine = await Machine.start({ cpus: 2 });
  try {
    const on = await machine.run<boolean>(new URL('./tasks/probe.js', import.meta.url));
    assert.deepEqual(on, [true, true]);
  } finally {
    await machine.stop();
  }
});
