/**
 * The benchmark harness: every suite reports figures into one `Report`, which prints a table and
 * (with `--json FILE`) writes
 *   {"results":[{"id":"...","value":N,"unit":"...","baseline_id":"...","ratio":N}]}
 * `baseline_id` appears when a figure is compared with a baseline measured in the same run, and
 * `ratio` (value / baseline value) only when the two are in the same unit: a ratio of figures in
 * different units (ns against Mops/s, or us against ns) would mean nothing, so there is none (the
 * table prints `-`). Figures a run cannot measure (`skip`, e.g. the Linux baselines without gcc)
 * are left out, noted once on stderr, and the figures compared with them get no baseline.
 * Per-operation timings use mitata's `measure`.
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

/** The ratio column's rule, as the table states it above its header. */
export const RATIO_RULE =
  'ratio = value / baseline, only when both are in the same unit (- otherwise); ' +
  'below 1 is faster for times (ns, us), above 1 is faster for rates (Mops/s)';

/** value / baseline value when both figures are in the same unit (and the baseline is not 0). */
export function ratioOf(
  figure: { value: number; unit: string },
  baseline: { value: number; unit: string },
): number | undefined {
  if (figure.unit !== baseline.unit || baseline.value === 0) return undefined;
  return figure.value / baseline.value;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface Skip {
  prefix: string;
  reason: string;
  noted: boolean;
}

export class Report {
  readonly figures: Figure[] = [];
  private readonly skips: Skip[] = [];
  /** Ids of the figures dropped by a skip. */
  private readonly skipped = new Set<string>();
  /** Figure id -> its baseline that was skipped (shown in the table, absent from the JSON). */
  private readonly skippedBaselines = new Map<string, string>();

  /**
   * Figures whose id starts with `prefix` cannot be measured in this run (`reason`): `add` drops
   * them whatever their value (the first time saying so on stderr, in one line), and figures
   * compared with them are recorded without a baseline.
   */
  omit(prefix: string, reason: string): void {
    this.skips.push({ prefix, reason, noted: false });
  }

  /** Was figure `id` dropped by a skip? */
  isSkipped(id: string): boolean {
    return this.skipped.has(id);
  }

  /**
   * Records a figure; with `baselineId`, the baseline must have been recorded (or skipped) before.
   * Returns the figure (not recorded if it is skipped).
   */
  add(id: string, value: number, unit: string, baselineId?: string): Figure {
    const figure: Figure = { id, value, unit };
    const skip = this.skips.find((s) => id.startsWith(s.prefix));
    if (skip !== undefined) {
      if (!skip.noted) console.error(`bench: ${skip.prefix}* figures skipped: ${skip.reason}`);
      skip.noted = true;
      this.skipped.add(id);
      return figure;
    }
    if (!Number.isFinite(value)) throw new Error(`bench figure ${id} is not finite: ${value}`);
    if (this.find(id)) throw new Error(`bench figure ${id} recorded twice`);
    if (baselineId !== undefined && this.skipped.has(baselineId)) {
      this.skippedBaselines.set(id, baselineId);
    } else if (baselineId !== undefined) {
      const baseline = this.find(baselineId);
      if (!baseline) throw new Error(`bench figure ${id}: baseline ${baselineId} not measured in this run`);
      figure.baseline_id = baselineId;
      const ratio = ratioOf(figure, baseline);
      if (ratio !== undefined) figure.ratio = ratio;
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

  /**
   * The table: the ratio rule, then one row per figure. A figure without a baseline has empty
   * baseline and ratio cells; one whose baseline is in another unit or was skipped has ratio `-`.
   */
  table(): string {
    const rows = this.figures.map((f) => {
      const skippedBaseline = this.skippedBaselines.get(f.id);
      const baseline = f.baseline_id ?? (skippedBaseline === undefined ? '' : `${skippedBaseline} (skipped)`);
      const ratio = f.ratio !== undefined ? formatNumber(f.ratio) : baseline === '' ? '' : '-';
      return [f.id, formatNumber(f.value), f.unit, baseline, ratio];
    });
    const header = ['id', 'value', 'unit', 'baseline', 'ratio'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      cells
        .map((c, i) => (i === 1 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd();
    return [RATIO_RULE, line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
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
