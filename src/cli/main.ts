/**
 * The command-line dispatcher: `vmspace <command> [args]` (`node dist/src/cli/main.js ...`).
 *   demo (default)   writer CPUs changing one address space while reader CPUs look VMAs up, with
 *                    per-VMA locks and under one mmap_lock, side by side (./demo-mm.ts);
 *                    `demo --locks`: CPUs doing locked and RCU work, then lock statistics (./demo.ts)
 *   replay ...       replay Linux traces (./replay.ts)
 *   lab ...          the fault-locking designs side by side: experiments, JSON, HTML report (./lab.ts)
 * Each command parses its own arguments by the rules of ./args.ts (strict; a usage error is one
 * line plus the usage line on stderr and exit status 2; --help/-h prints help, exit status 0).
 * Arguments starting with `-` and no command run the demo with them.
 */
const USAGE = "usage: vmspace [demo|replay|lab|help] [options]   ('vmspace --help' describes them)";

const HELP = `usage: vmspace [command] [options]

commands:
  demo [--cpus N] [--ms MS] [--seed S] [--no-lockdep]
                              writer CPUs run mmap/munmap/mprotect/mremap on one shared
                              address space while reader CPUs look VMAs up as faults do,
                              with per-VMA locks and under one mmap_lock, side by side,
                              then lock statistics and the checks (the default command)
  demo --locks [--cpus N] [--ms MS] [--no-lockdep]
                              CPUs doing concurrent locked and RCU work, then lock statistics
  replay [--loose] [--design D] FILE...
                              replay Linux traces and compare them with the kernel's results
  lab [EXPERIMENT...] [--headline] [--designs LIST] [--cpus N] [--seconds S] [--out DIR]
                              the experiments under each fault-locking design (global,
                              retry, vma-lock): JSON results and one HTML report
                              (npm start: lab --headline)
  help                        this text
  -h, --help                  this text

'vmspace COMMAND --help' describes a command and its options.`;

async function main(argv: string[]): Promise<number> {
  const [command = 'demo', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return 0;
  }
  if (command === 'demo' || command.startsWith('-')) {
    const demoArgs = command === 'demo' ? rest : argv;
    // The address-space demo (./demo-mm.ts); the lock demo stays as `vmspace demo --locks`.
    if (!demoArgs.includes('--locks')) return (await import('./demo-mm.js')).runMmDemoCli(demoArgs);
    const { runDemo } = await import('./demo.js');
    return runDemo(demoArgs.filter((a) => a !== '--locks'));
  }
  if (command === 'lab') {
    const { runLabCli } = await import('./lab.js');
    return runLabCli(rest);
  }
  if (command === 'replay') {
    const { runReplay } = await import('./replay.js');
    return runReplay(rest);
  }
  console.error(`vmspace: unknown command '${command}'\n${USAGE}`);
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
