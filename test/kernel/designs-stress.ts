/**
 * The all-designs stress (issue 12's "Must hold": every design under random syscalls, faults,
 * fork and file I/O on all CPUs; no deadlock, no invariant broken, nothing leaked), for the quick
 * test and `npm run stress`. Per design, on the same Machine:
 *
 *   - a fresh Kernel and one process created with that design; a temp dir with each CPU's host
 *     file and one shared host file (each CPU owns a region of it);
 *   - every worker CPU runs tasks/designs-cpu.ts: the seeded workload of designs-workload.ts on
 *     its own lane of the one process, each outcome checked against its exact model;
 *   - this thread is the watchdog and the checkpointer. Watchdog: a CPU whose op count has not
 *     moved for `watchdogMs` fails the run with who waits on what, who holds which lock (the
 *     validator's held-lock stacks) and the most contended lock classes (lockstat). Checkpoint,
 *     every `checkpointMs`: each CPU checks its lane and files whole and parks; then the whole
 *     structure: checkMmLocked, checkPtesLocked, the frames' map and reference counts against the
 *     page tables and page caches (checkFrameMaps), each file's page index, PhysMem.check();
 *   - at the end: the same checks, every CPU's host files against its model (after fsync), then
 *     exit and the leak check (kernel.counts() back to KERNEL_EMPTY, records, tree nodes and
 *     page tables back, PhysMem.check() after drainAll).
 * Per design it reports the workload's counts, the fault counters (vmstat), the validator's
 * mmap_lock counts and the lock classes' contentions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeCpus } from '../../src/cpu/waits.js';
import { iMmapCommits, iMmapCount } from '../../src/fs/i-mmap.js';
import { O_RDWR } from '../../src/fs/open-file.js';
import { checkPageIndex } from '../../src/fs/page-index.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts, lockdepReports } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { Machine } from '../../src/machine/machine.js';
import { checkMmLocked } from '../../src/mm/check.js';
import { checkFrameMaps, checkPtesLocked } from '../../src/mm/check-ptes.js';
import { FAULT_DESIGNS, type FaultDesign } from '../../src/mm/fault-design.js';
import { mmapReadLock, mmapReadUnlock } from '../../src/mm/vma-lock.js';
import type { MmVmstat } from '../../src/mm/vmstat.js';
import { lockStatOn, lockStatRows, resetLockStat, setLockStat } from '../../src/sync/lockstat.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { initialBytes, OWN_FILE_START, SHARED_FILE_PAGES } from './designs-workload.js';
import {
  C_DOING,
  C_DONE,
  C_ERRORS,
  C_FILE_IDS,
  C_OPS,
  C_PAUSE,
  C_PAUSED,
  C_READY,
  C_STOP,
  CONTROL_WORDS,
  type DesignsCpuArgs,
  type DesignsCpuResult,
  MAX_TAG,
} from './tasks/designs-cpu.js';

const task = new URL('./tasks/designs-cpu.js', import.meta.url);

export interface StressOptions {
  seed: number;
  /** Worker CPUs (2..4). */
  cpus: number;
  /** Per design. */
  durationMs: number;
  checkpointMs: number;
  /** A CPU without progress this long fails the run. */
  watchdogMs: number;
  /** Runs on past durationMs (bounded by giveUpMs) until every CPU made this many steps. */
  minSteps: number;
  giveUpMs: number;
  /** The watchdog's own test: CPU 0 holds mmap_lock for write this long after `stallAfter` steps. */
  stallAfter?: number;
  stallMs?: number;
}

export interface DesignRun {
  design: FaultDesign;
  cpus: DesignsCpuResult[];
  checkpoints: number;
  vmstat: MmVmstat;
  /** The validator's mmap_lock counts during the run (I/O, sleep, allocation under it). */
  mmapLockCounts: { io: number; sleep: number; alloc: number };
  /** The most contended lock classes: name, contentions, acquisitions. */
  contended: [string, number, number][];
  ms: number;
}

/** Every design in turn on one Machine of `options.cpus` worker CPUs. */
export async function stressAllDesigns(options: StressOptions): Promise<DesignRun[]> {
  const machine = await Machine.start({ cpus: options.cpus, watchdogMs: 3 * options.watchdogMs });
  const hadStat = lockStatOn();
  setLockStat(true);
  try {
    const runs: DesignRun[] = [];
    for (const design of FAULT_DESIGNS) runs.push(await stressDesign(machine, design, options));
    return runs;
  } finally {
    setLockStat(hadStat);
    await machine.stop();
  }
}

