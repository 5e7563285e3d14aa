/**
 * What the page cache needs from the mm layer (docs/fs.md, "The rmap seam"): src/fs sits below
 * src/mm and cannot import it, so mm installs these when it loads (per thread, like the lock
 * validator's hooks); until then they do nothing, which is right while no file page can be mapped.
 *
 * - unmapMappingRange(files, id, first, last, evenCows): unmap_mapping_range over pages
 *   [first, last] of the file in every address space mapping it (its i_mmap entries), and with
 *   evenCows the private copies made from them too (truncate; punch keeps them). Called by
 *   truncate and punch before they remove pages, and again per page that is still mapped then.
 * - mkcleanPage(files, id, index, pfn): page_mkclean: write-protects (and cleans) every mapping of
 *   the page, so the next store through any of them faults and dirties it again. Called by
 *   writeback under the page lock, before PG_DIRTY is cleared.
 *
 * Both are called holding the page lock or invalidate_lock (W), never i_pages: they take i_mmap
 * and page-table locks, which come after the page lock and before i_pages in the lock order.
 */
import type { FileTable } from './file-table.js';

export interface RmapOps {
  unmapMappingRange(files: FileTable, id: number, first: number, last: number, evenCows: boolean): void;
  mkcleanPage(files: FileTable, id: number, index: number, pfn: number): void;
}

const none: RmapOps = {
  unmapMappingRange() {},
  mkcleanPage() {},
};

/** The installed operations (the page cache calls `rmap.ops.x(...)`). */
export const rmap: { ops: RmapOps } = { ops: none };

/** Installs mm's reverse-map operations on this thread (null: back to the no-ops). */
export function installRmap(ops: RmapOps | null): void {
  rmap.ops = ops ?? none;
}
