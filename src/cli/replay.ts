/**
 * `vmspace replay [--loose] FILE...`: replays Linux mm traces (.jsonl.gz or .jsonl) and compares
 * every result and VMA list with what the kernel recorded (vmflags included unless --loose).
 * Prints one line per trace, the first divergence of each failing one as a diff, and ends with
 * `N passed, M failed`. Resolves to the exit status: 0 only if every trace passed.
 */
import { basename } from 'node:path';
import { MapleTree } from '../maple/tree.js';
import { readTrace } from '../mm/trace/format.js';
import { replayTrace } from '../mm/trace/replay.js';

export async function runReplay(argv: string[]): Promise<number> {
  const strict = !argv.includes('--loose');
  const files = argv.filter((a) => !a.startsWith('--'));
  if (files.length === 0) {
    console.error('usage: vmspace replay [--loose] FILE...');
    return 2;
  }
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    const name = basename(file);
    try {
      const trace = readTrace(file);
      const result = replayTrace(trace, {
        strict,
        newIndex: () => MapleTree.create({ externalLock: 'mmap_lock' }),
      });
      if (result.ok) {
        passed++;
        console.log(`PASS ${name} (${result.ops} ops)`);
      } else {
        failed++;
        console.log(`FAIL ${name}\n${result.report}`);
      }
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${(e as Error).message}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
