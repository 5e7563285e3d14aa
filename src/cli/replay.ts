/**
 * `vmspace replay [--loose] [--cpus N] [--design D] FILE...`: replays Linux mm traces (.jsonl.gz or .jsonl) and compares
 * every result and VMA list with what the kernel recorded (vmflags included unless --loose).
 * Prints one line per trace, the first divergence of each failing one as a diff, and ends with
 * `N passed, M failed`. Resolves to the exit status: 0 only if every trace passed, 1 if one
 * failed or could not be read, 2 for a command line it does not accept (src/cli/args.ts).
 */
import { basename } from 'node:path';
import { MAX_WORKER_CPUS } from '../cpu/current.js';
import { Machine } from '../machine/machine.js';
import { MapleTree } from '../maple/tree.js';
import { DEFAULT_FAULT_DESIGN, FAULT_DESIGNS, type FaultDesign, isFaultDesign } from '../mm/fault-design.js';
import { readTrace } from '../mm/trace/format.js';
import { replayTrace, seedAddressSpace } from '../mm/trace/replay.js';
import { intOption, strictArgs, UsageError, usageFailure } from './args.js';
import { TURN, type TurnArgs } from './replay-turns.js';

export const REPLAY_USAGE = 'usage: vmspace replay [--loose] [--cpus N] [--design D] FILE...';

const REPLAY_HELP = `${REPLAY_USAGE}

Replays Linux mm traces (linux-mm-trace v1, .jsonl.gz or .jsonl) against a fresh address space
and compares every result and VMA list with what the kernel recorded. Prints PASS or FAIL per
trace (the first divergence as a diff), then "N passed, M failed". Exit status: 0 if every trace
passed, 1 otherwise, 2 for a bad command line.

  --loose        do not compare vmflags (only ranges, perms, offsets and names)
  --cpus N       replay on N worker CPUs sharing the address space, taking turns op by op
                 (1..${MAX_WORKER_CPUS}; default 1: on this thread)
  --design D     the address space's fault-locking design: ${FAULT_DESIGNS.join(', ')}
                 (default ${DEFAULT_FAULT_DESIGN}); the results must not depend on it
  -h, --help     this text
  --             the arguments after it are files, even if they start with -`;

/** The replay options, or null for --help; throws UsageError. */
interface ReplayArgs {
  strict: boolean;
  cpus: number;
  design: FaultDesign;
  files: string[];
}

function parseReplayArgs(argv: string[]): ReplayArgs | null {
  const { values, positionals } = strictArgs(
    argv,
    {
      loose: { type: 'boolean' },
      cpus: { type: 'string' },
      design: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) return null;
  if (positionals.length === 0) throw new UsageError('no trace file given');
  const cpus = intOption('cpus', values.cpus, 1, 1, MAX_WORKER_CPUS);
  const design = values.design ?? DEFAULT_FAULT_DESIGN;
  if (!isFaultDesign(design))
    throw new UsageError(`unknown design '${design}' (one of ${FAULT_DESIGNS.join(', ')})`);
  return { strict: !values.loose, cpus, design, files: positionals };
}

/**
 * Replays one trace on `cpus` CPUs of `machine` sharing one address space, op i on CPU i mod cpus
 * in order; '' when every op matched the kernel, else the first divergence (with the CPU).
 */
export async function replayOnCpus(
  machine: Machine,
  file: string,
  cpus: number,
  strict: boolean,
  design: FaultDesign = DEFAULT_FAULT_DESIGN,
): Promise<string> {
  const trace = readTrace(file);
  const { mm, fds } = seedAddressSpace(trace, MapleTree.create({ externalLock: 'mmap_lock' }), design);
  const control = new SharedArrayBuffer(8);
  const args: TurnArgs = { mm: mm.describe(), trace: file, fds: [...fds], control, cpus, strict };
  const ids = Array.from({ length: cpus }, (_, k) => k);
  const reports = await machine.run<string>(new URL('./replay-turns.js', import.meta.url), args, ids);
  const failed = reports.find((r) => r !== '');
  if (failed !== undefined) return failed;
  const ran = Atomics.load(new Int32Array(control), TURN);
  return ran === trace.ops.length ? '' : `only ${ran} of ${trace.ops.length} ops ran`;
}

export async function runReplay(argv: string[]): Promise<number> {
  let options: ReplayArgs | null;
  try {
    options = parseReplayArgs(argv);
  } catch (error) {
    return usageFailure('vmspace replay', REPLAY_USAGE, error);
  }
  if (options === null) {
    console.log(REPLAY_HELP);
    return 0;
  }
  const { strict, cpus, design, files } = options;
  const machine = cpus > 1 ? await Machine.start({ cpus }) : null;
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    const name = basename(file);
    try {
      const report =
        machine !== null
          ? await replayOnCpus(machine, file, cpus, strict, design)
          : replayTrace(readTrace(file), {
              strict,
              design,
              newIndex: () => MapleTree.create({ externalLock: 'mmap_lock' }),
            }).report;
      if (report === '') {
        passed++;
        console.log(`PASS ${name}${cpus > 1 ? ` (${cpus} CPUs)` : ''}`);
      } else {
        failed++;
        console.log(`FAIL ${name}\n${report}`);
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
  await machine?.stop();
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
