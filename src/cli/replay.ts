/**
 * `vmspace replay [--loose] FILE...`: replays Linux mm traces (.jsonl.gz or .jsonl) and compares
 * every result and VMA list with what the kernel recorded (vmflags included unless --loose).
 * Prints one line per trace, the first divergence of each failing one as a diff, and ends with
 * `N passed, M failed`. Resolves to the exit status: 0 only if every trace passed, 1 if one
 * failed or could not be read, 2 for a command line it does not accept (src/cli/args.ts).
 */
import { basename } from 'node:path';
import { MapleTree } from '../maple/tree.js';
import { readTrace } from '../mm/trace/format.js';
import { replayTrace } from '../mm/trace/replay.js';
import { strictArgs, UsageError, usageFailure } from './args.js';

export const REPLAY_USAGE = 'usage: vmspace replay [--loose] FILE...';

const REPLAY_HELP = `${REPLAY_USAGE}

Replays Linux mm traces (linux-mm-trace v1, .jsonl.gz or .jsonl) against a fresh address space
and compares every result and VMA list with what the kernel recorded. Prints PASS or FAIL per
trace (the first divergence as a diff), then "N passed, M failed". Exit status: 0 if every trace
passed, 1 otherwise, 2 for a bad command line.

  --loose        do not compare vmflags (only ranges, perms, offsets and names)
  -h, --help     this text
  --             the arguments after it are files, even if they start with -`;

/** The replay options, or null for --help; throws UsageError. */
function parseReplayArgs(argv: string[]): { strict: boolean; files: string[] } | null {
  const { values, positionals } = strictArgs(
    argv,
    { loose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help) return null;
  if (positionals.length === 0) throw new UsageError('no trace file given');
  return { strict: !values.loose, files: positionals };
}

export async function runReplay(argv: string[]): Promise<number> {
  let options: { strict: boolean; files: string[] } | null;
  try {
    options = parseReplayArgs(argv);
  } catch (error) {
    return usageFailure('vmspace replay', REPLAY_USAGE, error);
  }
  if (options === null) {
    console.log(REPLAY_HELP);
    return 0;
  }
  const { strict, files } = options;
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
      // The reader's messages start with the path; the line starts with the file's name already.
      const message = (e as Error).message;
      console.log(
        `FAIL ${name}: ${message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message}`,
      );
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
