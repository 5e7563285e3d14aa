/**
 * The report's charts as Vega-Lite specifications, built from a run's results (results.ts): per
 * experiment, throughput per design (bars; a line over CPU counts for fault-scaling), the latency
 * CDF per design, the wait and hold distributions of mmap_lock and vma_lock, and the per-CPU
 * timeline window. report.ts compiles and renders them to SVG. A chart without data is null (the
 * report says so instead of drawing an empty frame).
 */
import { FAULT_DESIGNS } from '../mm/fault-design.js';
import type { ExperimentName } from './experiments.js';
import { cdfPoints } from './histogram.js';
import type { PhaseResult } from './results.js';

/** A Vega-Lite top-level specification (checked by the compiler when rendered). */
export type VegaLiteSpec = Record<string, unknown>;

export interface Chart {
  /** Unique in the report: `<experiment>-<kind>`. */
  id: string;
  title: string;
  spec: VegaLiteSpec;
}

/** Events a timeline draws per CPU lane (the first of its window). */
const TIMELINE_EVENTS = 250;

const DESIGN_COLORS = { domain: [...FAULT_DESIGNS], range: ['#d62728', '#ff7f0e', '#1f77b4', '#2ca02c'] };

const designColor = {
  field: 'design',
  type: 'nominal',
  title: 'design',
  scale: DESIGN_COLORS,
  sort: [...FAULT_DESIGNS],
};

function base(values: object[], extra: VegaLiteSpec): VegaLiteSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    config: { font: 'sans-serif', view: { stroke: '#ddd' } },
    ...extra,
  };
}

const roleLabel = (workload: string, unit: string) => `${workload} (${unit})`;

/** Throughput per design: bars per workload; fault-scaling: ops/s over the number of CPUs. */
export function throughputChart(experiment: ExperimentName, phases: PhaseResult[]): Chart | null {
  const values = phases.flatMap((p) =>
    p.roles.map((r) => ({
      design: p.design,
      cpus: p.cpus,
      role: roleLabel(r.workload, r.unit),
      opsPerSec: Math.round(r.opsPerSec),
    })),
  );
  if (values.length === 0) return null;
  const title = `${experiment}: throughput per design`;
  if (experiment === 'fault-scaling') {
    return {
      id: `${experiment}-throughput`,
      title,
      spec: base(values, {
        width: 360,
        height: 220,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'cpus', type: 'ordinal', title: 'CPUs' },
          y: { field: 'opsPerSec', type: 'quantitative', title: 'faults/s' },
          color: designColor,
        },
      }),
    };
  }
  return {
    id: `${experiment}-throughput`,
    title,
    spec: base(values, {
      mark: 'bar',
      encoding: {
        column: { field: 'role', type: 'nominal', title: null },
        x: { field: 'design', type: 'nominal', title: null, sort: [...FAULT_DESIGNS] },
        y: { field: 'opsPerSec', type: 'quantitative', title: 'operations/s' },
        color: designColor,
        tooltip: [{ field: 'opsPerSec', type: 'quantitative' }],
      },
      width: 180,
      height: 220,
      resolve: { scale: { y: 'independent' } },
    }),
  };
}

/** The phases a per-design chart shows: for fault-scaling, those on the most CPUs. */
function widest(phases: PhaseResult[]): PhaseResult[] {
  const most = Math.max(...phases.map((p) => p.cpus));
  return phases.filter((p) => p.cpus === most);
}

/** The latency CDF of each workload's operations, per design. */
export function latencyChart(experiment: ExperimentName, phases: PhaseResult[]): Chart | null {
  const values = widest(phases).flatMap((p) =>
    p.roles.flatMap((r) =>
      cdfPoints(r.latency).map((pt) => ({
        design: p.design,
        role: roleLabel(r.workload, r.unit),
        us: pt.ns / 1000,
        fraction: pt.fraction,
      })),
    ),
  );
  if (values.length === 0) return null;
  return {
    id: `${experiment}-latency`,
    title: `${experiment}: latency CDF per design (operation latency, log scale)`,
    spec: base(values, {
      mark: { type: 'line', interpolate: 'step-after', point: { size: 12 } },
      encoding: {
        column: { field: 'role', type: 'nominal', title: null },
        x: { field: 'us', type: 'quantitative', title: 'latency (µs)', scale: { type: 'log' } },
        y: { field: 'fraction', type: 'quantitative', title: 'fraction of operations ≤ x' },
        color: designColor,
      },
      width: 320,
      height: 220,
    }),
  };
}

