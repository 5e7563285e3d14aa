/**
 * errseq: Linux's errseq_t, the writeback error cursor of a file (FILE_WB_ERR) that lets every
 * open file description learn of a writeback error once. One Int32 word, changed with atomics:
 *
 *   31                               13   12    11           0
 *   +----------------------------------+------+--------------+
 *   | counter (bumped per new error)   | SEEN | errno (1..4095)|
 *   +----------------------------------+------+--------------+
 *
 * - errseqSet(err): records an error. The counter moves only if someone has seen the previous
 *   value (SEEN set): errors nobody has looked at yet collapse into one (the newest errno wins).
 * - errseqSample(): the cursor an opener stores (struct file's f_wb_err). A value nobody has seen
 *   samples as 0, so an error that happened before the open, but that nobody reported yet, is
 *   reported to this opener too.
 * - errseqCheck(since): the error since that cursor (0 if the word did not change).
 * - errseqCheckAndAdvance(since): the same, marking the value SEEN and moving the caller's cursor
 *   to it, so each cursor reports a given error once (fsync's file_check_and_advance_wb_err).
 *
 * The cursor is a word the caller owns (sinceWords[sinceAt]): no allocation per call.
 */
import { assert } from '../assert.js';

export const ERRSEQ_MAX_ERRNO = 4095;
const SEEN = 1 << 12;
const COUNTER_ONE = 1 << 13;

/** Records writeback error `err` (a negative errno). Returns the new value. */
export function errseqSet(words: Int32Array, at: number, err: number): number {
  assert(err < 0 && -err <= ERRSEQ_MAX_ERRNO, 'errseqSet: not a negative errno');
  let old = Atomics.load(words, at);
  for (;;) {
    let next = (old & ~(ERRSEQ_MAX_ERRNO | SEEN)) | -err;
    if ((old & SEEN) !== 0) next = (next + COUNTER_ONE) | 0;
    if (next === old) return old;
    const was = Atomics.compareExchange(words, at, old, next);
    if (was === old) return next;
    old = was;
  }
}

/** The cursor for a new opener: the current value if it was seen, else 0. */
export function errseqSample(words: Int32Array, at: number): number {
  const old = Atomics.load(words, at);
  return (old & SEEN) !== 0 ? old : 0;
}

/** The error (negative errno) recorded since cursor `since`, or 0. */
export function errseqCheck(words: Int32Array, at: number, since: number): number {
  const cur = Atomics.load(words, at);
  return cur === since ? 0 : -(cur & ERRSEQ_MAX_ERRNO);
}

/**
 * The error since the cursor in sinceWords[sinceAt] (0 if none), marking it seen and moving the
 * cursor past it: a second call reports nothing until a new error is set.
 */
export function errseqCheckAndAdvance(
  words: Int32Array,
  at: number,
  sinceWords: Int32Array,
  sinceAt: number,
): number {
  const old = Atomics.load(words, at);
  const since = sinceWords[sinceAt];
  if (old === since) return 0;
  const next = old | SEEN;
  // A failed exchange means a newer error arrived; it will be reported against this cursor next time.
  if (next !== old) Atomics.compareExchange(words, at, old, next);
  sinceWords[sinceAt] = next;
  return -(next & ERRSEQ_MAX_ERRNO);
}
