/**
 * `npm run bench [-- --quick] [-- --only NAME] [-- --json FILE]`: runs every suite of SUITES whose
 * module exists (bench/suites/<name>.ts, compiled next to this file), prints one table and, with
 * --json, writes {"results":[{id, value, unit, baseline_id?, ratio?}]}.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BenchSuite, Report } from './harness.js';

/** The suites, in run order: add yours here (a missing module is skipped with a note). */
const SUITES = ['foundation', 'maple', 'lockdep', 'mm'];

interface Args {
  quick: boolean;
  only: string | null;
  json: string | null;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: null, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--only' || a === '--json') {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${a} needs a value`);
      if (a === '--only') args.only = value;
      else args.json = value;
    } else throw new Error(`unknown argument ${a} (use --quick, --only NAME, --json FILE)`);
  }
  if (args.only !== null && !SUITES.includes(args.only))
    throw new Error(`no suite ${args.only}: ${SUITES.join(', ')}`);
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const report = new Report();
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
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
