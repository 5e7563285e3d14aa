/**
 * Page-cache reclaim (docs/fs.md; Linux's shrink_folio_list for clean file folios): when a frame
 * cannot be allocated, the read path frees clean cached pages nobody uses and tries once more.
 *
 * A page is reclaimed only if it is clean (no PG_DIRTY), not under writeback, unlocked (taken with
 * a trylock: reclaim never waits), not mapped (MAPCOUNT 0), referenced by the cache alone, and its
 * file is not a memory file (BACKING_MEM pages are the only copy of their data). Files are visited
 * round-robin from a per-CPU cursor (each holding a reference taken with FileTable.tryGet, so a
 * file being freed is skipped), each file's pages in index order.
 *
 * Removing a page without freezing its count: under i_pages the slot is cleared first and the
 * reference count read after; a count above cache + reclaimer means someone took a reference
 * (findGetPage) meanwhile, and the slot is put back. The lookup takes its reference and then
 * re-loads the slot; reclaim clears the slot and then loads the count (all seq-cst): either the
 * lookup sees the cleared slot (and retries) or reclaim sees its reference (and keeps the page).
 */

import type { PhysMem } from '../mem/frames.js';
import { PG_DIRTY, PG_LOCKED, PG_READAHEAD, PG_WRITEBACK } from '../mem/page.js';
import { rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import { BACKING_MEM } from './backing.js';
import { cacheMem, findGetPage, stillCached } from './cache-core.js';
import type { FileTable } from './file-table.js';
import {
  lockIPages,
  pageIndexClearLocked,
  pageIndexFinishEraseLocked,
  pageIndexNextPresent,
  pageIndexRestoreLocked,
  unlockIPages,
} from './page-index.js';
import { trylockPage, unlockPage } from './page-lock.js';

/** The cache's reference and the reclaimer's own. */
const RECLAIM_REFS = 2;
const BUSY = PG_DIRTY | PG_WRITEBACK | PG_LOCKED;

/** This CPU's next file to look at (round-robin; a per-thread hint). */
let cursor = 1;

/**
 * Frees up to `want` clean, unused cached pages of the table's files; returns how many. May be
 * called holding a file's invalidate_lock (shared): it takes page locks only by trylock and
 * i_pages after them; dropping its file references may free a file (its page cache with it).
 */
export function reclaimCachePages(files: FileTable, want: number): number {
  const capacity = files.arena.stats().capacity;
  let freed = 0;
  for (let scanned = 0; scanned < capacity && freed < want; scanned++) {
    const id = cursor;
    cursor = cursor >= capacity ? 1 : cursor + 1;
    if (!files.tryGet(id)) continue;
    try {
      if (files.backing(id) !== BACKING_MEM && files.nrpages(id) !== 0)
        freed += reclaimFile(files, id, want - freed);
    } finally {
      files.put(id);
    }
  }
  return freed;
}

/** Reclaims up to `want` pages of file `id`. Preconditions: a reference to the file. */
function reclaimFile(files: FileTable, id: number, want: number): number {
  const mem = cacheMem(files);
  let freed = 0;
  let index = 0;
  // Each round moves `index` past a present page: bounded by the file's pages.
  while (freed < want) {
    rcuReadLock();
    const next = pageIndexNextPresent(files, id, index);
    rcuReadUnlock();
    if (next < 0) break;
    index = next + 1;
    const pfn = findGetPage(files, id, next);
    if (pfn === 0) continue;
    if (tryReclaimPage(files, mem, id, next, pfn)) freed++;
    mem.putPage(pfn);
  }
  return freed;
}

/** Removes the page if nobody uses it. Preconditions: the caller's reference to pfn (found at `index`). */
function tryReclaimPage(files: FileTable, mem: PhysMem, id: number, index: number, pfn: number): boolean {
  if ((Atomics.load(mem.flags, pfn) & BUSY) !== 0 || mem.mapcountOf(pfn) !== 0) return false;
  if (!trylockPage(mem, pfn)) return false;
  let done = false;
  if (stillCached(mem, pfn, id, index) && unused(mem, pfn)) {
    lockIPages(files, id);
    pageIndexClearLocked(files, id, index);
    done = unused(mem, pfn);
    if (done) pageIndexFinishEraseLocked(files, id, index);
    else pageIndexRestoreLocked(files, id, index, pfn);
    unlockIPages(files, id);
  }
  if (done) {
    mem.owner[pfn] = 0;
    mem.clearFlag(pfn, PG_READAHEAD);
    mem.putPage(pfn);
  }
  unlockPage(mem, pfn);
  return done;
}

/** Clean, not under writeback, unmapped, and referenced by the cache and the reclaimer only. */
function unused(mem: PhysMem, pfn: number): boolean {
  return (
    (Atomics.load(mem.flags, pfn) & (PG_DIRTY | PG_WRITEBACK)) === 0 &&
    mem.mapcountOf(pfn) === 0 &&
    mem.refcountOf(pfn) === RECLAIM_REFS
  );
}
