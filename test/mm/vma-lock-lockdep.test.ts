import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import {
  enableLockdep,
  LockdepError,
  lockdepCounts,
  lockdepDependencies,
  lockdepReset,
} from '../../src/lockdep/index.js';
import { lockVmaUnderRcu } from '../../src/mm/fault-lookup.js';
import { mmapWriteLock, mmapWriteUnlock, vmaEndRead, vmaStartWrite } from '../../src/mm/vma-lock.js';
import { Mutex } from '../../src/sync/mutex.js';
import { HandMm, P } from './vma-lock-fixture.js';

const BASE = 0x7f0000000000;

function edge(from: string, to: string): boolean {
  return lockdepDependencies().some((d) => d.from === `(${from})` && d.to === `(${to})`);
}

beforeEach(() => {
  lockdepReset();
  enableLockdep();
});

test('the validator sees the VMA write lock taken under mmap_lock, and no sleep under mmap_lock', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  const sleeps = lockdepCounts().mmap_sleep;
  mmapWriteLock(mm.locks);
  vmaStartWrite(mm.locks, a);
  mmapWriteUnlock(mm.locks);
  assert.ok(edge('mmap_lock', 'vma_lock'), JSON.stringify(lockdepDependencies()));
  assert.equal(lockdepCounts().mmap_sleep, sleeps, 'an uncontended VMA write lock is not a sleep');
  mm.destroy();
});

test('a VMA read lock is a trylock: holding another lock while taking it records no edge into it', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  lockdepReset();
  enableLockdep();
  const outer = Mutex.create('test.vma-lock.outer');
  outer.lock();
  assert.equal(lockVmaUnderRcu(mm, BASE), a);
  const inner = Mutex.create('test.vma-lock.inner');
  inner.lock();
  inner.unlock();
  vmaEndRead(mm.locks, a);
  outer.unlock();
  assert.ok(!edge('test.vma-lock.outer', 'vma_lock'), 'no wait edge into the trylock');
  assert.ok(edge('vma_lock', 'test.vma-lock.inner'), 'a lock taken while holding it depends on it');
  mm.destroy();
});

test('taking mmap_lock while holding a VMA read lock is reported as a possible deadlock', () => {
  const mm = new HandMm();
  const a = mm.map(BASE, BASE + 4 * P);
  mmapWriteLock(mm.locks);
  vmaStartWrite(mm.locks, a);
  mmapWriteUnlock(mm.locks);
  assert.equal(lockVmaUnderRcu(mm, BASE), a);
  assert.throws(
    () => mmapWriteLock(mm.locks),
    (e: unknown) => e instanceof LockdepError && e.check === 'circular',
  );
  vmaEndRead(mm.locks, a);
  mm.destroy();
});
