/**
 * The validator on real worker CPUs with the real locks: the mailing-list inversion between a file
 * write path and a fault path that never overlap in time, AB-BA and three-lock cycles across CPUs,
 * the rwsem read-recursion hazard across CPUs, a concurrent workload in the documented lock order
 * with no report, and the mmap_lock check with call sites.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  enableLockdep,
  lockdepClassCounts,
  lockdepCounts,
  lockdepDependencies,
  lockdepReports,
  lockdepShowHeld,
  lockdepSiteCounts,
  setLockdepMode,
} from '../../src/lockdep/index.js';
import { CpuError, Machine } from '../../src/machine/machine.js';
import { Arena } from '../../src/shm/arena.js';
import { lockClass } from '../../src/sync/lockclass.js';
import { Mutex } from '../../src/sync/mutex.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { SeqCount } from '../../src/sync/seqcount.js';
import { SpinLock } from '../../src/sync/spinlock.js';
import type { PathArgs } from './tasks/paths.js';
import { fresh } from './util.js';

const paths = new URL('./tasks/paths.js', import.meta.url);
let machine: Machine;

function run(cpu: number, args: PathArgs): Promise<unknown[]> {
  return machine.run(paths, args, [cpu]);
}

function lockdepFailure(check: string, ...patterns: RegExp[]) {
  return (e: unknown) => {
    assert.ok(e instanceof CpuError, `a CPU error, got ${e}`);
    assert.equal(e.remoteName, 'LockdepError');
    assert.match(e.message, new RegExp(check));
    for (const p of patterns) assert.match(e.message, p);
    return true;
  };
}

describe('lockdep on worker CPUs', () => {
  before(async () => {
    enableLockdep();
    machine = await Machine.start({ cpus: 2, watchdogMs: 5000 });
  });
  after(async () => {
    await machine.stop();
  });
  beforeEach(() => fresh());

  it('reports the i_rwsem / mmap_lock inversion between a file write and a fault that never overlap', async () => {
    const rwsems = {
      inodeA: RwSem.create('i_rwsem').describe(),
      inodeB: RwSem.create('i_rwsem').describe(),
      mm: RwSem.create('mmap_lock').describe(),
    };
    await run(0, { path: 'fileWrite', rwsems });
    assert.deepEqual(lockdepReports(), [], 'one path alone is fine');
    await assert.rejects(
      run(1, { path: 'fault', rwsems }),
      lockdepFailure(
        'possible circular locking dependency detected',
        /CPU1 is trying to acquire lock:\n \(i_rwsem\)\{read\}/,
        /at filemapFault [\s\S]*at faultPath /,
        /-> #1 \(i_rwsem\)\{held write\} -> \(mmap_lock\)\{read\}, first seen on CPU0 at:\n.*at copyFromUser [\s\S]*at fileWritePath /,
        /CPU2 queues for write on \(mmap_lock\)/,
        /1 lock held by CPU1:\n #0: \(mmap_lock\)\{read\}/,
      ),
    );
    const [report] = lockdepReports();
    assert.equal(report.check, 'circular');
    assert.equal(lockdepShowHeld(), 'no CPU holds a lock.', 'the fault path released mmap_lock');
  });

  it('reports AB-BA and a three-lock cycle across CPUs', async () => {
    const mutexes = {
      a: Mutex.create('m.A').describe(),
      b: Mutex.create('m.B').describe(),
      c: Mutex.create('m.C').describe(),
    };
    await run(0, { path: 'ab', mutexes });
    await assert.rejects(
      run(1, { path: 'ba', mutexes }),
      lockdepFailure('circular', /\(m\.B\).*-> \(m\.A\)/),
    );
    fresh();
    await run(0, { path: 'ab', mutexes });
    await run(1, { path: 'bc', mutexes });
    await assert.rejects(
      run(0, { path: 'ca', mutexes }),
      lockdepFailure('circular', /Chain exists of:\n {3}\(m\.C\) --> \(m\.A\) --> \(m\.B\) --> \(m\.C\)/),
    );
  });

  it('reports an rwsem read on one CPU against a write-ordered path on another', async () => {
    const args = {
      rwsems: { sem: RwSem.create('rr.sem').describe() },
      mutexes: { m: Mutex.create('rr.m').describe() },
    };
    await run(0, { path: 'readThenLock', ...args });
    await assert.rejects(
      run(1, { path: 'lockThenRead', ...args }),
      lockdepFailure('circular', /CPU2 queues for write on \(rr\.sem\)/),
    );
  });

  it('shows what every CPU holds while it holds it (for a hang report)', async () => {
    const flag = new SharedArrayBuffer(4);
    const word = new Int32Array(flag);
    const held = run(0, { path: 'holdMmap', rwsems: { mm: RwSem.create('mmap_lock').describe() }, flag });
    const deadline = Date.now() + 5000;
    while (Atomics.load(word, 0) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const shown = lockdepShowHeld();
    Atomics.store(word, 0, 2);
    Atomics.notify(word, 0);
    await held;
    assert.match(shown, /^1 lock held by CPU0:\n #0: \(mmap_lock\)\{write\}, lock \d+$/);
    assert.equal(lockdepShowHeld(), 'no CPU holds a lock.');
  });

  it('finds nothing in a concurrent workload that keeps the lock order', async () => {
    const args: PathArgs = {
      path: 'ordered',
      rwsems: {
        parent: RwSem.create('i_rwsem').describe(),
        child: RwSem.create('i_rwsem').describe(),
        mm: RwSem.create('mmap_lock').describe(),
        invalidate: RwSem.create('invalidate_lock').describe(),
      },
      spinlocks: { ptl: SpinLock.create('ptl').describe() },
      seqcounts: { seq: SeqCount.create('mm_seq').describe() },
      rounds: 300,
      budgetMs: 1500,
    };
    const rounds = (await machine.run<number>(paths, args)) as number[];
    assert.ok(rounds.every((n) => n > 0));
    assert.deepEqual(lockdepReports(), []);
    const counts = lockdepCounts();
    for (const check of [
      'circular',
      'recursive',
      'bad_unlock',
      'held_at_return',
      'sleep_in_atomic',
    ] as const) {
      assert.equal(counts[check], 0, check);
    }
    const edges = lockdepDependencies().map((d) => `${d.from}->${d.to}`);
    for (const e of [
      '(i_rwsem)->(i_rwsem/1)',
      '(i_rwsem/1)->(mmap_lock)',
      '(mmap_lock)->(invalidate_lock)',
      '(ptl)->(rcu_read_lock)',
    ]) {
      assert.ok(edges.includes(e), `${e} recorded`);
    }
  });

  it('flags I/O under mmap_lock on a CPU with its call site, and not after the lock is dropped', async () => {
    setLockdepMode('mmap_io', 'throw');
    const rwsems = { mm: RwSem.create('mmap_lock').describe() };
    await run(0, { path: 'ioAfterMmap', rwsems });
    await assert.rejects(
      run(0, { path: 'ioUnderMmap', rwsems }),
      lockdepFailure(
        'I/O while holding mmap_lock',
        /mightIO\('filemap\.readPage'\)/,
        /at readPageUnderMmapLock /,
      ),
    );
    await run(1, { path: 'ioAfterMmap', rwsems });
    assert.equal(lockdepCounts().mmap_io, 1);
  });

  it('fails a task that returns holding a lock, naming the lock; the CPU starts clean', async () => {
    const mutexes = { m: Mutex.create('ret.m').describe() };
    await assert.rejects(
      run(1, { path: 'returnHolding', mutexes }),
      lockdepFailure(
        'lock held when returning from task!',
        /CPU1 is leaving task at:/,
        /#0: \(ret\.m\)\{write\}/,
      ),
    );
    assert.equal(lockdepShowHeld(), 'no CPU holds a lock.', 'forgotten once reported');
    const others = { a: Mutex.create('ret.A').describe(), b: Mutex.create('ret.B').describe() };
    await run(1, { path: 'ab', mutexes: others });
    assert.deepEqual(
      lockdepReports().map((r) => r.check),
      ['held_at_return'],
    );
  });

  it('fails a task that awaits holding a lock at its first await; its later unlock does not crash the CPU', async () => {
    const flag = new SharedArrayBuffer(4);
    const word = new Int32Array(flag);
    const mutexes = { m: Mutex.create('await.m').describe() };
    await assert.rejects(
      run(0, { path: 'awaitHolding', mutexes, flag }),
      lockdepFailure('lock held when returning from task!', /#0: \(await\.m\)\{write\}/),
    );
    Atomics.store(word, 0, 1);
    Atomics.notify(word, 0);
    const deadline = Date.now() + 5000;
    while (Atomics.load(word, 0) !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(Atomics.load(word, 0), 2, 'the task resumed');
    await run(0, {
      path: 'ab',
      mutexes: { a: Mutex.create('await.A').describe(), b: Mutex.create('await.B').describe() },
    });
    assert.deepEqual(
      lockdepReports().map((r) => r.check),
      ['held_at_return', 'bad_unlock'],
      'the validator forgot the lock when it reported it, so the late unlock is unbalanced',
    );
  });

  it('counts allocations under mmap_lock per site and per class', async () => {
    const vmas = Arena.create({ name: 'vma', recordBytes: 64, capacity: 8 });
    const rwsems = { mm: RwSem.create('mmap_lock').describe() };
    await run(0, { path: 'allocUnderMmap', rwsems, arena: vmas.describe() });
    await run(1, { path: 'allocUnderMmap', rwsems, arena: vmas.describe() });
    vmas.free(vmas.alloc());
    assert.deepEqual(lockdepSiteCounts(), [{ site: 'vma', sleep: 0, alloc: 2, io: 0 }]);
    assert.equal(lockdepClassCounts(lockClass('mmap_lock')).mmap_alloc, 2);
    assert.deepEqual(lockdepReports(), [], 'count mode records no report');
    assert.equal(vmas.live, 0);
  });
});
