/**
 * The test runner's wiring (scripts/run-tests.js): with VMSPACE_LOCKDEP set, the preload switched
 * the validator on in this test process, and every Machine CPU switched it on in its worker entry,
 * without any call from the test. Without VMSPACE_LOCKDEP (a plain `node --test`), it is off in both.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lockHooks } from '../../src/lockhooks.js';
import { Machine } from '../../src/machine/machine.js';

const fromEnv = !['', '0', undefined].includes(process.env.VMSPACE_LOCKDEP);

test('the validator follows VMSPACE_LOCKDEP in the test process and on every CPU', async () => {
  assert.equal(lockHooks.on, fromEnv, 'the preload follows the environment on the main thread');
  const machine = await Machine.start({ cpus: 2 });
  try {
    const on = await machine.run<boolean>(new URL('./tasks/probe.js', import.meta.url));
    assert.deepEqual(on, [fromEnv, fromEnv]);
  } finally {
    await machine.stop();
  }
});
