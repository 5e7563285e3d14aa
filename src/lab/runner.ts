/**
 * The lab's runner: every experiment under every design, phase by phase, on one Machine of worker
 * CPUs, in one Kernel. A phase runs in a new Process made under the design; its CPUs first run their
 * workloads unmeasured (the warm-up: each CPU's JIT compiles the paths this design takes), then,
 * with the counters and lock statistics reset, for the same interval from a shared origin
 * (cpu-task.ts); then the runner gathers
 * throughput and latency per workload, the process's fault counters (vmstat), the lock statistics
 * of mmap_lock and vma_lock over the phase's CPUs, what the validator found meanwhile, and each
 * CPU's timeline window; the process exits and every frame must be back (`leaked` all 0).
 *
 * Preconditions: nothing else runs on the Machine; the main thread holds no lock (lock statistics
 * are reset per phase).
 */
import { availableParallelism } from 'node:os';
import { Kernel, type KernelCounts } from '../kernel/kernel.js';
import { Process } from '../kernel/process.js';
import {
  CHECKS,
  enableLockdep,
  type LockdepCheck,
  type LockdepMode,
  lockdepCounts,
  lockdepMode,
  lockdepReports,
  lockdepReset,
  lockdepSiteCounts,
  type SiteCount,
  setLockdepMode,
} from '../lockdep/index.js';
import { lockHooks } from '../lockhooks.js';
import { Machine } from '../machine/machine.js';
import type { FaultDesign } from '../mm/fault-design.js';
import { mmapLockClass, vmaLockClass } from '../mm/locking.js';
import { resetMmVmstat } from '../mm/vmstat.js';
import { lockClassName } from '../sync/lockclass.js';
import {
  bucketLimit,
  LOCKSTAT_BUCKETS,
  lockStatHistogram,
  lockStatRows,
  resetLockStat,
} from '../sync/lockstat.js';
import { KIND_HOLD, KIND_USER, KIND_WAIT, TraceRing } from '../sync/locktrace.js';
import { rcuBarrier } from '../sync/rcu.js';
import { COW_CASES } from './cow-cases.js';
import { WORKLOAD_KIND_NAMES } from './cpu-probe.js';
import { CONTROL_BYTES, type LabTaskArgs, type LabTaskResult } from './cpu-task.js';
import {
  type Experiment,
  type ExperimentName,
  experimentNamed,
  IO_WORKLOADS,
  type Phase,
  WORKLOAD_UNITS,
} from './experiments.js';
import { CACHED_FILE_PAGES } from './file-workloads.js';
import { LatencyHistograms } from './histogram.js';
import {
  type CpuTimeline,
  type LabRun,
  type LabSettings,
  type LockResult,
  machineInfo,
  type PhaseResult,
  RESULTS_FORMAT,
  type RoleResult,
  type ValidatorResult,
} from './results.js';
import type { Workload } from './workloads.js';

const TASK = new URL('./cpu-task.js', import.meta.url);
/** page_fault1's region: 32 MiB (will-it-scale maps 128 MiB; this keeps N regions in memory). */
export const REGION_PAGES = 8192;
/** Events a CPU's timeline ring holds, and the window it records. */
const RING_EVENTS = 1024;
const WINDOW_MS = 20;
/**
 * Frames beyond the regions (two per CPU: page_fault2's cached file and its private copies):
 * page tables, cow's processes, the slow files' pages read.
 */
const SPARE_FRAMES = 16384 + CACHED_FILE_PAGES;
/**
 * The unmeasured warm-up before each phase: min(WARMUP_MS, half the phase) and at least
 * WARMUP_OPS operations per CPU (in proportion for phases shorter than a second), within the
 * phase's length: a CPU on a busy host must still have its JIT compile the design's paths.
 */
const WARMUP_MS = 300;
const WARMUP_OPS = 20_000;

/** Told after each phase: phases done, phases in all, and the phase's result. */
export type PhaseListener = (done: number, total: number, phase: PhaseResult) => void;

/** One phase to run: the experiment, the design, and the workload of each CPU. */
interface PhasePlan {
  experiment: Experiment;
  design: FaultDesign;
  phase: Phase;
}

