/**
 * `vmspace lab [EXPERIMENT...] [--designs LIST] [--cpus N] [--seconds S] [--seed S] [--out DIR]
 * [--no-lockdep] [--no-pin]`: runs the lab's experiments (src/lab) under each fault-locking design on worker
 * CPUs, shows progress on stderr (a bar on a terminal, lines otherwise), prints a summary table
 * with the ratios to global on stdout, and writes the run's JSON and its HTML report into DIR.
 */
import { MAX_WORKER_CPUS } from '../cpu/current.js';
import { EXPERIMENTS, type ExperimentName } from '../lab/experiments.js';
import {
  faultScaling,
  headlineRate,
  headlineRole,
  ioUnderLockKept,
  phaseHeadline,
  phaseOf,
  queuedWriterP99Ratio,
} from '../lab/ratios.js';
import { type LabRun, type LabSettings, writeRunJson } from '../lab/results.js';
import { planPhases, runLab } from '../lab/runner.js';
import { FAULT_DESIGNS, type FaultDesign, isFaultDesign } from '../mm/fault-design.js';
import { decimalOption, intOption, strictArgs, UsageError, usageFailure } from './args.js';

const USAGE =
  'usage: vmspace lab [EXPERIMENT...] [--headline] [--designs LIST] [--cpus N] [--seconds S] [--seed S] [--out DIR] [--no-lockdep] [--no-pin]';

/** `--headline` (npm start): issue 12's headline experiments, short phases (under 2 minutes on 2 cores). */
export const HEADLINE_EXPERIMENTS: readonly ExperimentName[] = [
  'io-under-lock',
  'queued-writer',
  'fault-scaling',
  'inversion',
];
const HEADLINE_SECONDS = 0.5;

const HELP = `${USAGE}

Runs each experiment under each fault-locking design on N worker CPUs sharing one address space,
then writes DIR/lab-<time>.json (every figure) and DIR/lab-<time>.html (one self-contained
report: charts drawn by Vega-Lite, opens from disk) and prints a summary.

experiments (default: all):
  page_fault1     will-it-scale page_fault1: anonymous write faults, each CPU on its own VMAs
  page_fault2     will-it-scale page_fault2: write faults on each CPU's own file, MAP_PRIVATE
  page_fault3     will-it-scale page_fault3: write faults on each CPU's own file, MAP_SHARED
  mmap1           will-it-scale mmap1: mmap + munmap of 128 MiB anonymous memory
  mmap2           will-it-scale mmap2: mmap + munmap of each CPU's own 128 MiB file, MAP_SHARED
  fault-scaling   page_fault1 on 1..N CPUs
  thread-launch   CPU 0 maps, touches and unmaps thread stacks while the others fault
  cow             the cow.c copy-on-write scenarios, their outcome per design
  io-under-lock   mmap/munmap loop beside faults on a slow file (10 ms each); and without
  queued-writer   cached faults while a writer queues behind a fault doing I/O (3 CPUs)
  inversion       a fault callback taking i_rwsem vs a write() faulting its buffer: cycle reports

  --headline      io-under-lock, queued-writer, fault-scaling and inversion, 0.5 s per phase
                  (what npm start runs; experiments and --seconds given override it)

  --designs LIST  comma-separated, of ${FAULT_DESIGNS.join(', ')} (default: all)
  --cpus N        worker CPUs, 1..${MAX_WORKER_CPUS} (default 2)
  --seconds S     measured time of each phase, e.g. 0.5 (default 1; each phase also warms up)
  --seed S        seed of the workloads (default 1)
  --out DIR       where the JSON and the report go (default lab-results)
  --no-lockdep    run without the lock validator (faster; no validator findings)
  --no-pin        let the host place the CPUs' threads (default: CPU i pinned to host core
                  i mod cores, so one CPU's release of a lock never costs it its core)
  -h, --help      this text`;

export interface LabCliOptions extends LabSettings {
  out: string;
}

