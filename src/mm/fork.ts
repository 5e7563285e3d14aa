/**
 * fork's copy of an address space (Linux's dup_mmap + copy_page_range for anonymous base pages).
 *
 *   parent mmap_lock (W) -> every parent VMA write-locked (no per-VMA-lock fault runs beside us)
 *     -> child mmap_lock (W, nested) -> a transaction on the child inserts the VMAs -> commit
 *     -> page tables copied VMA by VMA -> child unlocked -> TLB shootdown of the write-protected
 *     parent pages -> parent unlocked
 *
 * VMAs: VM_DONTCOPY ones are skipped; VM_LOCKED / VM_LOCKONFAULT are cleared (locks are not
 * inherited, so the child's locked_vm is 0); a VM_WIPEONFORK VMA gets no anon_vma (it is zero-
 * filled on first touch, under a new identity); every other VMA keeps the parent's anon_vma id
 * (the shared identity: each child VMA takes its own reference at commit, as every record does),
 * and its file. brk, def_flags (VM_LOCKED bits cleared) and the shmem counter are copied.
 *
 * Page tables, for private VMAs with an anon_vma and without VM_WIPEONFORK (copy_pte_range):
 *   zero page           copied as it is (no reference, no map count)
 *   maybeDmaPinned      copied into a new exclusive frame for the child (copy_present_page): the
 *                       parent keeps its page, exclusive and writable, so a pin sees its writes
 *   otherwise           shared: PG_ANON_EXCLUSIVE cleared, getPage + incMapcount for the child,
 *                       WRITE cleared in the parent's entry (under its PTL) and the child's
 * The parent's TLBs may hold writable translations: the write-protected range is shot down before
 * mmap_lock is released (flush_tlb_mm in dup_mmap). Other VMAs (shared, file, wipe-on-fork) have
 * nothing to copy. A frame or table allocation failure returns -ENOMEM: the caller tears the child
 * down (its exit puts every reference taken so far); the parent keeps its write-protected entries,
 * which its next write fault reuses (the page's reference count is back to 1).
 */
import { DEBUG } from '../assert.js';
import { ENOMEM } from '../errno.js';
import { rangeOut } from '../maple/api.js';
import { KIND_ANON, PAGE_SIZE, PG_ANON_EXCLUSIVE, ZERO_PFN } from '../mem/page.js';
import {
  makePte,
  PMD_SIZE,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITE,
  pteIndex,
  ptePfn,
} from '../mem/pte.js';
import { checkMmLocked } from './check.js';
import type { MmShared, SyscallContext } from './context.js';
import { PMD_NONE } from './pmd-state.js';
import { VM_DONTCOPY, VM_LOCKED_MASK, VM_SHARED, VM_WIPEONFORK, VM_WRITE } from './vm-flags.js';
import { mmapWriteLock, mmapWriteUnlock, vmaStartWrite } from './vma-lock.js';
import { vmaFields } from './vma-record.js';

const LIMIT = 2 ** 53 - 1;
/** mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING): the child's lock under the parent's. */
const SINGLE_DEPTH_NESTING = 1;

/** An address space as fork sees it (an AddressSpace: its shared parts and this CPU's context). */
export interface ForkSpace extends MmShared {
  readonly ctx: SyscallContext;
}

/**
 * Copies `parent` into the empty address space `child`: 0 or -ENOMEM (the child then holds
 * whatever was copied so far and must be destroyed). Preconditions: this CPU holds no lock and
 * its Mmu on the parent is offline; nobody else uses the child.
 */
