/**
 * The command line as a user meets it: `node dist/src/cli/main.js ...` in a child process, its
 * exit status and what it prints. Rules (src/cli/args.ts): --help/-h on every command prints the
 * usage on stdout with status 0; an unknown command or option, a missing or unexpected value or a
 * bad number prints one line and the usage line on stderr, nothing on stdout, with status 2.
 * `replay` names what is wrong with a file that is not a trace (not gzip, corrupt gzip, not JSON
 * with its line) and keeps "truncated" for traces that stop early.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { readTrace } from '../../src/mm/trace/format.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const MAIN = join(ROOT, 'dist/src/cli/main.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function vmspace(...args: string[]): Run {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Status 2, nothing on stdout, and exactly `message` then the usage line (`usage` prefix) on stderr. */
function assertUsageError(r: Run, message: string | RegExp, usage: string): void {
  assert.equal(r.status, 2, `status ${r.status}\n${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  if (typeof message === 'string') assert.equal(lines[0], message);
  else assert.match(lines[0], message);
  assert.ok(lines[1].startsWith(usage), lines[1]);
}

const DEMO_USAGE = 'usage: vmspace demo [--cpus N] [--ms MS] [--seed S] [--no-lockdep]';
const REPLAY_USAGE = 'usage: vmspace replay [--loose] [--cpus N] [--design D] FILE...';

test('--help and -h print the usage with status 0, for the program and every command', () => {
  for (const [args, head] of [
    [['--help'], 'usage: vmspace [command]'],
    [['-h'], 'usage: vmspace [command]'],
    [['help'], 'usage: vmspace [command]'],
    [['demo', '--help'], DEMO_USAGE],
    [['demo', '-h'], DEMO_USAGE],
    [['replay', '--help'], REPLAY_USAGE],
    [['replay', '-h'], REPLAY_USAGE],
  ] as const) {
    const r = vmspace(...args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(head), `${args.join(' ')}: ${r.stdout}`);
    assert.equal(r.stderr, '');
  }
});

test('an unknown command exits 2 with one line and the usage line', () => {
  assertUsageError(vmspace('frobnicate'), "vmspace: unknown command 'frobnicate'", 'usage: vmspace ');
});

test('demo rejects unknown options, bad numbers and missing values with status 2', () => {
  const cases: Array<[string[], string]> = [
    [['--cpus', 'abc'], "invalid --cpus value 'abc' (expected an integer from 2 to 63)"],
    [['--cpus', '1'], "invalid --cpus value '1' (expected an integer from 2 to 63)"],
    [['--cpus', '64'], "invalid --cpus value '64' (expected an integer from 2 to 63)"],
    [['--cpus', '1.5'], "invalid --cpus value '1.5' (expected an integer from 2 to 63)"],
    [['--cpus', '0x2'], "invalid --cpus value '0x2' (expected an integer from 2 to 63)"],
    [['--cpus='], "invalid --cpus value '' (expected an integer from 2 to 63)"],
    [['--ms', '-5'], "invalid --ms value '-5' (expected an integer from 0 to 86400000)"],
    [['--ms=-5'], "invalid --ms value '-5' (expected an integer from 0 to 86400000)"],
    [['--ms', '1e3'], "invalid --ms value '1e3' (expected an integer from 0 to 86400000)"],
    [['--bogus'], "unknown option '--bogus'"],
    [['-x'], "unknown option '-x'"],
    [['--cpus'], "option '--cpus' needs a value"],
    [['--no-lockdep=yes'], "option '--no-lockdep' takes no value"],
    [['extra'], "unexpected argument 'extra'"],
  ];
  for (const [args, message] of cases) {
    assertUsageError(vmspace('demo', ...args), `vmspace demo: ${message}`, DEMO_USAGE);
  }
  // Options without a command are the demo's.
  assertUsageError(
    vmspace('--cpus', 'abc'),
    "vmspace demo: invalid --cpus value 'abc' (expected an integer from 2 to 63)",
    DEMO_USAGE,
  );
});

test('the lock demo (demo --locks) runs with valid numbers', () => {
  const r = vmspace('demo', '--locks', '--cpus', '1', '--ms', '0', '--no-lockdep');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^vmspace demo: 1 CPUs for 0 ms .*lock validator off\n/);
  assert.match(r.stdout, /\nok {3}mutex counter/);
});

test('replay rejects a bad command line with status 2', () => {
  assertUsageError(vmspace('replay'), 'vmspace replay: no trace file given', REPLAY_USAGE);
  assertUsageError(
    vmspace('replay', '--bogus', 'x.jsonl'),
    "vmspace replay: unknown option '--bogus'",
    REPLAY_USAGE,
  );
  assertUsageError(
    vmspace('replay', '--loose=1', 'x'),
    "vmspace replay: option '--loose' takes no value",
    REPLAY_USAGE,
  );
});

let dir = '';
let plain = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-cli-'));
  const fixtures = join(ROOT, 'test/mm/fixtures');
  const smallest = readdirSync(fixtures)
    .filter((f) => f.endsWith('.jsonl.gz'))
    .sort((x, y) => statSync(join(fixtures, x)).size - statSync(join(fixtures, y)).size)[0];
  const gz = readFileSync(join(fixtures, smallest));
  plain = gunzipSync(gz).toString('utf8');
  const lines = plain.trimEnd().split('\n');
  assert.ok(lines.length >= 5, 'the fixture has at least two ops');
  writeFileSync(join(dir, 'notgz.jsonl.gz'), 'hello\n');
  writeFileSync(join(dir, 'corrupt.jsonl.gz'), Buffer.concat([gz.subarray(0, 10), Buffer.alloc(64, 0xff)]));
  writeFileSync(join(dir, 'cut.jsonl.gz'), gz.subarray(0, gz.length >> 1));
  writeFileSync(join(dir, 'words.txt'), 'hello world\nsecond line\nthird line\n');
  writeFileSync(
    join(dir, 'badline.jsonl'),
    [...lines.slice(0, 2), '{"type":"op",', ...lines.slice(3)].join('\n'),
  );
  writeFileSync(join(dir, 'short.jsonl'), `${lines.slice(0, 4).join('\n')}\n`);
  writeFileSync(join(dir, 'cutmid.jsonl'), plain.slice(0, plain.indexOf('\n', plain.indexOf('\n') + 1) + 20));
  writeFileSync(join(dir, 'empty.jsonl'), '');
});

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('replay says what is wrong with each file that is not a trace, and "truncated" only for cut traces', () => {
  const expected: Array<[string, RegExp]> = [
    ['notgz.jsonl.gz', /^FAIL notgz\.jsonl\.gz: not gzip \(/],
    ['corrupt.jsonl.gz', /^FAIL corrupt\.jsonl\.gz: corrupt gzip \(/],
    ['words.txt', /^FAIL words\.txt: line 1: not JSON$/],
    ['badline.jsonl', /^FAIL badline\.jsonl: line 3: not JSON$/],
    ['empty.jsonl', /^FAIL empty\.jsonl: empty$/],
    ['cut.jsonl.gz', /^FAIL cut\.jsonl\.gz: truncated gzip \(/],
    ['short.jsonl', /^FAIL short\.jsonl: truncated \(no end record for \d+ ops\)$/],
    ['cutmid.jsonl', /^FAIL cutmid\.jsonl: truncated \(line 3 is cut off\)$/],
  ];
  const r = vmspace('replay', ...expected.map(([file]) => join(dir, file)));
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, expected.length + 1, r.stdout);
  expected.forEach(([, pattern], i) => {
    assert.match(lines[i], pattern);
  });
  assert.equal(lines[expected.length], `0 passed, ${expected.length} failed`);
  for (const line of lines.slice(0, 5)) assert.doesNotMatch(line, /truncated/);
});

test('the reader names the file in its errors', () => {
  for (const file of ['notgz.jsonl.gz', 'badline.jsonl', 'short.jsonl']) {
    const path = join(dir, file);
    assert.throws(
      () => readTrace(path),
      (e: Error) => e.message.startsWith(`${path}: `),
    );
  }
});
