/**
 * mincore(2) (mm/mincore.c): whether each page of [start, start + len) is resident. The start must
 * be page-aligned (EINVAL); the range must lie in user space and be mapped without a hole
 * (ENOMEM); `vec` must have room for every page (EFAULT, as a user buffer too small would).
 * A page is resident when the page tables map it (the zero page included, as Linux's
 * mincore_pte_range counts any present entry); a page of a file or shared mapping that is not
 * mapped is resident when it is in the file's page cache (mincore_page), as Linux reports.
 */
import { EFAULT, EINVAL, ENOMEM } from '../../errno.js';
import { pageIndexLookup } from '../../fs/page-index.js';
import { PG_UPTODATE } from '../../mem/page.js';
import { USER_ADDR_LIMIT } from '../../mem/pte.js';
import { rcuReadLock, rcuReadUnlock } from '../../sync/rcu.js';
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
    const file = a.file(h);
    const first = a.pgoff(h) - a.start(h) / PAGE_SIZE;
    for (; addr < stop; addr += PAGE_SIZE) {
      const mapped = mm.pt.lookupPte(addr) !== 0;
      vec[(addr - start) / PAGE_SIZE] =
        mapped || (file !== 0 && cached(mm, file, first + addr / PAGE_SIZE)) ? 1 : 0;
    }
  }
  return 0;
}

/** mincore_page: page `index` of `file` is in its page cache and up to date. */
function cached(mm: SyscallContext, file: number, index: number): boolean {
  if (index < 0 || index > 0xffffffff) return false;
  rcuReadLock();
  const pfn = pageIndexLookup(mm.files, file, index);
  const resident = pfn !== 0 && (Atomics.load(mm.mem.flags, pfn) & PG_UPTODATE) !== 0;
  rcuReadUnlock();
  return resident;
}
