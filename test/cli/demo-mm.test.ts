import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runMmDemo } from '../../src/cli/demo-mm.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs `fn` with console.log and console.error captured; returns its result and the text. */
async function capture<T>(fn: () => Promise<T>): Promise<{ value: T; text: string }> {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => lines.push(parts.join(' '));
  console.error = (...parts: unknown[]) => lines.push(parts.join(' '));
  try {
    return { value: await fn(), text: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function cli(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [MAIN, 'demo', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('runMmDemo runs both phases on one address space and passes every check', async () => {
  const { value, text } = await capture(() => runMmDemo({ cpus: 2, ms: 150, lockdep: true, seed: 5 }));
  assert.equal(value, 0, text);
  assert.match(text, /1 writer CPU .* \+ 1 reader CPU/);
  assert.match(text, /^ +per-VMA locks +one mmap_lock +per-VMA \/ one lock$/m);
  assert.match(text, /^reader lookups\/s +[\d,]+ +[\d,]+ +\d+\.\d\dx$/m);
  assert.match(text, /^writer syscalls\/s +[\d,]+ +[\d,]+/m);
  assert.match(text, /^fallbacks to mmap_lock +[\d,]+ +0 /m);
  assert.match(text, /^reader errors +0 +0 /m);
  assert.match(text, /^class .* lockdep$/m, 'the lock statistics with the validator column');
  assert.match(text, /^mmap_lock /m);
  assert.doesNotMatch(text, /^FAIL/m);
  assert.match(
    text,
    /^checks passed \(6\/6\): readers saw only valid VMAs, map count == tree recount, mmap_lock free, nothing leaked, validator reported nothing$/m,
  );
});

test('vmspace demo (the CLI) runs the mm lab; --locks the lock demo; bad options exit 2', () => {
  const lab = cli('--cpus', '3', '--ms', '100', '--seed', '9');
  assert.equal(lab.status, 0, lab.out);
  assert.match(lab.out, /1 writer CPU .* \+ 2 reader CPUs/);
  assert.match(lab.out, /per-VMA locks +one mmap_lock/);
  assert.match(lab.out, /^checks passed /m);

  const locks = cli('--locks', '--cpus', '2', '--ms', '50');
  assert.equal(locks.status, 0, locks.out);
  assert.match(locks.out, /mutex, rwsem, RCU records/);

  assert.equal(cli('--cpus', '1').status, 2);
  assert.equal(cli('--ms').status, 2);
  assert.equal(cli('--bogus').status, 2);
});
