/**
 * read and write through the page cache (docs/fs.md, "File syscalls"; Linux's filemap_read and
 * generic_perform_write): the copy loops between a file's cached pages and the calling CPU's user
 * memory. The entries (src/kernel/file-syscalls.ts) check the arguments and hold the description's
 * f_pos_lock when they use f_pos; these take the file's i_rwsem (read: shared, as XFS's IOLOCK;
 * write: exclusive) and copy page by page through the CPU's Mmu, which may fault.
 *
 * The deadlock the file-system developers fear (read/write take file-system locks, then fault on
 * the user buffer; the fault takes mmap_lock, then file-system locks) cannot happen here because a
 * copy holds only f_pos_lock, i_rwsem and a page reference, never a page lock or invalidate_lock:
 *
 * - read: readCachePage gives a referenced up-to-date page (taking invalidate_lock and the page
 *   lock only inside, to create or read it, and dropping them before it returns); the copy to user
 *   memory runs after, holding the reference alone. A fault on a mapping of the same page locks it
 *   (if it must) without waiting for us.
 * - write: a page that is cached and up to date (or that must be read first: a partial write inside
 *   the file) is copied into directly, holding a reference only; PG_DIRTY is set after the copy,
 *   so a writeback that ran during it leaves the page dirty again. A page wholly overwritten, or
 *   past the end of the file, is not read: the bytes are copied into a private frame first (a
 *   fault on the source then waits on nothing of ours), and the filled frame is inserted up to
 *   date (addFilledPage). Linux locks such a page and copies with page faults disabled instead,
 *   retrying after a short copy; a private frame needs no retry.
 *
 * Size (i_size): read under i_rwsem, so stable for the whole call. A write grows it page by page,
 * after the page's copy and before its PG_DIRTY: a writeback that saw the page dirty writes it up
 * to the new size. Before growing it the tail of the old last page is zeroed (bytes a shared
 * mapping stored past the end must not become file data).
 *
 * The CPU's Mmu goes offline before anything that may block (i_rwsem, the page cache's locks and
 * I/O): a blocked CPU must not hold up another CPU's shootdown (docs/mem.md, deadlock rule). The
 * copy brings it back online.
 */
import { EEXIST, EFAULT, EFBIG } from '../errno.js';
import { cacheMem } from '../fs/cache-core.js';
import type { FileTable } from '../fs/file-table.js';
import {
  addFilledPage,
  findGetPage,
  findReadablePages,
  markPageDirty,
  READ_BATCH,
  readCachePage,
} from '../fs/page-cache.js';
import { MAX_PAGE_INDEX } from '../fs/page-index.js';
import { lockPage, unlockPage } from '../fs/page-lock.js';
import { lockdepUserCopyBegin, lockdepUserCopyEnd } from '../lockdep/index.js';
import type { PhysMem } from '../mem/frames.js';
import type { Mmu } from '../mem/mmu.js';
import { KIND_FILE, PAGE_SIZE, PG_UPTODATE } from '../mem/page.js';
import type { AddressSpace } from '../mm/address-space.js';

const P = PAGE_SIZE;
/** s_maxbytes: the first byte no file may hold (the page index stops at MAX_PAGE_INDEX). */
export const MAX_FILE_BYTES = (MAX_PAGE_INDEX + 1) * PAGE_SIZE;
/** writeFresh's answer when no private frame could be had: write through the cache instead. */
const NO_FRAME = -0x10000;
/** fileRead's pages in hand (this thread's: each CPU is one thread), references held. */
const batch = new Int32Array(READ_BATCH);

/**
 * Reads up to `len` bytes of the file of description `of` at byte `pos` into user memory at
 * `addr`: the bytes read (0 at or past the end of the file), or -EFAULT / -EIO / -ENOMEM when
 * nothing was read (a fault or an error after some bytes gives the short count). Readahead uses
 * the description's state. Preconditions: a reference to `of`; `pos` >= 0, `len` <= MAX_RW_COUNT;
 * no lock held but the description's f_pos_lock.
 */