export async function stressDesign(
  machine: Machine,
  design: FaultDesign,
  o: StressOptions,
): Promise<DesignRun> {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-designs-'));
  try {
    return await runDesign(machine, design, o, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runDesign(
  machine: Machine,
  design: FaultDesign,
  o: StressOptions,
  dir: string,
): Promise<DesignRun> {
  const t0 = Date.now();
  const sharedPath = join(dir, 'shared.bin');
  writeFileSync(sharedPath, initialBytes(MAX_TAG, SHARED_FILE_PAGES));
  const ownPaths = Array.from({ length: o.cpus }, (_, c) => join(dir, `cpu${c}.bin`));
  for (const [c, path] of ownPaths.entries()) writeFileSync(path, initialBytes(c, OWN_FILE_START));
  const kernel = Kernel.create({ frames: 16_384 });
  const proc = Process.create(kernel, { config: { design, privileged: true } });
  const sharedFd = proc.open(sharedPath, O_RDWR);
  const sharedId = proc.fds.fget(sharedFd);
  kernel.files.put(sharedId);
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const ctl = new Int32Array(control);
  const before = lockdepCounts();
  resetLockStat();
  const runs = Array.from({ length: o.cpus }, (_, lane) => {
    const args: DesignsCpuArgs = {
      process: proc.describe(),
      control,
      lane,
      lanes: o.cpus,
      seed: o.seed,
      sharedFd,
      ownPath: ownPaths[lane],
      sharedPath,
      giveUpMs: o.giveUpMs,
      limitMs: o.durationMs + 3 * o.giveUpMs,
      stallAfter: lane === 0 ? o.stallAfter : undefined,
      stallMs: o.stallMs,
    };
    // A CPU that throws (a lock left held at the end of its task) counts as a failed CPU at once.
    return machine.run<DesignsCpuResult>(task, args, [lane]).then(
      (r) => r[0],
      (e): DesignsCpuResult => {
        Atomics.add(ctl, C_ERRORS, 1);
        return {
          counts: null,
          steps: 0,
          pauses: 0,
          error: `cpu ${lane}: ${e instanceof Error ? e.message : String(e)}`,
        };
      },
    );
  });
  let checkpoints = 0;
  let failure: unknown;
  try {
    checkpoints = await drive(kernel, proc, ctl, o, sharedId);
  } catch (error) {
    failure = error;
  } finally {
    Atomics.store(ctl, C_STOP, 1);
    Atomics.notify(ctl, C_PAUSE);
  }
  let settled: DesignsCpuResult[];
  try {
    settled = await settle(runs, o.giveUpMs, () => dumpFiles(kernel, ctl, o.cpus, sharedId));
  } catch (error) {
    // The first failure (a watchdog's report) says more than the CPUs that did not stop.
    if (failure instanceof Error && error instanceof Error) failure.message += `\n${error.message}`;
    throw failure ?? error;
  }
  const errors = settled.filter((r) => r.error !== '').map((r) => r.error);
  if (failure !== undefined) {
    if (failure instanceof Error && errors.length > 0) failure.message += `\n(CPUs: ${errors.join('\n')})`;
    throw failure;
  }
  assert.deepEqual(errors, [], errors.join('\n'));
  checkStructures(kernel, proc, fileIds(ctl, o.cpus, sharedId));
  const vmstat = proc.mm.vmstat();
  const after = lockdepCounts();
  quietDeadlockChecks(before, after);
  const contended = lockStatRows()
    .filter((r) => r.contentions > 0)
    .sort((a, b) => b.contentions - a.contentions)
    .slice(0, 6)
    .map((r): [string, number, number] => [r.name, r.contentions, r.acquisitionsRead + r.acquisitionsWrite]);
  teardown(kernel, proc);
  return {
    design,
    cpus: settled,
    checkpoints: checkpoints + 1,
    vmstat,
    mmapLockCounts: {
      io: after.mmap_io - before.mmap_io,
      sleep: after.mmap_sleep - before.mmap_sleep,
      alloc: after.mmap_alloc - before.mmap_alloc,
    },
    contended,
    ms: Date.now() - t0,
  };
}

/** The validator's deadlock checks (not the mmap_lock counts, which differ by design) did not fire. */
function quietDeadlockChecks(before: Record<string, number>, after: Record<string, number>): void {
  for (const check of DEADLOCK_CHECKS) {
    if (after[check] === before[check]) continue;
    const reports = lockdepReports()
      .filter((r) => r.check === check)
      .map((r) => r.text);
    assert.fail(`validator: ${after[check] - before[check]} ${check} report(s)\n${reports.join('\n')}`);
  }
}

const DEADLOCK_CHECKS = ['circular', 'recursive', 'bad_unlock', 'held_at_return', 'sleep_in_atomic'];

/** The CPUs' results, or an Error if they do not all finish within `giveUpMs` (a deadlock). */
async function settle(
  runs: Promise<DesignsCpuResult>[],
  giveUpMs: number,
  files: () => string,
): Promise<DesignsCpuResult[]> {
  let timer: NodeJS.Timeout | undefined;
  // What the CPUs that did finish reported (the first error often explains the others' hang).
  const finished: string[] = [];
  for (const [c, run] of runs.entries()) {
    run.then(
      (r) => finished.push(`cpu ${c} finished${r.error === '' ? '' : `: ${r.error}`}`),
      (e) => finished.push(`cpu ${c} threw: ${e instanceof Error ? e.message : String(e)}`),
    );
  }
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const report = `${dump()}\n${files()}\n${finished.join('\n')}`;
      reject(new Error(`the CPUs did not finish within ${giveUpMs} ms of STOP\n${report}`));
    }, giveUpMs);
  });
  try {
    return await Promise.race([Promise.all(runs), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * This thread's part until the duration is over: the watchdog and the checkpoints. Returns the
 * checkpoints made; throws on a CPU's error, a stalled CPU or a broken invariant.
 */
async function drive(
  kernel: Kernel,
  proc: Process,
  ctl: Int32Array,
  o: StressOptions,
  sharedId: number,
): Promise<number> {
  await until(
    () => Atomics.load(ctl, C_READY) >= o.cpus || Atomics.load(ctl, C_ERRORS) !== 0,
    o.giveUpMs,
    'the CPUs to start',
  );
  const deadline = Date.now() + o.durationMs;
  const hardDeadline = deadline + o.giveUpMs;
  const last = new Float64Array(o.cpus);
  const moved = new Float64Array(o.cpus).fill(Date.now());
  let nextCheckpoint = Date.now() + o.checkpointMs;
  let checkpoints = 0;
  const steps = (c: number) => Atomics.load(ctl, C_OPS + c);
  const more = () => {
    const now = Date.now();
    if (now < deadline) return true;
    let least = Number.POSITIVE_INFINITY;
    for (let c = 0; c < o.cpus; c++) least = Math.min(least, steps(c));
    return now < hardDeadline && least < o.minSteps;
  };
  while (more()) {
    if (Atomics.load(ctl, C_ERRORS) !== 0) return checkpoints;
    const now = Date.now();
    for (let c = 0; c < o.cpus; c++) {
      if (steps(c) !== last[c]) {
        last[c] = steps(c);
        moved[c] = now;
      } else if (now - moved[c] > o.watchdogMs) {
        throw new Error(
          `watchdog: cpu ${c} made no progress for ${now - moved[c]} ms (${steps(c)} steps)\n${dump()}\n` +
            dumpFiles(kernel, ctl, o.cpus, sharedId),
        );
      }
    }
    if (now >= nextCheckpoint) {
      checkpoints++;
      await pauseAll(ctl, o, checkpoints);
      try {
        checkStructures(kernel, proc, fileIds(ctl, o.cpus, sharedId));
      } finally {
        Atomics.store(ctl, C_PAUSE, 0);
        Atomics.notify(ctl, C_PAUSE);
      }
      nextCheckpoint = Date.now() + o.checkpointMs;
      moved.fill(Date.now());
    }
    await sleep(10);
  }
  return checkpoints;
}

/** Asks every CPU to check itself and park; waits (bounded by the watchdog) until each has. */
async function pauseAll(ctl: Int32Array, o: StressOptions, k: number): Promise<void> {
  Atomics.store(ctl, C_PAUSE, k);
  const parked = () => {
    for (let c = 0; c < o.cpus; c++) {
      if (Atomics.load(ctl, C_PAUSED + c) !== k && Atomics.load(ctl, C_DONE + c) === 0) return false;
    }
    return true;
  };
  await until(
    () => parked() || Atomics.load(ctl, C_ERRORS) !== 0,
    o.watchdogMs,
    `every CPU to park for checkpoint ${k}`,
  );
  if (Atomics.load(ctl, C_ERRORS) !== 0) throw new Error(`a CPU failed before checkpoint ${k}`);
}

async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`watchdog: waited more than ${ms} ms for ${what}\n${dump()}`);
    await sleep(2);
  }
}

