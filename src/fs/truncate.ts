/**
 * Removal of a range of cached pages (docs/fs.md; Linux's truncate_pagecache and
 * truncate_pagecache_range): what ftruncate and fallocate(PUNCH_HOLE) do to the page cache. The
 * caller holds the file's invalidate_lock for write, so no page of the file can be created or
 * read in (fault, read, readahead all take it shared to do so), and calls the backing (setSize,
 * punch) before it lets go of the lock: from then on no CPU finds the old data.
 *
 * Steps: unmap the range from every mapping (the rmap seam; truncate also zaps private copies made
 * from those pages, a punch keeps them, as Linux's even_cows), then per cached page: reference,
 * page lock, still cached? then unmap it again if a fault mapped it meanwhile, wait for its
 * writeback, remove it (its dirty data is thrown away), unlock, put. Whole pages only: zeroing
 * the part of a partial page that lies past the new size is the caller's (it has the page to write).
 */
import { assert } from '../assert.js';
import { EINVAL } from '../errno.js';
import { rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import { cacheMem, deleteFromCache, findGetPage, stillCached } from './cache-core.js';
import type { FileTable } from './file-table.js';
import { lockIPages, MAX_PAGE_INDEX, pageIndexNextPresent, unlockIPages } from './page-index.js';
import { lockPage, unlockPage, waitOnPageWriteback } from './page-lock.js';
import { rmap } from './rmap-seam.js';

/**
 * truncate_pagecache for pages [first, last]: returns the pages removed, or -EINVAL for a bad
 * range (nothing done). Private copies of them in mappings are zapped too.
 * Preconditions: the file's invalidate_lock held for write; a reference to the file.
 */
export function truncateCacheRange(files: FileTable, id: number, first: number, last: number): number {
  return removeRange(files, id, first, last, true);
}

/** truncate_pagecache_range (punch): as truncateCacheRange, but private copies stay. Same preconditions. */
export function punchCacheRange(files: FileTable, id: number, first: number, last: number): number {
  return removeRange(files, id, first, last, false);
}

function removeRange(files: FileTable, id: number, first: number, last: number, evenCows: boolean): number {
  if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 0 && first <= last)) return -EINVAL;
  assert(files.invalidateLock(id).state().writer, 'truncate: invalidate_lock is not held for write');
  const end = Math.min(last, MAX_PAGE_INDEX);
  if (first > end) return 0;
  rmap.ops.unmapMappingRange(files, id, first, end, evenCows);
  let removed = 0;
  // The scan is lockless, and reclaim takes a page out of the index, re-checks it, and puts it back
  // if a reference came meanwhile, all under i_pages: a scan that passed while the slot was empty
  // misses the page it puts back. So the range is looked at again under i_pages, where that is one
  // step, and scanned again from the page found. Each pass follows such a put-back (the
  // invalidate_lock keeps every other adder out): a few at most.
  for (let pass = 0, from = first; from >= 0; pass++) {
    assert(pass < MAX_PASSES, 'truncate: a page of the range came back under invalidate_lock');
    removed += removeScanned(files, id, from, end, evenCows);
    from = firstPresentLocked(files, id, first, end);
  }
  return removed;
}

/** Passes of removeRange over its range (each after a page reclaim put back behind the scan). */
const MAX_PASSES = 16;

/** Removes the pages an RCU scan of [first, end] finds; returns how many it removed. */
function removeScanned(files: FileTable, id: number, first: number, end: number, evenCows: boolean): number {
  let removed = 0;
  // Each round moves `index` past a present page: bounded by the cached pages of the range.
  for (let index = first; index <= end; ) {
    rcuReadLock();
    const next = pageIndexNextPresent(files, id, index);
    rcuReadUnlock();
    if (next < 0 || next > end) break;
    index = next + 1;
    if (removePage(files, id, next, evenCows)) removed++;
  }
  return removed;
}

/** The first cached index in [first, end] as i_pages sees it, or -1. */
function firstPresentLocked(files: FileTable, id: number, first: number, end: number): number {
  lockIPages(files, id);
  const next = pageIndexNextPresent(files, id, first);
  unlockIPages(files, id);
  return next >= 0 && next <= end ? next : -1;
}

function removePage(files: FileTable, id: number, index: number, evenCows: boolean): boolean {
  const mem = cacheMem(files);
  const pfn = findGetPage(files, id, index);
  if (pfn === 0) return false;
  lockPage(mem, pfn);
  const cached = stillCached(mem, pfn, id, index);
  if (cached) {
    if (mem.mapcountOf(pfn) !== 0) rmap.ops.unmapMappingRange(files, id, index, index, evenCows);
    waitOnPageWriteback(mem, pfn);
    deleteFromCache(files, id, index, pfn);
  }
  unlockPage(mem, pfn);
  mem.putPage(pfn);
  return cached;
}
