/**
 * The lab end to end: one run of every experiment under every design on two worker CPUs, for a
 * fraction of a second each. The JSON has the documented shape with every design present; the
 * counters agree with what the workloads did (faults counted = pages touched, each fault counted
 * once by its path; the vma-lock fast path used, never under global or retry; the frames allocated
 * under mmap_lock are exactly the faults that took it); nothing leaked; every cow.c case held.
 * Then the HTML report: self-contained, and in headless Chromium (playwright-core) every chart is
 * an <svg> with marks and the page logs no error. Without Chromium the report test is skipped
 * with a message, except in CI (CI=true), where that is a failure.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { EXPERIMENTS } from '../../src/lab/experiments.js';
import { BUCKETS } from '../../src/lab/histogram.js';
import { chartCount, writeReport } from '../../src/lab/report.js';
import { type LabRun, type LabSettings, RESULTS_FORMAT, writeRunJson } from '../../src/lab/results.js';
import { planPhases, runLab } from '../../src/lab/runner.js';
import { lockHooks } from '../../src/lockhooks.js';
import { FAULT_DESIGNS } from '../../src/mm/fault-design.js';
import { KERNEL_EMPTY } from '../support/leaks.js';

const CHROMIUM = '/usr/bin/chromium';
const SETTINGS: LabSettings = {
  experiments: [...EXPERIMENTS],
  designs: [...FAULT_DESIGNS],
  cpus: 2,
  seconds: 0.15,
  seed: 5,
  lockdep: true,
  pin: true,
};

let dir: string;
let run: LabRun;
let jsonPath: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-lab-'));
  run = await runLab(SETTINGS);
  jsonPath = writeRunJson(run, dir);
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The run as written to disk (what the report and any reader see). */
const fromDisk = (): LabRun => JSON.parse(readFileSync(jsonPath, 'utf8')) as LabRun;

test('the JSON: one file per run, every experiment under every design, each phase complete', () => {
  const r = fromDisk();
  assert.equal(r.format, RESULTS_FORMAT);
  assert.deepEqual(r.settings.designs, FAULT_DESIGNS);
  assert.deepEqual(r.settings.experiments, EXPERIMENTS);
  assert.equal(r.settings.lockdep, lockHooks.on);
  for (const key of ['node', 'v8', 'platform', 'cpuModel', 'vmspace'] as const)
    assert.ok(r.machine[key], key);
  assert.ok(r.machine.hostCpus > 0 && r.machine.memoryGiB > 0);
  // Asked to pin: each CPU on its own host core, or the reason it could not be (never silent).
  assert.match(r.machine.pinning, /^(CPU i on host core i mod \d+|unpinned: cpu \d+: .+)$/);
  assert.equal(r.phases.length, planPhases(SETTINGS).length);
  for (const name of EXPERIMENTS) {
    for (const design of FAULT_DESIGNS) {
      const phases = r.phases.filter((p) => p.experiment === name && p.design === design);
      const cpus = phases.map((p) => p.cpus);
      const expected: Record<string, number[]> = {
        'fault-scaling': [1, 2],
        'io-under-lock': [2, 2],
        'queued-writer': [1, 3],
      };
      assert.deepEqual(cpus, expected[name] ?? [2], `${name} ${design}`);
    }
  }
  for (const p of r.phases) {
    const what = `${p.experiment} ${p.design} ${p.cpus}`;
    assert.deepEqual(p.failures, [], what);
    assert.deepEqual(p.leaked, KERNEL_EMPTY, `${what}: leaked`);
    assert.ok(p.durationMs >= SETTINGS.seconds * 1000, `${what}: ran ${p.durationMs} ms`);
    assert.equal(
      p.roles.reduce((n, role) => n + role.cpus.length, 0),
      p.cpus,
      `${what}: every CPU has a workload`,
    );
    for (const role of p.roles) {
      const l = role.latency;
      if (role.workload === 'io-idle') {
        assert.equal(role.ops, 0, `${what}: io-idle does no operation`);
        continue;
      }
      assert.ok(role.ops > 0 && role.opsPerSec > 0, `${what} ${role.workload}: no operation`);
      assert.equal(l.count, role.ops, `${what}: one latency per operation`);
      assert.equal(l.buckets.length, BUCKETS);
      assert.equal(
        l.buckets.reduce((a, b) => a + b, 0),
        l.count,
      );
      assert.ok(
        l.p50Ns > 0 && l.p50Ns <= l.p90Ns && l.p90Ns <= l.p99Ns && l.p99Ns <= l.p999Ns && l.p999Ns <= l.maxNs,
      );
    }
    assert.equal(p.timeline.length, p.cpus);
    for (const lane of p.timeline) {
      for (const e of lane.events) assert.ok(e.durUs >= 0 && typeof e.kind === 'string' && e.kind !== '');
    }
    const mmapLock = p.locks.find((l) => l.name === 'mmap_lock');
    assert.ok(mmapLock !== undefined && mmapLock.acquisitionsWrite > 0, `${what}: mmap_lock statistics`);
    assert.equal(mmapLock.waitHist.length, mmapLock.bucketUpperNs.length);
  }
  assert.ok(
    r.phases.some((p) => p.timeline.some((lane) => lane.events.some((e) => e.kind === 'fault'))),
    'some timeline window caught faults',
  );
});

