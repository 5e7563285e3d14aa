import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { mmapWriteLock, mmapWriteUnlock, vmaReaders, vmaStartWrite } from '../../src/mm/vma-lock.js';
import { ABORT, HELD, type HoldArgs, RELEASED } from './tasks/vma-hold.js';
import { HandMm, P } from './vma-lock-fixture.js';
import { raceVmaLocks } from './vma-lock-race.js';

const BASE = 0x7f0000000000;

/** Polls (without blocking the event loop) until `cond` holds; bounded. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

test('vmaStartWrite waits for the reader inside, and readers arriving meanwhile fail', async () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  const flags = new SharedArrayBuffer(16);
  const f = new Int32Array(flags);
  const machine = await Machine.start({ cpus: 1, watchdogMs: 20_000 });
  try {
    const args: HoldArgs = { mm: mm.describe(), flags, address: BASE + P };
    const holder = machine.run<{ refused: number }>(new URL('./tasks/vma-hold.js', import.meta.url), args);
    holder.catch(() => undefined); // awaited below; a failure here must not surface as unhandled
    try {
      await until(() => Atomics.load(f, HELD) === 1, 'cpu 0 holds the VMA read lock');
      assert.ok(vmaReaders(mm.locks, a) >= 1, 'the reader is inside (plus its probes)');
      mmapWriteLock(mm.locks);
      vmaStartWrite(mm.locks, a); // blocks until cpu 0 gives the read lock back
      assert.equal(Atomics.load(f, RELEASED), 1, 'the write lock was granted only after the reader left');
      assert.equal(vmaReaders(mm.locks, a), 0);
      mmapWriteUnlock(mm.locks);
    } finally {
      Atomics.store(f, ABORT, 1);
    }
    const [{ refused }] = await holder;
    assert.ok(refused >= 1, 'a new reader was refused while the writer waited');
  } finally {
    await machine.stop();
  }
  mm.destroy();
  assert.equal(mm.arena.arena.live, 0);
});

test('readers on two CPUs hold only valid VMAs while a third runs random syscalls', async () => {
  await raceVmaLocks(Number(process.env.VMSPACE_SEED ?? 7), 2, 1500);
});
