/**
 * `vmspace demo` (`npm start`): the mm lab. One address space (VMAs in a maple tree whose writer
 * lock is mmap_lock, records freed after an RCU grace period) shared by writer CPUs running random
 * mmap / munmap / mprotect / mremap and reader CPUs looking addresses up as page faults do, in two
 * phases with the same writer workload:
 *
 *   per-VMA locks   lockVmaUnderRcu, falling back to lockMmAndFindVma (Linux 6.4+)
 *   one mmap_lock   mmap_lock for read around every lookup (Linux before 6.4)
 *
 * Prints the two phases side by side (reader lookups/s, writer syscalls/s, fallbacks, aborts by
 * reason, reader wait on mmap_lock, the throughput ratio), the lock statistics with the validator's
 * column, and the checks: readers saw only valid VMAs, map count == a recount of the tree after each
 * phase, nothing leaked after teardown, the validator reported nothing. The CPUs' code is
 * src/cli/demo-mm-task.ts.
 */

import { MAX_WORKER_CPUS } from '../cpu/current.js';
import {
  enableLockdep,
  formatLockStatWithValidator,
  lockdepCounts,
  lockdepReports,
} from '../lockdep/index.js';
import { lockHooks } from '../lockhooks.js';
import { Machine } from '../machine/machine.js';
import { rangeOut } from '../maple/api.js';
import { MAX_INDEX, MapleTree } from '../maple/tree.js';
import { AddressSpace } from '../mm/address-space.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ } from '../mm/vm-flags.js';
import {
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteLock,
  mmapWriteUnlock,
  resetVmaLockEvents,
  type VmaLockEvents,
  vmaLockEvents,
} from '../mm/vma-lock.js';
import { type LockStatRow, lockStatRows, resetLockStat } from '../sync/lockstat.js';
import { rcuBarrier } from '../sync/rcu.js';
import { intOption, strictArgs, usageFailure } from './args.js';
import {
  CALLS,
  CALLS_FAILED,
  CONTROL_WORDS,
  ELAPSED_MS,
  ERR,
  ERROR_NAMES,
  ERRORS,
  FIRST_CPU,
  FIRST_KIND,
  FIRST_OFFSET,
  FIRST_RECORD,
  HOLES,
  LOOKUPS,
  MMAP_LOCKED,
  type MmDemoTaskArgs,
  P,
  PHASE_MMAP_LOCK,
  PHASE_VMA_LOCKS,
  READY,
  ROW,
  VMA_LOCKED,
  WINDOW_BASE,
  WINDOW_PAGES,
} from './demo-mm-task.js';

export interface MmDemoOptions {
  /** CPUs in all: half of them (rounded down) write, the rest read; at least 2. */
  cpus: number;
  /** Length of each phase in milliseconds. */
  ms: number;
  /** Switch the lock validator on for the run (it stays on if the process already has it on). */
  lockdep: boolean;
  seed: number;
}

export const MM_DEMO_DEFAULTS: MmDemoOptions = { cpus: 4, ms: 2000, lockdep: true, seed: 1 };

/** Length of the unmeasured warm-up run of each path. */
const WARM_MS = 400;

const TASK = new URL('./demo-mm-task.js', import.meta.url);

/** What one phase measured. */
interface PhaseResult {
  name: string;
  readerLookupsPerS: number;
  writerCallsPerS: number;
  lookups: number;
  vmaLocked: number;
  mmapLocked: number;
  holes: number;
  calls: number;
  callsFailed: number;
  errors: number;
  events: VmaLockEvents;
  /** mmap_lock as the reader CPUs saw it during the phase (lock statistics). */
  readerWaitNs: number;
  readerContended: number;
  readerAcquisitions: number;
  readerMs: number;
  mapCount: number;
  treeCount: number;
  recount: number;
  treeValid: string;
  mmapLockFree: boolean;
}

interface Check {
  ok: boolean;
  what: string;
}

