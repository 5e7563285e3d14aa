/**
 * Helpers of the reverse-map tests (rmap.test.ts, rmap-cpus.test.ts, tasks/rmap-race.ts): file
 * pages put into an address space's page tables through the page-table API (what a file fault
 * will do), the i_mmap entries of a file, and the present PTEs under a file's VMAs.
 */

import {
  iMmapEntryMm,
  iMmapEntryVma,
  iMmapFirst,
  iMmapLockRead,
  iMmapNext,
  iMmapUnlockRead,
} from '../../src/fs/i-mmap.js';
import { readCachePage } from '../../src/fs/page-cache.js';
import type { Process } from '../../src/kernel/process.js';
import { KIND_ANON } from '../../src/mem/page.js';
import {
  makePte,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITE,
  pteIndex,
} from '../../src/mem/pte.js';
import type { AddressSpace } from '../../src/mm/address-space.js';
import { PAGE_SIZE } from '../../src/mm/vm-flags.js';
import { mmapReadLock, mmapReadUnlock } from '../../src/mm/vma-lock.js';

/** The (mm id, record) pairs of file `id`'s i_mmap list, in list order. */
export function iMmapList(p: Process, id: number): Array<[number, number]> {
  const files = p.kernel.files;
  const out: Array<[number, number]> = [];
  iMmapLockRead(files, id);
  try {
    for (let e = iMmapFirst(files, id); e !== 0; e = iMmapNext(files, e)) {
      out.push([iMmapEntryMm(files, e), iMmapEntryVma(files, e)]);
    }
  } finally {
    iMmapUnlockRead(files, id);
  }
  return out;
}

/**
 * Maps every page of [start, end) of file `id`'s mapping at `start` (file page `pgoff` there) in
 * mm: the cached page, one reference and one map count per PTE (a fault's), writable with `write`.
 * Preconditions: no other CPU changes mm's VMAs meanwhile (mmap_lock (R) is held here).
 */
export function mapFilePages(
  mm: AddressSpace,
  id: number,
  start: number,
  end: number,
  pgoff: number,
  write = false,
): number[] {
  const pfns: number[] = [];
  mmapReadLock(mm.locks);
  try {
    for (let addr = start; addr < end; addr += PAGE_SIZE) {
      const pfn = readCachePage(mm.files, id, pgoff + (addr - start) / PAGE_SIZE);
      if (pfn <= 0) throw new Error(`readCachePage: ${pfn}`);
      const t = mm.pt.allocPte(addr);
      if (t <= 0) throw new Error('allocPte failed');
      const flags = PTE_PRESENT | PTE_USER | PTE_ACCESSED | (write ? PTE_WRITE | PTE_DIRTY : 0);
      const old = mm.pt.setPte(t, pteIndex(addr), makePte(pfn, flags));
      if (old !== 0) throw new Error(`a PTE was there already at ${addr.toString(16)}`);
      mm.mem.incMapcount(pfn);
      pfns.push(pfn);
    }
  } finally {
    mmapReadUnlock(mm.locks);
  }
  return pfns;
}

/** Maps a new anonymous page (a private copy) at addr: its pfn. Same preconditions. */
export function mapAnonPage(mm: AddressSpace, addr: number, anon: number, index: number): number {
  const pfn = mm.mem.allocFrame(KIND_ANON, anon, index);
  if (pfn === 0) throw new Error('allocFrame failed');
  const t = mm.pt.allocPte(addr);
  mm.pt.setPte(
    t,
    pteIndex(addr),
    makePte(pfn, PTE_PRESENT | PTE_USER | PTE_ACCESSED | PTE_WRITE | PTE_DIRTY),
  );
  mm.mem.incMapcount(pfn);
  return pfn;
}

/** Present PTEs in [start, end) of mm (a lock-free look: call it with the page tables quiet). */
export function presentPtes(mm: AddressSpace, start: number, end: number): number {
  let n = 0;
  mm.pt.forEachPresent(start, end, () => {
    n++;
  });
  return n;
}
