import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lockMmAndFindVma, lockVmaUnderRcu } from '../../src/mm/fault-lookup.js';
import {
  MmLocks,
  mmapReadUnlock,
  mmapWriteDowngrade,
  mmapWriteLock,
  mmapWriteUnlock,
  mmLockSeq,
  READ_DETACHED,
  READ_OK,
  READ_WRITE_LOCKED,
  resetVmaLockEvents,
  vmaEndRead,
  vmaIsWriteLocked,
  vmaLockEvents,
  vmaMarkAttached,
  vmaMarkDetached,
  vmaReaders,
  vmaStartRead,
  vmaStartWrite,
  vmaTryRead,
} from '../../src/mm/vma-lock.js';
import { VMA_ATTACHED, VMA_DETACHED, VmaArena } from '../../src/mm/vma-record.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { HandMm, P } from './vma-lock-fixture.js';

const BASE = 0x7f0000000000;

test('mmap_lock write lock/unlock moves the lock sequence odd, then even', () => {
  const mm = new HandMm();
  const seq = mmLockSeq(mm.locks);
  assert.equal(seq & 1, 0);
  mmapWriteLock(mm.locks);
  assert.equal(mmLockSeq(mm.locks), seq + 1);
  assert.equal(mm.locks.mmapLock.state().writer, true);
  mmapWriteUnlock(mm.locks);
  assert.equal(mmLockSeq(mm.locks), seq + 2);
  assert.deepEqual(mm.locks.mmapLock.state(), { readers: 0, writer: false, queued: 0 });
  assert.throws(() => mmapWriteUnlock(mm.locks), /not write-held/);
  assert.equal(mmLockSeq(mm.locks), seq + 2, 'a refused unlock changes nothing');
});

test('a write-locked VMA refuses readers until mmapWriteUnlock releases every write lock at once', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  const b = mm.map(BASE + 8 * P, BASE + 12 * P);
  assert.equal(vmaStartRead(mm.locks, a), true);
  vmaEndRead(mm.locks, a);
  mmapWriteLock(mm.locks);
  vmaStartWrite(mm.locks, a);
  vmaStartWrite(mm.locks, b);
  vmaStartWrite(mm.locks, a); // already locked: no-op
  assert.ok(vmaIsWriteLocked(mm.locks, a) && vmaIsWriteLocked(mm.locks, b));
  assert.equal(vmaTryRead(mm.locks, a), READ_WRITE_LOCKED);
  assert.equal(vmaTryRead(mm.locks, b), READ_WRITE_LOCKED);
  assert.equal(vmaReaders(mm.locks, a), 0, 'a failed trylock leaves no count behind');
  mmapWriteUnlock(mm.locks);
  assert.ok(!vmaIsWriteLocked(mm.locks, a) && !vmaIsWriteLocked(mm.locks, b));
  assert.equal(vmaTryRead(mm.locks, a), READ_OK);
  assert.equal(vmaTryRead(mm.locks, b), READ_OK);
  vmaEndRead(mm.locks, a);
  vmaEndRead(mm.locks, b);
  mm.destroy();
});

test('a VMA not write-locked in this mmap_lock hold stays readable while the writer works', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  const b = mm.map(BASE + 8 * P, BASE + 12 * P);
  mmapWriteLock(mm.locks);
  vmaStartWrite(mm.locks, a);
  assert.equal(vmaTryRead(mm.locks, b), READ_OK);
  vmaEndRead(mm.locks, b);
  mmapWriteUnlock(mm.locks);
  mm.destroy();
});

test('downgrade releases the VMA write locks and keeps mmap_lock for read', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  mmapWriteLock(mm.locks);
  vmaStartWrite(mm.locks, a);
  mmapWriteDowngrade(mm.locks);
  assert.deepEqual(mm.locks.mmapLock.state(), { readers: 1, writer: false, queued: 0 });
  assert.equal(vmaTryRead(mm.locks, a), READ_OK);
  vmaEndRead(mm.locks, a);
  mmapReadUnlock(mm.locks);
  mm.destroy();
});

test('readers are counted, and a detached VMA fails every reader', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  assert.equal(vmaReaders(mm.locks, a), 0);
  assert.ok(vmaStartRead(mm.locks, a));
  assert.ok(vmaStartRead(mm.locks, a));
  assert.equal(vmaReaders(mm.locks, a), 2);
  vmaEndRead(mm.locks, a);
  assert.equal(vmaReaders(mm.locks, a), 1);
  vmaEndRead(mm.locks, a);
  assert.equal(vmaReaders(mm.locks, a), 0);
  assert.throws(() => vmaEndRead(mm.locks, a), /not read-locked/);
  assert.equal(mm.arena.state(a), VMA_ATTACHED);

  mmapWriteLock(mm.locks);
  vmaStartWrite(mm.locks, a);
  mm.index.store(BASE, BASE + 4 * P - 1, 0);
  vmaMarkDetached(mm.locks, a);
  assert.equal(mm.arena.state(a), VMA_DETACHED);
  mmapWriteUnlock(mm.locks);
  assert.equal(vmaTryRead(mm.locks, a), READ_DETACHED, 'detached, though no longer write-locked');
  assert.equal(vmaReaders(mm.locks, a), 0);
  mm.arena.arena.free(a);
  mm.destroy();
});

