/**
 * mincore(2) (mm/mincore.c): whether each page of [start, start + len) is resident. The start must
 * be page-aligned (EINVAL); the range must lie in user space and be mapped without a hole
 * (ENOMEM); `vec` must have room for every page (EFAULT, as a user buffer too small would).
 * A page is resident when the page tables map it (the zero page included, as Linux's
 * mincore_pte_range counts any present entry); file pages have no page cache yet, so 0.
 */
import { EFAULT, EINVAL, ENOMEM } from '../../errno.js';
import { USER_ADDR_LIMIT } from '../../mem/pte.js';
import type { SyscallContext } from '../context.js';
import { PAGE_SIZE } from '../vm-flags.js';
import { pageAlign } from './args.js';

/** The mincore walk: 0 or -errno. Preconditions: mmap_lock held for read. */
export function mincoreReadLocked(mm: SyscallContext, start: number, len: number, vec: Uint8Array): number {
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  const bytes = pageAlign(len);
  if (len !== 0 && bytes === 0) return -ENOMEM;
  if (start > USER_ADDR_LIMIT || bytes > USER_ADDR_LIMIT - start) return -ENOMEM;
  const pages = bytes / PAGE_SIZE;
  if (vec.length < pages) return -EFAULT;
  const a = mm.arena;
  const out = { first: 0, last: 0, value: 0 };
  let addr = start;
  const end = start + bytes;
  while (addr < end) {
    const h = mm.index.next(addr, end - 1, out);
    if (h === 0 || a.start(h) > addr) return -ENOMEM;
    const stop = Math.min(end, a.end(h));
    for (; addr < stop; addr += PAGE_SIZE)
      vec[(addr - start) / PAGE_SIZE] = mm.pt.lookupPte(addr) !== 0 ? 1 : 0;
  }
  return 0;
}
