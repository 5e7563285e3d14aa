/**
 * The page cache (docs/fs.md, "The page cache"; Linux's mm/filemap.c): a file's pages, found
 * without locks, created and read under the file's invalidate_lock held shared, dirtied by writes,
 * and freed with the file. This module is the cache's API; the pieces live beside it:
 *
 *   cache-core.ts   findGetPage (speculative lookup), deleteFromCache
 *   readahead.ts    the per-open-file readahead window
 *   writeback.ts    writebackRange, the errseq of writeback errors
 *   truncate.ts     truncateCacheRange, punchCacheRange
 *   reclaim.ts      reclaimCachePages
 *
 * readCachePage(files, id, index) (filemap_read_folio / filemap_fault's slow part): a cached,
 * up-to-date page is returned with a reference, taking no lock. Otherwise, holding only the file's
 * invalidate_lock (shared): allocate a frame (on failure, reclaim clean cached pages and try once
 * more), lock it, insert it (a racing creator's page wins: ours is dropped and theirs waited for),
 * read it from the backing holding the page lock alone besides, set PG_UPTODATE, unlock. A read
 * error removes the page again: nothing is cached, the caller gets -EIO. A page found cached but
 * not up to date is being read by its creator: lock it (waiting for the read), and if it is still
 * cached and up to date, use it.
 *
 * Loading this module registers releaseFileCache as the file table's release hook: the last put
 * of a file writes back its dirty pages (host files; errors are then lost, no one has the file
 * open) and removes every cached page, freeing the index's nodes after a grace period.
 */
