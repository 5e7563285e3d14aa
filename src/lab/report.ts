/**
 * The lab's report: ONE self-contained HTML file (no script, no network: it opens from disk) made
 * from a run's results. Charts are Vega-Lite specifications (charts.ts) compiled by vega-lite and
 * rendered to SVG by vega in Node (`View.toSVG()`), inlined; tables (summary, fault counters,
 * validator findings, cow outcomes, machine and settings) are plain HTML.
 *
 *   results.json --> charts.ts (Vega-Lite specs) --> vega-lite compile --> vega View.toSVG()
 *                \-> tables ---------------------------------------------> report.html
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { type Chart, experimentCharts, type VegaLiteSpec } from './charts.js';
import { type ExperimentName, experimentNamed } from './experiments.js';
import { type LabRun, type PhaseResult, runStem } from './results.js';

/** Renders a Vega-Lite specification to an SVG document (text), without a browser. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = compile(spec as unknown as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Text as HTML (element content and attribute values). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function table(head: string[], rows: string[][], cls = ''): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

const byExperiment = (run: LabRun, name: ExperimentName) => run.phases.filter((p) => p.experiment === name);

/** Summary: the first workload's throughput per experiment and design, with the ratio to global. */
function summaryTable(run: LabRun): string {
  const designs = run.settings.designs;
  const rows: string[][] = [];
  for (const name of run.settings.experiments) {
    const phases = byExperiment(run, name);
    const most = Math.max(...phases.map((p) => p.cpus));
    const at = (design: string) => phases.find((p) => p.design === design && p.cpus === most);
    const rate = (p: PhaseResult | undefined) => p?.roles[0]?.opsPerSec ?? Number.NaN;
    const global = rate(at('global'));
    const cells = designs.map((d) => {
      const r = rate(at(d));
      const ratio =
        d !== 'global' && global > 0 ? ` <span class="ratio">(${fmt(r / global)}× global)</span>` : '';
      return `${fmt(r)}${ratio}`;
    });
    const unit = phases[0]?.roles[0]?.unit ?? '';
    rows.push([escapeHtml(name), escapeHtml(`${unit}, ${most} CPU${most > 1 ? 's' : ''}`), ...cells]);
    if (name === 'fault-scaling') rows.push(...scalingRows(phases, designs));
  }
  return table(['experiment', 'unit', ...designs], rows, 'summary');
}

/** fault-scaling: N-CPU rate / 1-CPU rate per design. */
function scalingRows(phases: PhaseResult[], designs: readonly string[]): string[][] {
  const most = Math.max(...phases.map((p) => p.cpus));
  if (most < 2) return [];
  const cells = designs.map((d) => {
    const one = phases.find((p) => p.design === d && p.cpus === 1)?.roles[0]?.opsPerSec ?? Number.NaN;
    const n = phases.find((p) => p.design === d && p.cpus === most)?.roles[0]?.opsPerSec ?? Number.NaN;
    return `${fmt(n / one)}×`;
  });
  return [['fault-scaling', escapeHtml(`${most} CPUs / 1 CPU`), ...cells]];
}

function vmstatTable(phases: PhaseResult[]): string {
  const rows = phases.map((p) => [
    escapeHtml(p.design),
    String(p.cpus),
    fmt(p.pagesTouched),
    fmt(p.vmstat.faults),
    fmt(p.vmstat.faultsSpeculative),
    fmt(p.vmstat.faultsVmaLock),
    fmt(p.vmstat.faultsMmapLock),
    fmt(p.vmstat.fallbacks),
    fmt(p.vmstat.vmaLockContention),
    fmt(p.vmstat.lookupRetries),
    fmt(p.vmstat.faultRetries),
    fmt(p.vmstat.speculativeAborts),
    escapeHtml(Object.values(p.leaked).every((v) => v === 0) ? 'none' : JSON.stringify(p.leaked)),
  ]);
  return table(
    [
      'design',
      'CPUs',
      'pages touched',
      'faults',
      'speculative path',
      'vma-lock path',
      'mmap_lock path',
      'fallbacks',
      'VMA-lock contention',
      'lookup retries',
      'fault retries',
      'speculative aborts',
      'leaked after exit',
    ],
    rows,
    'vmstat',
  );
}

function validatorTable(phases: PhaseResult[]): string {
  const rows = phases.map((p) => {
    const v = p.validator;
    if (!v.on) return [escapeHtml(p.design), String(p.cpus), 'validator off', '', '', '', ''];
    const others = Object.entries(v.counts)
      .filter(([check, n]) => n > 0 && !check.startsWith('mmap_'))
      .map(([check, n]) => `${check}: ${n}`);
    const sites = v.sites
      .slice(0, 6)
      .map(
        (s) =>
          `${s.site} (${[s.sleep && `sleep ${s.sleep}`, s.alloc && `alloc ${s.alloc}`, s.io && `I/O ${s.io}`].filter(Boolean).join(', ')})`,
      );
    return [
      escapeHtml(p.design),
      String(p.cpus),
      fmt(v.counts.mmap_io),
      fmt(v.counts.mmap_sleep),
      fmt(v.counts.mmap_alloc),
      escapeHtml(sites.join('; ') || '-'),
      escapeHtml(others.join(', ') || '-'),
    ];
  });
  return table(
    [
      'design',
      'CPUs',
      'I/O under mmap_lock',
      'sleeps under mmap_lock',
      'allocations under mmap_lock',
      'call sites',
      'other reports',
    ],
    rows,
    'validator',
  );
}

