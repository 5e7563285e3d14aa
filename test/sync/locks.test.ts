import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lockHooks } from '../../src/lockhooks.js';
import { lockClass } from '../../src/sync/lockclass.js';
import { Mutex } from '../../src/sync/mutex.js';
import { rcuReadLock, rcuReadUnlock } from '../../src/sync/rcu.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { SeqCount } from '../../src/sync/seqcount.js';
import { SpinLock } from '../../src/sync/spinlock.js';
import { assertMisuse, isLockdepReport } from './misuse.js';

test('spinlock and mutex: tryLock fails while held, unlock by a non-holder throws and changes nothing', () => {
  for (const lock of [SpinLock.create('test.locks.spin'), Mutex.create('test.locks.mutex')]) {
    assert.throws(() => lock.unlock(), /held by nobody/);
    assert.equal(lock.tryLock(), true);
    assert.equal(lock.tryLock(), false);
    lock.unlock();
    lock.lock();
    assertMisuse(() => lock.lock(), 'recursive', /self-deadlock/);
    lock.unlock();
    assert.equal(lock.tryLock(), true);
    lock.unlock();
  }
});

test('locks embed in a shared Int32Array at an offset and attach from a descriptor', () => {
  const words = new Int32Array(new SharedArrayBuffer(64));
  const cls = lockClass('test.locks.embedded');
  const rw = RwSem.at(words, 4, cls);
  const m = Mutex.at(words, 4 + RwSem.WORDS, lockClass('test.locks.embedded.inner'));
  rw.downWrite();
  m.lock();
  const again = RwSem.attach(rw.describe());
  assert.equal(again.tryDownRead(), false);
  assert.deepEqual(again.state(), { readers: 0, writer: true, queued: 0 });
  m.unlock();
  rw.upWrite();
  assert.equal(words[0], 0, 'words before the lock are untouched');
  assert.throws(() => RwSem.at(words, 12, cls), /EINVAL/);
  assert.throws(() => Mutex.at(words, 0, 9999), /EINVAL: lock class 9999 does not exist/);
});

test('rwsem on one CPU: shared reads, exclusive write, trylocks, downgrade', () => {
  const rw = RwSem.create('test.locks.rwsem');
  rw.downRead();
  assert.equal(rw.tryDownWrite(), false);
  assert.equal(rw.tryDownRead(), true);
  assert.equal(rw.tryDownRead(), true);
  assert.equal(rw.state().readers, 3);
  rw.upRead();
  rw.upRead();
  rw.upRead();
  assertMisuse(() => rw.upRead(), 'bad_unlock', /no reader/);
  assert.throws(() => rw.upWrite(), /write-held by no writer/);
  rw.downWrite();
  assert.equal(rw.tryDownRead(), false);
  assert.equal(rw.tryDownWrite(), false);
  rw.downgrade();
  assert.deepEqual(rw.state(), { readers: 1, writer: false, queued: 0 });
  assert.equal(rw.tryDownRead(), true);
  assert.throws(() => rw.downgrade(), /write-held by no writer/);
  rw.upRead();
  rw.upRead();
  assert.deepEqual(rw.state(), { readers: 0, writer: false, queued: 0 });
});

test('a CPU reading an rwsem again: the validator refuses (a queued writer would deadlock it), the lock alone admits it', () => {
  const rw = RwSem.create('test.locks.rwsem.again');
  rw.downRead();
  if (lockHooks.on) {
    assert.throws(() => rw.downRead(), isLockdepReport('recursive'));
    assert.equal(rw.state().readers, 1, 'the second read was not taken');
  } else {
    rw.downRead();
    assert.equal(rw.state().readers, 2);
    rw.upRead();
  }
  rw.upRead();
  assert.deepEqual(rw.state(), { readers: 0, writer: false, queued: 0 });
});

test('sleeping locks refuse to be taken inside an RCU read section; spinlocks and trylocks may', () => {
  const m = Mutex.create('test.locks.rcu.mutex');
  const rw = RwSem.create('test.locks.rcu.rwsem');
  const spin = SpinLock.create('test.locks.rcu.spin');
  rcuReadLock();
  try {
    assert.throws(() => m.lock(), /mutex_lock inside an RCU read section/);
    assert.throws(() => rw.downRead(), /down_read inside an RCU read section/);
    assert.throws(() => rw.downWrite(), /down_write inside an RCU read section/);
    spin.lock();
    spin.unlock();
    assert.equal(rw.tryDownRead(), true);
    rw.upRead();
    assert.equal(m.tryLock(), true);
    m.unlock();
  } finally {
    rcuReadUnlock();
  }
  assert.deepEqual(rw.state(), { readers: 0, writer: false, queued: 0 });
});

test('under a spinlock the validator refuses sleeping locks (atomic context); trylocks are fine', () => {
  const m = Mutex.create('test.locks.atomic.mutex');
  const rw = RwSem.create('test.locks.atomic.rwsem');
  const spin = SpinLock.create('test.locks.atomic.spin');
  spin.lock();
  try {
    if (lockHooks.on) {
      assert.throws(() => m.lock(), isLockdepReport('sleep_in_atomic'));
      assert.throws(() => rw.downWrite(), isLockdepReport('sleep_in_atomic'));
    }
    assert.equal(m.tryLock(), true);
    m.unlock();
    assert.equal(rw.tryDownWrite(), true);
    rw.upWrite();
  } finally {
    spin.unlock();
  }
  assert.deepEqual(rw.state(), { readers: 0, writer: false, queued: 0 });
  assert.equal(m.tryLock(), true, 'the refused mutex was never taken');
  m.unlock();
});

test('seqcount: readers retry across a write; a second concurrent writer is detected', () => {
  const sc = SeqCount.create('test.locks.seq');
  const s0 = sc.readBegin();
  assert.equal(sc.readRetry(s0), false);
  sc.writeBegin();
  assertMisuse(() => sc.writeBegin(), 'recursive', /concurrent writers/);
  sc.writeEnd();
  assert.equal(sc.readRetry(s0), true);
  assert.equal(sc.readRetry(sc.readBegin()), false);
  assert.throws(() => sc.writeEnd(), /writeEnd without writeBegin/);
});
