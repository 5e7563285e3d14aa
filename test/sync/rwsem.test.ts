import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { RwSem } from '../../src/sync/rwsem.js';
import type { RoleArgs } from './tasks/rwsem-roles.js';

const roles = new URL('./tasks/rwsem-roles.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 3, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

/** Polls (without blocking the event loop) until `cond` holds; bounded. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function args(rw: RwSem, words: SharedArrayBuffer, role: RoleArgs['role'], durationMs?: number): RoleArgs {
  return { role, lock: rw.describe(), words, durationMs };
}

test('a waiting writer blocks new readers; the readers behind it are admitted together after it', async () => {
  const rw = RwSem.create('test.rwsem.queue');
  const words = new SharedArrayBuffer(32);
  rw.downRead();
  const writer = machine.run<{ order: number; readers: number }>(roles, args(rw, words, 'writer'), [0]);
  await until(() => rw.state().queued === 1, 'the writer queues behind the main thread reader');
  assert.equal(rw.tryDownRead(), false, 'a new reader may not pass a waiting writer');
  const readers = machine.run<{ order: number; together: boolean }>(
    roles,
    args(rw, words, 'reader-together'),
    [1, 2],
  );
  await until(() => rw.state().queued === 3, 'both readers queue behind the writer');
  assert.equal(rw.state().readers, 1, 'only the main thread reads');
  rw.upRead();
  const [[w], r] = await Promise.all([writer, readers]);
  assert.deepEqual(w, { order: 1, readers: 0 }, 'the writer went first, alone');
  assert.deepEqual(r.map((x) => x.order).sort(), [2, 3]);
  assert.ok(
    r.every((x) => x.together),
    'both readers were inside at the same time',
  );
  assert.deepEqual(rw.state(), { readers: 0, writer: false, queued: 0 });
});

test('downgrade admits the queued reader at once while a queued writer keeps waiting', async () => {
  const rw = RwSem.create('test.rwsem.downgrade');
  const words = new SharedArrayBuffer(32);
  const w = new Int32Array(words);
  const downgrader = machine.run<Record<string, unknown>>(roles, args(rw, words, 'downgrader'), [0]);
  await until(() => Atomics.load(w, 4) === 1, 'cpu 0 write-holds the lock');
  const reader = machine.run<boolean>(roles, args(rw, words, 'reader-hold'), [1]);
  await until(() => rw.state().queued === 1, 'the reader queues');
  const writer = machine.run<{ order: number; readers: number }>(roles, args(rw, words, 'writer'), [2]);
  const [[d], [released], [wr]] = await Promise.all([downgrader, reader, writer]);
  assert.equal(released, true);
  assert.deepEqual(d, { queued: true, readerJoined: true, writerHeld: false, stillQueued: 1 });
  assert.equal(wr.readers, 0, 'the writer got the lock only after both readers left');
  assert.deepEqual(rw.state(), { readers: 0, writer: false, queued: 0 });
});

test('neither readers nor a writer starve in a bounded mixed run, and exclusion holds', async () => {
  const rw = RwSem.create('test.rwsem.mixed');
  const words = new SharedArrayBuffer(32);
  const [r0, r1, wn] = await Promise.all([
    machine.run<number>(roles, args(rw, words, 'loop-reader', 400), [0]),
    machine.run<number>(roles, args(rw, words, 'loop-reader', 400), [1]),
    machine.run<number>(roles, args(rw, words, 'loop-writer', 400), [2]),
  ]);
  assert.equal(new Int32Array(words)[5], 0, 'no reader saw a writer inside, and no writer saw anyone');
  assert.ok(r0[0] > 0 && r1[0] > 0, `readers progressed: ${r0[0]}, ${r1[0]}`);
  assert.ok(wn[0] > 0, `the writer progressed: ${wn[0]}`);
});