/** Runs the demo; returns the exit status (0: every check passed). */
export async function runMmDemo(opts: MmDemoOptions): Promise<number> {
  const bad = badOptions(opts);
  if (bad !== null) {
    console.error(`vmspace demo: ${bad}`);
    return 2;
  }
  const writers = Math.floor(opts.cpus / 2);
  const readers = opts.cpus - writers;
  const readerCpus = Array.from({ length: readers }, (_, i) => writers + i);
  if (opts.lockdep) enableLockdep();
  const validator = lockHooks.on;
  const reportsBefore = lockdepReports().length;
  const countsBefore = lockdepCounts();

  const tree = MapleTree.create({ name: 'demo.vmas', externalLock: 'mmap_lock', poison: true });
  const mm = new AddressSpace({ index: tree, rcuFree: true });
  const baseline = liveCounts(mm, tree);
  const warmMs = Math.min(WARM_MS, opts.ms);
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const results = new SharedArrayBuffer(opts.cpus * ROW * 8);
  console.log(
    `vmspace demo: one address space, ${writers} writer CPU${writers === 1 ? '' : 's'} ` +
      `(mmap/munmap/mprotect/mremap) + ${readers} reader CPU${readers === 1 ? '' : 's'} ` +
      `(fault-path lookups) in a ${(WINDOW_PAGES * P) / 1024} KiB window, ${opts.ms} ms per phase, ` +
      `seed ${opts.seed}, lock validator ${validator ? 'on' : 'off'}; each path warmed up for ${warmMs} ms first`,
  );

  /** Every run: the warm-up of each path, then the two measured phases. */
  const runs: PhaseResult[] = [];
  const machine = await Machine.start({ cpus: opts.cpus, watchdogMs: 20_000 });
  /** Runs one phase on every CPU, measures it, and empties the window for the next one. */
  const runPhase = async (phase: number, ms: number): Promise<PhaseResult> => {
    const name = phase === PHASE_VMA_LOCKS ? 'per-VMA locks' : 'one mmap_lock';
    // Every phase starts from the same state: the window mapped by one mmap.
    const mapped = mm.sysMmap(
      WINDOW_BASE,
      WINDOW_PAGES * P,
      PROT_READ,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
      -1,
      0,
    );
    if (mapped !== WINDOW_BASE) throw new Error(`demo: mapping the window failed (${mapped})`);
    resetVmaLockEvents(mm.locks);
    Atomics.store(new Int32Array(control), READY, 0);
    const before = mmapLockRow(readerCpus);
    const args: MmDemoTaskArgs = {
      mm: mm.describe(),
      control,
      results,
      phase,
      writers,
      cpus: opts.cpus,
      ms,
      seed: opts.seed,
    };
    await machine.run<number>(TASK, args);
    const result = measure(name, mm, tree, results, writers, opts.cpus, before, mmapLockRow(readerCpus));
    // The writers unmapped what they mapped outside the window; the window goes here.
    mm.sysMunmap(WINDOW_BASE, WINDOW_PAGES * P);
    return result;
  };
  try {
    // Both paths get compiled before anything is measured (the first phase would pay for it).
    for (const phase of [PHASE_VMA_LOCKS, PHASE_MMAP_LOCK]) runs.push(await runPhase(phase, warmMs));
    resetLockStat();
    for (const phase of [PHASE_VMA_LOCKS, PHASE_MMAP_LOCK]) runs.push(await runPhase(phase, opts.ms));
  } catch (error) {
    console.error(
      `vmspace demo: a CPU failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`,
    );
    await machine.stop();
    return 1;
  }
  await machine.stop();
  const phases = runs.slice(2);
  const leftAfterPhases = mm.mapCount;

  // Teardown: every VMA, page table and tree node goes back to its arena after a grace period.
  mm.destroy();
  mmapWriteLock(mm.locks);
  tree.destroy();
  mmapWriteUnlock(mm.locks);
  rcuBarrier();
  const after = liveCounts(mm, tree);

  console.log(`\n${formatPhases(phases)}\n`);
  console.log(formatLockStatWithValidator());
  console.log('');

  const checks: Check[] = [];
  const c = new Int32Array(control);
  const errors = Atomics.load(c, ERRORS);
  const checkedVmas = runs.reduce((n, p) => n + p.vmaLocked + p.mmapLocked, 0);
  let errorWhat =
    `readers made ${sum(runs, 'lookups').toLocaleString('en-US')} lookups and held ` +
    `${checkedVmas.toLocaleString('en-US')} VMAs (warm-up included): 0 errors`;
  if (errors !== 0) {
    const offset = c[FIRST_OFFSET];
    errorWhat =
      `readers found ${errors} bad VMA(s); first: ${ERROR_NAMES[c[FIRST_KIND]]} ` +
      `(cpu ${c[FIRST_CPU]}, address 0x${(WINDOW_BASE + offset).toString(16)}, record ${c[FIRST_RECORD]})`;
  }
  checks.push({ ok: errors === 0 && sum(runs, 'errors') === errors, what: errorWhat });
  for (const p of phases) {
    checks.push({
      ok: p.mapCount === p.recount && p.treeCount === p.recount && p.treeValid === '',
      what:
        `${p.name}: map count ${p.mapCount} == tree recount ${p.recount} == tree count ${p.treeCount}, ` +
        `tree valid${p.treeValid === '' ? '' : ` NO: ${p.treeValid}`}`,
    });
  }
  checks.push({
    ok: runs.every((p) => p.mmapLockFree) && leftAfterPhases === 0,
    what: `mmap_lock free after each phase, the window unmapped after each (map count at the end ${leftAfterPhases})`,
  });
  const leaks = Object.keys(baseline).filter((k) => after[k] !== baseline[k]);
  checks.push({
    ok: leaks.length === 0,
    what:
      leaks.length === 0
        ? `no record leaked after teardown (live: ${Object.entries(after)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}; baseline the same)`
        : `records leaked after teardown: ${leaks.map((k) => `${k} ${baseline[k]} -> ${after[k]}`).join(', ')}`,
  });
  if (validator) checks.push(validatorCheck(reportsBefore, countsBefore));

  for (const check of checks) console.log(`${check.ok ? 'ok  ' : 'FAIL'} ${check.what}`);
  const passed = checks.filter((check) => check.ok).length;
  const names = [
    'readers saw only valid VMAs',
    'map count == tree recount',
    'mmap_lock free',
    'nothing leaked',
    ...(validator ? ['validator reported nothing'] : []),
  ];
  if (passed === checks.length) {
    console.log(
      `checks passed (${passed}/${checks.length}): ${names.join(', ')}` +
        (validator ? '' : ' (validator off: not checked)'),
    );
    return 0;
  }
  console.log(`checks FAILED: ${checks.length - passed} of ${checks.length} (see FAIL above)`);
  return 1;
}