test('the counters: faults counted = pages touched, each once by its path; each fast path only under its design', () => {
  const anonymous = ['page_fault1', 'mmap1', 'fault-scaling', 'thread-launch'];
  for (const p of fromDisk().phases) {
    if (!anonymous.includes(p.experiment)) continue;
    const what = `${p.experiment} ${p.design} ${p.cpus}`;
    const s = p.vmstat;
    assert.equal(s.design, p.design);
    assert.equal(s.faults, p.pagesTouched, `${what}: faults counted = pages touched`);
    assert.equal(s.faults, s.faultsSpeculative + s.faultsVmaLock + s.faultsMmapLock, what);
    assert.equal(s.faultRetries, 0, `${what}: anonymous faults never retry for I/O`);
    const faulting = p.experiment !== 'mmap1' && p.experiment !== 'mmap2';
    assert.equal(faulting, s.faults > 0, `${what}: faults ${s.faults}`);
    if (p.design === 'vma-lock') {
      if (faulting) assert.ok(s.faultsVmaLock > 0, `${what}: the fast path ran`);
      assert.equal(s.fallbacks, s.faultsMmapLock, `${what}: every mmap_lock fault is a fallback`);
    } else if (p.design === 'speculative') {
      if (faulting) assert.ok(s.faultsSpeculative > 0, `${what}: the speculative path ran`);
      assert.equal(s.fallbacks, s.faultsMmapLock, `${what}: every mmap_lock fault is a fallback`);
    } else {
      assert.deepEqual(
        [s.faultsSpeculative, s.faultsVmaLock, s.fallbacks, s.vmaLockContention],
        [0, 0, 0, 0],
        what,
      );
    }
    if (p.validator.on && faulting && p.experiment !== 'thread-launch') {
      // page_fault1 writes: each fault allocates one frame, under mmap_lock exactly when it took it.
      const frames = p.validator.sites.find((site) => site.site === 'frame')?.alloc ?? 0;
      assert.equal(frames, s.faultsMmapLock, `${what}: frames allocated under mmap_lock`);
      assert.equal(p.validator.counts.mmap_alloc >= frames, true);
    }
  }
});

test('the file experiments: I/O under mmap_lock only under global (one hold per fault, no retry), its call site named; faults retried after I/O elsewhere', () => {
  for (const p of fromDisk().phases) {
    if (!['io-under-lock', 'queued-writer', 'inversion', 'mmap2'].includes(p.experiment)) continue;
    const what = `${p.experiment} ${p.design} ${p.cpus}`;
    const io = p.experiment !== 'mmap2' && !p.baseline;
    const s = p.vmstat;
    assert.equal(s.faults, s.faultsSpeculative + s.faultsVmaLock + s.faultsMmapLock, what);
    // global waits for the I/O holding mmap_lock and maps the page under the same hold: no retry.
    if (io && p.design === 'global') assert.equal(s.faultRetries, 0, `${what}: no retry under global`);
    else if (io) assert.ok(s.faultRetries > 0, `${what}: the I/O faults retried`);
    if (p.experiment === 'mmap2') assert.equal(s.faults, 0, `${what}: mmap2 never touches its file`);
    if (!p.validator.on) continue;
    const sites = p.validator.sites.map((x) => x.site);
    if (p.design === 'global' && io) {
      assert.ok(p.validator.counts.mmap_io > 0, `${what}: I/O under mmap_lock`);
      assert.ok(sites.includes('fs.inject.fault'), `${what}: the site of the I/O: ${sites}`);
    } else {
      assert.equal(p.validator.counts.mmap_io, 0, `${what}: no I/O under mmap_lock`);
      // The fault path allocates no frame or cache node and does no I/O under mmap_lock.
      for (const site of ['frame', 'cache_node', 'fs.inject.fault'])
        if (p.design !== 'global') assert.ok(!sites.includes(site), `${what}: ${site} under mmap_lock`);
    }
  }
});

