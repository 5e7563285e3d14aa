/**
 * What a lab CPU measures while its workload runs: every operation's latency into its row of the
 * run's LatencyHistograms, the operations and pages it did, its deadline, and the timeline window
 * (its trace ring fills while the window is open: the locks' holds and waits from the lock
 * statistics, and the workload's own events). Allocation-free per operation: `op(t0, kind)` is a
 * few plain writes and one performance.now().
 *
 * Time: every CPU starts at one shared origin (an epoch time, performance.timeOrigin based, that
 * the last CPU to arrive at the start barrier publishes); deadlines and the window are offsets
 * from it, so all CPUs measure the same interval and their timelines share one axis. The window
 * opens at the first operation ending after its start (a CPU descheduled across the start still
 * records one) and closes windowMs later or when the ring is full; windowMs 0: no window.
 */
import { KIND_USER, type TraceRing, traceBegin, traceEnd, traceEvent, tracing } from '../sync/locktrace.js';
import { rcuQuiescent } from '../sync/rcu.js';
import type { LatencyHistograms } from './histogram.js';

/** The workloads' timeline kinds (the locks' are KIND_HOLD and KIND_WAIT). */
export const KIND_FAULT = KIND_USER;
export const KIND_MMAP = KIND_USER + 1;
export const KIND_MUNMAP = KIND_USER + 2;
export const KIND_LAUNCH = KIND_USER + 3;
export const KIND_CASE = KIND_USER + 4;
export const KIND_WRITE = KIND_USER + 5;

/** Names of the workload kinds, by kind - KIND_USER. */
export const WORKLOAD_KIND_NAMES = ['fault', 'mmap', 'munmap', 'thread launch', 'cow case', 'write'];

/** Operations between two quiescent states this CPU reports to RCU. */
const QS_EVERY = 64;

export interface ProbeTiming {
  /** This CPU's performance.now() at the shared origin. */
  startMs: number;
  durationMs: number;
  /**
   * A warm-up's floor of operations: it ends once both durationMs passed and this many operations
   * ran (so that each CPU's JIT has compiled the paths, however busy the host), or at maxMs.
   */
  minOps: number;
  maxMs: number;
  /** The timeline window, from the origin. */
  windowStartMs: number;
  windowMs: number;
  /** The origin as an epoch time (for the trace ring's time axis). */
  originEpochMs: number;
  /** Lock classes whose holds and waits go to the ring. */
  traceClasses: readonly number[];
}

export class CpuProbe {
  /** Operations done (each recorded in the histogram). */
  ops = 0;
  /** Pages this CPU touched that had no translation (each one fault). */
  pages = 0;
  /** Set once the deadline passed: the workload stops at its next check. */
  over = false;
  private readonly deadline: number;
  private readonly hardDeadline: number;
  private readonly windowOpen: number;
  /** Set when the window opens: it lasts windowMs from the first operation inside it. */
  private windowClose = 0;
  private windowDone: boolean;

  constructor(
    private readonly row: number,
    private readonly hist: LatencyHistograms,
    private readonly ring: TraceRing,
    private readonly timing: ProbeTiming,
  ) {
    this.deadline = timing.startMs + timing.durationMs;
    this.hardDeadline = timing.startMs + Math.max(timing.durationMs, timing.maxMs);
    this.windowOpen = timing.startMs + timing.windowStartMs;
    this.windowDone = timing.windowMs <= 0;
  }

  now(): number {
    return performance.now();
  }

  /** One operation of `kind` that began at `t0` (performance.now()) ended now. */
  op(t0: number, kind: number): void {
    const t1 = performance.now();
    const ns = (t1 - t0) * 1e6;
    this.hist.record(this.row, ns);
    if (tracing()) traceEvent(t0, kind, 0, ns);
    this.ops++;
    this.tick(t1);
  }

  /** An event of the timeline that is not an operation of the histogram (e.g. page_fault1's mmap). */
  event(t0: number, kind: number): void {
    const t1 = performance.now();
    if (tracing()) traceEvent(t0, kind, 0, (t1 - t0) * 1e6);
    this.tick(t1);
  }

  /** The deadline's bookkeeping for a CPU that does no operation (io-idle). */
  poll(): void {
    this.tick(performance.now());
  }

  /** Deadline, window and RCU bookkeeping at time `t` (performance.now()). */
  private tick(t: number): void {
    if ((this.ops & (QS_EVERY - 1)) === 0) rcuQuiescent();
    if (t >= this.deadline && (this.ops >= this.timing.minOps || t >= this.hardDeadline)) this.over = true;
    if (this.windowDone) return;
    if (!tracing()) {
      if (t < this.windowOpen) return;
      traceBegin(this.ring, this.timing.originEpochMs, this.timing.traceClasses);
      this.windowClose = t + this.timing.windowMs;
    } else if (t >= this.windowClose || this.ring.count >= this.ring.capacity) this.stopTrace();
  }

  private stopTrace(): void {
    if (tracing()) traceEnd();
    this.windowDone = true;
  }

  /** The workload ended: stops tracing; the milliseconds it ran from the origin. */
  finish(): number {
    this.stopTrace();
    return performance.now() - this.timing.startMs;
  }
}
