/**
 * Foundation figures: the cost of the primitives everything else stands on, each as a ratio to a
 * bare Atomics.add measured in the same run. Single-CPU figures run on the main thread (with RCU
 * online there, as on a worker CPU running a task); grace periods are measured on real CPUs.
 *
 * This module is also the task module of the grace-period figures (its default export).
 */
import { Machine } from '../../src/machine/machine.js';
import { PhysMem } from '../../src/mem/frames.js';
import { KIND_ANON } from '../../src/mem/page.js';
import { PageTables } from '../../src/mem/pgtable.js';
import { makePte, PAGE_SIZE, PTE_USER, PUD_SIZE, pteIndex } from '../../src/mem/pte.js';
import { Arena } from '../../src/shm/arena.js';
import { Mutex } from '../../src/sync/mutex.js';
import { rcuOffline, rcuOnline, rcuReadLock, rcuReadUnlock, synchronizeRcu } from '../../src/sync/rcu.js';
import { RwSem } from '../../src/sync/rwsem.js';
import { SpinLock } from '../../src/sync/spinlock.js';
import { type BenchOptions, type BenchSuite, nsPerOp, type Report } from '../harness.js';

const BATCH = 256;
const BASELINE = 'atomics.add.ns';

export const suite: BenchSuite = {
  name: 'foundation',
  async run(report: Report, options: BenchOptions): Promise<void> {
    const words = new Int32Array(new SharedArrayBuffer(64));
    report.add(BASELINE, await nsPerOp(() => addLoop(words), BATCH, options), 'ns');
    await measureReadSections(report, options);
    await measureLocks(report, options);
    await measureArena(report, options);
    await measureFrames(report, options);
    await measurePageTableWalk(report, options);
    await measureGracePeriods(report, options);
  },
};

function addLoop(words: Int32Array): number {
  for (let i = 0; i < BATCH; i++) Atomics.add(words, 0, 1);
  return words[0];
}

async function measureReadSections(report: Report, options: BenchOptions): Promise<void> {
  const loop = () => {
    for (let i = 0; i < BATCH; i++) {
      rcuReadLock();
      rcuReadUnlock();
    }
  };
  rcuOnline();
  try {
    report.add('rcu.read_section.ns', await nsPerOp(loop, BATCH, options), 'ns', BASELINE);
  } finally {
    rcuOffline();
  }
  // An offline CPU's read section publishes itself with two seq-cst stores: what an epoch scheme
  // would cost on every read section (the comparison behind QSBR, see docs/rcu.md).
  report.add('rcu.read_section_epoch_style.ns', await nsPerOp(loop, BATCH, options), 'ns', BASELINE);
}

async function measureLocks(report: Report, options: BenchOptions): Promise<void> {
  const rw = RwSem.create('bench.rwsem');
  const mutex = Mutex.create('bench.mutex');
  const spin = SpinLock.create('bench.spinlock');
  const readLoop = () => {
    for (let i = 0; i < BATCH; i++) {
      rw.downRead();
      rw.upRead();
    }
  };
  const writeLoop = () => {
    for (let i = 0; i < BATCH; i++) {
      rw.downWrite();
      rw.upWrite();
    }
  };
  const mutexLoop = () => {
    for (let i = 0; i < BATCH; i++) {
      mutex.lock();
      mutex.unlock();
    }
  };
  const spinLoop = () => {
    for (let i = 0; i < BATCH; i++) {
      spin.lock();
      spin.unlock();
    }
  };
  report.add('rwsem.read_uncontended.ns', await nsPerOp(readLoop, BATCH, options), 'ns', BASELINE);
  report.add('rwsem.write_uncontended.ns', await nsPerOp(writeLoop, BATCH, options), 'ns', BASELINE);
  report.add('mutex.uncontended.ns', await nsPerOp(mutexLoop, BATCH, options), 'ns', BASELINE);
  report.add('spinlock.uncontended.ns', await nsPerOp(spinLoop, BATCH, options), 'ns', BASELINE);
}

async function measureArena(report: Report, options: BenchOptions): Promise<void> {
  const arena = Arena.create({ name: 'bench.arena', recordBytes: 64, capacity: 1024 });
  const loop = () => {
    for (let i = 0; i < BATCH; i++) arena.free(arena.alloc());
  };
  report.add('arena.alloc_free.ns', await nsPerOp(loop, BATCH, options), 'ns', BASELINE);
  if (arena.live !== 0) throw new Error('bench arena leaked records');
}

