/**
 * A per-CPU timeline of a short window: a bounded ring of (t, kind, id, duration) events in shared
 * memory, which this CPU fills while it traces. The lock statistics (lockstat.ts) record every
 * hold and every wait of the traced lock classes into it; higher layers add their own kinds (the
 * lab: faults and syscalls). Recording is allocation-free; one CPU writes a ring, and the main
 * thread reads it once that CPU has stopped.
 *
 *   TraceRing buffer (Float64):  [0] COUNT  [1] DROPPED  then CAPACITY entries of
 *                                [T_MS  KIND  ID  DURATION_NS]
 *   T_MS: milliseconds since the trace origin (an epoch time the tracer chose, performance.timeOrigin
 *   based, so that the rings of every CPU share one time axis); ID: the lock class for lock kinds.
 *
 * The ring fills once and then counts what it drops (the window stays the one that began first).
 * While this CPU traces, lockstat measures the hold of every acquisition instead of 1 in 64.
 */

/** Event kinds the locks record; higher layers number theirs from KIND_USER. */
export const KIND_HOLD = 1;
export const KIND_WAIT = 2;
export const KIND_USER = 16;

const COUNT = 0;
const DROPPED = 1;
const HEADER = 2;
const ENTRY = 4;

export interface TraceRingDescriptor {
  buffer: SharedArrayBuffer;
}

export interface TraceEvent {
  tMs: number;
  kind: number;
  id: number;
  durationNs: number;
}

export class TraceRing {
  readonly capacity: number;
  private readonly f: Float64Array;

  static create(capacity: number): TraceRing {
    if (!(Number.isInteger(capacity) && capacity > 0 && capacity <= 1 << 20)) {
      throw new RangeError(`TraceRing: capacity ${capacity} is not in 1..2^20`);
    }
    return new TraceRing({ buffer: new SharedArrayBuffer((HEADER + capacity * ENTRY) * 8) });
  }

  static attach(desc: TraceRingDescriptor): TraceRing {
    return new TraceRing(desc);
  }

  private constructor(desc: TraceRingDescriptor) {
    this.f = new Float64Array(desc.buffer);
    this.capacity = (this.f.length - HEADER) / ENTRY;
  }

  describe(): TraceRingDescriptor {
    return { buffer: this.f.buffer as SharedArrayBuffer };
  }

  /** Appends one event (`tMs` on the trace's time axis); counts it as dropped when full. */
  record(tMs: number, kind: number, id: number, durationNs: number): void {
    const f = this.f;
    const n = f[COUNT];
    if (n >= this.capacity) {
      f[DROPPED]++;
      return;
    }
    const at = HEADER + n * ENTRY;
    f[at] = tMs;
    f[at + 1] = kind;
    f[at + 2] = id;
    f[at + 3] = durationNs;
    f[COUNT] = n + 1;
  }

  get count(): number {
    return this.f[COUNT];
  }

  get dropped(): number {
    return this.f[DROPPED];
  }

  /** The events recorded, oldest first (the reader's copy; call it once the writer stopped). */
  events(): TraceEvent[] {
    const f = this.f;
    const out: TraceEvent[] = [];
    for (let i = 0; i < f[COUNT]; i++) {
      const at = HEADER + i * ENTRY;
      out.push({ tMs: f[at], kind: f[at + 1], id: f[at + 2], durationNs: f[at + 3] });
    }
    return out;
  }

  clear(): void {
    this.f.fill(0);
  }
}

/**
 * This CPU's tracing state (each CPU is one thread: module state is per CPU). `ring` is null while
 * the CPU does not trace; `classes[c] !== 0` for the lock classes whose events go to the ring;
 * `offsetMs` turns this thread's performance.now() into the trace's time axis.
 */
export const trace = {
  ring: null as TraceRing | null,
  classes: new Uint8Array(0),
  offsetMs: 0,
};

/**
 * Starts tracing on this CPU into `ring`: events of the lock classes in `classes` (ids), times
 * relative to `originEpochMs` (performance.timeOrigin + performance.now() of the tracer's choice).
 */
export function traceBegin(ring: TraceRing, originEpochMs: number, classes: readonly number[]): void {
  const flags = new Uint8Array(Math.max(0, ...classes) + 1);
  for (const c of classes) flags[c] = 1;
  trace.classes = flags;
  trace.offsetMs = performance.timeOrigin - originEpochMs;
  trace.ring = ring;
}

/** Stops tracing on this CPU. */
export function traceEnd(): void {
  trace.ring = null;
}

/** Whether this CPU is tracing. */
export function tracing(): boolean {
  return trace.ring !== null;
}

/** Records an event that began at `startMs` (this thread's performance.now()), if tracing. */
export function traceEvent(startMs: number, kind: number, id: number, durationNs: number): void {
  const ring = trace.ring;
  if (ring !== null) ring.record(trace.offsetMs + startMs, kind, id, durationNs);
}

/** Records a lock event of class `classId`, if this CPU traces that class. */
export function traceLockEvent(startMs: number, kind: number, classId: number, durationNs: number): void {
  const ring = trace.ring;
  if (ring !== null && classId < trace.classes.length && trace.classes[classId] !== 0) {
    ring.record(trace.offsetMs + startMs, kind, classId, durationNs);
  }
}