test("Linus's warning: no I/O and no sleeping under mmap_lock under retry and vma-lock in any experiment", () => {
  for (const p of fromDisk().phases) {
    if (!p.validator.on || p.design === 'global') continue;
    const what = `${p.experiment} ${p.design} ${p.cpus}`;
    const sites = p.validator.sites.filter((x) => x.io + x.sleep > 0).map((x) => x.site);
    assert.deepEqual([p.validator.counts.mmap_io, p.validator.counts.mmap_sleep, sites], [0, 0, []], what);
  }
});

test("inversion: Jan Kara's cycle reported with both stacks under global, from a run that did not deadlock; none under retry or vma-lock", () => {
  for (const p of fromDisk().phases.filter((q) => q.experiment === 'inversion')) {
    if (!p.validator.on) continue;
    assert.deepEqual(p.failures, [], p.design);
    const cycles = p.validator.reports.filter((r) => r.check === 'circular');
    if (p.design === 'global') {
      assert.ok(p.validator.counts.circular >= 1, 'the cycle was found');
      assert.equal(cycles.length, 1);
      const text = cycles[0].text;
      assert.match(text, /possible circular locking dependency/);
      assert.match(text, /\(mmap_lock\)\{held read\} -> \(i_rwsem\)\{read\}/);
      assert.match(text, /\(i_rwsem\)\{held write\} -> \(mmap_lock\)\{read\}/);
      assert.match(text, /at faultRead /, 'the fault callback stack');
      assert.match(text, /at fileWrite /, 'the write stack');
    } else {
      assert.equal(p.validator.counts.circular, 0, p.design);
      assert.deepEqual(cycles, [], p.design);
    }
  }
});

test('cow: every case of cow.c holds under every design', () => {
  for (const p of fromDisk().phases.filter((q) => q.experiment === 'cow')) {
    assert.ok(p.cow !== null && p.cow.length === 14, p.design);
    for (const c of p.cow) {
      assert.equal(c.fail, 0, `${p.design}: case ${c.case}`);
      assert.ok(c.pass >= p.cpus, `${p.design}: case ${c.case} ran on every CPU`);
    }
    assert.ok(p.vmstat.faults > 0, 'the cases faulted');
  }
});

test('the report: one self-contained HTML file whose charts all render in Chromium without a console error', async () => {
  // .ci/run installs Debian's chromium; a machine without it fails here rather than passing blind.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (as .ci/run does)`);
  const html = await writeReport(fromDisk(), dir);
  const text = readFileSync(html, 'utf8');
  assert.doesNotMatch(text, /<script|<link|<iframe|<img|@import|url\(/i, 'nothing loaded from elsewhere');
  assert.doesNotMatch(text.replace(/xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]*"/g, ''), /https?:\/\//);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
    await page.goto(pathToFileURL(html).href);
    const charts = await page.$$eval('figure.chart', (figures) =>
      figures.map((f) => ({
        id: f.getAttribute('data-chart'),
        svgs: f.querySelectorAll('svg').length,
        marks: f.querySelectorAll('svg g.role-mark > *').length,
        width: f.querySelector('svg')?.getBoundingClientRect().width ?? 0,
      })),
    );
    assert.equal(charts.length, chartCount(run), `every chart drawn: ${charts.map((c) => c.id).join(', ')}`);
    for (const c of charts) {
      assert.equal(c.svgs, 1, `${c.id}: one svg`);
      assert.ok(c.marks > 0, `${c.id}: no marks`);
      assert.ok(c.width > 100, `${c.id}: width ${c.width}`);
    }
    for (const name of EXPERIMENTS) {
      for (const kind of ['throughput', 'latency', 'locks', 'timeline']) {
        assert.ok(
          charts.some((c) => c.id === `${name}-${kind}`),
          `${name}-${kind} missing`,
        );
      }
    }
    assert.equal(await page.locator('table.validator').count(), EXPERIMENTS.length);
    assert.equal(await page.locator('table.settings').count(), 1);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