/**
 * A frame allocation and its free on one CPU: this CPU's list, no shared lock; the cost is mostly
 * zeroing the reused frame (4 KiB). Compared with an arena record's alloc+free (one spin word).
 */
async function measureFrames(report: Report, options: BenchOptions): Promise<void> {
  const mem = PhysMem.create({ frames: 4096 });
  const loop = () => {
    for (let i = 0; i < BATCH; i++) mem.putPage(mem.allocFrame(KIND_ANON, 0, 0));
  };
  report.add('mem.frame_alloc_free.ns', await nsPerOp(loop, BATCH, options), 'ns', 'arena.alloc_free.ns');
  mem.drainAll();
  if (mem.stats().anon !== 0 || mem.check() !== undefined) throw new Error('bench frames leaked');
}

/**
 * A lock-free page-table walk (PageTables.lookupPte) of a present PTE: 64 MiB mapped with 4 KiB
 * pages across a 1 GiB boundary (two PMD tables, 32 PTE tables), random addresses in it, BATCH
 * walks per RCU read section (on an online CPU, as a fault or TLB refill would run).
 */
async function measurePageTableWalk(report: Report, options: BenchOptions): Promise<void> {
  const pt = PageTables.create({ name: 'bench.pgtable', poison: false });
  const base = 3 * PUD_SIZE - 32 * 2 ** 20;
  const pages = (64 * 2 ** 20) / PAGE_SIZE;
  for (let i = 0; i < pages; i++) {
    const addr = base + i * PAGE_SIZE;
    pt.setPte(pt.allocPte(addr), pteIndex(addr), makePte(2 + (i % 60_000), PTE_USER));
  }
  const addrs = new Float64Array(1 << 14);
  let seed = 7;
  for (let i = 0; i < addrs.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    addrs[i] = base + (seed % pages) * PAGE_SIZE + (seed >>> 20);
  }
  let at = 0;
  const loop = () => {
    let sum = 0;
    rcuReadLock();
    for (let i = 0; i < BATCH; i++) sum += pt.lookupPte(addrs[(at + i) & (addrs.length - 1)]);
    rcuReadUnlock();
    at = (at + BATCH) & (addrs.length - 1);
    if (sum === 0) throw new Error('bench: walks found nothing');
    return sum;
  };
  rcuOnline();
  try {
    report.add('pgtable.walk.ns', await nsPerOp(loop, BATCH, options), 'ns', BASELINE);
  } finally {
    rcuOffline();
  }
  pt.zapRange(base, base + pages * PAGE_SIZE, () => {});
  pt.destroy();
}

interface GpArgs {
  role: 'sync' | 'read';
  rounds: number;
  stop: SharedArrayBuffer;
}

/** Task: `sync` times `rounds` synchronizeRcu calls (us each); `read` runs read sections until told to stop. */
export default function gracePeriodTask(_cpu: number, args: GpArgs): number {
  const stop = new Int32Array(args.stop);
  if (args.role === 'read') {
    let n = 0;
    while (Atomics.load(stop, 0) === 0) {
      rcuReadLock();
      n += stop[1];
      rcuReadUnlock();
    }
    return n;
  }
  const start = performance.now();
  for (let i = 0; i < args.rounds; i++) synchronizeRcu();
  const us = ((performance.now() - start) * 1000) / args.rounds;
  Atomics.store(stop, 0, 1);
  return us;
}

async function measureGracePeriods(report: Report, options: BenchOptions): Promise<void> {
  const rounds = options.quick ? 200 : 5000;
  const task = new URL(import.meta.url);
  for (const cpus of [1, 2]) {
    const machine = await Machine.start({ cpus });
    try {
      const stop = new SharedArrayBuffer(8);
      const syncer = machine.run<number>(task, { role: 'sync', rounds, stop } satisfies GpArgs, [0]);
      const readers =
        cpus === 2 ? machine.run<number>(task, { role: 'read', rounds, stop } satisfies GpArgs, [1]) : null;
      const [[us]] = await Promise.all([syncer, readers]);
      report.add(`rcu.grace_period.cpus${cpus}.us`, us, 'us', BASELINE);
    } finally {
      await machine.stop();
    }
  }
}
