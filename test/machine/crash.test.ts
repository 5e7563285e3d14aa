/** A CPU whose worker crashes (own file: a Machine's watchdog limit is process-wide). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuError, Machine } from '../../src/machine/machine.js';

const echo = new URL('./tasks/echo.js', import.meta.url);

test('a crashed CPU fails its later runs at once, and the machine still stops', async () => {
  const crashy = await Machine.start({ cpus: 2 });
  try {
    // The crash comes just after the task returned: its own run may or may not see it.
    await Promise.allSettled([crashy.run(echo, { value: 1, crashOn: 1 }, [1])]);
    const deadline = Date.now() + 5000;
    let outcome: unknown;
    while (outcome === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      outcome = await crashy.run(echo, { value: 2 }, [1]).then(
        () => undefined,
        (error: unknown) => error,
      );
    }
    assert.ok(outcome instanceof CpuError, `cpu 1 is gone: ${outcome}`);
    assert.match(outcome.message, /cpu 1: crashed: cpu 1 crashes/);
    assert.deepEqual(await crashy.run(echo, { value: 3 }, [0]), [{ cpu: 0, value: 3 }], 'cpu 0 still works');
  } finally {
    await crashy.stop();
  }
});
