import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cpuWaits, WAIT_NONE } from '../../src/cpu/waits.js';
import { lockdepCounts, lockdepMode, lockdepShowHeld, setLockdepMode } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { CpuError, Machine } from '../../src/machine/machine.js';
import { Mutex } from '../../src/sync/mutex.js';

const echo = new URL('./tasks/echo.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 3, watchdogMs: 1500 });
});
after(async () => {
  await machine.stop();
});

test('every CPU runs the task with its own stable id and the results come back in order', async () => {
  const results = await machine.run<{ cpu: number; value: number }>(echo, { value: 7 });
  assert.deepEqual(results, [
    { cpu: 0, value: 7 },
    { cpu: 1, value: 7 },
    { cpu: 2, value: 7 },
  ]);
  const again = await machine.run<{ cpu: number }>(echo.href, { value: 1 }, [2, 0]);
  assert.deepEqual(
    again.map((r) => r.cpu),
    [2, 0],
  );
});

test('an async task may await; tasks on one CPU run one after another', async () => {
  const [slow, fast] = await Promise.all([
    machine.run<{ value: string }>(echo, { value: 'slow', delayMs: 50 }, [1]),
    machine.run<{ value: string }>(echo, { value: 'fast' }, [1]),
  ]);
  assert.equal(slow[0].value, 'slow');
  assert.equal(fast[0].value, 'fast');
});

test('a CPU that throws rejects the run with its id and remote stack', async () => {
  await assert.rejects(machine.run(echo, { value: 0, throwOn: 1 }), (error: unknown) => {
    assert.ok(error instanceof CpuError);
    assert.equal(error.cpu, 1);
    assert.equal(error.remoteName, 'TypeError');
    assert.match(error.message, /cpu 1 was told to throw/);
    assert.match(error.remoteStack, /echo\.(js|ts)/);
    return true;
  });
  const results = await machine.run<{ cpu: number }>(echo, { value: 0 });
  assert.equal(results.length, 3, 'the machine keeps working after a task error');
});

test('bad cpu ids and bad machine sizes are rejected with EINVAL', async () => {
  await assert.rejects(machine.run(echo, {}, [3]), /EINVAL/);
  await assert.rejects(Machine.start({ cpus: 0 }), /EINVAL/);
  await assert.rejects(Machine.start({ cpus: 2, watchdogMs: -1 }), /EINVAL/);
});

test('a deadlock fails fast and the report says which CPU waits on what (and holds what)', async () => {
  const a = Mutex.create('test.deadlock.a');
  const b = Mutex.create('test.deadlock.b');
  const args = { a: a.describe(), b: b.describe(), flag: new SharedArrayBuffer(4) };
  const task = new URL('./tasks/deadlock.js', import.meta.url);
  // The validator would refuse the second lock of the AB-BA before it deadlocks: let it only count,
  // so the deadlock really happens and the watchdog's report is what is tested.
  const validating = lockHooks.on;
  const circular = validating ? lockdepMode('circular') : 'off';
  if (validating) setLockdepMode('circular', 'count');
  const circularBefore = validating ? lockdepCounts().circular : 0;
  let outcomes: PromiseSettledResult<unknown>[];
  try {
    outcomes = await Promise.allSettled([machine.run(task, args, [0]), machine.run(task, args, [1])]);
  } finally {
    if (validating) setLockdepMode('circular', circular);
  }
  const messages: string[] = [];
  for (const [cpu, outcome] of outcomes.entries()) {
    assert.equal(outcome.status, 'rejected');
    const error = (outcome as PromiseRejectedResult).reason as CpuError;
    assert.equal(error.cpu, cpu);
    assert.match(
      error.message,
      new RegExp(`watchdog: cpu ${cpu} waited more than 1500 ms on test\\.deadlock\\.[ab]`),
    );
    assert.match(error.remoteStack, /deadlock\.(js|ts)/);
    messages.push(error.message);
  }
  // The first CPU to give up reports both waits (the second may already see the first idle).
  assert.ok(
    messages.some(
      (m) =>
        /cpu 0: waits \d+ ms on test\.deadlock\.b \(mutex\), held by cpu 1/.test(m) &&
        /cpu 1: waits \d+ ms on test\.deadlock\.a \(mutex\), held by cpu 0/.test(m),
    ),
    messages.join('\n---\n'),
  );
  if (validating) {
    assert.equal(lockdepCounts().circular - circularBefore, 1, 'the validator saw the AB-BA coming');
    assert.ok(
      messages.some(
        (m) =>
          /1 lock held by CPU0:\n #0: \(test\.deadlock\.a\)\{write\}/.test(m) &&
          /1 lock held by CPU1:\n #0: \(test\.deadlock\.b\)\{write\}/.test(m),
      ),
      messages.join('\n---\n'),
    );
    assert.equal(lockdepShowHeld(), 'no CPU holds a lock.', 'the failed tasks left nothing in the validator');
  }
  assert.ok(
    cpuWaits().every((w) => w.kind === WAIT_NONE),
    'no CPU is left waiting',
  );
});
