/**
 * Faults on private anonymous memory, page by page, into the real page tables and frames
 * (Linux's do_anonymous_page and do_wp_page for anonymous pages):
 *
 *   no entry, read, zero page on    map the shared zero page read-only (no frame, no reference)
 *   no entry, otherwise             a new zeroed frame, PG_ANON | PG_ANON_EXCLUSIVE, owner = the
 *                                   VMA's anon_vma; writable if the VMA is
 *   read-only entry, write          the zero page, or an anonymous page that is not exclusive:
 *                                   copied into a new exclusive frame; an exclusive one is reused;
 *                                   a non-exclusive one whose reference count is 1 (its other
 *                                   sharers after fork went away) is made exclusive and reused
 *                                   (Linux 5.19+ wp reuse, re-checked under the PTE lock)
 *
 *   writable clean entry, write    marked DIRTY (the Mmu writes only through WRITE | DIRTY entries)
 *
 *   unshare (mm.faultUnshare, with write: GUP's FAULT_FLAG_UNSHARE before a read-only pin)
 *                                   like a write, but an exclusive page is left as it is and a
 *                                   reused or copied page keeps (gets) a read-only entry
 *
 * A replaced page (copy-on-write) loses its map count at once; its reference is put only after a
 * TLB shootdown of the page (ptWork.deferPut; the caller runs ptWork.flushDeferred once it has
 * dropped the page-table lock, before the fault returns), so no CPU reads the old frame reused.
 * The frame is allocated before the page-table lock is taken; the entry is installed (or left,
 * if another CPU installed one meanwhile) under it. The caller has given the VMA its anon_vma
 * when the fault allocates (faultRange), and holds mmap_lock (R) and the mm's page_table_lock.
 */

import { ENOMEM } from '../errno.js';
import type { PhysMem } from '../mem/frames.js';
import { setMissHint } from '../mem/mmu.js';
import { KIND_ANON, PG_ANON_EXCLUSIVE, ZERO_PFN } from '../mem/page.js';
import type { PageTables } from '../mem/pgtable.js';
import {
  makePte,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITE,
  pteIndex,
  ptePfn,
} from '../mem/pte.js';
import type { SyscallContext } from './context.js';
import type { PageTableWork } from './pgtable-work.js';
import { PAGE_SIZE, VM_WRITE } from './vm-flags.js';

/** Faults [start, end) of anonymous VMA `slot` in: 0, or -ENOMEM (a frame or a table). */
export function faultAnonPages(
  mm: SyscallContext,
  slot: number,
  start: number,
  end: number,
  write: boolean,
): number {
  const t = mm.txn;
  const writable = (t.flags[slot] & VM_WRITE) !== 0;
  const owner = t.anon[slot];
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const index = t.pgoff[slot] + (addr - t.start[slot]) / PAGE_SIZE;
    const r = faultAnonPage(
      mm.pt,
      mm.mem,
      mm.ptWork,
      addr,
      write,
      writable,
      mm.config.zeroPage,
      owner,
      index,
      mm.faultUnshare,
    );
    if (r < 0) return r;
  }
  return 0;
}

/**
 * One page of a private anonymous VMA given by its fields (the per-VMA-lock fault path, which has
 * a VMA record, not a transaction slot): 0 or -ENOMEM. Preconditions: the VMA is read-locked (or
 * mmap_lock held) and has its anon_vma `owner`; a replaced page is left in mm.ptWork's deferred list.
 */
export function faultAnonPageOf(
  mm: SyscallContext,
  addr: number,
  write: boolean,
  vmFlags: number,
  owner: number,
  index: number,
): number {
  const writable = (vmFlags & VM_WRITE) !== 0;
  return faultAnonPage(
    mm.pt,
    mm.mem,
    mm.ptWork,
    addr,
    write,
    writable,
    mm.config.zeroPage,
    owner,
    index,
    mm.faultUnshare,
  );
}

