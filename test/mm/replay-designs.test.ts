/**
 * Issue 12's "must hold": every shipped Linux trace (the vendored samples and the traces recorded
 * here) replays identically, strict, under each fault-locking design; the replayer's touches go
 * through each design's fault path (file touches through the page cache). `vmspace replay
 * --design D` replays under D and refuses an unknown design with a usage error.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runReplay } from '../../src/cli/replay.js';
import { MapleTree } from '../../src/maple/tree.js';
import { FAULT_DESIGNS } from '../../src/mm/fault-design.js';
import { readTrace } from '../../src/mm/trace/format.js';
import { replayTrace, seedAddressSpace } from '../../src/mm/trace/replay.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const LINUX = resolve(HERE, '../../../test/mm/fixtures/linux');
const FIXTURES = resolve(HERE, '../../../test/mm/fixtures');

function tracesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl.gz'))
    .sort()
    .map((f) => join(dir, f));
}

const traces = [...tracesIn(LINUX), ...tracesIn(FIXTURES)];

test('the shipped traces are there, and the seeded address space runs under the design asked for', () => {
  assert.ok(tracesIn(LINUX).length >= 10, `samples in ${LINUX}`);
  const trace = readTrace(traces[0]);
  for (const design of FAULT_DESIGNS) {
    const { mm } = seedAddressSpace(trace, MapleTree.create({ externalLock: 'mmap_lock' }), design);
    assert.equal(mm.vmstat().design, design);
    mm.destroy();
    mm.fds.closeAll();
  }
});

for (const design of FAULT_DESIGNS) {
  test(`every shipped Linux trace replays identically (strict) under the '${design}' design`, () => {
    const failed: string[] = [];
    for (const path of traces) {
      const trace = readTrace(path);
      const result = replayTrace(trace, {
        strict: true,
        design,
        newIndex: () => MapleTree.create({ externalLock: 'mmap_lock' }),
      });
      if (!result.ok) failed.push(`${path}:\n${result.report}`);
      else assert.equal(result.ops, trace.ops.length);
    }
    assert.deepEqual(failed, []);
  });
}

/** runReplay with console.log captured: [status, lines]. */
async function replayCli(args: string[]): Promise<[number, string[]]> {
  const log: string[] = [];
  const out = console.log;
  const err = console.error;
  console.log = (...a: unknown[]) => log.push(a.join(' '));
  console.error = (...a: unknown[]) => log.push(a.join(' '));
  try {
    return [await runReplay(args), log];
  } finally {
    console.log = out;
    console.error = err;
  }
}

test('vmspace replay --design D replays under D; an unknown design is a usage error', async () => {
  const some = tracesIn(LINUX).slice(0, 3);
  for (const design of FAULT_DESIGNS) {
    const [status, lines] = await replayCli(['--design', design, ...some]);
    assert.equal(status, 0, lines.join('\n'));
    assert.equal(lines[lines.length - 1], `${some.length} passed, 0 failed`);
  }
  const [status, lines] = await replayCli(['--design', 'spf', some[0]]);
  assert.equal(status, 2);
  assert.match(lines.join('\n'), /unknown design 'spf' \(one of global, retry, vma-lock, speculative\)/);
});

test('vmspace replay --cpus 2 --design global: the turns on two worker CPUs match Linux', async () => {
  const one = tracesIn(LINUX).slice(0, 2);
  const [status, lines] = await replayCli(['--cpus', '2', '--design', 'global', ...one]);
  assert.equal(status, 0, lines.join('\n'));
  assert.equal(lines[lines.length - 1], `${one.length} passed, 0 failed`);
});
