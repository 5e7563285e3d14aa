/**
 * The lock validator's cost. `lockdep.off_overhead.ratio`: an uncontended rwsem read round trip
 * (downRead + upRead) of the real RwSem with the validator compiled in but off, over the same
 * round trip of a copy of RwSem's read fast path with the hook branches removed (and nothing else
 * changed). The two are timed in short samples taken alternately in the same run, and each keeps
 * its fastest sample: on a shared machine another process can only make a sample slower, so the
 * minimum is the figure that repeats. `lockdep.on.rwsem_read.ns`: the same round trip with the
 * validator on (nothing else held).
 */
import { do_not_optimize } from 'mitata';
import { disableLockdep, enableLockdep, lockdepReset, lockdepShowHeld } from '../../src/lockdep/index.js';
import { lockHooks, READ } from '../../src/lockhooks.js';
import { statAcquired, statReleased } from '../../src/sync/lockstat.js';
import { blockingInReadSection, rcuCpu } from '../../src/sync/rcu.js';
import { RwSem, rwsemDownRead, rwsemState, rwsemUpRead } from '../../src/sync/rwsem.js';
import type { BenchOptions, BenchSuite, Report } from '../harness.js';

// RwSem's COUNT word (src/sync/rwsem.ts); `checkCopy` verifies the copy still matches it.
const READER = 1;
const READER_MASK = (1 << 24) - 1;
const WRITER = 1 << 24;
const WAITERS = 1 << 25;
const READ_FAIL = WRITER | WAITERS;

/** As in rwsem.ts, a module-local alias of the imported per-thread RCU state. */
const rcu = rcuCpu;

/** rwsemDownRead without the validator's branches; the bench never contends, so no slow path. */
function downReadWithoutHooks(words: Int32Array, offset: number, classId: number): void {
  if (rcu.depth !== 0) blockingInReadSection('down_read');
  if ((Atomics.add(words, offset, READER) & READ_FAIL) === 0) statAcquired(classId, READ);
  else throw new Error('lockdep bench: the rwsem is contended');
}

/** rwsemUpRead without the validator's branch. */
function upReadWithoutHooks(words: Int32Array, offset: number, classId: number): void {
  statReleased(classId);
  const old = Atomics.sub(words, offset, READER);
  if ((old & (READER_MASK | WRITER | WAITERS)) === (READER | WAITERS))
    throw new Error('lockdep bench: waiters');
  else if ((old & READER_MASK) === 0) throw new Error('lockdep bench: up_read without a reader');
}

function checkCopy(sem: RwSem): void {
  downReadWithoutHooks(sem.words, sem.offset, sem.classId);
  const held = rwsemState(sem.words, sem.offset);
  upReadWithoutHooks(sem.words, sem.offset, sem.classId);
  const free = rwsemState(sem.words, sem.offset);
  if (held.readers !== 1 || held.writer || free.readers !== 0) {
    throw new Error(
      'lockdep bench: the hook-free copy no longer matches RwSem (update bench/suites/lockdep.ts)',
    );
  }
}

/** Round trips per timed sample (about half a millisecond). */
const BATCH = 20_000;
const WARMUP_SAMPLES = 100;

/** The fastest of `samples` timed samples of each op (taken alternately), in ns per round trip. */
function fastestOf(samples: number, ops: (() => unknown)[]): number[] {
  for (let s = 0; s < WARMUP_SAMPLES; s++) for (const op of ops) do_not_optimize(op());
  const best = ops.map(() => Number.POSITIVE_INFINITY);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < ops.length; i++) {
      const start = performance.now();
      do_not_optimize(ops[i]());
      best[i] = Math.min(best[i], ((performance.now() - start) * 1e6) / BATCH);
    }
  }
  return best;
}

async function run(report: Report, options: BenchOptions): Promise<void> {
  const wasOn = lockHooks.on;
  disableLockdep();
  const sem = RwSem.create('bench.lockdep.rwsem');
  const { words, offset, classId } = sem;
  checkCopy(sem);
  const withoutHooks = () => {
    for (let i = 0; i < BATCH; i++) {
      downReadWithoutHooks(words, offset, classId);
      upReadWithoutHooks(words, offset, classId);
    }
    return do_not_optimize(words[offset]);
  };
  const real = () => {
    for (let i = 0; i < BATCH; i++) {
      rwsemDownRead(words, offset, classId);
      rwsemUpRead(words, offset, classId);
    }
    return do_not_optimize(words[offset]);
  };
  const [base, off] = fastestOf(options.quick ? 200 : 2000, [withoutHooks, real]);
  report.add('lockdep.nohooks.rwsem_read.ns', base, 'ns');
  report.add('lockdep.off.rwsem_read.ns', off, 'ns', 'lockdep.nohooks.rwsem_read.ns');
  report.add('lockdep.off_overhead.ratio', off / base, 'x');

  lockdepReset();
  enableLockdep();
  try {
    const [on] = fastestOf(options.quick ? 50 : 300, [real]);
    report.add('lockdep.on.rwsem_read.ns', on, 'ns', 'lockdep.nohooks.rwsem_read.ns');
    if (lockdepShowHeld() !== 'no CPU holds a lock.') throw new Error('lockdep bench: a lock is still held');
  } finally {
    lockdepReset();
    if (!wasOn) disableLockdep();
  }
}

export const suite: BenchSuite = { name: 'lockdep', run };
