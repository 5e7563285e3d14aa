/**
 * Progress of a long command: a bar (cli-progress) on a terminal, plain lines otherwise (a log, a
 * pipe, CI). Both go to stderr, so stdout keeps only the command's result.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** One step done; `label` says what (a plain line when not on a terminal). */
  step(label: string): void;
  /** Adds `more` steps to the total. */
  grow(more: number): void;
  stop(): void;
}

/** A bar on a TTY (`tty`, default: stderr is one), plain lines prefixed with `prog: ` otherwise. */
export function progress(prog: string, total: number, tty = process.stderr.isTTY === true): Progress {
  if (!tty) {
    let done = 0;
    let all = total;
    return {
      step(label) {
        done++;
        console.error(`${prog}: [${done}/${all}] ${label}`);
      },
      grow(more) {
        all += more;
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${prog} {bar} {value}/{total} {label}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: '' });
  let all = total;
  return {
    step(label) {
      bar.increment(1, { label });
    },
    grow(more) {
      all += more;
      bar.setTotal(all);
    },
    stop() {
      bar.stop();
    },
  };
}