function cowTable(phases: PhaseResult[]): string {
  const withCases = phases.filter((p) => p.cow !== null);
  if (withCases.length === 0) return '';
  const cases = withCases[0].cow ?? [];
  const rows = cases.map((c, i) => [
    escapeHtml(c.case),
    ...withCases.map((p) => {
      const o = (p.cow ?? [])[i];
      const ok = o.fail === 0 && o.pass > 0;
      return `<span class="${ok ? 'ok' : 'bad'}">${o.pass} passed, ${o.fail} failed</span>`;
    }),
  ]);
  return table(['cow.c case', ...withCases.map((p) => p.design)], rows, 'cow');
}

async function chartFigure(chart: Chart): Promise<string> {
  const svg = await renderSvg(chart.spec);
  return `<figure class="chart" id="chart-${escapeHtml(chart.id)}" data-chart="${escapeHtml(chart.id)}">
<figcaption>${escapeHtml(chart.title)}</figcaption>
${svg}
</figure>`;
}

async function experimentSection(run: LabRun, name: ExperimentName, onChart?: () => void): Promise<string> {
  const phases = byExperiment(run, name);
  const exp = experimentNamed(name);
  const parts = [`<section id="exp-${escapeHtml(name)}"><h2>${escapeHtml(exp?.title ?? name)}</h2>`];
  parts.push(`<p>${escapeHtml(exp?.about ?? '')}</p>`);
  for (const chart of experimentCharts(name, phases)) {
    parts.push(chart === null ? '<p class="nodata">(no data for this chart)</p>' : await chartFigure(chart));
    onChart?.();
  }
  parts.push('<h3>Fault counters (per address space, like /proc/vmstat)</h3>', vmstatTable(phases));
  parts.push('<h3>Validator findings</h3>', validatorTable(phases));
  if (name === 'cow') parts.push('<h3>Outcome per case</h3>', cowTable(phases));
  const failures = phases.flatMap((p) => p.failures.map((f) => `${p.design}: ${f}`));
  if (failures.length > 0) parts.push(`<p class="bad">Failures: ${escapeHtml(failures.join('; '))}</p>`);
  parts.push('</section>');
  return parts.join('\n');
}

function settingsTable(run: LabRun): string {
  const s = run.settings;
  const m = run.machine;
  const rows: [string, string][] = [
    ['experiments', s.experiments.join(', ')],
    ['designs', s.designs.join(', ')],
    ['CPUs (worker threads)', String(s.cpus)],
    ['CPU threads', m.pinning],
    ['seconds per phase', String(s.seconds)],
    ['seed', String(s.seed)],
    ['lock validator', s.lockdep ? 'on (its bookkeeping slows every lock operation)' : 'off'],
    ['started', run.startedAt],
    ['finished', run.finishedAt],
    ['vmspace', m.vmspace],
    ['Node.js / V8', `${m.node} / ${m.v8}`],
    ['host', `${m.platform} ${m.release} ${m.arch}`],
    ['host CPUs', `${m.hostCpus} × ${m.cpuModel}`],
    ['memory', `${m.memoryGiB} GiB`],
  ];
  return table(
    ['setting', 'value'],
    rows.map(([k, v]) => [escapeHtml(k), escapeHtml(v)]),
    'settings',
  );
}

const STYLE = `body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}figure.chart{margin:1em 0;overflow-x:auto}figcaption{font-weight:bold;margin-bottom:.4em}
.ratio{color:#555;font-size:.9em}.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}.nodata{color:#777}
section{border-top:2px solid #eee;margin-top:2em}code{background:#f6f6f6;padding:0 .2em}`;

/** The report as HTML text; `onChart` is told after each chart (a progress bar). */
export async function buildReport(run: LabRun, onChart?: () => void): Promise<string> {
  const sections: string[] = [];
  for (const name of run.settings.experiments) sections.push(await experimentSection(run, name, onChart));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vmspace lab ${escapeHtml(run.startedAt)}</title>
<style>${STYLE}</style></head>
<body>
<h1>vmspace lab</h1>
<p>The same seeded workloads on one address space shared by ${run.settings.cpus} worker CPUs, under each
fault-locking design: <b>global</b> (mmap_lock held for read across every fault, I/O included; Linux
before 5.1), <b>retry</b> (mmap_lock for read, dropped for I/O and the fault retried; Linux 5.1-6.3)
and <b>vma-lock</b> (the VMA found under RCU and held by its per-VMA lock, mmap_lock only as a
fallback; Linux 6.4+). Anonymous faults never wait for I/O, so global and retry take the same locks
here; the file experiments that separate them come with the page cache.</p>
<h2>Summary</h2>
${summaryTable(run)}
${sections.join('\n')}
<section id="settings"><h2>Machine and settings</h2>
${settingsTable(run)}
</section>
</body></html>
`;
}

/** Charts the report of `run` draws (for a progress bar's total). */
export function chartCount(run: LabRun): number {
  return run.settings.experiments.length * 4;
}

/** Writes the report as `DIR/<stem>.html`; returns the path. */
export async function writeReport(run: LabRun, dir: string, onChart?: () => void): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${runStem(run.startedAt)}.html`);
  writeFileSync(path, await buildReport(run, onChart));
  return path;
}