import { assert, VmAssertionError } from '../assert.js';
import { EEXIST, EFBIG, EINVAL, ENOMEM } from '../errno.js';
import type { PhysMem } from '../mem/frames.js';
import { KIND_FILE, PAGE_SIZE, PG_DIRTY, PG_READAHEAD, PG_UPTODATE } from '../mem/page.js';
import { rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import { BACKING_MEM, backingOf } from './backing.js';
import { cacheMem, deleteFromCache, findGetPage, getSlotPage, stillCached } from './cache-core.js';
import { FILE_CACHE_ROOT, type FileTable, setFileReleaseHook } from './file-table.js';
import {
  lockIPages,
  MAX_PAGE_INDEX,
  pageIndexInsertLocked,
  pageIndexLookup,
  pageIndexNextPresent,
  pageIndexSlot,
  pageIndexSlotAfter,
  unlockIPages,
} from './page-index.js';
import { lockPage, unlockPage, waitOnPageWriteback } from './page-lock.js';
import { raMarker, raOnHit, raOnMiss, raSize, raStart } from './readahead.js';
import { reclaimCachePages } from './reclaim.js';
import { writebackRange } from './writeback.js';

export { findGetPage } from './cache-core.js';
export { initReadahead, newReadahead, RA_MAX_PAGES, RA_MIN_PAGES, RA_SLOTS } from './readahead.js';
export { reclaimCachePages } from './reclaim.js';
export { punchCacheRange, truncateCacheRange } from './truncate.js';
export { fileCheckAndAdvanceWbErr, fileSampleWbErr, writebackRange } from './writeback.js';

/** Pages reclaimed before the one retry of a failed frame allocation. */
export const RECLAIM_BATCH = 32;
/** Rounds of find-or-create before readCachePage reports a livelock (each lost race is a concurrent truncate). */
const READ_ROUNDS = 64;
/** fillPage's answer when the page left the cache meanwhile (look again). */
const GONE = 1;

/**
 * The page at `index` of file `id`, cached and up to date, with a reference the caller puts; or
 * -EIO (read error: nothing cached), -ENOMEM (no frame even after reclaim, or no index node),
 * -EINVAL (index not a non-negative integer), -EFBIG (index past MAX_PAGE_INDEX). With a readahead
 * state (`ra` slots at `raAt`, readahead.ts), misses read a window ahead. Whether `index` lies
 * inside the file's size is the caller's business. Preconditions: a reference to the file; no
 * lock held but i_rwsem or a VMA's read lock (never invalidate_lock, page locks or mmap_lock (W)).
 */
export function readCachePage(
  files: FileTable,
  id: number,
  index: number,
  ra: Float64Array | null = null,
  raAt = 0,
): number {
  if (!(Number.isInteger(index) && index >= 0)) return -EINVAL;
  if (index > MAX_PAGE_INDEX) return -EFBIG;
  const mem = cacheMem(files);
  let seen = false;
  for (let round = 0; round < READ_ROUNDS; round++) {
    const pfn = findGetPage(files, id, index);
    if (pfn !== 0) {
      if (ra !== null && !seen) readaheadOnHit(files, mem, id, index, pfn, ra, raAt);
      seen = true;
      if ((Atomics.load(mem.flags, pfn) & PG_UPTODATE) !== 0) return pfn;
      const r = fillPage(files, mem, id, index, pfn);
      if (r === 0) return pfn;
      mem.putPage(pfn);
      if (r < 0) return r;
      continue;
    }
    if (ra !== null && !seen) raOnMiss(ra, raAt, index);
    seen = true;
    const created = createPage(files, id, index, true, 0);
    if (created > 0 && ra !== null)
      readWindow(files, id, raStart(ra, raAt), raSize(ra, raAt), raMarker(ra, raAt));
    if (created !== -EEXIST) return created;
  }
  throw new VmAssertionError(`readCachePage: file ${id} page ${index} lost ${READ_ROUNDS} races in a row`);
}

/** Most pages findReadablePages gathers in one call (their references are held together). */
export const READ_BATCH = 32;

/**
 * readCachePage's half that never sleeps, for a run of pages: the pages `index`, `index` + 1, ...
 * (at most `max`) that are cached, up to date and not readahead markers, stopping at the first
 * that is not. Each found page's pfn goes into `out` with a reference the caller puts; the count
 * is returned (0: page `index` is not such a page, and the caller runs readCachePage, which may
 * sleep: read, wait for a locked page, read the next window). The run's hits are told to the
 * readahead state as readCachePage tells them (a hit without a mark only records the page: the
 * last one stands for all). One RCU read section for the run, and one walk of the index per leaf
 * (pageIndexSlotAfter). A slot that changes under the speculative get (getSlotPage) ends the run
 * too: readCachePage's own lookup retries it. Preconditions: as readCachePage's; 1 <= `max` <=
 * READ_BATCH, `out` has `max` slots, `index` + `max` - 1 <= MAX_PAGE_INDEX (integers).
 */
export function findReadablePages(
  files: FileTable,
  id: number,
  index: number,
  max: number,
  out: Int32Array,
  ra: Float64Array | null,
  raAt: number,
): number {
  assert(max >= 1 && max <= READ_BATCH && max <= out.length, 'findReadablePages: bad batch size');
  const mem = cacheMem(files);
  const nodes = files.cacheNodes.i32;
  const flags = mem.flags;
  let n = 0;
  rcuReadLock();
  try {
    let at = pageIndexSlot(files, id, index);
    while (at >= 0) {
      const pfn = getSlotPage(mem, nodes, at);
      if (pfn <= 0) break;
      if ((Atomics.load(flags, pfn) & (PG_UPTODATE | PG_READAHEAD)) !== PG_UPTODATE) {
        mem.putPage(pfn);
        break;
      }
      out[n++] = pfn;
      if (n === max) break;
      at = pageIndexSlotAfter(files, id, index + n - 1, at);
    }
  } finally {
    rcuReadUnlock();
  }
  if (n > 0 && ra !== null) raOnHit(ra, raAt, index + n - 1, false);
  return n;
}

/**
 * A page found cached but not up to date: wait for its read (its creator holds the lock), or read
 * it if nobody does. 0 when it is cached and up to date, GONE when it left the cache, -errno when
 * this read failed (the page is removed). Preconditions: the caller's reference to pfn.
 */
function fillPage(files: FileTable, mem: PhysMem, id: number, index: number, pfn: number): number {
  files.invalidateLockShared(id);
  lockPage(mem, pfn);
  let r = 0;
  if (!stillCached(mem, pfn, id, index)) r = GONE;
  else if ((Atomics.load(mem.flags, pfn) & PG_UPTODATE) === 0) r = readIntoPage(files, mem, id, index, pfn);
  unlockPage(mem, pfn);
  files.invalidateUnlockShared(id);
  return r;
}

/**
 * Reads page `index` from the backing into pfn and sets PG_UPTODATE; on error removes the page
 * from the cache. Preconditions: invalidate_lock (shared) and the page lock; pfn cached at index.
 */
function readIntoPage(files: FileTable, mem: PhysMem, id: number, index: number, pfn: number): number {
  if (files.backing(id) !== BACKING_MEM) {
    const at = pfn * PAGE_SIZE;
    const n = backingOf(files, id).readPage(files, id, index, mem.bytes.subarray(at, at + PAGE_SIZE));
    if (n < 0) {
      deleteFromCache(files, id, index, pfn);
      return n;
    }
  }
  // A memory file's page was never written: the frame is zero from its allocation.
  mem.setFlag(pfn, PG_UPTODATE);
  return 0;
}

/**
 * Creates, inserts and reads page `index` under invalidate_lock (shared): the pfn (with a
 * reference for the caller if `forReader`, else none: readahead), -EEXIST when another CPU
 * inserted it first, -ENOMEM, or the read's -errno (nothing cached). A reader's allocation failure
 * reclaims and retries once; readahead's gives up.
 */
function createPage(files: FileTable, id: number, index: number, forReader: boolean, flags: number): number {
  files.invalidateLockShared(id);
  try {
    return createPageLocked(files, id, index, forReader, flags);
  } finally {
    files.invalidateUnlockShared(id);
  }
}

/** Preconditions: invalidate_lock held shared. `flags` are set on the new page before it is unlocked. */
function createPageLocked(
  files: FileTable,
  id: number,
  index: number,
  forReader: boolean,
  flags: number,
): number {
  const mem = cacheMem(files);
  let pfn = mem.allocFrame(KIND_FILE, 0, 0);
  if (pfn === 0 && forReader && reclaimCachePages(files, RECLAIM_BATCH) > 0)
    pfn = mem.allocFrame(KIND_FILE, 0, 0);
  if (pfn === 0) return -ENOMEM;
  lockPage(mem, pfn);
  mem.owner[pfn] = id;
  mem.index[pfn] = index | 0;
  lockIPages(files, id);
  const r = pageIndexInsertLocked(files, id, index, pfn);
  unlockIPages(files, id);
  if (r < 0) {
    mem.owner[pfn] = 0;
    unlockPage(mem, pfn);
    mem.putPage(pfn);
    return r;
  }
  // The allocation's reference is now the cache's; the caller gets one of its own.
  mem.getPage(pfn);
  const err = readIntoPage(files, mem, id, index, pfn);
  if (err === 0 && flags !== 0) mem.setFlag(pfn, flags);
  unlockPage(mem, pfn);
  if (err < 0 || !forReader) mem.putPage(pfn);
  return err < 0 ? err : pfn;
}

/**
 * Reads the pages of the window [start, start + size) that are not cached (up to the file's
 * size), marking `marker` PG_READAHEAD. Errors and allocation failures end the window quietly:
 * readahead is a hint. Preconditions: no lock held.
 */
function readWindow(files: FileTable, id: number, start: number, size: number, marker: number): void {
  const pages = Math.ceil(files.size(id) / PAGE_SIZE);
  const end = Math.min(start + size, pages, MAX_PAGE_INDEX + 1);
  for (let index = start; index < end; index++) {
    rcuReadLock();
    const cached = pageIndexLookup(files, id, index);
    rcuReadUnlock();
    if (cached !== 0) continue;
    const r = createPage(files, id, index, false, index === marker ? PG_READAHEAD : 0);
    if (r < 0 && r !== -EEXIST) return;
  }
}

/** A hit: on a marked page met sequentially, read the next window now. */
function readaheadOnHit(
  files: FileTable,
  mem: PhysMem,
  id: number,
  index: number,
  pfn: number,
  ra: Float64Array,
  raAt: number,
): void {
  const marked =
    (Atomics.load(mem.flags, pfn) & PG_READAHEAD) !== 0 && mem.testAndClearFlag(pfn, PG_READAHEAD);
  if (raOnHit(ra, raAt, index, marked))
    readWindow(files, id, raStart(ra, raAt), raSize(ra, raAt), raMarker(ra, raAt));
}

/**
 * filemap_add_folio of a page its writer filled (write() of a whole page, or of a page past the
 * end of the file, needs no read): `pfn`, a KIND_FILE frame the caller allocated, wrote and alone
 * references, becomes page `index`, up to date (set before it is published: nobody ever sees it
 * otherwise, so no page lock is needed). 0: cached, the cache holding a reference of its own and
 * the caller keeping its; -EEXIST: a page is cached there already (the caller still owns pfn and
 * should write into that one); -ENOMEM: no index node; -EINVAL / -EFBIG: a bad index. Either
 * error leaves pfn as it was. Preconditions: i_rwsem held for write (no truncate, punch or other
 * writer can race); no other lock.
 */
export function addFilledPage(files: FileTable, id: number, index: number, pfn: number): number {
  if (!(Number.isInteger(index) && index >= 0)) return -EINVAL;
  if (index > MAX_PAGE_INDEX) return -EFBIG;
  const mem = cacheMem(files);
  assert(mem.owner[pfn] === 0 && mem.refcount[pfn] === 1, 'addFilledPage: the frame is not private');
  files.invalidateLockShared(id);
  mem.owner[pfn] = id;
  mem.index[pfn] = index | 0;
  mem.setFlag(pfn, PG_UPTODATE);
  // The cache's reference is taken before the page is published: once in the index, reclaim may
  // look at it at once, and it takes a page whose count is the cache's alone for unused.
  mem.getPage(pfn);
  lockIPages(files, id);
  const r = pageIndexInsertLocked(files, id, index, pfn);
  unlockIPages(files, id);
  if (r < 0) {
    mem.putPage(pfn);
    mem.owner[pfn] = 0;
    mem.clearFlag(pfn, PG_UPTODATE);
  }
  files.invalidateUnlockShared(id);
  return r;
}

/**
 * folio_mark_dirty: the page's bytes were changed (write(), a shared write fault after
 * page_mkwrite). True if it was clean. Preconditions: a reference to the page, which is cached and
 * up to date.
 */
export function markPageDirty(files: FileTable, pfn: number): boolean {
  const mem = cacheMem(files);
  assert((Atomics.load(mem.flags, pfn) & PG_UPTODATE) !== 0, 'markPageDirty: page not up to date');
  return !mem.testAndSetFlag(pfn, PG_DIRTY);
}

/**
 * Frees file `id`'s page cache (the file table's release hook: the file's last reference is gone).
 * Host files' dirty pages are written back first; then every page is removed under its lock (a
 * reclaimer holding one finishes first) and the index's nodes are freed after a grace period.
 * Preconditions: no reference to the file is left (nobody adds pages); no lock held.
 */
export function releaseFileCache(files: FileTable, id: number): void {
  if (Atomics.load(files.words, files.word(id, FILE_CACHE_ROOT)) === 0) return;
  if (files.backing(id) !== BACKING_MEM) writebackRange(files, id, 0, MAX_PAGE_INDEX);
  const mem = cacheMem(files);
  // Each round removes a page (or skips one a reclaimer removed): bounded by the cached pages.
  for (let index = 0; ; ) {
    rcuReadLock();
    const next = pageIndexNextPresent(files, id, index);
    rcuReadUnlock();
    if (next < 0) break;
    index = next + 1;
    const pfn = findGetPage(files, id, next);
    if (pfn === 0) continue;
    lockPage(mem, pfn);
    if (stillCached(mem, pfn, id, next)) {
      waitOnPageWriteback(mem, pfn);
      deleteFromCache(files, id, next, pfn);
    }
    unlockPage(mem, pfn);
    mem.putPage(pfn);
  }
  assert(files.nrpages(id) === 0, 'releaseFileCache: pages left in the cache');
}

setFileReleaseHook(releaseFileCache);
