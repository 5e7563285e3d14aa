/**
 * msync(2) (mm/msync.c): flags and range checks, holes (ENOMEM, at once for plain MS_ASYNC),
 * MS_INVALIDATE over a locked VMA (EBUSY), and MS_SYNC's write-back of each shared file mapping's
 * range. MS_ASYNC does nothing more (Linux since 2.6.19: dirty pages are tracked by the page cache
 * already); MS_INVALIDATE nothing more either (mappings are coherent with the cache).
 *
 * MS_SYNC on a VM_SHARED VMA with a file, as Linux: take a file reference under mmap_lock (R),
 * drop mmap_lock, write back the file range the VMA covers ([fstart, fend] from vm_pgoff) and sync
 * the backing (vfs_fsync_range with datasync), put the file, retake mmap_lock and look the next
 * VMA up again. The walk (`msyncReadLocked`) stops at such a VMA with MSYNC_FSYNC and the work in
 * this CPU's `msyncState`; the syscall entry runs `msyncFsync` with no lock held and calls the
 * walk again from where it stopped (AddressSpace.sysMsync).
 */
import { EBUSY, EINVAL, ENOMEM } from '../../errno.js';
import { backingOf } from '../../fs/backing.js';
import type { FileTable } from '../../fs/file-table.js';
import { writebackRange } from '../../fs/page-cache.js';
import { CHECKED, type SyscallContext } from '../context.js';
import { MS_ASYNC, MS_INVALIDATE, MS_SYNC, PAGE_SIZE, VM_LOCKED, VM_SHARED } from '../vm-flags.js';
import { addWrap, pageAlign } from './args.js';

/** msyncReadLocked's answer when a file range must be written back with mmap_lock dropped. */
export const MSYNC_FSYNC = 1;

/**
 * This CPU's msync in progress (each CPU is one thread; no lock): where the walk goes on, the
 * hole error so far, and the file range to write back (`file` holds a reference while set).
 */
export const msyncState = { start: 0, unmapped: 0, file: 0, fstart: 0, fend: 0 };

/** msync's checks before mmap_lock: CHECKED, 0 (nothing to do) or -errno. */
export function msyncCheck(start: number, len: number, flags: number): number {
  if ((flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) !== 0) return -EINVAL;
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  if ((flags & MS_ASYNC) !== 0 && (flags & MS_SYNC) !== 0) return -EINVAL;
  const end = addWrap(start, pageAlign(len));
  if (end < start) return -ENOMEM;
  if (end === start) return 0;
  return CHECKED;
}

/** Starts an msync of the range from `start` (before the first msyncReadLocked). */
export function msyncBegin(start: number): void {
  msyncState.start = start;
  msyncState.unmapped = 0;
  msyncState.file = 0;
}

/**
 * The msync walk from msyncState.start: the result (0 or -errno), or MSYNC_FSYNC with a file range
 * recorded. Preconditions: msyncCheck passed; msyncBegin called; mmap_lock held for read.
 */
export function msyncReadLocked(mm: SyscallContext, addr: number, len: number, flags: number): number {
  const end = addWrap(addr, pageAlign(len));
  const st = msyncState;
  const out = { first: 0, last: 0, value: 0 };
  const a = mm.arena;
  // Bounded: each round moves start to a VMA's end.
  for (let round = 0; round <= mm.config.maxMapCount + 1; round++) {
    const h = st.start > 2 ** 53 - 1 ? 0 : mm.index.next(st.start, 2 ** 53 - 1, out);
    if (h === 0) return -ENOMEM;
    if (st.start < a.start(h)) {
      if (flags === MS_ASYNC) return -ENOMEM;
      st.start = a.start(h);
      if (st.start >= end) return -ENOMEM;
      st.unmapped = -ENOMEM;
    }
    if ((flags & MS_INVALIDATE) !== 0 && (a.flags(h) & VM_LOCKED) !== 0) return -EBUSY;
    const file = a.file(h);
    const fstart = st.start - a.start(h) + a.pgoff(h) * PAGE_SIZE;
    const fend = fstart + (Math.min(end, a.end(h)) - st.start) - 1;
    st.start = a.end(h);
    if ((flags & MS_SYNC) !== 0 && file !== 0 && (a.flags(h) & VM_SHARED) !== 0) {
      mm.files.get(file);
      st.file = file;
      st.fstart = fstart;
      st.fend = fend;
      return MSYNC_FSYNC;
    }
    if (st.start >= end) return st.unmapped;
  }
  return st.unmapped;
}

/**
 * vfs_fsync_range(file, fstart, fend, datasync) for the recorded range, then the file reference
 * put: 0 or -errno (the first writeback error, else the backing's sync error). Preconditions: no
 * lock held (it does I/O).
 */
export function msyncFsync(files: FileTable): number {
  const st = msyncState;
  const file = st.file;
  st.file = 0;
  try {
    const first = Math.floor(st.fstart / PAGE_SIZE);
    const last = Math.floor(st.fend / PAGE_SIZE);
    const r = writebackRange(files, file, first, last);
    const s = backingOf(files, file).sync(files, file, true);
    return r < 0 ? r : s;
  } finally {
    files.put(file);
  }
}