function badOptions(opts: MmDemoOptions): string | null {
  if (!(Number.isInteger(opts.cpus) && opts.cpus >= 2 && opts.cpus <= MAX_WORKER_CPUS))
    return `--cpus must be an integer in 2..${MAX_WORKER_CPUS} (writers and readers), not ${opts.cpus}`;
  if (!(Number.isInteger(opts.ms) && opts.ms >= 1 && opts.ms <= 600_000))
    return `--ms must be an integer in 1..600000, not ${opts.ms}`;
  if (!Number.isSafeInteger(opts.seed)) return `--seed must be an integer, not ${opts.seed}`;
  return null;
}

/** The mmap_lock row of the lock statistics over the reader CPUs. */
function mmapLockRow(cpus: number[]): LockStatRow | undefined {
  return lockStatRows(cpus).find((r) => r.name === 'mmap_lock');
}

function measure(
  name: string,
  mm: AddressSpace,
  tree: MapleTree,
  results: SharedArrayBuffer,
  writers: number,
  cpus: number,
  before: LockStatRow | undefined,
  after: LockStatRow | undefined,
): PhaseResult {
  const r = new Float64Array(results);
  const p: PhaseResult = {
    name,
    readerLookupsPerS: 0,
    writerCallsPerS: 0,
    lookups: 0,
    vmaLocked: 0,
    mmapLocked: 0,
    holes: 0,
    calls: 0,
    callsFailed: 0,
    errors: 0,
    events: vmaLockEvents(mm.locks),
    readerWaitNs: (after?.waitTotalNs ?? 0) - (before?.waitTotalNs ?? 0),
    readerContended: (after?.contentions ?? 0) - (before?.contentions ?? 0),
    readerAcquisitions: (after?.acquisitionsRead ?? 0) - (before?.acquisitionsRead ?? 0),
    readerMs: 0,
    mapCount: mm.mapCount,
    treeCount: tree.count(),
    recount: 0,
    treeValid: '',
    mmapLockFree: false,
  };
  for (let cpu = 0; cpu < cpus; cpu++) {
    const at = cpu * ROW;
    const seconds = r[at + ELAPSED_MS] / 1000;
    if (cpu < writers) {
      p.calls += r[at + CALLS];
      p.callsFailed += r[at + CALLS_FAILED];
      p.writerCallsPerS += r[at + CALLS] / seconds;
    } else {
      p.lookups += r[at + LOOKUPS];
      p.vmaLocked += r[at + VMA_LOCKED];
      p.mmapLocked += r[at + MMAP_LOCKED];
      p.holes += r[at + HOLES];
      p.errors += r[at + ERR];
      p.readerLookupsPerS += r[at + LOOKUPS] / seconds;
      p.readerMs += r[at + ELAPSED_MS];
    }
  }
  const state = mm.mmapLock.state();
  p.mmapLockFree = state.readers === 0 && !state.writer && state.queued === 0;
  // The recount: a walk of the tree under mmap_lock (read), which no writer then changes.
  mmapReadLock(mm.locks);
  try {
    const out = rangeOut();
    for (let at = 0; at <= MAX_INDEX && tree.next(at, MAX_INDEX, out) > 0; at = out.last + 1) p.recount++;
    try {
      tree.validate();
    } catch (error) {
      p.treeValid = error instanceof Error ? error.message : String(error);
    }
  } finally {
    mmapReadUnlock(mm.locks);
  }
  return p;
}

