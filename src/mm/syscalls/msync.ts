/**
 * msync(2) argument and range checks (mm/msync.c). Writing dirty pages back belongs to the page
 * cache; here msync validates flags, reports holes (ENOMEM, immediately for plain MS_ASYNC) and
 * refuses MS_INVALIDATE over locked VMAs (EBUSY).
 */
import { EBUSY, EINVAL, ENOMEM } from '../../errno.js';
import { CHECKED, type SyscallContext } from '../context.js';
import { MS_ASYNC, MS_INVALIDATE, MS_SYNC, PAGE_SIZE, VM_LOCKED } from '../vm-flags.js';
import { addWrap, pageAlign } from './args.js';

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

/** The msync walk. Preconditions: msyncCheck passed; mmap_lock held for read. */
export function msyncReadLocked(mm: SyscallContext, start: number, len: number, flags: number): number {
  return msyncWalk(mm, start, addWrap(start, pageAlign(len)), flags);
}

function msyncWalk(mm: SyscallContext, start: number, end: number, flags: number): number {
  const out = { first: 0, last: 0, value: 0 };
  const a = mm.arena;
  let unmapped = 0;
  for (;;) {
    const h = start > 2 ** 53 - 1 ? 0 : mm.index.next(start, 2 ** 53 - 1, out);
    if (h === 0) return -ENOMEM;
    if (start < a.start(h)) {
      if (flags === MS_ASYNC) return -ENOMEM;
      start = a.start(h);
      if (start >= end) return -ENOMEM;
      unmapped = -ENOMEM;
    }
    if ((flags & MS_INVALIDATE) !== 0 && (a.flags(h) & VM_LOCKED) !== 0) return -EBUSY;
    start = a.end(h);
    if (start >= end) return unmapped;
  }
}