export function fileRead(mm: AddressSpace, of: number, pos: number, addr: number, len: number): number {
  if (len === 0 || pos >= MAX_FILE_BYTES) return 0;
  const opens = mm.fds.opens;
  const files = mm.files;
  const id = opens.file(of);
  const mem = cacheMem(files);
  const mmu = mm.mmu();
  const ra = opens.raState;
  const raAt = opens.raAt(of);
  mm.mmuOffline();
  files.iRwsemLock(id, false);
  const copyBase = lockdepUserCopyBegin();
  let done = 0;
  let err = 0;
  try {
    const end = Math.min(pos + len, files.size(id));
    const last = Math.min(Math.floor((end - 1) / P), MAX_PAGE_INDEX);
    // Bounded: each round copies at least one byte or leaves.
    while (pos + done < end) {
      const at = pos + done;
      const index = Math.floor(at / P);
      // Cached pages are gathered and copied with this CPU's Mmu online; it goes offline only
      // before readCachePage, which may sleep (a sleeping CPU must not hold up a shootdown).
      let n =
        index <= last
          ? findReadablePages(files, id, index, Math.min(last - index + 1, READ_BATCH), batch, ra, raAt)
          : 0;
      if (n === 0) {
        mm.mmuOffline();
        const pfn = readCachePage(files, id, index, ra, raAt);
        if (pfn < 0) {
          err = pfn;
          break;
        }
        batch[0] = pfn;
        n = 1;
      }
      const want = Math.min(n * P - (at - index * P), end - at);
      const copied = copyOutPages(mmu, mem, n, addr + done, at - index * P, want);
      done += copied;
      if (copied !== want) {
        err = -EFAULT;
        break;
      }
    }
  } finally {
    lockdepUserCopyEnd(copyBase);
    files.iRwsemUnlock(id, false);
  }
  return done > 0 ? done : err;
}

/**
 * Copies `want` bytes from byte `off` of the first of the `n` pages in `batch` on into user memory
 * at `addr`, one copyOutFrom per run of pages in consecutive frames, and puts the n references:
 * the bytes copied (fewer than `want` when a user page faulted). Preconditions: a reference to
 * each page; 0 < `want` <= n * PAGE_SIZE - off.
 */
function copyOutPages(mmu: Mmu, mem: PhysMem, n: number, addr: number, off: number, want: number): number {
  let copied = 0;
  let i = 0;
  // Bounded: each round moves i forward by one run at least.
  while (i < n && copied < want) {
    let j = i + 1;
    while (j < n && batch[j] === batch[j - 1] + 1) j++;
    const from = batch[i] * P + (i === 0 ? off : 0);
    const len = Math.min((j - i) * P - (i === 0 ? off : 0), want - copied);
    const left = mmu.copyOutFrom(addr + copied, from, len);
    copied += len - left;
    if (left !== 0) break;
    i = j;
  }
  for (let k = 0; k < n; k++) mem.putPage(batch[k]);
  return copied;
}

/**
 * Writes up to `len` bytes from user memory at `addr` into the file of description `of` at byte
 * `pos` (at the end of the file when `append`): the bytes written, or -EFBIG (pos at or past
 * MAX_FILE_BYTES), -EFAULT / -EIO / -ENOMEM when nothing was written. With `setPos` the
 * description's f_pos becomes the byte after the last one written. Preconditions: a reference to
 * `of`, which is open for writing; `pos` >= 0, `len` <= MAX_RW_COUNT; no lock held but the
 * description's f_pos_lock (held when `setPos`).
 */
export function fileWrite(
  mm: AddressSpace,
  of: number,
  pos: number,
  addr: number,
  len: number,
  append: boolean,
  setPos: boolean,
): number {
  if (len === 0) return 0;
  const opens = mm.fds.opens;
  const files = mm.files;
  const id = opens.file(of);
  mm.mmuOffline();
  files.iRwsemLock(id, true);
  const copyBase = lockdepUserCopyBegin();
  try {
    const start = append ? files.size(id) : pos;
    if (start >= MAX_FILE_BYTES) return -EFBIG;
    const n = writeLocked(mm, files, id, start, addr, Math.min(len, MAX_FILE_BYTES - start));
    if (setPos && n > 0) opens.setPos(of, start + n);
    return n;
  } finally {
    lockdepUserCopyEnd(copyBase);
    files.iRwsemUnlock(id, true);
  }
}

/** The copy loop of fileWrite. Preconditions: i_rwsem held for write; start + n <= MAX_FILE_BYTES. */
function writeLocked(
  mm: AddressSpace,
  files: FileTable,
  id: number,
  start: number,
  addr: number,
  n: number,
): number {
  const mem = cacheMem(files);
  const mmu = mm.mmu();
  if (start + n > files.size(id)) zeroPastEof(files, mem, id, files.size(id));
  let done = 0;
  let err = 0;
  // Bounded: each round copies at least one byte or leaves.
  while (done < n) {
    const at = start + done;
    const index = Math.floor(at / P);
    const off = at - index * P;
    const chunk = Math.min(P - off, n - done);
    mm.mmuOffline();
    const r = writePage(files, mem, mmu, id, index, off, chunk, addr + done);
    if (r > 0) done += r;
    if (r !== chunk) {
      err = r > 0 ? 0 : r === 0 ? -EFAULT : r;
      break;
    }
  }
  return done > 0 ? done : err;
}

