/**
 * ftruncate and fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) (docs/fs.md, "File
 * syscalls"; Linux's truncate_setsize + truncate_pagecache, and a file system's punch_hole). Both
 * hold the file's i_rwsem for write (no read, write or other truncate runs) and then its
 * invalidate_lock for write (no fault, read or readahead can create or read a page in), so that
 * once they return no CPU can find the old bytes of the range again.
 *
 * Truncate to a smaller size: i_size first (a fault past it is SIGBUS from now on, and a writeback
 * starting now writes nothing past it), then the cache: every page past the new end is unmapped
 * from every mapping, private copies too (truncateCacheRange), and the part of the new last page
 * past the end is zeroed under its page lock after any writeback of it ended; then the backing
 * shrinks (setSize). A writeback that read the old size had set PG_WRITEBACK before, and was
 * waited for, so it cannot write past the new end after the backing shrank. Truncate to a larger
 * size: the backing grows first (an error changes nothing), the old last page's bytes past the old
 * end are zeroed, then i_size grows.
 *
 * Punch: the whole pages of the range leave the cache (punchCacheRange: mappings unmapped, private
 * copies kept, as Linux), the partial pages at its ends are zeroed over the range (page lock,
 * writeback waited for), then the backing punches. A range past the end of the file is a no-op
 * (KEEP_SIZE).
 *
 * An I/O error from the backing after the cache was changed (shrink, punch) is returned with the
 * cache already changed, as Linux's file systems do (they too drop the page cache first): the size
 * stays the new one, and a punched range may read its old bytes again once they are re-read from
 * the backing.
 */
import { backingOf } from '../fs/backing.js';
import { cacheMem } from '../fs/cache-core.js';
import type { FileTable } from '../fs/file-table.js';
import { findGetPage, punchCacheRange, truncateCacheRange } from '../fs/page-cache.js';
import { MAX_PAGE_INDEX } from '../fs/page-index.js';
import { lockPage, unlockPage, waitOnPageWriteback } from '../fs/page-lock.js';
import type { PhysMem } from '../mem/frames.js';
import { PAGE_SIZE, PG_UPTODATE } from '../mem/page.js';
import { zeroPastEof } from './file-rw.js';

const P = PAGE_SIZE;

/**
 * Sets file `id`'s size to `len`: 0 or -errno (the backing's, e.g. -EIO). Preconditions: a
 * reference to the file; 0 <= len <= MAX_FILE_BYTES; no lock held.
 */
export function fileTruncate(files: FileTable, id: number, len: number): number {
  files.iRwsemLock(id, true);
  const inv = files.invalidateLock(id);
  inv.downWrite();
  try {
    const old = files.size(id);
    if (len === old) return 0;
    if (len > old) return growLocked(files, id, old, len);
    files.setSizeLocked(id, len);
    truncateCacheRange(files, id, Math.ceil(len / P), MAX_PAGE_INDEX);
    if (len % P !== 0) zeroInPage(files, cacheMem(files), id, Math.floor(len / P), len % P, P);
    return backingOf(files, id).setSize(files, id, len);
  } finally {
    inv.upWrite();
    files.iRwsemUnlock(id, true);
  }
}

/** Preconditions: i_rwsem and invalidate_lock held for write; len > old. */
function growLocked(files: FileTable, id: number, old: number, len: number): number {
  const r = backingOf(files, id).setSize(files, id, len);
  if (r < 0) return r;
  zeroPastEof(files, cacheMem(files), id, old);
  files.setSizeLocked(id, len);
  return 0;
}

/**
 * Punches [offset, offset + len) of file `id` (KEEP_SIZE: the size stays): afterwards it reads as
 * zeros. 0 or -errno (the backing's). Preconditions: a reference to the file; offset >= 0,
 * len > 0, offset + len <= MAX_FILE_BYTES; no lock held.
 */
export function filePunch(files: FileTable, id: number, offset: number, len: number): number {
  files.iRwsemLock(id, true);
  const inv = files.invalidateLock(id);
  inv.downWrite();
  try {
    const size = files.size(id);
    if (offset >= size) return 0;
    const end = Math.min(offset + len, size);
    const mem = cacheMem(files);
    const first = Math.ceil(offset / P);
    const last = Math.floor(end / P) - 1; // the last page wholly inside
    if (first <= last) punchCacheRange(files, id, first, last);
    const headPage = Math.floor(offset / P);
    if (offset % P !== 0 || end - offset < P)
      zeroInPage(files, mem, id, headPage, offset % P, Math.min(P, end - headPage * P));
    const tailPage = Math.floor(end / P);
    if (end % P !== 0 && tailPage !== headPage) zeroInPage(files, mem, id, tailPage, 0, end % P);
    return backingOf(files, id).punch(files, id, offset, end - offset);
  } finally {
    inv.upWrite();
    files.iRwsemUnlock(id, true);
  }
}

/**
 * Zeroes bytes [from, to) of cached page `index` (if cached) under its page lock, after any
 * writeback of it ended (so none writes its old bytes afterwards). Preconditions: i_rwsem and
 * invalidate_lock held for write.
 */
function zeroInPage(
  files: FileTable,
  mem: PhysMem,
  id: number,
  index: number,
  from: number,
  to: number,
): void {
  const pfn = findGetPage(files, id, index);
  if (pfn === 0) return;
  lockPage(mem, pfn);
  if (mem.owner[pfn] === id && (Atomics.load(mem.flags, pfn) & PG_UPTODATE) !== 0) {
    waitOnPageWriteback(mem, pfn);
    mem.bytes.fill(0, pfn * P + from, pfn * P + to);
  }
  unlockPage(mem, pfn);
  mem.putPage(pfn);
}
