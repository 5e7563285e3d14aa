/**
 * Call-site capture for reports. Only the slow paths call it (a new dependency, a report), never
 * the steady state: `new Error().stack` costs microseconds.
 */

/** Frames of the validator, the lock implementations and the CPU's task runner: noise in a report. */
const INTERNAL_FRAME =
  /[\\/]src[\\/](lockdep|sync)[\\/]|[\\/]src[\\/]cpu[\\/]worker\.|\(node:internal|at node:internal/;
const DEPTH = 14;

/** The caller's stack, one "at ..." frame per line, without lock and validator internals. */
export function captureStack(): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = DEPTH + 16;
  const text = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  const frames: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const frame = line.trim();
    if (frame.startsWith('at ') && !INTERNAL_FRAME.test(frame)) frames.push(frame);
    if (frames.length === DEPTH) break;
  }
  return frames.length === 0 ? '(no stack frames outside the lock code)' : frames.join('\n');
}

/** `stack` indented for a report. */
export function indentStack(stack: string, spaces = 6): string {
  const pad = ' '.repeat(spaces);
  return stack
    .split('\n')
    .map((line) => pad + line)
    .join('\n');
}
