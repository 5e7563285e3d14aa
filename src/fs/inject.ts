/**
 * Per-file, per-operation injection of latency and I/O errors (docs/fs.md, "Backing"): the lab's
 * slow device and the tests' failing disk. The settings live in the file record's INJECT words, so
 * a setting made on any CPU is seen by every CPU at its next operation on the file.
 *
 *   file record words FILE_INJECT + 2 * op:   LATENCY_US | FAIL_NEXT      (op = INJECT_*)
 *
 * Guards: both words are atomics. `setInjection` stores them; `injectOp` loads LATENCY_US and
 * consumes FAIL_NEXT with a compare-exchange, so n injected failures fail exactly n calls however
 * many CPUs race for them.
 *
 * `injectOp` is the first thing every backing method (and the mm layer's fault and page_mkwrite
 * hooks) calls. With nothing injected on the file it costs two plain loads; otherwise it announces
 * I/O (`fsMightIO`: the validator's "I/O under mmap_lock" check, and never inside an RCU read
 * section), sleeps the latency, and returns -EIO when a failure is due.
 */
import { assert } from '../assert.js';
import { EINVAL, EIO, VmError } from '../errno.js';
import { lockHooks } from '../lockhooks.js';
import { blockingInReadSection, rcuBlockBegin, rcuBlockEnd, rcuCpu } from '../sync/rcu.js';
import { FILE_INJECT, type FileTable, INJECT_OPS } from './file-table.js';

/** Operations that can be slowed down or failed (the backing's, and the mm layer's hooks). */
export const INJECT_READ_PAGE = 0;
export const INJECT_WRITE_PAGE = 1;
export const INJECT_SYNC = 2;
export const INJECT_FAULT = 3;
export const INJECT_MKWRITE = 4;
export const INJECT_TRUNCATE = 5;
/** Operations defined (the record has room for INJECT_OPS). */
export const INJECT_OP_COUNT = 6;
assert(INJECT_OP_COUNT <= INJECT_OPS, 'inject: more operations than the record has words for');

/** Longest injectable latency: 10 s, well under the watchdog's limit. */
export const MAX_INJECT_LATENCY_US = 10_000_000;

const LATENCY_US = 0;
const FAIL_NEXT = 1;
/** Validator call sites, one per operation (constant strings: nothing is built per call). */
const SITES = [
  'fs.inject.read_page',
  'fs.inject.write_page',
  'fs.inject.sync',
  'fs.inject.fault',
  'fs.inject.mkwrite',
  'fs.inject.truncate',
];
/** Compare-exchange rounds before consuming a failure gives up (each lost round is another CPU's progress). */
const MAX_CAS_ROUNDS = 1 << 20;

/** This thread's sleep word: nobody ever notifies it, so Atomics.wait sleeps the whole timeout. */
const sleepWord = new Int32Array(new SharedArrayBuffer(4));

export interface Injection {
  /** Every call of the operation first sleeps this long (microseconds, 0 = none). */
  latencyUs?: number;
  /** The next `failNext` calls of the operation return -EIO (after their latency). */
  failNext?: number;
}

/**
 * Before real or injected I/O (like might_sleep() for the file layer): blocking inside an RCU read
 * section throws, and the validator's I/O checks (under mmap_lock, in atomic context) hear `site`.
 */
export function fsMightIO(site: string): void {
  if (rcuCpu.depth !== 0) blockingInReadSection(site);
  if (lockHooks.on) lockHooks.v.mightIO(site);
}

/**
 * Sets the injection of operation `op` on file `id` (fields left out keep their value). Throws
 * VmError(EINVAL), changing nothing, for a file that is not live, an unknown operation, or a
 * latency or count that is not an integer in range.
 */
