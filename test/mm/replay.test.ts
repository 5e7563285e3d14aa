/**
 * Every Linux trace vendored in test/mm/fixtures/linux (the shipped sample traces, FORMAT.md beside
 * them) replays identically in strict mode (vmflags compared) over the maple tree and the
 * reference index, and so does every trace recorded here (test/mm/fixtures); plain .jsonl is
 * accepted, truncated traces are rejected, and the CLI prints its closing `N passed, M failed`
 * line and exit status. Traces in ../shared/linux-traces (an optional extra) that are not vendored replay too when
 * that directory exists (an optional extra: the suite never depends on it).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { runReplay } from '../../src/cli/replay.js';
import type { RangeIndex } from '../../src/maple/api.js';
import { MapleTree } from '../../src/maple/tree.js';
import { parseTrace, readTrace } from '../../src/mm/trace/format.js';
import { replayTrace } from '../../src/mm/trace/replay.js';
import { ArrayRangeIndex } from '../support/array-range-index.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The traces in `dir` (its top level only), sorted; none when the directory does not exist. */
function tracesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl.gz'))
    .sort();
}

/** The sample traces shipped with the task, vendored (dist/test/mm -> repo root -> test/mm/...). */
const LINUX = resolve(HERE, '../../../test/mm/fixtures/linux');
const files = tracesIn(LINUX);

/**
 * More traces recorded on this machine's Linux 6.18 (tools/mmtrace; README.md beside them), for
 * what the samples do not exercise: longer mixes, MAP_SYNC, THP read faults after MADV_HUGEPAGE
 * (also next to the recorder's own page tables), file offsets near 2^63, mlock-heavy runs.
 */
const FIXTURES = resolve(HERE, '../../../test/mm/fixtures');
const fixtures = tracesIn(FIXTURES);

const SHARED = resolve(HERE, '../../../../shared/linux-traces'); // optional: absent in a plain clone
const vendored = new Set(files);
const extra = tracesIn(SHARED).filter((f) => !vendored.has(f));

const INDEXES: ReadonlyArray<() => RangeIndex> = [
  () => MapleTree.create({ externalLock: 'mmap_lock' }),
  () => new ArrayRangeIndex(),
];

/** Replays a trace over every index and asserts it matched Linux op by op. */
function replaysIdentically(path: string, indexes: ReadonlyArray<() => RangeIndex>): void {
  const trace = readTrace(path);
  for (const newIndex of indexes) {
    const result = replayTrace(trace, { strict: true, newIndex });
    assert.equal(result.report, '');
    assert.ok(result.ok);
    assert.equal(result.ops, trace.ops.length);
  }
}

for (const file of fixtures) {
  test(`replays the recorded fixture ${file} identically (strict)`, () => {
    replaysIdentically(join(FIXTURES, file), INDEXES.slice(0, 1));
  });
}

test('the vendored trace directory holds the sample traces and their format description', () => {
  assert.ok(files.length >= 25, `found ${files.length} traces in ${LINUX}`);
  for (const profile of ['basic', 'file', 'mremap', 'mixed', 'grows']) {
    assert.ok(
      files.some((f) => f.startsWith(`${profile}-`)),
      `no ${profile} trace in ${LINUX}`,
    );
  }
  assert.ok(existsSync(join(LINUX, 'FORMAT.md')));
});

for (const file of files) {
  test(`replays ${file} identically (strict), over the maple tree and the reference index`, () => {
    replaysIdentically(join(LINUX, file), INDEXES);
  });
}

for (const file of extra) {
  test(`replays ${file} from ../shared/linux-traces (optional extra) identically (strict), over both indexes`, () => {
    replaysIdentically(join(SHARED, file), INDEXES);
  });
}

test('plain .jsonl is accepted; a truncated trace is rejected', async () => {
  const text = gunzipSync(readFileSync(join(LINUX, files[0]))).toString('utf8');
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
  const trace = readTrace(join(LINUX, files[0]));
  const op = trace.ops.find((o) => o.op === 'mmap' && o.ret !== null);
  assert.ok(op);
  op.ret = (op.ret as bigint) + 4096n;
  const result = replayTrace(trace, { strict: true, newIndex: () => new ArrayRangeIndex() });
  assert.equal(result.ok, false);
  assert.equal(result.failedOp, op.i);
  assert.match(result.report, new RegExp(`^op ${op.i}: mmap`));
  assert.match(result.report, /expected 0x[0-9a-f]+, got 0x[0-9a-f]+/);
});
