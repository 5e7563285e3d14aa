import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  installValidator,
  LOCK_ATOMIC,
  LOCK_RECURSIVE_READ,
  LOCK_SLEEPS,
  type LockValidator,
  lockHooks,
  WRITE,
} from '../../src/lockhooks.js';
import {
  formatLockStat,
  HOLD_SAMPLE_EVERY,
  lockStatOn,
  lockStatRows,
  setLockStat,
} from '../../src/sync/lockstat.js';
import { Mutex } from '../../src/sync/mutex.js';
import { RCU_CLASS, rcuReadLock, rcuReadUnlock, synchronizeRcu } from '../../src/sync/rcu.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { SeqCount } from '../../src/sync/seqcount.js';
import { SpinLock } from '../../src/sync/spinlock.js';

test('lock statistics count acquisitions per class and mode, and can be switched off', () => {
  const rw = RwSem.create('test.stat.rwsem');
  const m = Mutex.create('test.stat.mutex');
  assert.equal(lockStatOn(), true, 'on by default');
  for (let i = 0; i < 3 * HOLD_SAMPLE_EVERY; i++) {
    rw.downRead();
    rw.upRead();
  }
  rw.downWrite();
  rw.upWrite();
  assert.equal(rw.tryDownRead(), true);
  assert.equal(rw.tryDownWrite(), false);
  rw.upRead();
  m.lock();
  m.unlock();
  setLockStat(false);
  m.lock();
  m.unlock();
  setLockStat(true);
  const rows = lockStatRows();
  const r = rows.find((x) => x.name === 'test.stat.rwsem');
  const s = rows.find((x) => x.name === 'test.stat.mutex');
  assert.ok(r && s);
  assert.equal(r.acquisitionsRead, 3 * HOLD_SAMPLE_EVERY + 1);
  assert.equal(r.acquisitionsWrite, 1);
  assert.equal(r.tryFailures, 1);
  assert.equal(r.contentions, 0);
  assert.equal(r.holdSamples, 3, 'one hold time sampled per HOLD_SAMPLE_EVERY acquisitions');
  assert.equal(s.acquisitionsWrite, 1, 'nothing counted while switched off');
  const table = formatLockStat(rows);
  assert.match(table, /test\.stat\.rwsem +193 +1 +0 +1 /);
});

interface Event {
  op: string;
  cls: number;
  sub?: number;
  mode?: number;
  trylock?: boolean;
  id?: number;
  site?: string;
}

function recorder(events: Event[]): LockValidator {
  return {
    acquire: (cls, sub, id, mode, trylock) => events.push({ op: 'acquire', cls, sub, mode, trylock, id }),
    acquired: (cls, sub, id, mode) => events.push({ op: 'acquired', cls, sub, mode, id }),
    release: (cls, id) => events.push({ op: 'release', cls, id }),
    mightSleep: (site) => events.push({ op: 'sleep', cls: 0, site }),
    mightAlloc: () => {},
    mightIO: () => {},
    mightWaitCpus: () => {},
    showHeld: () => '',
  };
}

test('every lock reports acquire/acquired/release with its kind bits and subclass to an installed validator', () => {
  const events: Event[] = [];
  const rw = RwSem.create('test.hooks.rwsem');
  const m = Mutex.create('test.hooks.mutex');
  const spin = SpinLock.create('test.hooks.spin');
  const seq = SeqCount.create('test.hooks.seq');
  const previous = lockHooks.on ? lockHooks.v : null;
  installValidator(recorder(events));
  try {
    rw.downRead();
    rw.upRead();
    m.lock();
    m.unlock();
    spin.lock();
    spin.unlock();
    rw.tryDownWrite();
    rw.downgrade();
    rw.upRead();
    rw.downWrite(2);
    rw.downgrade();
    rw.upRead();
    seq.writeBegin(1);
    seq.writeEnd();
    seq.readRetry(seq.readBegin());
    rcuReadLock();
    rcuReadUnlock();
    synchronizeRcu();
  } finally {
    installValidator(previous);
  }
  const id = events.find((e) => e.cls === rw.classId)?.id;
  assert.ok(id !== undefined && id >= 1, 'an instance id was assigned');
  const mode = (m: number) =>
    `${m & WRITE ? 'W' : 'R'}${m & LOCK_SLEEPS ? 's' : ''}${m & LOCK_ATOMIC ? 'a' : ''}${m & LOCK_RECURSIVE_READ ? 'r' : ''}`;
  const ops = events.map(
    (e) =>
      `${e.op}:${e.site ?? e.cls}${e.sub ? `/${e.sub}` : ''}${e.mode === undefined ? '' : mode(e.mode)}${e.trylock ? 't' : ''}`,
  );
  const r = rw.classId;
  const mc = m.classId;
  const sc = spin.classId;
  const q = seq.classId;
  assert.deepEqual(ops, [
    `acquire:${r}Rs`,
    `acquired:${r}Rs`,
    `release:${r}`,
    `acquire:${mc}Ws`,
    `acquired:${mc}Ws`,
    `release:${mc}`,
    `acquire:${sc}Wa`,
    `acquired:${sc}Wa`,
    `release:${sc}`,
    `acquire:${r}Wt`,
    `acquired:${r}W`,
    `release:${r}`,
    `acquire:${r}Rt`,
    `acquired:${r}R`,
    `release:${r}`,
    `acquire:${r}/2Ws`,
    `acquired:${r}/2Ws`,
    `release:${r}`,
    `acquire:${r}/2Rt`,
    `acquired:${r}/2R`,
    `release:${r}`,
    `acquire:${q}/1Wa`,
    `acquired:${q}/1Wa`,
    `release:${q}`,
    `acquire:${q}Rr`,
    `acquired:${q}Rr`,
    `release:${q}`,
    `acquire:${RCU_CLASS}Rar`,
    `acquired:${RCU_CLASS}Rar`,
    `release:${RCU_CLASS}`,
    'sleep:synchronize_rcu',
  ]);
  assert.ok(
    events.filter((e) => e.cls === rw.classId).every((e) => e.id === id),
    'one id per lock instance',
  );
});