/** Every phase of the run, in order: experiment by experiment, design by design. */
export function planPhases(settings: LabSettings): PhasePlan[] {
  const plans: PhasePlan[] = [];
  for (const name of settings.experiments) {
    const experiment = experimentNamed(name);
    if (experiment === undefined) throw new RangeError(`lab: no experiment '${name}'`);
    for (const design of settings.designs) {
      for (const phase of experiment.phases(settings.cpus)) plans.push({ experiment, design, phase });
    }
  }
  return plans;
}

/** Runs the lab; switches the validator on first when `settings.lockdep` asks for it. */
export async function runLab(settings: LabSettings, onPhase?: PhaseListener): Promise<LabRun> {
  const startedAt = new Date().toISOString();
  const plans = planPhases(settings);
  if (settings.lockdep && !lockHooks.on) enableLockdep();
  const modes = CHECKS.map((c) => lockdepMode(c));
  // An experiment may need more CPUs than asked (queued-writer: one more, asleep in its I/O).
  const cpus = Math.max(settings.cpus, ...plans.map((p) => p.phase.roles.length));
  const machine = await Machine.start({ cpus, pinCpus: settings.pin });
  const pinning = machine.pinned
    ? `CPU i on host core i mod ${availableParallelism()}`
    : settings.pin
      ? `unpinned: ${machine.unpinned}`
      : 'unpinned (not asked)';
  // One kernel for the whole run (fresh memory per phase made the first phases slower); each
  // phase's process must give every record back before the next one starts.
  const kernel = Kernel.create({ frames: 2 * settings.cpus * REGION_PAGES + SPARE_FRAMES });
  const phases: PhaseResult[] = [];
  try {
    await warmPass(machine, kernel, plans, settings, modes);
    for (const plan of plans) {
      const result = await runPhase(machine, kernel, plan, settings, modes);
      phases.push(result);
      onPhase?.(phases.length, plans.length, result);
    }
  } finally {
    await machine.stop();
    if (lockHooks.on) setModes(modes);
  }
  return {
    format: RESULTS_FORMAT,
    startedAt,
    finishedAt: new Date().toISOString(),
    settings: { ...settings, lockdep: lockHooks.on },
    machine: machineInfo(pinning),
    phases,
  };
}

/**
 * Each phase is one run for the validator: its dependency graph, reports and counts start empty
 * (a cycle found under one design must not be blamed on, or hidden from, another), with the run's
 * modes, and the cycle check only warning where the experiment looks for cycles (inversion).
 * Preconditions: no CPU holds a lock.
 */
function freshValidator(plan: PhasePlan, modes: LockdepMode[]): void {
  if (!lockHooks.on) return;
  lockdepReset();
  setModes(modes);
  if (plan.experiment.warnCycles === true) setLockdepMode('circular', 'warn');
}

/** Puts every check back to `modes` (in CHECKS order). */
function setModes(modes: LockdepMode[]): void {
  for (let i = 0; i < CHECKS.length; i++) setLockdepMode(CHECKS[i], modes[i]);
}

interface ValidatorSnapshot {
  counts: Record<LockdepCheck, number>;
  sites: SiteCount[];
  reports: number;
}

function validatorSnapshot(): ValidatorSnapshot {
  return { counts: lockdepCounts(), sites: lockdepSiteCounts(), reports: lockdepReports().length };
}

/** What the validator found since `before`. */
function validatorSince(before: ValidatorSnapshot): ValidatorResult {
  const now = validatorSnapshot();
  const counts = { ...now.counts };
  for (const check of Object.keys(counts) as LockdepCheck[]) counts[check] -= before.counts[check];
  const sites: SiteCount[] = [];
  for (const s of now.sites) {
    const old = before.sites.find((b) => b.site === s.site);
    const d = {
      site: s.site,
      sleep: s.sleep - (old?.sleep ?? 0),
      alloc: s.alloc - (old?.alloc ?? 0),
      io: s.io - (old?.io ?? 0),
    };
    if (d.sleep + d.alloc + d.io > 0) sites.push(d);
  }
  sites.sort((a, b) => b.sleep + b.alloc + b.io - (a.sleep + a.alloc + a.io));
  return { on: lockHooks.on, counts, sites, reports: lockdepReports().slice(before.reports) };
}

