/**
 * The command-line dispatcher: `vmspace <command> [args]` (`node dist/src/cli/main.js ...`).
 *   demo (default)   several CPUs doing locked and RCU work, then lock statistics
 *   replay ...       replay a trace (src/cli/replay.ts: runReplay(argv) -> exit status)
 */
const HELP = `usage: vmspace [command] [options]

commands:
  demo [--cpus N] [--ms MS] [--no-lockdep]
                              CPUs doing concurrent locked and RCU work under the lock
                              validator, then a lock statistics table with its counts
  replay ...                  replay a Linux trace (see \`vmspace replay --help\`)

  --help                      this text`;

async function main(argv: string[]): Promise<number> {
  const [command = 'demo', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return 0;
  }
  if (command === 'demo' || command.startsWith('--')) {
    const demoArgs = command === 'demo' ? rest : argv;
    // mm lab (src/cli/demo-mm.ts): `vmspace demo`; the lock demo stays as `vmspace demo --locks`.
    if (!demoArgs.includes('--locks')) return (await import('./demo-mm.js')).runMmDemoCli(demoArgs);
    const { runDemo } = await import('./demo.js');
    return runDemo(demoArgs.filter((a) => a !== '--locks'));
  }
  if (command === 'replay') {
    const replay = './replay.js';
    const { runReplay } = (await import(replay)) as { runReplay(argv: string[]): Promise<number> };
    return runReplay(rest);
  }
  console.error(`vmspace: unknown command ${command}\n\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  },
);
