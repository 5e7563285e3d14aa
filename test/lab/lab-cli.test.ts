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
      "vmspace lab: unknown experiment 'nosuch' (one of page_fault1, mmap1, mmap2, fault-scaling, thread-launch, cow)",
    ],
    [['--designs', 'global,spec'], "vmspace lab: unknown design 'spec' (one of global, retry, vma-lock)"],
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
    designs: ['global', 'retry', 'vma-lock'],
    cpus: 2,
    seconds: 1,
    seed: 1,
    lockdep: true,
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
  ]);
  assert.deepEqual(
    [o?.experiments, o?.designs, o?.seconds, o?.lockdep],
    [['cow', 'mmap1'], ['global', 'vma-lock'], 0.25, false],
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