/** Who waits on what, who holds which lock, and the most contended classes so far. */
export function dump(): string {
  const held = lockHooks.on ? lockHooks.v.showHeld() : '(validator off: held locks unknown)';
  const rows = lockStatRows()
    .filter((r) => r.contentions > 0)
    .sort((a, b) => b.contentions - a.contentions)
    .slice(0, 8)
    .map((r) => `  ${r.name}: ${r.contentions} contentions, wait max ${Math.round(r.waitMaxNs / 1000)} us`);
  return `${describeCpus()}\n${held}\nlock statistics (most contended):\n${rows.join('\n')}`;
}

/** Each CPU's op, and each file's i_mmap state: entries and open commit windows. */
function dumpFiles(kernel: Kernel, ctl: Int32Array, cpus: number, sharedId: number): string {
  const doing = Array.from({ length: cpus }, (_, c) => `cpu ${c} runs op ${Atomics.load(ctl, C_DOING + c)}`);
  const files = fileIds(ctl, cpus, sharedId).map(
    (id) =>
      `file ${id}: ${iMmapCount(kernel.files, id)} i_mmap entries, ${iMmapCommits(kernel.files, id)} commit windows open`,
  );
  return [...doing, ...files].join('\n');
}

function fileIds(ctl: Int32Array, cpus: number, sharedId: number): number[] {
  const ids = [sharedId];
  for (let k = 0; k < 2 * cpus; k++) {
    const id = Atomics.load(ctl, C_FILE_IDS + k);
    if (id !== 0) ids.push(id);
  }
  return ids;
}

