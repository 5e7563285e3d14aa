/**
 * `npm run bench [-- --quick] [-- --only NAME] [-- --json FILE]`: runs every suite of SUITES whose
 * module exists (bench/suites/<name>.ts, compiled next to this file), prints one table and, with
 * --json, writes {"results":[{id, value, unit, baseline_id?, ratio?}]} (bench/harness.ts says
 * when a figure has a ratio). Without gcc the Linux kernel baselines are skipped (bench/linux.ts).
 * Arguments follow the CLI's rules (src/cli/args.ts): a bad one is a one-line error plus the usage
 * line on stderr and exit status 2; --help/-h prints the help.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { strictArgs, UsageError, usageFailure } from '../src/cli/args.js';
import { type BenchSuite, RATIO_RULE, Report } from './harness.js';
import { linuxUnavailable } from './linux.js';

/** The suites, in run order: add yours here (a missing module is skipped with a note). */
const SUITES = ['foundation', 'maple', 'lockdep', 'mm', 'mem', 'fs', 'lab'];

const USAGE = 'usage: npm run bench -- [--quick] [--only SUITE] [--json FILE]';

const HELP = `${USAGE}
   (or: node dist/bench/main.js [options], after a build)

Runs the benchmark suites (${SUITES.join(', ')}) and prints one table of figures, each with
its baseline measured in the same run where it has one.
${RATIO_RULE}.
Without gcc on PATH the Linux kernel baselines (linux.*) are skipped and said so.

  --quick        smaller data and shorter runs (figures only indicative)
  --only SUITE   run one suite: ${SUITES.join(', ')}
  --json FILE    also write every figure to FILE as JSON
  -h, --help     this text`;

interface Args {
  quick: boolean;
  only: string | null;
  json: string | null;
}

/** The options, or null for --help; throws UsageError. */
function parseBenchArgs(argv: string[]): Args | null {
  const { values } = strictArgs(
    argv,
    {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values.help) return null;
  const only = values.only ?? null;
  if (only !== null && !SUITES.includes(only))
    throw new UsageError(`unknown suite '${only}' (one of ${SUITES.join(', ')})`);
  return { quick: values.quick ?? false, only, json: values.json ?? null };
}

async function main(argv: string[]): Promise<number> {
  let args: Args | null;
  try {
    args = parseBenchArgs(argv);
  } catch (error) {
    return usageFailure('bench', USAGE, error);
  }
  if (args === null) {
    console.log(HELP);
    return 0;
  }
  const report = new Report();
  const noLinux = linuxUnavailable();
  if (noLinux !== null) report.omit('linux.', noLinux);
  for (const name of SUITES) {
    if (args.only !== null && name !== args.only) continue;
    const url = new URL(`./suites/${name}.js`, import.meta.url);
    if (!existsSync(fileURLToPath(url))) {
      console.error(`bench: suite ${name} not built yet, skipped`);
      continue;
    }
    const { suite } = (await import(url.href)) as { suite: BenchSuite };
    console.error(`bench: ${suite.name}${args.quick ? ' (quick)' : ''}`);
    await suite.run(report, { quick: args.quick });
  }
  console.log(report.table());
  if (args.json !== null) writeFileSync(args.json, report.json());
  return 0;
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