function faultAnonPage(
  pt: PageTables,
  mem: PhysMem,
  work: PageTableWork,
  addr: number,
  write: boolean,
  writable: boolean,
  zeroPage: boolean,
  owner: number,
  index: number,
  unshare: boolean,
): number {
  const table = pt.allocPte(addr);
  if (table <= 0) return -ENOMEM;
  const i = pteIndex(addr);
  const old = pt.readEntry(table, i);
  if (old !== 0 && !write) return 0;
  if (old !== 0 && (old & PTE_WRITE) !== 0) {
    if ((old & PTE_DIRTY) === 0 && !unshare) {
      pt.lockTable(table);
      if (pt.readEntry(table, i) === old) pt.setPteLocked(table, i, old | PTE_DIRTY | PTE_ACCESSED);
      pt.unlockTable(table);
    }
    return 0;
  }
  const oldPfn = old === 0 ? 0 : ptePfn(old);
  if (old !== 0 && oldPfn !== ZERO_PFN && mem.testFlag(oldPfn, PG_ANON_EXCLUSIVE)) {
    // Reuse: the page is this mapping's alone (an unshare has nothing to do).
    if (unshare) return 0;
    pt.lockTable(table);
    if (pt.readEntry(table, i) === old) pt.setPteLocked(table, i, old | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED);
    pt.unlockTable(table);
    return 0;
  }
  if (old !== 0 && oldPfn !== ZERO_PFN && mem.refcountOf(oldPfn) === 1) {
    // wp reuse of a page whose other sharers went away (do_wp_page's folio_ref_count == 1 path,
    // Linux 5.19+): our entry holds the only reference, so no other mapping, pin or pending put
    // can see the page; re-checked under the PTE lock (Linux: the page lock), it becomes
    // exclusive again and writable in place.
    pt.lockTable(table);
    if (pt.readEntry(table, i) === old && mem.refcountOf(oldPfn) === 1) {
      mem.setFlag(oldPfn, PG_ANON_EXCLUSIVE);
      if (!unshare) pt.setPteLocked(table, i, old | PTE_WRITE | PTE_DIRTY | PTE_ACCESSED);
      pt.unlockTable(table);
      return 0;
    }
    pt.unlockTable(table);
  }
  if (old === 0 && !write && zeroPage) {
    pt.lockTable(table);
    if (pt.readEntry(table, i) === 0) pt.setPteLocked(table, i, makePte(ZERO_PFN, PTE_PRESENT | PTE_USER));
    pt.unlockTable(table);
    return 0;
  }
  // Copy-on-write of a real page: the new frame is filled with the copy, not zeroed first.
  const copy = oldPfn !== 0 && oldPfn !== ZERO_PFN;
  const pfn = copy
    ? mem.allocFrameCopy(KIND_ANON, owner, index, oldPfn)
    : mem.allocFrame(KIND_ANON, owner, index);
  if (pfn === 0) return -ENOMEM;
  mem.setFlag(pfn, PG_ANON_EXCLUSIVE);
  // An unshare maps the new exclusive page read-only: a later write fault reuses it.
  const flags =
    PTE_PRESENT | PTE_USER | PTE_ACCESSED | (writable && !unshare ? PTE_WRITE | (write ? PTE_DIRTY : 0) : 0);
  pt.lockTable(table);
  if (pt.readEntry(table, i) !== old) {
    // Another CPU faulted the page in meanwhile: keep its page.
    pt.unlockTable(table);
    mem.clearFlag(pfn, PG_ANON_EXCLUSIVE);
    mem.putPage(pfn);
    return 0;
  }
  mem.incMapcount(pfn);
  const pte = makePte(pfn, flags);
  pt.setPteLocked(table, i, pte);
  pt.unlockTable(table);
  setMissHint(addr, pte);
  if (oldPfn !== 0) {
    // Other CPUs may still read the old page (the zero page too) through a cached translation.
    if (oldPfn !== ZERO_PFN) mem.decMapcount(oldPfn);
    work.deferPut(oldPfn, Math.floor(addr / PAGE_SIZE));
  }
  return 0;
}
