/**
 * The page cache's primitives over the page index (docs/fs.md, "The page cache"): the speculative
 * lookup that takes a reference without a lock, and the removal of a page from its file's cache.
 * The read path (page-cache.ts), writeback, truncate and reclaim are built on these.
 *
 * A cached page: a KIND_FILE frame with OWNER = the file, INDEX = its page index (Int32: indexes
 * from 2^31 on are stored wrapped), one reference held by the cache, present in the file's index.
 * OWNER is cleared when the page leaves the cache (Linux's folio->mapping = NULL), under the page
 * lock: whoever locks a page and finds OWNER still set knows it is still cached, and that its file
 * still lives (freeing a file's cache removes every page under its lock first).
 */
import { VmAssertionError } from '../assert.js';
import type { PhysMem } from '../mem/frames.js';
import { PG_DIRTY, PG_READAHEAD } from '../mem/page.js';
import { rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import type { FileTable } from './file-table.js';
import { lockIPages, pageIndexEraseLocked, pageIndexSlot, unlockIPages } from './page-index.js';

/** Rounds of the speculative get before it gives up (each lost race is a concurrent change). */
const GET_ROUNDS = 64;

/** The table's PhysMem; throws for a table made without one (its files cannot cache pages). */
export function cacheMem(files: FileTable): PhysMem {
  const mem = files.mem;
  if (mem === null) throw new Error('page cache: this file table was created without a PhysMem');
  return mem;
}

/**
 * filemap_get_entry: the pfn cached at `index` with one more reference (the caller puts it), or
 * 0. No lock: under RCU, load the slot, take a reference unless the frame is free, load the slot
 * again (getSlotPage); the same pfn means the reference is to the cached page, another value
 * means it changed meanwhile: retry. The page may be locked or not yet up to date (being read).
 */
export function findGetPage(files: FileTable, id: number, index: number): number {
  const mem = cacheMem(files);
  const nodes = files.cacheNodes.i32;
  rcuReadLock();
  try {
    for (let round = 0; round < GET_ROUNDS; round++) {
      const at = pageIndexSlot(files, id, index);
      if (at < 0) return 0;
      const pfn = getSlotPage(mem, nodes, at);
      if (pfn >= 0) return pfn;
    }
  } finally {
    rcuReadUnlock();
  }
  throw new VmAssertionError(`findGetPage: file ${id} page ${index} changed ${GET_ROUNDS} times in a row`);
}

/**
 * One round of the speculative get at leaf slot word `at` of `nodes` (files.cacheNodes.i32): the
 * pfn in the slot with one more reference (the caller puts it), 0 when the slot is empty, or -1
 * when it changed under us (look again). Load the slot, take a reference unless the frame is
 * free, load the slot again: the same pfn means the reference is to the cached page (a leaf
 * holding a present pfn is never unlinked, so the slot still is the page's). Preconditions: an
 * RCU read section, entered before `at` was found.
 */
export function getSlotPage(mem: PhysMem, nodes: Int32Array, at: number): number {
  const pfn = Atomics.load(nodes, at);
  if (pfn === 0) return 0;
  if (!mem.getPageUnlessZero(pfn)) return -1;
  if (Atomics.load(nodes, at) === pfn) return pfn;
  mem.putPage(pfn);
  return -1;
}

/**
 * Whether `pfn`, locked by the caller, is still file `id`'s page `index` (not removed from the
 * cache since the caller found it). Preconditions: the page lock.
 */
export function stillCached(mem: PhysMem, pfn: number, id: number, index: number): boolean {
  return mem.owner[pfn] === id && mem.index[pfn] === (index | 0);
}

/**
 * __filemap_remove_folio + the cache's put: erases page `index` (= pfn) from the index, clears
 * OWNER and the page's cache-only state (dirty: the data is being thrown away; readahead mark) and
 * drops the cache's reference. Preconditions: the page lock held (it stays held: the caller's own
 * reference keeps the frame), not under writeback, still cached.
 */
export function deleteFromCache(files: FileTable, id: number, index: number, pfn: number): void {
  const mem = cacheMem(files);
  lockIPages(files, id);
  const old = pageIndexEraseLocked(files, id, index);
  unlockIPages(files, id);
  if (old !== pfn)
    throw new VmAssertionError(`deleteFromCache: file ${id} page ${index} held ${old}, not pfn ${pfn}`);
  mem.owner[pfn] = 0;
  mem.clearFlag(pfn, PG_DIRTY | PG_READAHEAD);
  mem.putPage(pfn);
}
