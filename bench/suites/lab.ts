/**
 * The lab's headline ratios (issue 12, "Measure"): short runs of the lab's own experiments through
 * its runner (src/lab: runLab, the same workloads, phases and warm-up as `vmspace lab`), under
 * `global` and `vma-lock`, without the lock validator, read with src/lab/ratios.ts (the figures
 * the lab's summary prints). Every ratio is taken within this one run.
 *
 *   lab.io_under_lock.global, .vma_lock   the mmap+munmap loop's rate beside a CPU faulting a slow
 *                                         file (10 ms per read: docs/lab.md on the latency)
 *   lab.io_under_lock.ratio               vma_lock / global                        (target >= 270)
 *   lab.io_under_lock.kept                vma-lock: the loop beside the I/O / alone (>= 0.9)
 *   lab.queued_writer.p99_ratio           vma-lock: cached-fault p99 beside the queued writer and
 *                                         the I/O / alone (<= 2); .global_p99_ratio beside it
 *   lab.fault_scaling_2cpu.ratio          vma-lock: page_fault1 on 2 CPUs / on 1 (>= 1.9);
 *                                         .global_ratio beside it
 *
 * --quick runs 0.25 s phases (indicative only); otherwise 1 s phases, about 40 s in all.
 */
import { faultScaling, headlineRate, ioUnderLockKept, queuedWriterP99Ratio } from '../../src/lab/ratios.js';
import type { LabSettings } from '../../src/lab/results.js';
import { runLab } from '../../src/lab/runner.js';
import type { BenchOptions, BenchSuite, Report } from '../harness.js';

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
    };
    const run = await runLab(settings);
    for (const p of run.phases) {
      const leaked = Object.entries(p.leaked).filter(([, n]) => n !== 0);
      if (p.failures.length > 0 || leaked.length > 0) {
        throw new Error(
          `bench lab: ${p.experiment} under ${p.design}: ${p.failures.join('; ')} leaked ${leaked}`,
        );
      }
    }
    const unit = 'mmap+munmap/s';
    report.add('lab.io_under_lock.global', headlineRate(run, 'io-under-lock', 'global'), unit);
    report.add(
      'lab.io_under_lock.vma_lock',
      headlineRate(run, 'io-under-lock', 'vma-lock'),
      unit,
      'lab.io_under_lock.global',
    );
    report.add(
      'lab.io_under_lock.ratio',
      headlineRate(run, 'io-under-lock', 'vma-lock') / headlineRate(run, 'io-under-lock', 'global'),
      'ratio',
    );
    report.add('lab.io_under_lock.kept', ioUnderLockKept(run, 'vma-lock'), 'ratio');
    report.add('lab.queued_writer.global_p99_ratio', queuedWriterP99Ratio(run, 'global'), 'ratio');
    report.add('lab.queued_writer.p99_ratio', queuedWriterP99Ratio(run, 'vma-lock'), 'ratio');
    report.add('lab.fault_scaling_2cpu.global_ratio', faultScaling(run, 'global'), 'ratio');
    report.add('lab.fault_scaling_2cpu.ratio', faultScaling(run, 'vma-lock'), 'ratio');
  },
};
