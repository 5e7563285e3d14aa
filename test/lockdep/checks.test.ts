/**
 * The validator's other checks and its modes, driven through the lock hooks on the main thread:
 * bad unlock, locks held at return, sleeping in atomic context, the mmap_lock rule (with call
 * sites, per-site and per-class counts), warn/count/off modes, reset and switching off.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { currentCpu } from '../../src/cpu/current.js';
import {
  disableLockdep,
  enableLockdep,
  formatLockStatWithValidator,
  LockdepError,
  lockdepAssertNoneHeld,
  lockdepClassCounts,
  lockdepCounts,
  lockdepDependencies,
  lockdepMode,
  lockdepReports,
  lockdepReset,
  lockdepShowHeld,
  lockdepSiteCounts,
  setLockdepMode,
} from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { TlbDomain } from '../../src/mem/tlb.js';
import { lockClass } from '../../src/sync/lockclass.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { FakeLock, fresh, spinLock } from './util.js';

function isReport(check: string, pattern: RegExp) {
  return (e: unknown) => e instanceof LockdepError && e.check === check && pattern.test(e.message);
}

/** A file read that runs `mightIO` the way the file layer does. */
function readFileData(site: string): void {
  lockHooks.v.mightIO(site);
}

describe('lockdep checks', () => {
  beforeEach(() => fresh());
  afterEach(() => assert.equal(lockdepShowHeld(), 'no CPU holds a lock.'));

  it('reports releasing a lock this CPU does not hold', () => {
    const a = new FakeLock('bal.A');
    const b = new FakeLock('bal.B');
    assert.throws(
      () => a.unlock(),
      isReport('bad_unlock', /bad unlock balance[\s\S]*no more locks to release/),
    );
    b.lock();
    assert.throws(() => a.unlock(), isReport('bad_unlock', /\(bal\.A\), lock \d+[\s\S]*does not hold it/));
    b.unlock();
    assert.equal(lockdepCounts().bad_unlock, 2);
    assert.equal(lockdepClassCounts(a.classId).bad_unlock, 2);
  });

  it('reports a task or syscall returning with locks held, and stays quiet otherwise', () => {
    const a = new FakeLock('ret.A');
    lockdepAssertNoneHeld('syscall mmap');
    a.lock();
    assert.throws(
      () => lockdepAssertNoneHeld('syscall mmap'),
      isReport('held_at_return', /lock held when returning from syscall mmap![\s\S]*#0: \(ret\.A\)\{write\}/),
    );
    assert.equal(lockdepShowHeld(), 'no CPU holds a lock.', 'forgotten once reported');
    lockdepAssertNoneHeld('syscall mmap');
    assert.equal(lockdepCounts().held_at_return, 1);
    a.lock();
    a.unlock();
  });

  it('reports sleeping under a spinlock or inside an RCU read section', () => {
    const spin = spinLock('atomic.spin');
    const mutex = new FakeLock('atomic.mutex');
    const rcu = new FakeLock('rcu_read_lock', 0);
    spin.lock();
    assert.throws(
      () => mutex.lock(),
      isReport('sleep_in_atomic', /acquires \(atomic\.mutex\)[\s\S]*inside \(atomic\.spin\)/),
    );
    assert.throws(
      () => lockHooks.v.mightSleep('wait.page'),
      isReport('sleep_in_atomic', /mightSleep\('wait\.page'\)/),
    );
    spin.unlock();
    rcu.read();
    assert.throws(
      () => readFileData('file.read'),
      isReport('sleep_in_atomic', /mightIO\('file\.read'\)[\s\S]*\(rcu_read_lock\)/),
    );
    lockHooks.v.mightAlloc('arena.node');
    spin.lock();
    spin.unlock();
    rcu.unlock();
    mutex.lock();
    lockHooks.v.mightSleep('wait.page');
    readFileData('file.read');
    mutex.unlock();
    assert.equal(lockdepCounts().sleep_in_atomic, 3);
    assert.equal(lockdepClassCounts(spin.classId).sleep_in_atomic, 2);
  });

  it('flags I/O and allocation under mmap_lock with the call site, not after it is dropped', () => {
    setLockdepMode('mmap_io', 'throw');
    setLockdepMode('mmap_alloc', 'throw');
    const mmap = new FakeLock('mmap_lock');
    mmap.read();
    assert.throws(
      () => readFileData('filemap.readPage'),
      isReport(
        'mmap_io',
        /I\/O while holding mmap_lock[\s\S]*mightIO\('filemap\.readPage'\)[\s\S]*at readFileData .*checks\.test/,
      ),
    );
    assert.throws(
      () => lockHooks.v.mightAlloc('frames'),
      isReport('mmap_alloc', /allocation while holding mmap_lock/),
    );
    mmap.unlock();
    readFileData('filemap.readPage');
    lockHooks.v.mightAlloc('frames');
    assert.equal(lockdepCounts().mmap_io, 1);
    assert.equal(lockdepCounts().mmap_alloc, 1);
    assert.equal(lockdepClassCounts(lockClass('mmap_lock')).mmap_io, 1);
  });

  it("a TLB shootdown's wait for acknowledgements is no sleep under mmap_lock (a spin, as Linux's flush IPIs), but is in atomic context", () => {
    setLockdepMode('mmap_sleep', 'throw');
    const tlb = TlbDomain.create();
    tlb.markUsed(currentCpu());
    const mmap = new FakeLock('mmap_lock');
    mmap.lock();
    tlb.shootdown(16, 32);
    assert.throws(
      () => lockHooks.v.mightSleep('tlb.wait'),
      isReport('mmap_sleep', /mightSleep\('tlb\.wait'\)/),
    );
    mmap.unlock();
    assert.deepEqual([lockdepCounts().mmap_sleep, lockdepCounts().sleep_in_atomic], [1, 0]);
    assert.equal(
      lockdepSiteCounts().find((x) => x.site === 'tlb_shootdown'),
      undefined,
    );
    const spin = spinLock('tlb.ptl');
    spin.lock();
    assert.throws(
      () => tlb.shootdown(16, 32),
      isReport('sleep_in_atomic', /mightWaitCpus\('tlb_shootdown'\)[\s\S]*\(tlb\.ptl\)/),
    );
    spin.unlock();
    assert.equal(lockdepCounts().sleep_in_atomic, 1);
  });

  it('counts mmap_lock violations per call site in count mode, without reports', () => {
    assert.equal(lockdepMode('mmap_io'), 'count', 'the default');
    const mmap = new FakeLock('mmap_lock');
    const inode = new FakeLock('cnt.inode');
    mmap.lock();
    for (let i = 0; i < 5; i++) readFileData('cnt.readahead');
    lockHooks.v.mightAlloc('cnt.vma');
    lockHooks.v.mightSleep('cnt.wait');
    inode.lock();
    lockHooks.v.mightAlloc('cnt.vma');
    inode.unlock();
    mmap.unlock();
    lockHooks.v.mightAlloc('cnt.vma');
    assert.deepEqual(lockdepSiteCounts(), [
      { site: 'cnt.readahead', sleep: 0, alloc: 0, io: 5 },
      { site: 'cnt.vma', sleep: 0, alloc: 2, io: 0 },
      { site: 'cnt.wait', sleep: 1, alloc: 0, io: 0 },
    ]);
    const counts = lockdepCounts();
    assert.deepEqual([counts.mmap_io, counts.mmap_alloc, counts.mmap_sleep], [5, 2, 1]);
    assert.deepEqual(lockdepReports(), []);
  });

  it('the lock statistics table shows the counts next to the class they fired against', () => {
    const mmap = RwSem.create('mmap_lock');
    const other = RwSem.create('stat.other');
    mmap.downRead();
    readFileData('stat.read');
    readFileData('stat.read');
    lockHooks.v.mightAlloc('stat.alloc');
    mmap.upRead();
    other.downWrite();
    readFileData('stat.read');
    other.upWrite();
    const table = formatLockStatWithValidator().split('\n');
    assert.match(table[1], /\blockdep$/);
    assert.match(table.find((l) => l.startsWith('mmap_lock ')) ?? '', / mmap_alloc:1 mmap_io:2$/);
    assert.match(table.find((l) => l.startsWith('stat.other ')) ?? '', / -$/);
  });

  it('warns once per distinct report, counting every time', () => {
    setLockdepMode('mmap_io', 'warn');
    const printed: string[] = [];
    const warn = console.warn;
    console.warn = (text: string) => printed.push(text);
    try {
      const mmap = new FakeLock('mmap_lock');
      mmap.lock();
      readFileData('warn.read');
      readFileData('warn.read');
      readFileData('warn.other');
      mmap.unlock();
    } finally {
      console.warn = warn;
    }
    assert.equal(printed.length, 2);
    assert.equal(lockdepReports().length, 2);
    assert.equal(lockdepCounts().mmap_io, 3);
  });

  it('does nothing for a check that is off', () => {
    setLockdepMode('recursive', 'off');
    const a = new FakeLock('off.A');
    a.lock();
    a.lock();
    a.unlock();
    a.unlock();
    assert.equal(lockdepCounts().recursive, 0);
    assert.deepEqual(lockdepReports(), []);
  });

  it('reset forgets dependencies, reports, counts and modes', () => {
    setLockdepMode('circular', 'count');
    const a = new FakeLock('reset.A');
    const b = new FakeLock('reset.B');
    a.lock();
    b.lock();
    b.unlock();
    a.unlock();
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
    assert.equal(lockdepCounts().circular, 1);
    lockdepReset();
    assert.equal(lockdepCounts().circular, 0);
    assert.deepEqual(lockdepDependencies(), []);
    assert.equal(lockdepMode('circular'), 'throw');
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
    assert.deepEqual(lockdepReports(), [], 'the old order is forgotten');
  });

  it('rejects unknown checks and modes', () => {
    assert.throws(() => setLockdepMode('nonsense' as 'circular', 'throw'), /unknown check "nonsense"/);
    assert.throws(() => setLockdepMode('circular', 'loud' as 'warn'), /unknown mode "loud"/);
    assert.equal(lockdepMode('circular'), 'throw');
  });

  it('enableLockdepFromEnv follows VMSPACE_LOCKDEP and VMSPACE_LOCKDEP_MMAP', () => {
    const index = new URL('../../src/lockdep/index.js', import.meta.url).href;
    const hooks = new URL('../../src/lockhooks.js', import.meta.url).href;
    const probe = [
      `const { enableLockdepFromEnv, lockdepMode } = await import('${index}');`,
      `const { lockHooks } = await import('${hooks}');`,
      'const on = enableLockdepFromEnv();',
      "console.log(JSON.stringify([on, lockHooks.on, lockdepMode('circular'), lockdepMode('mmap_io')]));",
    ].join('\n');
    const probeWith = (env: Record<string, string>) => {
      const { VMSPACE_LOCKDEP: _, VMSPACE_LOCKDEP_MMAP: __, ...rest } = process.env;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], {
        env: { ...rest, ...env },
      });
      return JSON.parse(out.toString());
    };
    assert.deepEqual(probeWith({ VMSPACE_LOCKDEP: '1' }), [true, true, 'throw', 'count']);
    assert.deepEqual(probeWith({ VMSPACE_LOCKDEP: '1', VMSPACE_LOCKDEP_MMAP: 'warn' }), [
      true,
      true,
      'throw',
      'warn',
    ]);
    assert.deepEqual(probeWith({ VMSPACE_LOCKDEP: '0' }), [false, false, 'off', 'off']);
    assert.deepEqual(probeWith({}), [false, false, 'off', 'off']);
  });

  it('when switched off, the locks skip the hooks', () => {
    disableLockdep();
    try {
      assert.equal(lockHooks.on, false);
      lockdepAssertNoneHeld('task');
    } finally {
      enableLockdep();
    }
    assert.equal(lockHooks.on, true);
  });
});