export function dupMmap(parent: ForkSpace, child: ForkSpace): number {
  let r = 0;
  let wpLow = LIMIT;
  let wpHigh = 0;
  mmapWriteLock(parent.locks);
  try {
    mmapWriteLock(child.locks, SINGLE_DEPTH_NESTING);
    try {
      const ctx = child.ctx;
      ctx.open();
      try {
        // The VMAs (one transaction on the child).
        const a = parent.arena;
        const out = rangeOut();
        const f = vmaFields();
        for (let q = 0; q <= LIMIT && parent.index.next(q, LIMIT, out) !== 0; q = out.last + 1) {
          const h = out.value;
          vmaStartWrite(parent.locks, h);
          const flags = a.flags(h);
          if ((flags & VM_DONTCOPY) !== 0) continue;
          f.start = a.start(h);
          f.end = a.end(h);
          f.pgoff = a.pgoff(h);
          f.flags = flags & ~VM_LOCKED_MASK;
          f.file = a.file(h);
          f.anon = (flags & VM_WIPEONFORK) !== 0 ? 0 : a.anon(h);
          f.nameKind = a.nameKind(h);
          f.nameId = a.nameId(h);
          ctx.txn.insert(f);
        }
        r = ctx.commitLocked();
      } catch (error) {
        ctx.abandonLocked();
        throw error;
      }
      if (r < 0) return r;
      const ps = parent.state;
      const cs = child.state;
      cs.brk = ps.brk;
      cs.defFlags = ps.defFlags & ~VM_LOCKED_MASK;
      cs.shmemCount = ps.shmemCount;
      cs.gateFlags = ps.gateFlags;
      if (DEBUG) checkMmLocked(child);

      // The page tables, VMA by VMA of the child (its records are the copies).
      const ca = child.arena;
      const out = rangeOut();
      for (let q = 0; r === 0 && child.index.next(q, LIMIT, out) !== 0; q = out.last + 1) {
        const h = out.value;
        const flags = ca.flags(h);
        const anon = ca.anon(h);
        if (anon === 0 || (flags & (VM_SHARED | VM_WIPEONFORK)) !== 0) continue;
        const start = ca.start(h);
        const end = ca.end(h);
        copyPmdState(parent, child, start, end);
        const c = copyPteRange(parent, child, start, end, ca.pgoff(h), flags, anon);
        r = c.result;
        if (c.wpHigh > c.wpLow) {
          wpLow = Math.min(wpLow, c.wpLow);
          wpHigh = Math.max(wpHigh, c.wpHigh);
        }
      }
    } finally {
      mmapWriteUnlock(child.locks);
    }
    // The parent's CPUs may cache writable translations of the pages now shared read-only.
    if (wpHigh > wpLow && parent.tlb.inUse()) parent.tlb.shootdown(wpLow, wpHigh);
  } finally {
    mmapWriteUnlock(parent.locks);
  }
  return r;
}

/** The model of which 2 MiB regions have a PMD entry follows the copied page tables. */
function copyPmdState(parent: ForkSpace, child: ForkSpace, start: number, end: number): void {
  for (let r = start - (start % PMD_SIZE); r < end; r += PMD_SIZE) {
    const s = parent.pmd.at(r);
    if (s !== PMD_NONE && child.pmd.at(r) === PMD_NONE) child.pmd.set(r, s);
  }
}

interface CopyResult {
  result: number;
  /** Pages [wpLow, wpHigh) of the parent that lost WRITE (vpns). */
  wpLow: number;
  wpHigh: number;
}

/**
 * copy_pte_range for one private anonymous VMA: 0 or -ENOMEM (what was copied stays, with its
 * references). Preconditions: both mmap_locks held for write, the parent's VMA write-locked.
 */
function copyPteRange(
  parent: ForkSpace,
  child: ForkSpace,
  start: number,
  end: number,
  pgoff: number,
  vmFlags: number,
  anon: number,
): CopyResult {
  const mem = parent.mem;
  const ppt = parent.pt;
  const cpt = child.pt;
  const res: CopyResult = { result: 0, wpLow: LIMIT, wpHigh: 0 };
  ppt.forEachPresent(start, end, (addr, entry) => {
    if (res.result < 0) return;
    if ((entry & PTE_HUGE) !== 0) throw new Error('fork: huge page-table entries are not copied yet');
    const ct = cpt.allocPte(addr);
    if (ct <= 0) {
      res.result = -ENOMEM;
      return;
    }
    const ci = pteIndex(addr);
    const pfn = ptePfn(entry);
    if (pfn === ZERO_PFN) {
      cpt.setPte(ct, ci, entry);
      return;
    }
    if (mem.maybeDmaPinned(pfn)) {
      // copy_present_page: the child gets its own copy; the parent's page stays exclusive.
      const np = mem.allocFrameCopy(KIND_ANON, anon, pgoff + (addr - start) / PAGE_SIZE, pfn);
      if (np === 0) {
        res.result = -ENOMEM;
        return;
      }
      mem.setFlag(np, PG_ANON_EXCLUSIVE);
      mem.incMapcount(np);
      const w = (vmFlags & VM_WRITE) !== 0 ? PTE_WRITE | PTE_DIRTY : 0;
      cpt.setPte(ct, ci, makePte(np, PTE_PRESENT | PTE_USER | PTE_ACCESSED | w));
      return;
    }
    // Shared copy-on-write: both entries read-only, the page no longer exclusive.
    const pt = ppt.findPteTable(addr);
    const i = pteIndex(addr);
    ppt.lockTable(pt);
    const e = ppt.readEntry(pt, i);
    mem.clearFlag(pfn, PG_ANON_EXCLUSIVE);
    mem.getPage(pfn);
    mem.incMapcount(pfn);
    if ((e & PTE_WRITE) !== 0) {
      ppt.setPteLocked(pt, i, (e & ~PTE_WRITE) >>> 0);
      const vpn = Math.floor(addr / PAGE_SIZE);
      if (vpn < res.wpLow) res.wpLow = vpn;
      if (vpn + 1 > res.wpHigh) res.wpHigh = vpn + 1;
    }
    ppt.unlockTable(pt);
    cpt.setPte(ct, ci, (e & ~PTE_WRITE) >>> 0);
  });
  return res;
}