/**
 * Copies `chunk` bytes from user memory at `src` into page `index` at `off`, grows i_size to
 * cover them and marks the page dirty: the bytes copied (0: the first byte faulted), or -errno.
 */
function writePage(
  files: FileTable,
  mem: PhysMem,
  mmu: Mmu,
  id: number,
  index: number,
  off: number,
  chunk: number,
  src: number,
): number {
  let pfn = findGetPage(files, id, index);
  if (pfn !== 0 && (Atomics.load(mem.flags, pfn) & PG_UPTODATE) === 0) {
    mem.putPage(pfn); // being read by its creator: readCachePage waits for it below
    pfn = 0;
  }
  if (pfn === 0 && (chunk === P || index * P >= files.size(id))) {
    const r = writeFresh(files, mem, mmu, id, index, off, chunk, src);
    if (r !== NO_FRAME) return r;
  }
  if (pfn === 0) pfn = readCachePage(files, id, index);
  if (pfn < 0) return pfn;
  const copied = chunk - mmu.copyInTo(src, pfn * P + off, chunk);
  if (copied > 0) commitPage(files, id, pfn, index * P + off + copied);
  mem.putPage(pfn);
  return copied;
}

/**
 * The write of a page that needs no read (wholly overwritten, or past the end of the file): the
 * user's bytes go into a private zeroed frame, which then becomes the cached page. If a page
 * appeared there meanwhile (a fault or readahead made it), or the copy stopped short inside a
 * page the file holds bytes of, the copied bytes are moved into the cached page (read if need
 * be) instead. The bytes copied, -errno, or NO_FRAME (no frame: the caller writes through the
 * cache).
 */
function writeFresh(
  files: FileTable,
  mem: PhysMem,
  mmu: Mmu,
  id: number,
  index: number,
  off: number,
  chunk: number,
  src: number,
): number {
  const fresh = mem.allocFrame(KIND_FILE, 0, 0);
  if (fresh === 0) return NO_FRAME;
  const copied = chunk - mmu.copyInTo(src, fresh * P + off, chunk);
  const end = index * P + off + copied;
  let r = copied;
  if (copied > 0) {
    // Every byte of the page is known: ours, or zeros past the end of the file.
    const whole = copied === P || index * P >= files.size(id);
    const added = whole ? addFilledPage(files, id, index, fresh) : -EEXIST;
    if (added === 0) commitPage(files, id, fresh, end);
    else if (added === -EEXIST) r = mergeInto(files, mem, id, index, fresh, off, copied, end);
    else r = added;
  }
  mem.putPage(fresh);
  return r;
}

/** Moves `copied` bytes at `off` of private frame `fresh` into cached page `index`: `copied` or -errno. */
function mergeInto(
  files: FileTable,
  mem: PhysMem,
  id: number,
  index: number,
  fresh: number,
  off: number,
  copied: number,
  end: number,
): number {
  const pfn = readCachePage(files, id, index);
  if (pfn < 0) return pfn;
  mem.bytes.copyWithin(pfn * P + off, fresh * P + off, fresh * P + off + copied);
  commitPage(files, id, pfn, end);
  mem.putPage(pfn);
  return copied;
}

/**
 * After a copy into cached page pfn that ends at byte `end`: i_size grows to `end` (first), then
 * PG_DIRTY is set. Preconditions: i_rwsem held for write; a reference to pfn, cached, up to date.
 */
function commitPage(files: FileTable, id: number, pfn: number, end: number): void {
  if (end > files.size(id)) files.setSizeLocked(id, end);
  markPageDirty(files, pfn);
}

/**
 * Zeroes the cached last page of the file past `size` (bytes a shared mapping may have stored
 * beyond the end), before the size grows over them. Preconditions: i_rwsem held for write.
 */
export function zeroPastEof(files: FileTable, mem: PhysMem, id: number, size: number): void {
  const off = size % P;
  if (off === 0) return;
  const index = Math.floor(size / P);
  const pfn = findGetPage(files, id, index);
  if (pfn === 0) return;
  lockPage(mem, pfn);
  if (mem.owner[pfn] === id && (Atomics.load(mem.flags, pfn) & PG_UPTODATE) !== 0)
    mem.bytes.fill(0, pfn * P + off, (pfn + 1) * P);
  unlockPage(mem, pfn);
  mem.putPage(pfn);
}
