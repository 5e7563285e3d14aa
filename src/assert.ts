/**
 * Assertions, always on (TigerBeetle style): an invariant that does not hold stops the program at
 * the point where it broke instead of letting it corrupt shared state that other CPUs read. They
 * are for OUR bugs (a broken invariant, a state that cannot happen); a caller's bad argument is an
 * errno (`VmError`, src/errno.ts) or a documented misuse error instead.
 *
 *   assert(cond, message?)          one branch when it holds; throws VmAssertionError otherwise
 *   assertEqual(actual, expected)   the same, and the message shows both values
 *   unreachable(x: never)           closes a switch over a union: the compiler proves it unreachable
 *
 * Cost rules, so that assertions can stay on in hot paths:
 *  - `message` is evaluated at the call even when the assertion holds: on a hot path pass a
 *    constant string (no template literal), or write `if (!ok) throw new VmAssertionError(`...`)`
 *    so the message is built only on failure.
 *  - Whole-structure checks (walk a tree, count a free list) run only in debug mode. Write them as
 *    named top-level functions taking the structure and returning a problem description (or
 *    nothing), and call them as
 *
 *      debugAssert(checkFreeList, arena);      // passes a function and an object: allocates nothing
 *      if (DEBUG) checkTree(tree, lo, hi);     // any other shape: the branch is the whole cost
 *
 *    never as `debugAssert(() => check(x))`, which allocates a closure on every call, debug or not.
 *
 * DEBUG is on when VMSPACE_DEBUG=1 (`npm test` sets it): arenas then poison freed records too.
 */

/** Debug mode: VMSPACE_DEBUG=1 in the environment when this module loaded (per thread). */
export const DEBUG: boolean = process.env.VMSPACE_DEBUG === '1';

/** An assertion failed: a bug in vmspace, not in the caller's arguments. */
export class VmAssertionError extends Error {
  constructor(message = 'assertion failed') {
    super(message);
    this.name = 'VmAssertionError';
  }
}

/** Throws VmAssertionError(`message`) unless `cond` is truthy; narrows `cond` for the compiler. */
export function assert(cond: unknown, message?: string): asserts cond {
  if (!cond) throw new VmAssertionError(message);
}

/** Throws unless `actual === expected` (Object.is for NaN); the message shows both values. */
export function assertEqual<T>(actual: T, expected: T, message?: string): void {
  if (actual !== expected && !Object.is(actual, expected)) {
    const what = `expected ${show(expected)}, got ${show(actual)}`;
    throw new VmAssertionError(message === undefined ? what : `${message}: ${what}`);
  }
}

/**
 * For the `default:` of a switch that covers every member of a union: compiles only when `value`
 * is `never`, and throws if a value the types excluded arrives anyway (e.g. read from shared memory).
 */
export function unreachable(value: never, message?: string): never {
  const what = `unreachable: ${show(value)}`;
  throw new VmAssertionError(message === undefined ? what : `${message}: ${what}`);
}

/**
 * A whole-structure check, run only in debug mode: `check(subject)` returns a description of what
 * is wrong (or nothing, or true, when all is well), and a description becomes a VmAssertionError
 * naming the check. With DEBUG off this returns at once, and allocates nothing as long as `check`
 * is a function defined once (not a closure written at the call).
 */
export function debugAssert<T>(check: (subject: T) => string | boolean | undefined, subject: T): void {
  if (!DEBUG) return;
  const problem = check(subject);
  if (problem === undefined || problem === true) return;
  const name = check.name === '' ? 'debug check' : check.name;
  throw new VmAssertionError(problem === false ? `${name} failed` : `${name}: ${problem}`);
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}