/** The options, or null for --help; throws UsageError. */
export function parseLabArgs(argv: string[]): LabCliOptions | null {
  const { values, positionals } = strictArgs(
    argv,
    {
      designs: { type: 'string' },
      cpus: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      'no-lockdep': { type: 'boolean' },
      'no-pin': { type: 'boolean' },
      headline: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) return null;
  for (const name of positionals) {
    if (!(EXPERIMENTS as readonly string[]).includes(name)) {
      throw new UsageError(`unknown experiment '${name}' (one of ${EXPERIMENTS.join(', ')})`);
    }
  }
  const designs = (values.designs ?? FAULT_DESIGNS.join(',')).split(',');
  for (const d of designs) {
    if (!isFaultDesign(d)) throw new UsageError(`unknown design '${d}' (one of ${FAULT_DESIGNS.join(', ')})`);
  }
  const out = values.out ?? 'lab-results';
  if (out === '') throw new UsageError("option '--out' needs a directory");
  return {
    experiments: (positionals.length > 0
      ? [...new Set(positionals)]
      : values.headline
        ? [...HEADLINE_EXPERIMENTS]
        : [...EXPERIMENTS]) as ExperimentName[],
    designs: FAULT_DESIGNS.filter((d) => designs.includes(d)) as FaultDesign[],
    cpus: intOption('cpus', values.cpus, 2, 1, MAX_WORKER_CPUS),
    seconds: decimalOption('seconds', values.seconds, values.headline ? HEADLINE_SECONDS : 1, 0, 600),
    seed: intOption('seed', values.seed, 1, 0, 2 ** 31 - 1),
    lockdep: values['no-lockdep'] !== true,
    pin: values['no-pin'] !== true,
    out,
  };
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
const us = (ns: number) => `${fmt(ns / 1000)} us`;

/** The summary's rows for one experiment: its headline rate per design and its own ratios (ratios.ts). */
function experimentRows(run: LabRun, name: ExperimentName): string[][] {
  const designs = run.settings.designs;
  const measured = run.phases.filter((p) => p.experiment === name && !p.baseline);
  const most = Math.max(...measured.map((p) => p.cpus));
  const rate = (d: string) => headlineRate(run, name, d);
  const global = rate('global');
  const perDesign = (f: (d: string) => string) => designs.map(f);
  const rows = [
    [
      name,
      `${headlineRole(run, name, measured[0]?.design ?? '')?.unit ?? ''} (${most} CPUs)`,
      ...perDesign(
        (d) => `${fmt(rate(d))}${d !== 'global' && global > 0 ? ` (${fmt(rate(d) / global)}x)` : ''}`,
      ),
    ],
  ];
  if (name === 'fault-scaling' && most > 1)
    rows.push(['', `${most} CPUs / 1 CPU`, ...perDesign((d) => `${fmt(faultScaling(run, d))}x`)]);
  if (name === 'io-under-lock')
    rows.push(['', 'kept: beside I/O / without', ...perDesign((d) => fmt(ioUnderLockKept(run, d)))]);
  if (name === 'queued-writer') {
    const lat = (d: string) => headlineRole(run, name, d)?.latency;
    rows.push([
      '',
      'fault p50 / p99',
      ...perDesign((d) => `${us(lat(d)?.p50Ns ?? 0)} / ${us(lat(d)?.p99Ns ?? 0)}`),
    ]);
    rows.push(['', 'p99 / p99 alone', ...perDesign((d) => `${fmt(queuedWriterP99Ratio(run, d))}x`)]);
  }
  if (name === 'inversion')
    rows.push([
      '',
      'circular reports',
      ...perDesign((d) => String(phaseOf(run, name, d)?.validator.counts.circular ?? 0)),
    ]);
  if (run.settings.lockdep)
    rows.push([
      '',
      'under mmap_lock: I/O sleep alloc',
      ...perDesign((d) => {
        const c = phaseOf(run, name, d)?.validator.counts;
        return c === undefined ? '' : `${c.mmap_io} ${c.mmap_sleep} ${c.mmap_alloc}`;
      }),
    ]);
  return rows;
}

/**
 * The summary: per experiment, the headline workload's rate per design with its ratio to global,
 * and the experiment's own ratios (fault scaling; io-under-lock's kept throughput; queued-writer's
 * latency; inversion's cycle reports), and the validator's counts under mmap_lock.
 */
export function summaryText(run: LabRun): string {
  const rows: string[][] = [['experiment', 'unit', ...run.settings.designs]];
  for (const name of run.settings.experiments) rows.push(...experimentRows(run, name));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * The report (vega, vega-lite: a second to load, so only once there is a run to draw) and the
 * progress bar (cli-progress). They are development dependencies of vmspace (it has none at run
 * time): null, having said which is missing, when this copy lacks them.
 */
async function loadDrawing(): Promise<{
  report: typeof import('../lab/report.js');
  progress: typeof import('./progress.js').progress;
} | null> {
  try {
    return { report: await import('../lab/report.js'), progress: (await import('./progress.js')).progress };
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    console.error(
      `vmspace lab: ${(error as Error).message.split('\n')[0]}\n` +
        'the lab needs vega, vega-lite and cli-progress (development dependencies of vmspace): npm install them',
    );
    return null;
  }
}

/** Runs the lab; returns the exit status (1 when a phase leaked, a workload failed or a cow case did not hold). */
export async function runLabCli(argv: string[]): Promise<number> {
  let opts: LabCliOptions | null;
  try {
    opts = parseLabArgs(argv);
  } catch (error) {
    return usageFailure('vmspace lab', USAGE, error);
  }
  if (opts === null) {
    console.log(HELP);
    return 0;
  }
  const { out, ...settings } = opts;
  const drawing = await loadDrawing();
  if (drawing === null) return 1;
  const { chartCount, writeReport } = drawing.report;
  const bar = drawing.progress('lab', planPhases(settings).length);
  let run: LabRun;
  try {
    run = await runLab(settings, (_done, _total, p) => {
      const role = phaseHeadline(p);
      const what = p.baseline ? ' (baseline)' : '';
      bar.step(
        `${p.experiment}${what} ${p.design} ${p.cpus} CPUs: ${fmt(role?.opsPerSec ?? 0)} ${role?.unit ?? ''}`,
      );
    });
    const json = writeRunJson(run, out);
    bar.grow(chartCount(run));
    const html = await writeReport(run, out, () => bar.step('report'));
    bar.stop();
    console.log(summaryText(run));
    console.log(`\nresults: ${json}\nreport:  ${html}`);
  } finally {
    bar.stop();
  }
  const bad = run.phases.filter(
    (p) =>
      p.failures.length > 0 ||
      Object.values(p.leaked).some((n) => n !== 0) ||
      (p.cow ?? []).some((c) => c.fail > 0),
  );
  for (const p of bad) {
    const cases = (p.cow ?? []).filter((c) => c.fail > 0).map((c) => `cow case ${c.case} failed ${c.fail}x`);
    console.error(
      `vmspace lab: ${p.experiment} under ${p.design}: ${[...p.failures, ...cases].join('; ')} leaked ${JSON.stringify(p.leaked)}`,
    );
  }
  return bad.length === 0 ? 0 : 1;
}