function taskArgs(
  plan: PhasePlan,
  settings: LabSettings,
  proc: Process,
  row: number,
  shared: PhaseShared,
  durationMs: number,
): LabTaskArgs {
  return {
    workload: plan.phase.roles[row],
    process: proc.describe(),
    design: plan.design,
    row,
    cpus: plan.phase.roles.length,
    durationMs,
    minOps: 0,
    maxMs: durationMs,
    seed: (settings.seed * 1000 + row) | 0,
    regionPages: REGION_PAGES,
    hist: shared.hist.describe(),
    ring: shared.rings[row].describe(),
    control: shared.control,
    windowStartMs: Math.min(durationMs * 0.3, 300),
    windowMs: WINDOW_MS,
    traceClasses: [mmapLockClass, vmaLockClass],
  };
}

interface PhaseShared {
  hist: LatencyHistograms;
  rings: TraceRing[];
  control: SharedArrayBuffer;
}

/** A phase's process in the run's kernel, made under the phase's design. */
function phaseProcess(kernel: Kernel, plan: PhasePlan): { proc: Process; cpus: number[] } {
  const proc = Process.create(kernel, { config: { design: plan.design } });
  return { proc, cpus: Array.from({ length: plan.phase.roles.length }, (_, i) => i) };
}

/** The unmeasured warm-up of a phase on its process. */
async function warmUp(
  machine: Machine,
  plan: PhasePlan,
  settings: LabSettings,
  proc: Process,
): Promise<void> {
  const n = plan.phase.roles.length;
  const cpus = Array.from({ length: n }, (_, i) => i);
  const durationMs = settings.seconds * 1000;
  const warm: PhaseShared = {
    hist: LatencyHistograms.create(n),
    rings: cpus.map(() => TraceRing.create(1)),
    control: new SharedArrayBuffer(CONTROL_BYTES),
  };
  await runCpus(machine, plan, cpus, (i) => ({
    ...taskArgs(plan, settings, proc, i, warm, Math.min(WARMUP_MS, durationMs / 2)),
    // A CPU that sleeps in injected I/O has no floor: its few operations would take the whole phase.
    minOps: IO_WORKLOADS.has(plan.phase.roles[i])
      ? 0
      : Math.ceil(WARMUP_OPS * Math.min(1, durationMs / 1000)),
    maxMs: durationMs,
    windowMs: 0,
  }));
}

/** The process exits; returns what is left of the kernel's records once everything drained. */
function teardown(kernel: Kernel, proc: Process): KernelCounts {
  proc.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  return kernel.counts();
}

/**
 * The pass before any measurement: every phase's warm-up once, so that no design's figures pay
 * for the CPUs' first compilation of paths another design's phase would have compiled already
 * (the first phase of a run was measured several times slower than the same phase later).
 */
async function warmPass(
  machine: Machine,
  kernel: Kernel,
  plans: PhasePlan[],
  settings: LabSettings,
  modes: LockdepMode[],
): Promise<void> {
  for (const plan of plans) {
    freshValidator(plan, modes);
    const { proc } = phaseProcess(kernel, plan);
    await warmUp(machine, plan, settings, proc);
    const left = teardown(kernel, proc);
    if (Object.values(left).some((v) => v !== 0)) {
      throw new Error(
        `lab: the warm-up of ${plan.experiment.name} under ${plan.design} leaked ${JSON.stringify(left)}`,
      );
    }
  }
}

async function runPhase(
  machine: Machine,
  kernel: Kernel,
  plan: PhasePlan,
  settings: LabSettings,
  modes: LockdepMode[],
): Promise<PhaseResult> {
  const { proc, cpus } = phaseProcess(kernel, plan);
  const shared: PhaseShared = {
    hist: LatencyHistograms.create(cpus.length),
    rings: cpus.map(() => TraceRing.create(RING_EVENTS)),
    control: new SharedArrayBuffer(CONTROL_BYTES),
  };
  freshValidator(plan, modes);
  await warmUp(machine, plan, settings, proc);
  // The measured run starts the validator afresh too: what it reports was seen in the run itself.
  freshValidator(plan, modes);
  resetMmVmstat(proc.mm.locks);
  resetLockStat();
  const before = validatorSnapshot();
  const results = await runCpus(machine, plan, cpus, (i) =>
    taskArgs(plan, settings, proc, i, shared, settings.seconds * 1000),
  );
  const vmstat = proc.mm.vmstat();
  for (const r of results) {
    vmstat.faults += r.cowFaults.faults;
    vmstat.faultsSpeculative += r.cowFaults.faultsSpeculative;
    vmstat.faultsVmaLock += r.cowFaults.faultsVmaLock;
    vmstat.faultsMmapLock += r.cowFaults.faultsMmapLock;
    vmstat.fallbacks += r.cowFaults.fallbacks;
  }
  const phase: PhaseResult = {
    experiment: plan.experiment.name as ExperimentName,
    design: plan.design,
    cpus: cpus.length,
    baseline: plan.phase.baseline === true,
    seed: settings.seed,
    durationMs: Math.max(...results.map((r) => r.elapsedMs)),
    roles: roleResults(plan.phase.roles, results, shared.hist),
    pagesTouched: results.reduce((sum, r) => sum + r.pages, 0),
    vmstat,
    locks: lockResults(cpus),
    validator: validatorSince(before),
    timeline: timelines(plan.phase.roles, shared.rings),
    cow: cowOutcomes(results),
    failures: results.map((r) => r.failure).filter((f) => f !== ''),
    // Last: everything above is read before the process is torn down.
    leaked: teardown(kernel, proc),
  };
  return phase;
}

