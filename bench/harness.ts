/**
 * The benchmark harness: every suite reports figures into one `Report`, which prints a table and
 * (with `--json FILE`) writes
 *   {"results":[{"id":"...","value":N,"unit":"...","baseline_id":"...","ratio":N}]}
 * `baseline_id` and `ratio` (value / baseline value) appear when a figure is compared with a
 * baseline measured in the same run. Per-operation timings use mitata's `measure`.
 */
import { do_not_optimize, measure } from 'mitata';

export interface Figure {
  id: string;
  value: number;
  unit: string;
  baseline_id?: string;
  ratio?: number;
}

export interface BenchOptions {
  /** Smaller data and shorter runs (a smoke run in tests); figures are then only indicative. */
  quick: boolean;
}

export interface BenchSuite {
  name: string;
  run(report: Report, options: BenchOptions): Promise<void>;
}

export class Report {
  readonly figures: Figure[] = [];

  /** Records a figure; with `baselineId`, the baseline must have been recorded before. */
  add(id: string, value: number, unit: string, baselineId?: string): Figure {
    if (!Number.isFinite(value)) throw new Error(`bench figure ${id} is not finite: ${value}`);
    if (this.find(id)) throw new Error(`bench figure ${id} recorded twice`);
    const figure: Figure = { id, value, unit };
    if (baselineId !== undefined) {
      const baseline = this.find(baselineId);
      if (!baseline) throw new Error(`bench figure ${id}: baseline ${baselineId} not measured in this run`);
      figure.baseline_id = baselineId;
      figure.ratio = value / baseline.value;
    }
    this.figures.push(figure);
    return figure;
  }

  find(id: string): Figure | undefined {
    return this.figures.find((f) => f.id === id);
  }

  json(): string {
    return `${JSON.stringify({ results: this.figures }, null, 1)}\n`;
  }

  table(): string {
    const rows = this.figures.map((f) => [
      f.id,
      formatNumber(f.value),
      f.unit,
      f.baseline_id ?? '',
      f.ratio === undefined ? '' : formatNumber(f.ratio),
    ]);
    const header = ['id', 'value', 'unit', 'baseline', 'ratio'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 1 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
    return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
  }
}

function formatNumber(n: number): string {
  if (n === 0) return '0';
  const abs = Math.abs(n);
  if (abs >= 1000) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

/**
 * Median nanoseconds per operation of `op`, which must do `opsPerCall` operations per call (batch
 * small operations in a loop inside `op` so call overhead does not dominate). The median, not the
 * mean: on this shared host a few samples are slowed many times over by other tenants, and the
 * mean followed them (a figure moved by 30% between runs where the median moved by a few).
 */
export async function nsPerOp(op: () => unknown, opsPerCall: number, options: BenchOptions): Promise<number> {
  const stats = await measure(() => do_not_optimize(op()), {
    min_cpu_time: options.quick ? 20e6 : 300e6,
    max_samples: options.quick ? 200 : 10_000,
  });
  return stats.p50 / opsPerCall;
}
