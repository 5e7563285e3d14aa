/**
 * `npm run bench` (bench/main.ts, bench/harness.ts, bench/linux.ts): the ratio column only divides
 * figures of the same unit; the Linux kernel baselines are skipped with one note when gcc is not
 * on PATH while every other figure is still printed; --help and bad arguments follow the CLI's
 * rules. The no-gcc case runs the real mm suite (quick) in a child process whose PATH has no gcc.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RATIO_RULE, Report, ratioOf } from '../../bench/harness.js';
import { findOnPath, linuxUnavailable } from '../../bench/linux.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BENCH = join(ROOT, 'dist/bench/main.js');
const USAGE = 'usage: npm run bench -- [--quick] [--only SUITE] [--json FILE]';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-bench-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the bench in a child with `env` on top of an environment without the test suite's VMSPACE_* switches. */
function bench(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMSPACE_')));
  const r = spawnSync(process.execPath, [BENCH, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...base, ...env },
  });
  if (r.error) throw r.error;
  return r;
}

/** Silences the harness's stderr note while `body` runs; returns what it wrote there. */
function quietly(body: () => void): string {
  const original = console.error;
  const said: string[] = [];
  console.error = (...a: unknown[]) => said.push(a.join(' '));
  try {
    body();
  } finally {
    console.error = original;
  }
  return said.join('\n');
}

test('a ratio divides only figures of the same unit', () => {
  assert.equal(ratioOf({ value: 30, unit: 'ns' }, { value: 10, unit: 'ns' }), 3);
  assert.equal(ratioOf({ value: 4, unit: 'Mops/s' }, { value: 2, unit: 'Mops/s' }), 2);
  assert.equal(ratioOf({ value: 30, unit: 'ns' }, { value: 10, unit: 'Mops/s' }), undefined);
  assert.equal(ratioOf({ value: 3, unit: 'us' }, { value: 10, unit: 'ns' }), undefined);
  assert.equal(ratioOf({ value: 3, unit: 'ns' }, { value: 0, unit: 'ns' }), undefined);

  const report = new Report();
  report.add('base.ns', 10, 'ns');
  report.add('rate.mops', 5, 'Mops/s');
  assert.equal(report.add('same.ns', 25, 'ns', 'base.ns').ratio, 2.5);
  const mixed = report.add('mixed.ns', 25, 'ns', 'rate.mops');
  assert.equal(mixed.ratio, undefined);
  assert.equal(mixed.baseline_id, 'rate.mops');
  assert.equal(report.add('slow.us', 2, 'us', 'base.ns').ratio, undefined);

  const table = report.table().split('\n');
  assert.equal(table[0], RATIO_RULE);
  assert.match(table[0], /same unit/);
  const row = (id: string) => table.find((l) => l.startsWith(`${id} `))?.split(/ {2,}/);
  assert.deepEqual(row('same.ns'), ['same.ns', '25.0', 'ns', 'base.ns', '2.50']);
  assert.deepEqual(row('mixed.ns'), ['mixed.ns', '25.0', 'ns', 'rate.mops', '-']);
  assert.deepEqual(row('slow.us'), ['slow.us', '2.00', 'us', 'base.ns', '-']);
  assert.deepEqual(row('base.ns'), ['base.ns', '10.0', 'ns']);

  const json = JSON.parse(report.json()) as { results: Array<Record<string, unknown>> };
  const mixedJson = json.results.find((f) => f.id === 'mixed.ns');
  assert.deepEqual(mixedJson, { id: 'mixed.ns', value: 25, unit: 'ns', baseline_id: 'rate.mops' });
});

test('skipped figures are left out, noted once, and their comparisons lose the baseline', () => {
  const report = new Report();
  report.omit('linux.', 'gcc not found on PATH');
  const said = quietly(() => {
    report.add('linux.a.ns', Number.NaN, 'ns');
    report.add('linux.b.ns', Number.NaN, 'ns');
    report.add('mm.a.ns', 12, 'ns', 'linux.a.ns');
    report.add('mm.c.ns', 7, 'ns');
  });
  assert.equal(said, 'bench: linux.* figures skipped: gcc not found on PATH');
  assert.ok(report.isSkipped('linux.a.ns'));
  assert.deepEqual(
    report.figures.map((f) => f.id),
    ['mm.a.ns', 'mm.c.ns'],
  );
  assert.deepEqual(report.figures[0], { id: 'mm.a.ns', value: 12, unit: 'ns' });
  assert.match(report.table(), /\nmm\.a\.ns +12\.0 +ns +linux\.a\.ns \(skipped\) +-\n/);
  // A figure that is not skipped must still be finite.
  assert.throws(() => report.add('mm.nan.ns', Number.NaN, 'ns'), /not finite/);
});

test('gcc is looked up on PATH', () => {
  const empty = tempDir();
  const withGcc = tempDir();
  const gcc = join(withGcc, 'gcc');
  writeFileSync(gcc, '#!/bin/sh\nexit 0\n');
  chmodSync(gcc, 0o755);
  assert.equal(findOnPath('gcc', empty), null);
  assert.equal(findOnPath('gcc', `${empty}${delimiter}${withGcc}`), gcc);
  assert.match(linuxUnavailable(empty) ?? '', /gcc not found on PATH|need Linux/);
  if (process.platform === 'linux') assert.equal(linuxUnavailable(withGcc), null);
});

test('without gcc on PATH the bench skips the Linux baselines with one note and prints the rest', () => {
  const r = bench(['--quick', '--only', 'mm'], { PATH: tempDir() });
  assert.equal(r.status, 0, r.stderr);
  const notes = r.stderr.split('\n').filter((l) => /skipped/.test(l));
  assert.equal(notes.length, 1, r.stderr);
  assert.match(notes[0], /^bench: linux\.\* figures skipped: /);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], RATIO_RULE);
  assert.deepEqual(
    lines.filter((l) => l.startsWith('linux.')),
    [],
  );
  for (const id of ['mm.mmap_munmap_16k.ns', 'mm.mprotect_split_merge.ns', 'mm.mremap_move.ns']) {
    const row = lines.find((l) => l.startsWith(`${id} `));
    assert.ok(row, `${id} is missing:\n${r.stdout}`);
    assert.match(row, /\(skipped\) +-$/);
  }
  assert.ok(lines.some((l) => l.startsWith('mm.vma_lookup_rcu.ns ')));
});

test('bench --help prints the usage; bad arguments exit 2 with one line and the usage line', () => {
  const help = bench(['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.ok(help.stdout.startsWith(USAGE));
  assert.equal(bench(['-h']).status, 0);
  for (const [args, message] of [
    [['--bogus'], "bench: unknown option '--bogus'"],
    [
      ['--only', 'nosuch'],
      "bench: unknown suite 'nosuch' (one of foundation, maple, lockdep, mm, mem, fs, lab)",
    ],
    [['--json'], "bench: option '--json' needs a value"],
    [['--quick=1'], "bench: option '--quick' takes no value"],
    [['extra'], "bench: unexpected argument 'extra'"],
  ] as const) {
    const r = bench([...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderr.trimEnd().split('\n'), [message, USAGE]);
  }
});
