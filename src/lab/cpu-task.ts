/**
 * The task a lab CPU runs (the Machine's task module for every experiment): attach the phase's
 * process, open its file (a file workload: before the barrier, outside the measured interval),
 * meet the other CPUs at the start barrier, run its workload until the deadline through its
 * CpuProbe, close the file, detach, and return what it did. The last CPU to reach the barrier publishes the
 * shared origin (an epoch time) and wakes the others; the wait is bounded.
 *
 *   control (Int32 words 0..1, then a Float64 at byte 8): READY  GO  | ORIGIN_EPOCH_MS
 */
import { currentCpu } from '../cpu/current.js';
import { Kernel } from '../kernel/kernel.js';
import { Process, type ProcessDescriptor } from '../kernel/process.js';
import type { FaultDesign } from '../mm/fault-design.js';
import { MAP_PRIVATE, MAP_SHARED } from '../mm/vm-flags.js';
import { TraceRing, type TraceRingDescriptor } from '../sync/locktrace.js';
import { CpuProbe } from './cpu-probe.js';
import {
  cachedFault,
  closeWorkloadFile,
  inversionWrite,
  ioFault,
  ioIdle,
  mmap2File,
  openWorkloadFile,
  type WorkloadFile,
} from './file-workloads.js';
import { type HistogramDescriptor, LatencyHistograms } from './histogram.js';
import {
  cowCases,
  emptyOutcome,
  mmapLoop,
  pageFault1,
  regionHint,
  threadLaunch,
  type Workload,
  type WorkloadOutcome,
  writeFaultLoop,
} from './workloads.js';

const READY = 0;
const GO = 1;
const ORIGIN_BYTE = 8;
export const CONTROL_BYTES = 16;
/** Longest a CPU waits at the start barrier for the others. */
const BARRIER_MS = 30_000;

export interface LabTaskArgs {
  workload: Workload;
  process: ProcessDescriptor;
  design: FaultDesign;
  /** This CPU's row in the histograms (its place among the phase's CPUs). */
  row: number;
  /** CPUs that meet at the barrier. */
  cpus: number;
  durationMs: number;
  /** Warm-up only: the operations it runs at least, and the longest it may take (CpuProbe). */
  minOps: number;
  maxMs: number;
  seed: number;
  /** page_fault1's region in pages. */
  regionPages: number;
  hist: HistogramDescriptor;
  ring: TraceRingDescriptor;
  control: SharedArrayBuffer;
  windowStartMs: number;
  windowMs: number;
  traceClasses: number[];
}

export interface LabTaskResult extends WorkloadOutcome {
  ops: number;
  pages: number;
  elapsedMs: number;
}

/** Waits for every CPU of the phase; returns the shared origin (epoch ms). */
function startBarrier(control: SharedArrayBuffer, cpus: number): number {
  const words = new Int32Array(control, 0, 2);
  const origin = new Float64Array(control, ORIGIN_BYTE, 1);
  if (Atomics.add(words, READY, 1) + 1 === cpus) {
    origin[0] = performance.timeOrigin + performance.now();
    Atomics.store(words, GO, 1);
    Atomics.notify(words, GO);
  }
  const giveUp = performance.now() + BARRIER_MS;
  while (Atomics.load(words, GO) === 0) {
    if (performance.now() > giveUp)
      throw new Error(`lab: the other CPUs did not start within ${BARRIER_MS} ms`);
    Atomics.wait(words, GO, 0, 50);
  }
  return origin[0];
}

export default function labTask(_cpu: number, args: LabTaskArgs): LabTaskResult {
  const proc = Process.attach(args.process);
  const hist = LatencyHistograms.attach(args.hist);
  const ring = TraceRing.attach(args.ring);
  const out = emptyOutcome();
  // A file workload's set-up happens before the barrier: no other CPU measures while it runs.
  const file = openWorkloadFile(proc, args.workload, out, args.seed, args.durationMs, args.regionPages);
  const originEpochMs = startBarrier(args.control, args.cpus);
  const probe = new CpuProbe(args.row, hist, ring, {
    startMs: originEpochMs - performance.timeOrigin,
    durationMs: args.durationMs,
    minOps: args.minOps,
    maxMs: args.maxMs,
    windowStartMs: args.windowStartMs,
    windowMs: args.windowMs,
    originEpochMs,
    traceClasses: args.traceClasses,
  });
  let elapsedMs: number;
  try {
    if (out.failure === '') run(args, proc, probe, file, out);
  } finally {
    elapsedMs = probe.finish();
    try {
      if (file !== null) closeWorkloadFile(proc, file, out);
    } finally {
      proc.detach();
    }
  }
  return { ...out, ops: probe.ops, pages: probe.pages, elapsedMs };
}

function run(
  args: LabTaskArgs,
  proc: Process,
  probe: CpuProbe,
  f: WorkloadFile | null,
  out: WorkloadOutcome,
): void {
  const mm = proc.mm;
  const w = args.workload;
  const hint = regionHint(currentCpu());
  if (w === 'page_fault1') pageFault1(mm, probe, args.regionPages, hint, out);
  else if (w === 'mmap1') mmapLoop(mm, probe, out);
  else if (w === 'thread-launch') threadLaunch(mm, probe, out);
  else if (w === 'cow') cowCases(Kernel.attach(args.process.kernel), args.design, args.seed, probe, out);
  else if (f === null) throw new RangeError(`lab: no workload '${String(w)}'`);
  else if (w === 'mmap2') mmap2File(proc, probe, f, out);
  else if (w === 'page_fault2') writeFaultLoop(mm, probe, args.regionPages, hint, f.fd, MAP_PRIVATE, w, out);
  else if (w === 'page_fault3') writeFaultLoop(mm, probe, args.regionPages, hint, f.fd, MAP_SHARED, w, out);
  else if (w === 'io-fault' || w === 'inversion-fault') ioFault(proc, probe, args.seed, f);
  else if (w === 'io-idle') ioIdle(proc, probe);
  else if (w === 'cached-fault') cachedFault(proc, probe, f, out);
  else if (w === 'inversion-write') inversionWrite(proc, probe, f, out);
  else throw new RangeError(`lab: no workload '${String(w)}'`);
}
