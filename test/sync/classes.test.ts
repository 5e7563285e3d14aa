import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { lockClass, lockClassName } from '../../src/sync/lockclass.js';
import { SeqCount } from '../../src/sync/seqcount.js';

test('lock class ids are the same on every CPU, whoever registers first', async () => {
  const mainId = lockClass('test.classes.main');
  assert.equal(lockClass('test.classes.main'), mainId, 'stable on repeat');
  assert.ok(mainId >= 1);
  const machine = await Machine.start({ cpus: 2 });
  try {
    const task = new URL('./tasks/classes.js', import.meta.url);
    const results = await machine.run<{ ids: number[]; name: string }>(task, {
      names: ['test.classes.main', 'test.classes.shared', 'test.classes.cpu$cpu'],
      lookup: mainId,
    });
    assert.equal(results[0].ids[0], mainId);
    assert.equal(results[1].ids[0], mainId);
    assert.equal(results[0].ids[1], results[1].ids[1], 'a name registered by two CPUs gets one id');
    assert.notEqual(results[0].ids[2], results[1].ids[2]);
    assert.equal(results[0].name, 'test.classes.main');
    assert.equal(
      lockClass('test.classes.cpu1'),
      results[1].ids[2],
      'the main thread sees ids registered on a CPU',
    );
    assert.equal(lockClassName(results[0].ids[2]), 'test.classes.cpu0');
  } finally {
    await machine.stop();
  }
});

test('bad class names and ids are rejected with EINVAL', () => {
  assert.throws(() => lockClass(''), /EINVAL/);
  assert.throws(() => lockClass('x'.repeat(64)), /EINVAL/);
  assert.throws(() => lockClassName(0), /EINVAL/);
  assert.throws(() => lockClassName(100_000), /EINVAL/);
});

test('seqcount: a reader on another CPU never accepts a torn pair while a writer updates it', async () => {
  const sc = SeqCount.create('test.classes.seq');
  const data = new SharedArrayBuffer(8);
  const machine = await Machine.start({ cpus: 2 });
  try {
    const task = new URL('./tasks/seq.js', import.meta.url);
    const base = { lock: sc.describe(), data, ms: 300 };
    const [[w], [r]] = await Promise.all([
      machine.run<{ n: number }>(task, { ...base, role: 'writer' }, [0]),
      machine.run<{ n: number; torn: number; retries: number }>(task, { ...base, role: 'reader' }, [1]),
    ]);
    assert.ok(w.n > 0 && r.n > 0);
    assert.equal(r.torn, 0);
  } finally {
    await machine.stop();
  }
});
