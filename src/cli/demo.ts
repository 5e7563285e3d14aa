/**
 * `vmspace demo` (the default of `npm start`): several CPUs doing concurrent locked and RCU work
 * over shared memory, then the checks that prove nothing was lost and a table of lock statistics.
 *
 * Each CPU loops for a while over a mix: a counter under a mutex; a table under an rwsem (mostly
 * reads that check the table is uniform, sometimes a write that rewrites it); an RCU-protected
 * record that readers check and writers replace (the old one freed after a grace period); a spinlock
 * and a seqcount. This module is also the CPUs' task module (its default export).
 */
import { MAX_WORKER_CPUS } from '../cpu/current.js';
import { enableLockdep, formatLockStatWithValidator } from '../lockdep/index.js';
import { Machine } from '../machine/machine.js';
import { Arena, type ArenaDescriptor, POISON_WORD } from '../shm/arena.js';
import { resetLockStat } from '../sync/lockstat.js';
import type { LockDescriptor } from '../sync/lockview.js';
import { Mutex } from '../sync/mutex.js';
import { rcuDeferFree, rcuReadLock, rcuReadUnlock, rcuStats } from '../sync/rcu.js';
import { RwSem } from '../sync/rwsem.js';
import { SeqCount } from '../sync/seqcount.js';
import { SpinLock } from '../sync/spinlock.js';
import { intOption, strictArgs, usageFailure } from './args.js';

const TABLE = 64;

interface DemoArgs {
  counterLock: LockDescriptor;
  tableSem: LockDescriptor;
  statsLock: LockDescriptor;
  clockSeq: LockDescriptor;
  records: ArenaDescriptor;
  /** [counter, rcu slot, table x TABLE, clock pair x 2, ops per kind x 8] */
  data: SharedArrayBuffer;
  ms: number;
}

const COUNTER = 0;
const SLOT = 1;
const TABLE_AT = 2;
const CLOCK = TABLE_AT + TABLE;
const OPS = CLOCK + 2;
const DATA_WORDS = OPS + 8;

export default function demoCpu(cpu: number, args: DemoArgs): number {
  const counterLock = Mutex.attach(args.counterLock);
  const tableSem = RwSem.attach(args.tableSem);
  const statsLock = SpinLock.attach(args.statsLock);
  const clockSeq = SeqCount.attach(args.clockSeq);
  const records = Arena.attach(args.records);
  const d = new Int32Array(args.data);
  const end = Date.now() + args.ms;
  let n = 0;
  while ((n & 127) !== 0 || Date.now() < end) {
    n++;
    counterLock.lock();
    d[COUNTER]++;
    counterLock.unlock();
    if (n % 10 === cpu % 10) writeTable(tableSem, d, n);
    else readTable(tableSem, d);
    if (n % 16 === 0) replaceRecord(records, d, n);
    else readRecord(records, d);
    if (n % 4 === 0) tickClock(statsLock, clockSeq, d);
    else readClock(clockSeq, d);
  }
  return n;
}

function writeTable(sem: RwSem, d: Int32Array, n: number): void {
  sem.downWrite();
  for (let i = 0; i < TABLE; i++) d[TABLE_AT + i] = n;
  sem.upWrite();
}

function readTable(sem: RwSem, d: Int32Array): void {
  sem.downRead();
  const v = d[TABLE_AT];
  for (let i = 1; i < TABLE; i++)
    if (d[TABLE_AT + i] !== v) throw new Error('demo: a reader saw a half-written table');
  sem.upRead();
}

function replaceRecord(records: Arena, d: Int32Array, n: number): void {
  const h = records.alloc();
  if (h === 0) throw new Error('demo: record arena exhausted');
  const at = h * records.i32PerRecord;
  records.i32[at + 1] = n;
  records.i32[at + 2] = ~n;
  const old = Atomics.exchange(d, SLOT, h);
  if (old !== 0) rcuDeferFree(records, old);
}

function readRecord(records: Arena, d: Int32Array): void {
  rcuReadLock();
  const h = Atomics.load(d, SLOT);
  if (h !== 0) {
    const at = h * records.i32PerRecord;
    const v = records.i32[at + 1];
    if (v === POISON_WORD || records.i32[at + 2] !== ~v) throw new Error('demo: a reader saw a freed record');
  }
  rcuReadUnlock();
}