/**
 * The whole-structure checks, with no CPU running in the process: VMAs, page tables against
 * VMAs, every frame's map and reference counts (page-cache references included), the page index
 * of every file, the frame allocator.
 */
function checkStructures(kernel: Kernel, proc: Process, ids: number[]): void {
  const mem = kernel.mem;
  const mapped = new Int32Array(mem.frames);
  mmapReadLock(proc.mm.locks);
  try {
    checkMmLocked(proc.mm);
    checkPtesLocked(proc.mm, mapped);
  } finally {
    mmapReadUnlock(proc.mm.locks);
  }
  checkFrameMaps(mem, mapped, new Int32Array(mem.frames));
  for (const id of ids) assert.equal(checkPageIndex(kernel.files, id), undefined, `page index of file ${id}`);
  assert.equal(mem.check(), undefined);
}

function teardown(kernel: Kernel, proc: Process): void {
  const arenas = [proc.mm.arena.arena, (proc.mm.index as unknown as { arena: { live: number } }).arena];
  proc.exit();
  proc.detach();
  rcuBarrier();
  for (const arena of arenas) assert.equal(arena.live, 0, 'VMA records or tree nodes left after exit');
  assert.equal(proc.mm.pt.live, 0, 'page tables left after exit');
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  assert.equal(kernel.mem.check(), undefined);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lines of figures for the logs, one per design. */
export function describeRuns(seed: number, runs: DesignRun[]): string {
  return runs
    .map((r) => {
      const sum = (f: (c: DesignsCpuResult) => number) => r.cpus.reduce((x, c) => x + f(c), 0);
      const ops: Record<string, number> = {};
      for (const c of r.cpus)
        for (const [k, v] of Object.entries(c.counts?.ops ?? {})) ops[k] = (ops[k] ?? 0) + v;
      const v = r.vmstat;
      const m = r.mmapLockCounts;
      return (
        `${r.design} (seed ${seed}, ${r.cpus.length} CPUs, ${r.ms} ms): ${sum((c) => c.steps)} steps, ` +
        `${sum((c) => c.counts?.loads ?? 0)} loads, ${sum((c) => c.counts?.stores ?? 0)} stores, ` +
        `${sum((c) => c.counts?.faults ?? 0)} predicted signals, ${sum((c) => c.counts?.pagesChecked ?? 0)} pages checked, ` +
        `${sum((c) => c.counts?.forks ?? 0)} forks, ${r.checkpoints} checkpoints; ops: ` +
        `${Object.entries(ops)
          .sort()
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')}; ` +
        `faults ${v.faults} (speculative ${v.faultsSpeculative}, vma-lock ${v.faultsVmaLock}, mmap_lock ${v.faultsMmapLock}), ` +
        `fallbacks ${v.fallbacks}, speculative aborts ${v.speculativeAborts}, ` +
        `retries ${v.faultRetries}, VMA-lock contention ${v.vmaLockContention}; under mmap_lock: ` +
        `I/O ${m.io}, sleep ${m.sleep}, alloc ${m.alloc}; most contended: ` +
        r.contended.map(([name, n]) => `${name} ${n}`).join(', ')
      );
    })
    .join('\n');
}
