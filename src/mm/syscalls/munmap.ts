/**
 * munmap(2): do_vmi_munmap -> do_vmi_align_munmap (mm/vma.c). Unmapping a range with nothing in
 * it succeeds; holes inside the range are fine; splitting a VMA in the middle is refused with
 * ENOMEM at max_map_count.
 */
import { EINVAL } from '../../errno.js';
import type { SyscallContext } from '../context.js';
import { PAGE_SIZE } from '../vm-flags.js';
import { pageAlign } from './args.js';

/**
 * munmap under mmap_lock (its checks are do_vmi_munmap's, which mremap shares). Like Linux's
 * munmap(2), the page tables of the unmapped range are zapped and freed after mmap_lock is
 * downgraded to read (SyscallContext.zapAfterDowngrade): the VMAs are gone by then, so no fault
 * can reach the range.
 */
export function munmapLocked(mm: SyscallContext, start: number, len: number): number {
  mm.zapAfterDowngrade = true;
  return doVmiMunmap(mm, start, len);
}

/** do_vmi_munmap (munmap, mremap's shrink): checks the request, then unmaps; 0 or -errno. */
export function doVmiMunmap(mm: SyscallContext, start: number, len: number): number {
  const task = mm.config.taskSize;
  if (start % PAGE_SIZE !== 0 || start > task || len > task - start) return -EINVAL;
  const end = start + pageAlign(len);
  if (end === start) return -EINVAL;
  return doMunmap(mm, start, end);
}

/** The unmap of an aligned, valid range (also used by mremap and brk): 0 or -ENOMEM. */
export function doMunmap(mm: SyscallContext, start: number, end: number): number {
  const first = mm.txn.intersecting(start, end);
  if (first < 0) return 0;
  const r = mm.layer.unmapRange(first, start, end);
  return Math.min(r, 0);
}