function liveCounts(mm: AddressSpace, tree: MapleTree): Record<string, number> {
  return {
    'VMA records': mm.arena.arena.live,
    'tree nodes': tree.arena.live,
    anon_vmas: mm.anonVmas.live,
    'page tables': mm.pt.live,
    files: mm.files.arena.live,
  };
}

function validatorCheck(reportsBefore: number, countsBefore: Record<string, number>): Check {
  const reports = lockdepReports().slice(reportsBefore);
  const counts = lockdepCounts();
  const fired = Object.entries(counts)
    .map(([check, n]) => [check, n - (countsBefore[check] ?? 0)] as const)
    .filter(([, n]) => n > 0);
  // The mmap_lock checks only count by default: allocating a VMA record or tree node under
  // mmap_lock is what every syscall does (as Linux's do); the other checks would have thrown.
  const mmapOnly = fired.every(([check]) => check.startsWith('mmap_'));
  const counted = fired.map(([check, n]) => `${check}:${n}`).join(' ');
  if (reports.length === 0 && mmapOnly) {
    return {
      ok: true,
      what: `validator reported nothing (no report${counted === '' ? '' : `; count-only mmap_lock checks: ${counted}`})`,
    };
  }
  return {
    ok: false,
    what: `validator: ${reports.length} report(s), fired: ${counted}\n${reports.map((r) => r.text).join('\n')}`,
  };
}

function sum(phases: PhaseResult[], key: 'lookups' | 'errors'): number {
  return phases.reduce((total, p) => total + p[key], 0);
}

