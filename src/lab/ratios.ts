/**
 * The lab's headline figures read from a run (one definition: the CLI's summary table and the
 * bench's `lab.*` keys both use these):
 *
 *   headlineRole(run, experiment, design, baseline, cpus)   the headline workload's result in a phase
 *   ioUnderLockKept(run, design)        io-under-lock: the loop's rate beside the I/O / beside io-idle
 *   queuedWriterP99Ratio(run, design)   queued-writer: fault p99 with the queued writer / alone
 *   faultScaling(run, design)           fault-scaling: the most CPUs' fault rate / one CPU's
 *
 * A figure whose phases the run does not have is NaN.
 */
import { type ExperimentName, experimentNamed } from './experiments.js';
import type { LabRun, PhaseResult, RoleResult } from './results.js';

/**
 * The phase of `experiment` under `design`: its baseline, or its measured phase on `cpus` CPUs
 * (default: the most CPUs any measured phase of the experiment has).
 */
export function phaseOf(
  run: LabRun,
  experiment: ExperimentName,
  design: string,
  baseline = false,
  cpus?: number,
): PhaseResult | undefined {
  const phases = run.phases.filter((p) => p.experiment === experiment);
  const most = cpus ?? Math.max(...phases.filter((p) => !p.baseline).map((p) => p.cpus));
  return phases.find((p) => p.design === design && p.baseline === baseline && (baseline || p.cpus === most));
}

/** The experiment's headline workload's result in that phase (default: its first workload). */
export function headlineRole(
  run: LabRun,
  experiment: ExperimentName,
  design: string,
  baseline = false,
  cpus?: number,
): RoleResult | undefined {
  const phase = phaseOf(run, experiment, design, baseline, cpus);
  return phase === undefined ? undefined : phaseHeadline(phase);
}

/** A phase's headline workload's result (the experiment's `headline`, else its first CPU's). */
export function phaseHeadline(phase: PhaseResult): RoleResult | undefined {
  const headline = experimentNamed(phase.experiment)?.headline;
  return phase.roles.find((r) => headline === undefined || r.workload === headline);
}

/** The headline workload's operations per second in that phase. */
export function headlineRate(
  run: LabRun,
  experiment: ExperimentName,
  design: string,
  baseline = false,
  cpus?: number,
): number {
  return headlineRole(run, experiment, design, baseline, cpus)?.opsPerSec ?? Number.NaN;
}

/** io-under-lock's "kept": the mmap loop's rate beside the slow faults / beside io-idle (no I/O). */
export function ioUnderLockKept(run: LabRun, design: string): number {
  return headlineRate(run, 'io-under-lock', design) / headlineRate(run, 'io-under-lock', design, true);
}

/** queued-writer: the cached faults' p99 beside the writer and the I/O / their p99 alone. */
export function queuedWriterP99Ratio(run: LabRun, design: string): number {
  const beside = headlineRole(run, 'queued-writer', design)?.latency.p99Ns ?? Number.NaN;
  return beside / (headlineRole(run, 'queued-writer', design, true)?.latency.p99Ns ?? Number.NaN);
}

/** fault-scaling: the fault rate on the most CPUs / on one CPU. */
export function faultScaling(run: LabRun, design: string): number {
  return headlineRate(run, 'fault-scaling', design) / headlineRate(run, 'fault-scaling', design, false, 1);
}
