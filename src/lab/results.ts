/**
 * The shape of a lab run's results (one JSON file per run, `writeRunJson`) and the machine it ran
 * on. Every figure the report draws comes from here: the HTML report is a function of this JSON.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus as hostCpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { KernelCounts } from '../kernel/kernel.js';
import type { LockdepCheck, SiteCount } from '../lockdep/index.js';
import type { FaultDesign } from '../mm/fault-design.js';
import type { MmVmstat } from '../mm/vmstat.js';
import type { LockStatRow } from '../sync/lockstat.js';
import type { ExperimentName } from './experiments.js';
import type { LatencySummary } from './histogram.js';
import type { Workload } from './workloads.js';

export const RESULTS_FORMAT = 'vmspace-lab/1';

/** What the CPUs of one workload did in a phase. */
export interface RoleResult {
  workload: Workload;
  unit: string;
  cpus: number[];
  ops: number;
  opsPerSec: number;
  latency: LatencySummary;
}

/** A lock class's statistics over the phase's CPUs, with its wait and hold histograms. */
export interface LockResult extends LockStatRow {
  /** Counts per lockstat bucket; bucket k ends at `bucketUpperNs[k]` (Infinity: null in JSON). */
  waitHist: number[];
  holdHist: number[];
  bucketUpperNs: (number | null)[];
}

export interface TimelineEvent {
  /** Start, microseconds from the phase's origin. */
  tUs: number;
  kind: string;
  durUs: number;
}

export interface CpuTimeline {
  cpu: number;
  workload: Workload;
  events: TimelineEvent[];
  /** Events the ring had no room for. */
  dropped: number;
}

export interface ValidatorResult {
  /** The validator ran (its counts mean something). */
  on: boolean;
  /** How often each check fired during the phase. */
  counts: Record<LockdepCheck, number>;
  /** Call sites of the mmap_lock checks during the phase, busiest first. */
  sites: SiteCount[];
  /** Reports recorded during the phase (warn and throw modes). */
  reports: { check: string; text: string }[];
}

export interface CowOutcome {
  case: string;
  pass: number;
  fail: number;
}

export interface PhaseResult {
  experiment: ExperimentName;
  design: FaultDesign;
  cpus: number;
  /** The experiment's no-I/O baseline phase (io-under-lock, queued-writer). */
  baseline: boolean;
  seed: number;
  /** Longest any CPU ran, from the shared origin. */
  durationMs: number;
  roles: RoleResult[];
  /** Pages the CPUs touched that had no translation: each one fault. */
  pagesTouched: number;
  vmstat: MmVmstat;
  locks: LockResult[];
  validator: ValidatorResult;
  timeline: CpuTimeline[];
  /** The cow experiment's outcome per case (null for the others). */
  cow: CowOutcome[] | null;
  /** kernel.counts() after the process exited and every CPU's frame lists were drained. */
  leaked: KernelCounts;
  /** What a workload could not do (errno of a failed call). */
  failures: string[];
}

export interface LabSettings {
  experiments: ExperimentName[];
  designs: FaultDesign[];
  cpus: number;
  seconds: number;
  seed: number;
  lockdep: boolean;
  /** Pin each CPU's thread to its own host core (src/machine/pin.ts: why). */
  pin: boolean;
}

export interface MachineInfo {
  node: string;
  v8: string;
  platform: string;
  release: string;
  arch: string;
  cpuModel: string;
  hostCpus: number;
  memoryGiB: number;
  vmspace: string;
  /** Where the CPUs' threads ran: pinned to host cores, or why not. */
  pinning: string;
}

export interface LabRun {
  format: typeof RESULTS_FORMAT;
  startedAt: string;
  finishedAt: string;
  settings: LabSettings;
  machine: MachineInfo;
  phases: PhaseResult[];
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function machineInfo(pinning: string): MachineInfo {
  const host = hostCpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: platform(),
    release: release(),
    arch: process.arch,
    cpuModel: host[0]?.model ?? 'unknown',
    hostCpus: host.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    vmspace: packageVersion(),
    pinning,
  };
}

/** The file name stem of a run started at `startedAt` (an ISO time): lab-YYYYMMDD-HHMMSS. */
export function runStem(startedAt: string): string {
  return `lab-${startedAt.slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`;
}

/** Writes the run as `DIR/<stem>.json`; returns the path. */
export function writeRunJson(run: LabRun, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${runStem(run.startedAt)}.json`);
  writeFileSync(path, `${JSON.stringify(run, null, 1)}\n`);
  return path;
}
