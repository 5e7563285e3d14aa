/**
 * `vmspace lab` as a user meets it (a child process): --help, one-line usage errors with status 2
 * for an unknown experiment or design and bad numbers, and a short real run that prints the
 * summary and writes one JSON and one HTML file, its progress as plain lines when not on a TTY.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseLabArgs } from '../../src/cli/lab.js';
import { EXPERIMENTS } from '../../src/lab/experiments.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = join(ROOT, 'dist/src/cli/main.js');
const USAGE = 'usage: vmspace lab [EXPERIMENT...]';

function vmspace(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return r;
}

test('lab --help prints the usage and the experiments with status 0', () => {
  const r = vmspace('lab', '--help');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.startsWith(USAGE));
  for (const name of EXPERIMENTS) assert.match(r.stdout, new RegExp(`\\n  ${name} `));
  assert.match(vmspace('--help').stdout, /\n {2}lab \[EXPERIMENT\.\.\.\]/);
});

test('lab usage errors: one line and the usage, status 2, nothing on stdout', () => {
  for (const [args, message] of [
    [
      ['nosuch'],
      "vmspace lab: unknown experiment 'nosuch' (one of page_fault1, page_fault2, page_fault3, mmap1, mmap2, fault-scaling, thread-launch, cow, io-under-lock, queued-writer, inversion)",
    ],
    [
      ['--designs', 'global,spec'],
      "vmspace lab: unknown design 'spec' (one of global, retry, vma-lock, speculative)",
    ],
    [['--seconds', '0'], "vmspace lab: invalid --seconds value '0' (expected a number above 0, at most 600)"],
    [
      ['--seconds', '-1'],
      "vmspace lab: invalid --seconds value '-1' (expected a number above 0, at most 600)",
    ],
    [
      ['--seconds', '1e3'],
      "vmspace lab: invalid --seconds value '1e3' (expected a number above 0, at most 600)",
    ],
    [['--cpus', '0'], "vmspace lab: invalid --cpus value '0' (expected an integer from 1 to 63)"],
    [['--bogus'], "vmspace lab: unknown option '--bogus'"],
  ] as const) {
    const r = vmspace('lab', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.deepEqual([lines.length, lines[0]], [2, message]);
    assert.ok(lines[1].startsWith(USAGE));
  }
});

test('lab options: defaults, designs kept in their order, experiments deduplicated', () => {
  const d = parseLabArgs([]);
  assert.deepEqual(d, {
    experiments: [...EXPERIMENTS],
    designs: ['global', 'retry', 'vma-lock', 'speculative'],
    cpus: 2,
    seconds: 1,
    seed: 1,
    lockdep: true,
    pin: true,
    out: 'lab-results',
  });
  const o = parseLabArgs([
    'cow',
    'mmap1',
    'cow',
    '--designs',
    'vma-lock,global',
    '--seconds',
    '0.25',
    '--no-lockdep',
    '--no-pin',
  ]);
  assert.deepEqual(
    [o?.experiments, o?.designs, o?.seconds, o?.lockdep, o?.pin],
    [['cow', 'mmap1'], ['global', 'vma-lock'], 0.25, false, false],
  );
  assert.equal(parseLabArgs(['-h']), null);
});

test('a short run: progress lines on stderr, the summary on stdout, one JSON and one HTML file', () => {
  const out = mkdtempSync(join(tmpdir(), 'vmspace-lab-cli-'));
  try {
    const r = vmspace(
      'lab',
      'mmap1',
      'page_fault1',
      '--designs',
      'global,vma-lock',
      '--cpus',
      '1',
      '--seconds',
      '0.1',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^lab: \[1\/4\] mmap1 global 1 CPUs: /m);
    assert.match(r.stderr, /^lab: \[4\/4\] page_fault1 vma-lock 1 CPUs: /m);
    assert.match(r.stdout, /^experiment\s+unit\s+global\s+vma-lock$/m);
    assert.match(r.stdout, /^page_fault1\s+faults\/s \(1 CPUs\)\s+[\d,.]+\s+[\d,.]+ \([\d.]+x\)$/m);
    const files = readdirSync(out).sort();
    assert.equal(files.length, 2, files.join(' '));
    assert.match(files[0], /^lab-\d{8}-\d{6}\.html$/);
    assert.equal(files[1], files[0].replace('.html', '.json'));
    assert.match(
      r.stdout,
      new RegExp(`report: +${join(out, files[0]).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    const run = JSON.parse(readFileSync(join(out, files[1]), 'utf8'));
    assert.equal(run.phases.length, 4);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the headline run (npm start: lab --headline): the four experiments, the summary with their ratios, the report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-headline-'));
  try {
    const r = vmspace('lab', '--headline', '--seconds', '0.1', '--out', dir);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const header = lines[0].split(/\s{2,}/);
    assert.deepEqual(header, ['experiment', 'unit', 'global', 'retry', 'vma-lock', 'speculative']);
    const cells = (label: string) => {
      const line = lines.find((l) => l.includes(label));
      assert.ok(line !== undefined, `a row '${label}' in\n${r.stdout}`);
      return line
        .slice(line.indexOf(label) + label.length)
        .trim()
        .split(/\s{2,}/);
    };
    for (const name of ['io-under-lock', 'queued-writer', 'fault-scaling', 'inversion'])
      assert.ok(
        lines.some((l) => l.startsWith(`${name} `)),
        name,
      );
    assert.equal(lines.filter((l) => /^(page_fault1|mmap1|mmap2|thread-launch|cow) /.test(l)).length, 0);
    assert.equal(cells('kept: beside I/O / without').length, 4);
    assert.equal(cells('p99 / p99 alone').length, 4);
    assert.equal(cells('2 CPUs / 1 CPU').length, 4);
    assert.deepEqual(cells('circular reports'), ['1', '0', '0', '0']);
    // I/O under mmap_lock: global only (the first of each row's four counts).
    const io = lines.filter((l) => l.includes('under mmap_lock: I/O sleep alloc'));
    assert.equal(io.length, 4);
    for (const l of io) {
      const [g, retry, vma, spec] = l
        .slice(l.indexOf('alloc') + 5)
        .trim()
        .split(/\s{2,}/)
        .map((c) => Number(c.split(' ')[0]));
      assert.equal(retry + vma + spec, 0, l);
      assert.ok(g >= 0, l);
    }
    const files = readdirSync(dir).sort();
    assert.equal(files.length, 2);
    assert.match(
      r.stdout,
      new RegExp(`report: +${join(dir, files.find((f) => f.endsWith('.html')) ?? 'x')}`),
    );
    const run = JSON.parse(readFileSync(join(dir, files.find((f) => f.endsWith('.json')) ?? ''), 'utf8'));
    assert.deepEqual(run.settings.experiments, [
      'io-under-lock',
      'queued-writer',
      'fault-scaling',
      'inversion',
    ]);
    assert.equal(run.settings.seconds, 0.1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
