/**
 * Readahead state and window arithmetic (docs/fs.md, "Readahead"; Linux's file_ra_state, much
 * simplified). One state per open file description, kept by the caller in a Float64Array (three
 * slots at `at`: page indexes up to 2^32 are exact there) and passed to readCachePage. It is a
 * heuristic, read and written without a lock, as Linux's f_ra is: CPUs reading through one open
 * file at once may lose each other's updates, which only changes how much is read ahead.
 *
 *   PREV   the last page index asked for (-1: none yet)
 *   START  first page of the current window
 *   SIZE   pages in the current window (0: none yet)
 *
 * - A miss (the asked page is not cached): if the access is sequential (the page after PREV, or
 *   PREV again) and a window exists, the window doubles (at most RA_MAX_PAGES), else it resets to
 *   RA_MIN_PAGES; it starts at the asked page. The page cache reads the asked page, then the rest
 *   of the window, and marks the window's middle page PG_READAHEAD (raMarker).
 * - A hit on a page marked PG_READAHEAD (the mark is taken off) while reading sequentially: the
 *   next window, right after the current one and twice its size (at most RA_MAX_PAGES), is read
 *   at once, before the reader needs it, and its middle page is marked in turn. I/O here is
 *   synchronous, so this is Linux's asynchronous readahead in timing only: the reader pays for the
 *   next window when it crosses the mark, half a window before it would have missed.
 * - Any other access just records PREV; a random miss resets the window to RA_MIN_PAGES.
 */

export const RA_MIN_PAGES = 4;
export const RA_MAX_PAGES = 32;
export const RA_SLOTS = 3;
const PREV = 0;
const START = 1;
const SIZE = 2;

/** A fresh state (one open file description's). */
export function newReadahead(): Float64Array {
  const ra = new Float64Array(RA_SLOTS);
  initReadahead(ra, 0);
  return ra;
}

/** Resets the state at ra[at..] (an open file description's slots, at open). */
export function initReadahead(ra: Float64Array, at: number): void {
  ra[at + PREV] = -1;
  ra[at + START] = 0;
  ra[at + SIZE] = 0;
}

function sequential(ra: Float64Array, at: number, index: number): boolean {
  const prev = ra[at + PREV];
  return ra[at + SIZE] !== 0 && (index === prev + 1 || index === prev);
}

/** A miss at `index`: sets the window to read now (raStart, raSize). */
export function raOnMiss(ra: Float64Array, at: number, index: number): void {
  const size = ra[at + SIZE];
  ra[at + SIZE] = sequential(ra, at, index) ? Math.min(size * 2, RA_MAX_PAGES) : RA_MIN_PAGES;
  ra[at + START] = index;
  ra[at + PREV] = index;
}

/**
 * A hit at `index`; `marked`: the page carried PG_READAHEAD (the caller took it off). True when
 * the next window (raStart, raSize) must be read now.
 */
export function raOnHit(ra: Float64Array, at: number, index: number, marked: boolean): boolean {
  const advance = marked && sequential(ra, at, index);
  ra[at + PREV] = index;
  if (!advance) return false;
  ra[at + START] += ra[at + SIZE];
  ra[at + SIZE] = Math.min(ra[at + SIZE] * 2, RA_MAX_PAGES);
  return true;
}

export function raStart(ra: Float64Array, at: number): number {
  return ra[at + START];
}

export function raSize(ra: Float64Array, at: number): number {
  return ra[at + SIZE];
}

/** The page of the current window that gets PG_READAHEAD: its middle. */
export function raMarker(ra: Float64Array, at: number): number {
  return ra[at + START] + Math.floor(ra[at + SIZE] / 2);
}