/** Runs the phase's task on each CPU; throws (naming every CPU that failed) if any failed. */
async function runCpus(
  machine: Machine,
  plan: PhasePlan,
  cpus: number[],
  args: (row: number) => LabTaskArgs,
): Promise<LabTaskResult[]> {
  const settled = await Promise.allSettled(cpus.map((i) => machine.run<LabTaskResult>(TASK, args(i), [i])));
  const failed = settled.filter((s) => s.status === 'rejected');
  if (failed.length > 0) {
    const why = failed.map((s) => String((s as PromiseRejectedResult).reason)).join('\n');
    throw new Error(`lab: ${plan.experiment.name} under ${plan.design}: a CPU failed:\n${why}`);
  }
  return settled.map((s) => (s as PromiseFulfilledResult<LabTaskResult[]>).value[0]);
}

function roleResults(roles: Workload[], results: LabTaskResult[], hist: LatencyHistograms): RoleResult[] {
  const out: RoleResult[] = [];
  for (const workload of new Set(roles)) {
    const cpus = roles.flatMap((w, i) => (w === workload ? [i] : []));
    const ops = cpus.reduce((sum, i) => sum + results[i].ops, 0);
    const seconds = Math.max(...cpus.map((i) => results[i].elapsedMs)) / 1000;
    out.push({
      workload,
      unit: WORKLOAD_UNITS[workload],
      cpus,
      ops,
      opsPerSec: seconds > 0 ? ops / seconds : 0,
      latency: hist.summary(cpus),
    });
  }
  return out;
}

function lockResults(cpus: number[]): LockResult[] {
  const bounds = Array.from({ length: LOCKSTAT_BUCKETS }, (_, k) => {
    const b = bucketLimit(k);
    return Number.isFinite(b) ? b : null;
  });
  const out: LockResult[] = [];
  for (const classId of [mmapLockClass, vmaLockClass]) {
    const row = lockStatRows(cpus).find((r) => r.classId === classId);
    if (row === undefined) continue;
    const h = lockStatHistogram(classId, cpus);
    out.push({ ...row, waitHist: h.wait, holdHist: h.hold, bucketUpperNs: bounds });
  }
  return out;
}

function kindName(kind: number, id: number): string {
  if (kind === KIND_HOLD) return `${lockClassName(id)} hold`;
  if (kind === KIND_WAIT) return `${lockClassName(id)} wait`;
  return WORKLOAD_KIND_NAMES[kind - KIND_USER] ?? `kind ${kind}`;
}

function timelines(roles: Workload[], rings: TraceRing[]): CpuTimeline[] {
  return rings.map((ring, cpu) => ({
    cpu,
    workload: roles[cpu],
    dropped: ring.dropped,
    events: ring.events().map((e) => ({
      tUs: Math.round(e.tMs * 1e4) / 10,
      kind: kindName(e.kind, e.id),
      durUs: Math.round(e.durationNs) / 1000,
    })),
  }));
}

function cowOutcomes(results: LabTaskResult[]): PhaseResult['cow'] {
  if (results.every((r) => r.cowPass.length === 0)) return null;
  return COW_CASES.map((name, i) => ({
    case: name,
    pass: results.reduce((sum, r) => sum + (r.cowPass[i] ?? 0), 0),
    fail: results.reduce((sum, r) => sum + (r.cowFail[i] ?? 0), 0),
  }));
}