/** The two phases side by side. */
function formatPhases(phases: PhaseResult[]): string {
  const [a, b] = phases;
  const int = (n: number) => Math.round(n).toLocaleString('en-US');
  const pct = (n: number, of: number) => (of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`);
  const ratio = (x: number, y: number) => (y === 0 ? '-' : `${(x / y).toFixed(2)}x`);
  const ms = (ns: number) => `${(ns / 1e6).toFixed(1)} ms`;
  const rows: [string, string, string, string][] = [
    ['', a.name, b.name, 'per-VMA / one lock'],
    [
      'reader lookups/s',
      int(a.readerLookupsPerS),
      int(b.readerLookupsPerS),
      ratio(a.readerLookupsPerS, b.readerLookupsPerS),
    ],
    ['  lookups', int(a.lookups), int(b.lookups), ''],
    ['  held just the VMA (read lock)', pct(a.vmaLocked, a.lookups), pct(b.vmaLocked, b.lookups), ''],
    ['  held mmap_lock (read)', pct(a.mmapLocked, a.lookups), pct(b.mmapLocked, b.lookups), ''],
    ['  hole (no VMA: SIGSEGV)', pct(a.holes, a.lookups), pct(b.holes, b.lookups), ''],
    [
      'writer syscalls/s',
      int(a.writerCallsPerS),
      int(b.writerCallsPerS),
      ratio(a.writerCallsPerS, b.writerCallsPerS),
    ],
    [
      '  calls (failed with an errno)',
      `${int(a.calls)} (${int(a.callsFailed)})`,
      `${int(b.calls)} (${int(b.callsFailed)})`,
      '',
    ],
    ['fallbacks to mmap_lock', int(a.events.mmapFallbacks), int(b.events.mmapFallbacks), ''],
    ['per-VMA-lock aborts: no VMA', int(a.events.noVma), int(b.events.noVma), ''],
    ['                     write-locked', int(a.events.locked), int(b.events.locked), ''],
    ['                     detached', int(a.events.detached), int(b.events.detached), ''],
    ['                     moved (no longer covers)', int(a.events.moved), int(b.events.moved), ''],
    ['  walks retried (VMA detached)', int(a.events.retries), int(b.events.retries), ''],
    ['  writer waited for VMA readers', int(a.events.writerWaits), int(b.events.writerWaits), ''],
    ['reader mmap_lock acquisitions', int(a.readerAcquisitions), int(b.readerAcquisitions), ''],
    ['  contended (had to wait)', int(a.readerContended), int(b.readerContended), ''],
    ['  reader wait on mmap_lock', ms(a.readerWaitNs), ms(b.readerWaitNs), ''],
    [
      '  share of reader time',
      pct(a.readerWaitNs / 1e6, a.readerMs),
      pct(b.readerWaitNs / 1e6, b.readerMs),
      '',
    ],
    ['reader errors', int(a.errors), int(b.errors), ''],
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('   '))
    .join('\n');
}

const USAGE = `usage: vmspace demo [--cpus N] [--ms MS] [--seed S] [--no-lockdep]
  --cpus N      CPUs in all, half writers (rounded down) and the rest readers (default ${MM_DEMO_DEFAULTS.cpus})
  --ms MS       length of each of the two phases (default ${MM_DEMO_DEFAULTS.ms})
  --seed S      seed of the writers' calls and the readers' addresses (default ${MM_DEMO_DEFAULTS.seed})
  --no-lockdep  run without the lock validator
  --locks       the older demo of the locks alone (mutex, rwsem, RCU, spinlock, seqcount)`;

/** `vmspace demo ARGS` for the dispatcher: parses the options and runs runMmDemo. */
export async function runMmDemoCli(argv: string[]): Promise<number> {
  let opts: MmDemoOptions;
  try {
    const { values } = strictArgs(
      argv,
      {
        cpus: { type: 'string' },
        ms: { type: 'string' },
        seed: { type: 'string' },
        'no-lockdep': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      false,
    );
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const d = MM_DEMO_DEFAULTS;
    opts = {
      cpus: intOption('cpus', values.cpus, d.cpus, 2, MAX_WORKER_CPUS),
      ms: intOption('ms', values.ms, d.ms, 0, 86_400_000),
      seed: intOption('seed', values.seed, d.seed, 0, 2 ** 31 - 1),
      lockdep: !values['no-lockdep'],
    };
  } catch (error) {
    return usageFailure('vmspace demo', USAGE.split('\n')[0], error);
  }
  return runMmDemo(opts);
}
