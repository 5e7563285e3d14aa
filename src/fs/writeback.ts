/**
 * Writeback (docs/fs.md, "Writeback"; Linux's write_cache_pages + errseq): writes a file's dirty
 * cached pages to its backing.
 *
 * Per dirty page: take a reference (findGetPage) and the page lock; if it is still cached, wait
 * for a writeback already running on it, then write-protect it in every mapping (the rmap seam's
 * mkcleanPage, so the next store faults and dirties it again), clear PG_DIRTY, set PG_WRITEBACK,
 * unlock, write it (at most up to the file's size) holding no lock, end writeback. A failed write
 * records the error in the file's errseq (FILE_WB_ERR, errseq.ts) and marks the page dirty again:
 * better than Linux, which marks such pages clean and so loses their data, a later fsync can
 * still write it. The error is then reported once to every open file description that sampled
 * the errseq before it happened (fileCheckAndAdvanceWbErr).
 *
 * Memory files (BACKING_MEM) have nothing to write to: their pages stay dirty and writeback is a
 * no-op. The gang lookup visits every cached page of the range (there are no dirty tags in the
 * index): the cost of an fsync is proportional to the cached pages of the range.
 */
import { EINVAL } from '../errno.js';
import type { PhysMem } from '../mem/frames.js';
import { PAGE_SIZE, PG_DIRTY, PG_WRITEBACK } from '../mem/page.js';
import { rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import { BACKING_MEM, type Backing, backingOf } from './backing.js';
import { cacheMem, findGetPage, stillCached } from './cache-core.js';
import { errseqCheckAndAdvance, errseqSample, errseqSet } from './errseq.js';
import { FILE_WB_ERR, type FileTable } from './file-table.js';
import { MAX_PAGE_INDEX, pageIndexNextPresent } from './page-index.js';
import {
  endPageWriteback,
  lockPage,
  setPageWriteback,
  unlockPage,
  waitOnPageWriteback,
} from './page-lock.js';
import { rmap } from './rmap-seam.js';

/**
 * Writes every dirty cached page of [first, last] (page indexes): 0, or the first error of this
 * call (-EIO, ...; also recorded in the errseq), or -EINVAL for a bad range (nothing done).
 * Preconditions: a reference to the file; no lock but i_rwsem (the caller's choice).
 */
export function writebackRange(files: FileTable, id: number, first: number, last: number): number {
  if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 0 && first <= last)) return -EINVAL;
  if (files.backing(id) === BACKING_MEM) return 0;
  const backing = backingOf(files, id);
  const mem = cacheMem(files);
  const end = Math.min(last, MAX_PAGE_INDEX);
  let err = 0;
  // Each round moves `index` past a present page: bounded by the cached pages of the range.
  for (let index = first; index <= end; ) {
    rcuReadLock();
    const next = pageIndexNextPresent(files, id, index);
    rcuReadUnlock();
    if (next < 0 || next > end) break;
    index = next + 1;
    const r = writebackPage(files, mem, backing, id, next);
    if (r < 0 && err === 0) err = r;
  }
  return err;
}

function writebackPage(files: FileTable, mem: PhysMem, backing: Backing, id: number, index: number): number {
  const pfn = findGetPage(files, id, index);
  if (pfn === 0) return 0;
  if ((Atomics.load(mem.flags, pfn) & (PG_DIRTY | PG_WRITEBACK)) === 0) {
    mem.putPage(pfn);
    return 0;
  }
  lockPage(mem, pfn);
  if (!stillCached(mem, pfn, id, index)) {
    unlockPage(mem, pfn);
    mem.putPage(pfn);
    return 0;
  }
  waitOnPageWriteback(mem, pfn);
  if (!mem.testFlag(pfn, PG_DIRTY)) {
    unlockPage(mem, pfn);
    mem.putPage(pfn);
    return 0;
  }
  rmap.ops.mkcleanPage(files, id, index, pfn);
  mem.clearFlag(pfn, PG_DIRTY);
  setPageWriteback(mem, pfn);
  unlockPage(mem, pfn);
  const r = writeOut(files, mem, backing, id, index, pfn);
  if (r < 0) {
    mem.setFlag(pfn, PG_DIRTY);
    errseqSet(files.words, files.word(id, FILE_WB_ERR), r);
  }
  endPageWriteback(mem, pfn);
  mem.putPage(pfn);
  return r;
}

/** The page's bytes up to the file's size (none past it: a truncate is racing). Preconditions: PG_WRITEBACK set by the caller. */
function writeOut(
  files: FileTable,
  mem: PhysMem,
  backing: Backing,
  id: number,
  index: number,
  pfn: number,
): number {
  const len = Math.min(PAGE_SIZE, files.size(id) - index * PAGE_SIZE);
  if (len <= 0) return 0;
  const at = pfn * PAGE_SIZE;
  return backing.writePage(files, id, index, mem.bytes.subarray(at, at + PAGE_SIZE), len);
}

/** filemap_sample_wb_err: the cursor an open file description keeps (f_wb_err), taken at open. */
export function fileSampleWbErr(files: FileTable, id: number): number {
  return errseqSample(files.words, files.word(id, FILE_WB_ERR));
}

/**
 * file_check_and_advance_wb_err: the writeback error since the description's cursor
 * (sinceWords[sinceAt]), once: the cursor moves past it. 0 when there is none.
 */
export function fileCheckAndAdvanceWbErr(
  files: FileTable,
  id: number,
  sinceWords: Int32Array,
  sinceAt: number,
): number {
  return errseqCheckAndAdvance(files.words, files.word(id, FILE_WB_ERR), sinceWords, sinceAt);
}