/** Wait and hold distributions of mmap_lock and vma_lock (lockstat histograms), per design. */
export function lockChart(experiment: ExperimentName, phases: PhaseResult[]): Chart | null {
  const values: object[] = [];
  for (const p of widest(phases)) {
    for (const l of p.locks) {
      for (const [what, hist] of [
        ['wait', l.waitHist],
        ['hold', l.holdHist],
      ] as const) {
        hist.forEach((count, k) => {
          if (count === 0) return;
          const upper = l.bucketUpperNs[k] ?? 2 * (l.bucketUpperNs[k - 1] ?? 1);
          values.push({ design: p.design, lock: l.name, what, us: upper / 1000, count });
        });
      }
    }
  }
  if (values.length === 0) return null;
  return {
    id: `${experiment}-locks`,
    title: `${experiment}: lock wait and hold times (lockstat histograms; holds sampled)`,
    spec: base(values, {
      mark: { type: 'line', point: true },
      encoding: {
        row: { field: 'lock', type: 'nominal', title: null },
        column: { field: 'what', type: 'nominal', title: null, sort: ['wait', 'hold'] },
        x: {
          field: 'us',
          type: 'quantitative',
          title: 'time ≤ x (µs, bucket upper bound)',
          scale: { type: 'log' },
        },
        y: { field: 'count', type: 'quantitative', title: 'count', scale: { type: 'symlog' } },
        color: designColor,
      },
      width: 280,
      height: 140,
    }),
  };
}

/** The timeline row of an event: its CPU, then its lock (holds and waits) or its operations. */
function laneOf(cpu: number, workload: string, kind: string): string {
  const lock = / (hold|wait)$/.test(kind) ? kind.slice(0, kind.lastIndexOf(' ')) : null;
  return lock === null ? `cpu ${cpu} ${workload}` : `cpu ${cpu} ${lock}`;
}

/** Each design's per-CPU timeline window: per CPU a row of operations and a row per lock. */
export function timelineChart(experiment: ExperimentName, phases: PhaseResult[]): Chart | null {
  const values: object[] = [];
  const lanes: string[] = [];
  for (const p of widest(phases)) {
    const cpus = p.timeline.filter((t) => t.events.length > 0);
    if (cpus.length === 0) continue;
    const t0 = Math.min(...cpus.flatMap((t) => t.events.slice(0, TIMELINE_EVENTS).map((e) => e.tUs)));
    for (const cpu of cpus) {
      for (const e of cpu.events.slice(0, TIMELINE_EVENTS)) {
        const lane = laneOf(cpu.cpu, cpu.workload, e.kind);
        if (!lanes.includes(lane)) lanes.push(lane);
        const start = e.tUs - t0;
        values.push({ design: p.design, lane, kind: e.kind, start, end: start + Math.max(e.durUs, 0.05) });
      }
    }
  }
  if (values.length === 0) return null;
  lanes.sort();
  return {
    id: `${experiment}-timeline`,
    title: `${experiment}: per-CPU timeline of a short window (first ${TIMELINE_EVENTS} events per CPU)`,
    spec: base(values, {
      mark: { type: 'bar', height: { band: 0.7 } },
      encoding: {
        row: { field: 'design', type: 'nominal', title: null, sort: [...FAULT_DESIGNS] },
        y: { field: 'lane', type: 'nominal', title: null, sort: lanes },
        x: { field: 'start', type: 'quantitative', title: 'µs from the window start' },
        x2: { field: 'end' },
        color: { field: 'kind', type: 'nominal', title: 'event' },
      },
      width: 640,
      resolve: { scale: { x: 'independent', y: 'independent' } },
    }),
  };
}

/** Every chart of one experiment, in report order. */
export function experimentCharts(experiment: ExperimentName, phases: PhaseResult[]): (Chart | null)[] {
  return [
    throughputChart(experiment, phases),
    latencyChart(experiment, phases),
    lockChart(experiment, phases),
    timelineChart(experiment, phases),
  ];
}
