/**
 * A tree's header: a few Int32 words in their own SharedArrayBuffer, on separate cache lines so
 * that a writer bumping its counters does not evict the root word from the readers' caches.
 *
 *   word  0  ROOT   handle of the root node (0: empty tree = one gap over [0, MAX_INDEX])
 *   word 16  SEQ    bumped after every change that retires nodes (cursors re-walk when it moves)
 *   word 17  COUNT  number of entries (a writer updates it with a plain store: an Int32 never
 *                   tears, and the writer's next atomic, the SEQ bump or the unlock, publishes it)
 *   word 32  LOCK   the tree's own writer lock (unused with an external lock)
 */
export const ROOT = 0;
export const SEQ = 16;
export const COUNT = 17;
export const LOCK = 32;
export const HEADER_BYTES = 192;

/** A reader that meets this many dead nodes in one call is looking at a corrupt tree. */
export const RESTART_LIMIT = 1_000_000;
