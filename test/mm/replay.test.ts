/**
 * Every Linux trace in ../shared/linux-traces replays identically in strict mode (vmflags
 * compared), plain .jsonl is accepted, truncated traces are rejected, and the CLI prints its
 * closing `N passed, M failed` line and exit status.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { runReplay } from '../../src/cli/replay.js';
import { MapleTree } from '../../src/maple/tree.js';
import { parseTrace, readTrace } from '../../src/mm/trace/format.js';
import { replayTrace } from '../../src/mm/trace/replay.js';
import { ArrayRangeIndex } from '../support/array-range-index.js';

/** dist/test/mm -> repo root -> ../shared/linux-traces (CI clones the repo beside shared/). */
const TRACES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/linux-traces');
const files = readdirSync(TRACES)
  .filter((f) => f.endsWith('.jsonl.gz'))
  .sort();

/**
 * More traces recorded on this machine's Linux 6.18 (tools/mmtrace; README.md beside them), for
 * what the samples do not exercise: longer mixes, MAP_SYNC, THP read faults after MADV_HUGEPAGE
 * (also next to the recorder's own page tables), file offsets near 2^63, mlock-heavy runs.
 */
const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/mm/fixtures');
const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.jsonl.gz'))
  .sort();

for (const file of fixtures) {
  test(`replays the recorded fixture ${file} identically (strict)`, () => {
    const trace = readTrace(join(FIXTURES, file));
    const result = replayTrace(trace, {
      strict: true,
      newIndex: () => MapleTree.create({ externalLock: 'mmap_lock' }),
    });
    assert.equal(result.report, '');
    assert.equal(result.ops, trace.ops.length);
  });
}

test('the trace directory holds the sample traces', () => {
  assert.ok(files.length >= 20, `found ${files.length} traces in ${TRACES}`);
});

for (const file of files) {
  test(`replays ${file} identically (strict), over the maple tree and the reference index`, () => {
    const trace = readTrace(join(TRACES, file));
    for (const newIndex of [
      () => MapleTree.create({ externalLock: 'mmap_lock' }),
      () => new ArrayRangeIndex(),
    ]) {
      const result = replayTrace(trace, { strict: true, newIndex });
      assert.equal(result.report, '');
      assert.ok(result.ok);
      assert.equal(result.ops, trace.ops.length);
    }
  });
}

test('plain .jsonl is accepted; a truncated trace is rejected', async () => {
  const text = gunzipSync(readFileSync(join(TRACES, files[0]))).toString('utf8');
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-replay-'));
  try {
    const plain = join(dir, 'plain.jsonl');
    writeFileSync(plain, text);
    assert.equal(readTrace(plain).ops.length, parseTrace(text, 'x').ops.length);
    const lines = text.trimEnd().split('\n');
    assert.throws(() => parseTrace(lines.slice(0, -1).join('\n'), 'cut'), /truncated/);
    assert.throws(
      () => parseTrace(lines.slice(0, -2).concat(lines.slice(-1)).join('\n'), 'gap'),
      /truncated/,
    );
    const cut = join(dir, 'cut.jsonl');
    writeFileSync(cut, lines.slice(0, 40).join('\n'));
    const log: string[] = [];
    const original = console.log;
    console.log = (...a: unknown[]) => log.push(a.join(' '));
    let status: number;
    try {
      status = await runReplay([plain, cut]);
    } finally {
      console.log = original;
    }
    assert.equal(status, 1);
    assert.equal(log[log.length - 1], '1 passed, 1 failed');
    assert.match(log.join('\n'), /FAIL cut.jsonl: .*truncated/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a divergence is reported as a readable diff at the first differing op', () => {
  const trace = readTrace(join(TRACES, files[0]));
  const op = trace.ops.find((o) => o.op === 'mmap' && o.ret !== null);
  assert.ok(op);
  op.ret = (op.ret as bigint) + 4096n;
  const result = replayTrace(trace, { strict: true, newIndex: () => new ArrayRangeIndex() });
  assert.equal(result.ok, false);
  assert.equal(result.failedOp, op.i);
  assert.match(result.report, new RegExp(`^op ${op.i}: mmap`));
  assert.match(result.report, /expected 0x[0-9a-f]+, got 0x[0-9a-f]+/);
});