export function setInjection(files: FileTable, id: number, op: number, injection: Injection): void {
  if (!files.isFile(id)) throw new VmError(EINVAL, `setInjection: ${id} is not a file`);
  if (!(Number.isInteger(op) && op >= 0 && op < INJECT_OP_COUNT))
    throw new VmError(EINVAL, `setInjection: unknown operation ${op}`);
  const { latencyUs, failNext } = injection;
  if (latencyUs !== undefined && !inRange(latencyUs, MAX_INJECT_LATENCY_US))
    throw new VmError(EINVAL, `setInjection: latency ${latencyUs} us out of [0, ${MAX_INJECT_LATENCY_US}]`);
  if (failNext !== undefined && !inRange(failNext, 0x7fffffff))
    throw new VmError(EINVAL, `setInjection: failNext ${failNext} out of [0, 2^31)`);
  const at = files.word(id, FILE_INJECT + 2 * op);
  if (latencyUs !== undefined) Atomics.store(files.words, at + LATENCY_US, latencyUs);
  if (failNext !== undefined) Atomics.store(files.words, at + FAIL_NEXT, failNext);
}

/** The current injection of `op` on file `id` (failNext: failures not yet consumed). */
export function getInjection(files: FileTable, id: number, op: number): Required<Injection> {
  const at = files.word(id, FILE_INJECT + 2 * op);
  return {
    latencyUs: Atomics.load(files.words, at + LATENCY_US),
    failNext: Atomics.load(files.words, at + FAIL_NEXT),
  };
}

/**
 * Runs the injection of `op` on file `id`: 0, or -EIO when an injected failure was due.
 * Preconditions: `id` is a file the caller holds a reference to; no spinlock and no RCU read
 * section is held (it may sleep); `op` is an INJECT_* constant.
 */
export function injectOp(files: FileTable, id: number, op: number): number {
  const w = files.words;
  const at = files.word(id, FILE_INJECT + 2 * op);
  // Plain loads: a setting made an instant ago may be seen at the next call instead.
  if ((w[at + LATENCY_US] | w[at + FAIL_NEXT]) === 0) return 0;
  return injectSlow(w, at, op);
}

/**
 * Whether operation `op` on file `id` has latency or a failure set (two plain loads, injectOp's
 * fast-path test): a caller that must prepare before it may sleep (the per-VMA-lock fault takes
 * its Mmu offline) asks first, then calls injectOp only when this is true; a setting made
 * meanwhile is seen at the next call, as injectOp's own plain loads may see it.
 */
export function injectArmed(files: FileTable, id: number, op: number): boolean {
  const w = files.words;
  const at = files.word(id, FILE_INJECT + 2 * op);
  return (w[at + LATENCY_US] | w[at + FAIL_NEXT]) !== 0;
}

function injectSlow(w: Int32Array, at: number, op: number): number {
  fsMightIO(SITES[op]);
  const latencyUs = Atomics.load(w, at + LATENCY_US);
  if (latencyUs > 0) sleepUs(latencyUs);
  return consumeFailure(w, at + FAIL_NEXT) ? -EIO : 0;
}

/** Takes one failure off the count at `i`: true when there was one to take. */
function consumeFailure(w: Int32Array, i: number): boolean {
  let n = Atomics.load(w, i);
  for (let round = 0; round < MAX_CAS_ROUNDS && n > 0; round++) {
    const seen = Atomics.compareExchange(w, i, n, n - 1);
    if (seen === n) return true;
    n = seen;
  }
  assert(n <= 0, 'inject: the failure count kept changing under compare-exchange');
  return false;
}

/**
 * Sleeps at least `us` microseconds (Atomics.wait on a word nobody notifies, repeated if it wakes
 * early). The CPU is quiescent for RCU meanwhile, so it holds up no grace period.
 */
function sleepUs(us: number): void {
  const wasOnline = rcuBlockBegin();
  try {
    const end = performance.now() + us / 1000;
    // Bounded: each round sleeps the time left, so at most a few rounds pass.
    for (let round = 0; round < 1000; round++) {
      const left = end - performance.now();
      if (left <= 0) return;
      Atomics.wait(sleepWord, 0, 0, left);
    }
  } finally {
    rcuBlockEnd(wasOnline);
  }
}

function inRange(x: number, max: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= max;
}
