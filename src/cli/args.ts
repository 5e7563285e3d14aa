/**
 * Command-line parsing shared by the commands: node's `util.parseArgs` in strict mode, with its
 * errors turned into one-line usage errors. The rules every command follows:
 *   - an unknown option, a missing or unexpected option value, or a bad number is a usage error:
 *     one line saying what is wrong, then the command's usage line, on stderr; exit status 2
 *   - `--help` / `-h` prints the command's help on stdout; exit status 0
 * A value that looks like a negative number (`--ms -5`) is taken as the option's value, so that
 * it is reported as a bad number rather than as an ambiguous option.
 */
import { parseArgs } from 'node:util';

/** A command line that does not follow the command's usage; `message` is one line. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An option: a flag (`boolean`) or one that takes a value (`string`); the last occurrence wins. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}

type Options = Record<string, OptionSpec>;

/** The values given, by option name: strings for `string` options, `true` for flags. */
export type OptionValues<O extends Options> = {
  [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean;
};

/** Parses `args` against `options` strictly (positional arguments only if `allowPositionals`). */
export function strictArgs<const O extends Options>(
  args: string[],
  options: O,
  allowPositionals: boolean,
): { values: OptionValues<O>; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args: joinNegativeValues(args, options),
      options,
      allowPositionals,
      strict: true,
    });
    return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals };
  } catch (error) {
    const message = parseError(error);
    if (message !== null) throw new UsageError(message);
    throw error;
  }
}

/** `--name -5` -> `--name=-5` for string options (`-x -5` -> `--name=-5` for their short form). */
function joinNegativeValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = Object.keys(options).find(
      (key) => options[key].type === 'string' && (arg === `--${key}` || arg === `-${options[key].short}`),
    );
    const value = args[i + 1];
    if (name !== undefined && value !== undefined && /^-\d/.test(value)) {
      out.push(`--${name}=${value}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** One line for an error of `parseArgs` (null for any other error), worded alike for every case. */
function parseError(error: unknown): string | null {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) return null;
  const text = (error as Error).message;
  const quoted = /'(-?[^' ]+)/.exec(text)?.[1];
  if (quoted === undefined) return text.split('\n')[0];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option '${quoted}'`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument '${quoted}'`;
  if (/does not take an argument/.test(text)) return `option '${quoted}' takes no value`;
  if (/ambiguous/.test(text))
    return `option '${quoted}' needs a value (write ${quoted}=VALUE for one starting with -)`;
  if (/missing/.test(text)) return `option '${quoted}' needs a value`;
  return text.split('\n')[0];
}

/**
 * An integer option's value: `fallback` when absent, else decimal digits naming an integer in
 * [min, max]; anything else is a usage error.
 */
export function intOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(`invalid --${name} value '${value}' (expected an integer from ${min} to ${max})`);
  }
  return n;
}

/**
 * The answer to a failed parse: a UsageError becomes two lines on stderr, `<prog>: <message>` and
 * the usage line, and exit status 2; anything else is rethrown.
 */
export function usageFailure(prog: string, usage: string, error: unknown): number {
  if (!(error instanceof UsageError)) throw error;
  console.error(`${prog}: ${error.message}\n${usage}`);
  return 2;
}

/**
 * A decimal option's value: `fallback` when absent, else a plain decimal number (`0.5`, `2`) in
 * (min, max]; anything else is a usage error.
 */
export function decimalOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(n > min && n <= max)) {
    throw new UsageError(
      `invalid --${name} value '${value}' (expected a number above ${min}, at most ${max})`,
    );
  }
  return n;
}
