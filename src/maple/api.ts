/**
 * The contract of a range index: a map from non-overlapping inclusive ranges [first, last] of
 * integers in [0, 2^53) to non-zero 32-bit values (arena handles). Everything not stored is a gap.
 * `MapleTree` (src/maple/tree.ts) implements it; the address space (src/mm) programs against it.
 *
 * Values are positive Int32 (1 .. 2^31-1), so every result >= 0 and every error < 0. Results that
 * carry a range are written into a caller-owned `RangeOut`, so lookups allocate nothing. Errors
 * are negative errno values (`-ENOMEM`, `-EEXIST`, `-EBUSY`, and `-EINVAL` for an argument out of
 * range, which changes nothing), never exceptions.
 *
 * Concurrency: read calls (load, next, nextBatch, prev, gap search) may run on any CPU inside an RCU read
 * section while one writer mutates; write calls (store, insert, erase) require the writer lock
 * (the tree's own, or the external lock named at creation, e.g. mmap_lock held for write).
 */
export interface RangeOut {
  first: number;
  last: number;
  value: number;
}

export function rangeOut(): RangeOut {
  return { first: 0, last: 0, value: 0 };
}

/**
 * A caller-owned batch of entries for `nextBatch`: three parallel arrays, entry i being
 * [firsts[i], lasts[i]] = values[i]. Its capacity is the length of `firsts` (the others must be at
 * least as long). Reused across calls, so a walk over any number of entries allocates nothing.
 */
export interface RangeBatch {
  readonly firsts: Float64Array;
  readonly lasts: Float64Array;
  readonly values: Int32Array;
}

export function rangeBatch(capacity = 64): RangeBatch {
  if (!(Number.isInteger(capacity) && capacity >= 1))
    throw new RangeError(`EINVAL: batch capacity ${capacity}`);
  return {
    firsts: new Float64Array(capacity),
    lasts: new Float64Array(capacity),
    values: new Int32Array(capacity),
  };
}

export interface RangeIndex {
  /** The value whose range contains `index` (0 if a gap); `out` gets the entry's or the gap's range. */
  load(index: number, out: RangeOut): number;
  /** First entry with `last >= index` and `first <= max`; 0 if none. */
  next(index: number, max: number, out: RangeOut): number;
  /**
   * The entries with `last >= index` and `first <= max`, in order, copied into `batch` until it is
   * full; returns how many (fewer than its capacity only when there are no more). `index` may be
   * MAX_INDEX + 1 (no entries), so a walk goes on from `batch.lasts[n - 1] + 1` while n is the
   * capacity. Each entry copied ends after the one before it.
   */
  nextBatch(index: number, max: number, batch: RangeBatch): number;
  /** Last entry with `first <= index` and `last >= min`; 0 if none. */
  prev(index: number, min: number, out: RangeOut): number;
  /** Stores `value` over [first, last], overwriting (and splitting) whatever overlaps; value 0 erases. */
  store(first: number, last: number, value: number): number;
  /** Like store, but fails with -EEXIST if any index of [first, last] is occupied. */
  insert(first: number, last: number, value: number): number;
  /** Erases the entry containing `index`; returns its value (0 if none). */
  erase(index: number): number;
  /** Lowest start s in [min, max] with [s, s+size-1] a gap inside [min, max] and s % align == 0; -EBUSY if none. */
  gapLowest(min: number, max: number, size: number, align: number): number;
  /** Highest such start; -EBUSY if none. */
  gapHighest(min: number, max: number, size: number, align: number): number;
  /** Ensures the next `count` stores can run without allocating; -ENOMEM on failure (tree unchanged). */
  preallocate(count: number): number;
  /** Number of entries. */
  count(): number;
}
