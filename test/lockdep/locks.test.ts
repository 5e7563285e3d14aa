/**
 * The validator with the real locks on the main thread: what the locks' own hook calls produce
 * (rwsem read recursion, mutex inversion, subclass nesting, downgrade, RCU, seqcount, arenas).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  LockdepError,
  lockdepCounts,
  lockdepDependencies,
  lockdepReports,
  lockdepShowHeld,
  lockdepSiteCounts,
  setLockdepMode,
} from '../../src/lockdep/index.js';
import { Arena } from '../../src/shm/arena.js';
import { Mutex } from '../../src/sync/mutex.js';
import { rcuReadLock, rcuReadUnlock, synchronizeRcu } from '../../src/sync/rcu.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { SeqCount } from '../../src/sync/seqcount.js';
import { fresh } from './util.js';

function isReport(check: string) {
  return (e: unknown) => e instanceof LockdepError && e.check === check;
}

describe('lockdep with the real locks', () => {
  beforeEach(() => fresh());
  afterEach(() => assert.equal(lockdepShowHeld(), 'no CPU holds a lock.'));

  it('a second downRead of an rwsem this CPU reads is refused before it can deadlock', () => {
    const sem = RwSem.create('real.rwsem');
    sem.downRead();
    assert.throws(() => sem.downRead(), isReport('recursive'));
    assert.deepEqual(sem.state(), { readers: 1, writer: false, queued: 0 }, 'the second read was not taken');
    sem.upRead();
  });

  it('mutex AB-BA is reported and the lock that would deadlock is not taken', () => {
    const a = Mutex.create('real.A');
    const b = Mutex.create('real.B');
    a.lock();
    b.lock();
    b.unlock();
    a.unlock();
    b.lock();
    assert.throws(() => a.lock(), isReport('circular'));
    assert.equal(a.tryLock(), true, 'a was never taken');
    a.unlock();
    b.unlock();
  });

  it('subclass nesting, downgrade, nested RCU and seqcount readers give no report', () => {
    const parent = RwSem.create('real.inode');
    const child = RwSem.create('real.inode');
    const mm = RwSem.create('mmap_lock');
    const seq = SeqCount.create('real.seq');
    parent.downWrite(0);
    child.downWrite(1);
    mm.downWrite();
    seq.writeBegin();
    seq.writeEnd();
    mm.downgrade();
    rcuReadLock();
    rcuReadLock();
    seq.readRetry(seq.readBegin());
    rcuReadUnlock();
    rcuReadUnlock();
    mm.upRead();
    child.upWrite();
    parent.upWrite();
    assert.deepEqual(lockdepReports(), []);
    assert.equal(
      Object.values(lockdepCounts()).reduce((x, y) => x + y),
      0,
    );
  });

  it('a sleeping lock under mmap_lock is nesting, not sleeping under it; a grace-period wait is', () => {
    setLockdepMode('mmap_sleep', 'throw');
    const mm = RwSem.create('mmap_lock');
    const vma = RwSem.create('real.vma_lock');
    const m = Mutex.create('real.i_mmap');
    mm.downRead();
    try {
      vma.downWrite();
      m.lock();
      m.unlock();
      vma.upWrite();
      assert.throws(() => synchronizeRcu(), isReport('mmap_sleep'));
    } finally {
      mm.upRead();
    }
    assert.equal(lockdepCounts().mmap_sleep, 1);
    assert.deepEqual(lockdepSiteCounts(), [{ site: 'synchronize_rcu', sleep: 1, alloc: 0, io: 0 }]);
  });

  it('a downgrade keeps the subclass of the write hold', () => {
    const parent = RwSem.create('real.dir');
    const child = RwSem.create('real.dir');
    const later = Mutex.create('real.after_downgrade');
    parent.downWrite(0);
    child.downWrite(1);
    child.downgrade();
    assert.match(lockdepShowHeld(), /#1: \(real\.dir\/1\)\{read\}/);
    later.lock();
    later.unlock();
    child.upRead();
    parent.upWrite();
    const edges = lockdepDependencies().map((d) => `${d.from}->${d.to}`);
    assert.ok(edges.includes('(real.dir/1)->(real.after_downgrade)'), edges.join(', '));
    assert.deepEqual(lockdepReports(), []);
  });

  it('an arena allocation under mmap_lock is flagged with the arena as call site', () => {
    setLockdepMode('mmap_alloc', 'throw');
    const records = Arena.create({ name: 'real.records', recordBytes: 8, capacity: 4 });
    const mm = RwSem.create('mmap_lock');
    mm.downRead();
    assert.throws(
      () => records.alloc(),
      (e: unknown) => isReport('mmap_alloc')(e) && /mightAlloc\('real\.records'\)/.test(String(e)),
    );
    mm.upRead();
    records.free(records.alloc());
    assert.deepEqual(lockdepSiteCounts(), [{ site: 'real.records', sleep: 0, alloc: 1, io: 0 }]);
    assert.equal(records.live, 0);
  });
});