function tickClock(lock: SpinLock, seq: SeqCount, d: Int32Array): void {
  lock.lock();
  seq.writeBegin();
  d[CLOCK]++;
  d[CLOCK + 1] = d[CLOCK] * 2;
  seq.writeEnd();
  lock.unlock();
}

function readClock(seq: SeqCount, d: Int32Array): void {
  let s: number;
  let a: number;
  let b: number;
  do {
    s = seq.readBegin();
    a = d[CLOCK];
    b = d[CLOCK + 1];
  } while (seq.readRetry(s));
  if (b !== a * 2) throw new Error('demo: a seqcount reader accepted a torn pair');
}

export const DEMO_USAGE = 'usage: vmspace demo [--cpus N] [--ms MS] [--no-lockdep]';

const DEMO_HELP = `${DEMO_USAGE}

Several CPUs (worker threads) do concurrent locked and RCU work over shared memory under the lock
validator; then the checks that nothing was lost and a table of lock statistics.

  --cpus N       CPUs to run (1..${MAX_WORKER_CPUS}, default 3)
  --ms MS        how long each CPU works, in milliseconds (0..86400000, default 1500)
  --no-lockdep   run without the lock validator
  -h, --help     this text`;

interface DemoOptions {
  cpus: number;
  ms: number;
  validator: boolean;
}

/** The demo's options, or null for --help; throws UsageError. */
function parseDemoArgs(argv: string[]): DemoOptions | null {
  const { values } = strictArgs(
    argv,
    {
      cpus: { type: 'string' },
      ms: { type: 'string' },
      'no-lockdep': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values.help) return null;
  return {
    cpus: intOption('cpus', values.cpus, 3, 1, MAX_WORKER_CPUS),
    ms: intOption('ms', values.ms, 1500, 0, 86_400_000),
    validator: !values['no-lockdep'],
  };
}

/** Runs the demo; returns the exit status (2 for a command line it does not accept). */
export async function runDemo(argv: string[]): Promise<number> {
  let options: DemoOptions | null;
  try {
    options = parseDemoArgs(argv);
  } catch (error) {
    return usageFailure('vmspace demo', DEMO_USAGE, error);
  }
  if (options === null) {
    console.log(DEMO_HELP);
    return 0;
  }
  const { cpus, ms, validator } = options;
  const records = Arena.create({
    name: 'demo.records',
    recordBytes: 16,
    capacity: 1024,
    maxCapacity: 1 << 20,
    poison: true,
  });
  const locks = {
    counterLock: Mutex.create('demo.counter_mutex'),
    tableSem: RwSem.create('demo.table_rwsem'),
    statsLock: SpinLock.create('demo.clock_spinlock'),
    clockSeq: SeqCount.create('demo.clock_seqcount'),
  };
  const data = new SharedArrayBuffer(DATA_WORDS * 4);
  // The lock validator watches the run (its counts are the table's last column) unless asked not to.
  if (validator) enableLockdep();
  resetLockStat();
  console.log(
    `vmspace demo: ${cpus} CPUs for ${ms} ms (mutex, rwsem, RCU records, spinlock, seqcount), ` +
      `lock validator ${validator ? 'on' : 'off'}`,
  );
  const machine = await Machine.start({ cpus });
  let loops: number[];
  try {
    loops = await machine.run<number>(new URL(import.meta.url), {
      counterLock: locks.counterLock.describe(),
      tableSem: locks.tableSem.describe(),
      statsLock: locks.statsLock.describe(),
      clockSeq: locks.clockSeq.describe(),
      records: records.describe(),
      data,
      ms,
    } satisfies DemoArgs);
  } finally {
    await machine.stop();
  }
  const d = new Int32Array(data);
  const last = Atomics.exchange(d, SLOT, 0);
  if (last !== 0) records.free(last);
  const total = loops.reduce((a, b) => a + b, 0);
  const checks = [
    [`mutex counter ${d[COUNTER]} == loops ${total}`, d[COUNTER] === total],
    [`records live after teardown: ${records.live}`, records.live === 0],
  ] as const;
  console.log(`loops per CPU: ${loops.join(', ')}`);
  for (const [what, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  const rs = records.stats();
  const rcu = rcuStats();
  console.log(`records: ${rs.allocs} allocated and replaced, ${rs.frees} freed, high water ${rs.highWater}`);
  console.log(`rcu: newest grace period completed: ${rcu.completed}\n`);
  console.log(formatLockStatWithValidator());
  return checks.every(([, ok]) => ok) ? 0 : 1;
}
