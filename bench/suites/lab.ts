/**
 * The lab's headline ratios (issue 12, "Measure"): short runs of the lab's own experiments through
 * its runner (src/lab: runLab, the same workloads, phases and warm-up as `vmspace lab`), under
 * `global` and `vma-lock`, without the lock validator, read with src/lab/ratios.ts (the figures
 * the lab's summary prints). Every ratio is taken within this one run.
 *
 *   lab.io_under_lock.global, .vma_lock   the mmap+munmap loop's rate beside a CPU faulting a slow
 *                                         file (10 ms per read: docs/lab.md on the latency)
 *   lab.io_under_lock.ratio               vma_lock / global                        (target >= 270)
 *   lab.io_under_lock.kept                vma-lock: the loop beside the I/O / without (>= 0.9)
 *   lab.queued_writer.p99_ratio           vma-lock: cached-fault p99 beside the queued writer and
 *                                         the I/O / alone (<= 2); .global_p99_ratio beside it
 *   lab.fault_scaling_2cpu.ratio          vma-lock: page_fault1 on 2 CPUs / on 1 (>= 1.9);
 *                                         .global_ratio beside it
 *
 * The lab runs RUNS times (seeds 1, 2, 3) and every figure is the median of the runs' figures: one
 * run's p99 or rate moves with whatever else the host runs (docs/lab.md). The CPUs are pinned to
 * host cores as in `vmspace lab` (src/machine/pin.ts). --quick runs 0.25 s phases (indicative
 * only); otherwise 1 s phases, about a minute per run.
 */
import { faultScaling, headlineRate, ioUnderLockKept, queuedWriterP99Ratio } from '../../src/lab/ratios.js';
import type { LabRun, LabSettings } from '../../src/lab/results.js';
import { runLab } from '../../src/lab/runner.js';
import { type BenchOptions, type BenchSuite, median, type Report } from '../harness.js';

/** Runs of the lab whose medians are reported. */
const RUNS = 3;

export const suite: BenchSuite = {
  name: 'lab',
  async run(report: Report, options: BenchOptions): Promise<void> {
    const settings: LabSettings = {
      experiments: ['io-under-lock', 'queued-writer', 'fault-scaling'],
      designs: ['global', 'vma-lock'],
      cpus: 2,
      seconds: options.quick ? 0.25 : 1,
      seed: 1,
      lockdep: false,
      pin: true,
    };
    const runs: LabRun[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(checked(await runLab({ ...settings, seed: 1 + i })));
    const med = (f: (r: LabRun) => number) => median(runs.map(f));
    const rate = (design: string) => (r: LabRun) => headlineRate(r, 'io-under-lock', design);
    const unit = 'mmap+munmap/s';
    report.add('lab.io_under_lock.global', med(rate('global')), unit);
    report.add('lab.io_under_lock.vma_lock', med(rate('vma-lock')), unit, 'lab.io_under_lock.global');
    const ratios: [string, (r: LabRun) => number][] = [
      ['lab.io_under_lock.ratio', (r) => rate('vma-lock')(r) / rate('global')(r)],
      ['lab.io_under_lock.kept', (r) => ioUnderLockKept(r, 'vma-lock')],
      ['lab.queued_writer.global_p99_ratio', (r) => queuedWriterP99Ratio(r, 'global')],
      ['lab.queued_writer.p99_ratio', (r) => queuedWriterP99Ratio(r, 'vma-lock')],
      ['lab.fault_scaling_2cpu.global_ratio', (r) => faultScaling(r, 'global')],
      ['lab.fault_scaling_2cpu.ratio', (r) => faultScaling(r, 'vma-lock')],
    ];
    for (const [id, of] of ratios) report.add(id, med(of), 'ratio');
  },
};

/** The run, once no phase failed or leaked. */
function checked(run: LabRun): LabRun {
  for (const p of run.phases) {
    const leaked = Object.entries(p.leaked).filter(([, n]) => n !== 0);
    if (p.failures.length > 0 || leaked.length > 0) {
      throw new Error(
        `bench lab: ${p.experiment} under ${p.design}: ${p.failures.join('; ')} leaked ${leaked}`,
      );
    }
  }
  return run;
}