test('a new record is detached until attached, and only a write-locked record can be attached or detached', () => {
  const mm = new HandMm();
  const h = mm.arena.alloc();
  assert.equal(vmaTryRead(mm.locks, h), READ_DETACHED);
  assert.throws(() => vmaStartWrite(mm.locks, h), /without mmap_lock held for write/);
  mmapWriteLock(mm.locks);
  assert.throws(() => vmaMarkAttached(mm.locks, h), /not write-locked/);
  vmaStartWrite(mm.locks, h);
  vmaMarkAttached(mm.locks, h);
  assert.throws(() => vmaMarkAttached(mm.locks, h), /attached already/);
  vmaMarkDetached(mm.locks, h);
  assert.throws(() => vmaMarkDetached(mm.locks, h), /not attached/);
  mmapWriteUnlock(mm.locks);
  mm.arena.arena.free(h);
  mm.destroy();
});

test('a record freed and reused starts unlocked and detached', () => {
  const arena = VmaArena.create(4, 4);
  const locks = MmLocks.create(arena);
  const h = arena.alloc();
  mmapWriteLock(locks);
  vmaStartWrite(locks, h);
  vmaMarkAttached(locks, h);
  vmaMarkDetached(locks, h);
  arena.arena.free(h);
  const again = arena.alloc();
  assert.equal(again, h);
  assert.equal(vmaIsWriteLocked(locks, again), false, 'zeroed by alloc: not write-locked');
  assert.equal(vmaTryRead(locks, again), READ_DETACHED);
  mmapWriteUnlock(locks);
  arena.arena.free(again);
  assert.equal(arena.arena.live, 0);
});

test('lockVmaUnderRcu: hit, hole, write-locked, moved and detached, each counted', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  resetVmaLockEvents(mm.locks);

  assert.equal(lockVmaUnderRcu(mm, BASE + P + 17), a);
  assert.equal(vmaReaders(mm.locks, a), 1);
  vmaEndRead(mm.locks, a);
  assert.equal(lockVmaUnderRcu(mm, BASE + 4 * P), 0, 'the first byte past the VMA');
  assert.equal(lockVmaUnderRcu(mm, BASE - 1), 0);

  mmapWriteLock(mm.locks);
  vmaStartWrite(mm.locks, a);
  assert.equal(lockVmaUnderRcu(mm, BASE), 0);
  // The record moves while the tree (as an RCU reader may still see it) maps the old range.
  mm.arena.setRange(a, BASE + 100 * P, BASE + 104 * P, 100);
  mmapWriteUnlock(mm.locks);
  assert.equal(lockVmaUnderRcu(mm, BASE), 0, 'the VMA no longer covers the address');
  assert.equal(vmaReaders(mm.locks, a), 0, 'the moved VMA was released');

  // Detached while still reachable in the tree (an RCU reader's stale view): retried, then refused.
  mmapWriteLock(mm.locks);
  mm.arena.setRange(a, BASE, BASE + 4 * P, BASE / P);
  vmaStartWrite(mm.locks, a);
  vmaMarkDetached(mm.locks, a);
  mmapWriteUnlock(mm.locks);
  assert.equal(lockVmaUnderRcu(mm, BASE), 0);
  assert.deepEqual(vmaLockEvents(mm.locks), {
    success: 1,
    noVma: 2,
    locked: 1,
    detached: 1,
    moved: 1,
    retries: 2,
    mmapFallbacks: 0,
    writerWaits: 0,
  });
  mmapWriteLock(mm.locks);
  mm.index.store(BASE, BASE + 4 * P - 1, 0);
  mmapWriteUnlock(mm.locks);
  mm.arena.arena.free(a);
  mm.destroy();
});

test('lockMmAndFindVma returns the VMA with mmap_lock held for read, or 0 with it released', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  resetVmaLockEvents(mm.locks);
  assert.equal(lockMmAndFindVma(mm, BASE + 3 * P), a);
  assert.deepEqual(mm.locks.mmapLock.state(), { readers: 1, writer: false, queued: 0 });
  assert.equal(vmaTryRead(mm.locks, a), READ_OK, 'VMA readers and mmap_lock readers coexist');
  vmaEndRead(mm.locks, a);
  mmapReadUnlock(mm.locks);
  assert.equal(lockMmAndFindVma(mm, BASE + 4 * P), 0);
  assert.deepEqual(mm.locks.mmapLock.state(), { readers: 0, writer: false, queued: 0 });
  assert.equal(vmaLockEvents(mm.locks).mmapFallbacks, 2);
  mm.destroy();
});

test('teardown leaves no VMA record and no tree node behind', () => {
  const mm = new HandMm();
  for (let i = 0; i < 40; i++) mm.map(BASE + i * 2 * P, BASE + (i * 2 + 1) * P);
  assert.equal(mm.arena.arena.live, 40);
  mm.destroy();
  rcuBarrier();
  assert.equal(mm.arena.arena.live, 0);
  assert.equal(mm.index.arena.live, 0);
});
