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
 *   maybeDmaPinned      copied into a new exclusive frame for the child (copy_present_page), its
 *                       entry with the VMA's protection (none under PROT_NONE): the parent keeps
 *                       its page, exclusive and writable, so a pin sees its writes
 *   otherwise           shared: PG_ANON_EXCLUSIVE cleared, getPage + incMapcount for the child,
 *                       WRITE cleared in the parent's entry (under its PTL) and the child's
 * The parent's TLBs may hold writable translations: the write-protected range is shot down before
 * mmap_lock is released (flush_tlb_mm in dup_mmap).
 *
 * GUP-fast pins (gup.ts) take no mmap_lock, so they can slip in between maybeDmaPinned saying "not
 * pinned" and the page being shared: the whole page-table copy is a write section of the parent's
 * write_protect_seq (Linux's copy_page_range), and a GUP-fast pin that saw the sequence odd, or
 * moved, drops what it pinned and takes the slow path (mmap_lock (R): after this fork). Other VMAs (shared, file, wipe-on-fork) have
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
  PMD_THP_TABLE,
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
import {
  VM_ACCESS_FLAGS,
  VM_DONTCOPY,
  VM_LOCKED_MASK,
  VM_SHARED,
  VM_WIPEONFORK,
  VM_WRITE,
} from './vm-flags.js';
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
        // The child's i_mmap windows stay open over the page-table copy: a reverse-map walker sees
        // the child's file VMAs with their copied PTEs, or neither.
        r = ctx.commitLocked(true);
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

      // The page tables, VMA by VMA of the child (its records are the copies), inside the
      // parent's write_protect_seq write section: a GUP-fast pin that overlaps it gives up.
      const ca = child.arena;
      const out = rangeOut();
      const seq = ps.writeProtectSeq;
      seq.writeBegin();
      try {
        for (let q = 0; r === 0 && child.index.next(q, LIMIT, out) !== 0; q = out.last + 1) {
          const h = out.value;
          const flags = ca.flags(h);
          const anon = ca.anon(h);
          if (anon === 0 || (flags & (VM_SHARED | VM_WIPEONFORK)) !== 0) continue;
          const start = ca.start(h);
          const end = ca.end(h);
          r = copyPmdEntries(parent, child, start, end);
          if (r < 0) break;
          const c = copyPteRange(parent, child, start, end, ca.pgoff(h), flags, anon);
          r = c.result;
          if (c.wpHigh > c.wpLow) {
            wpLow = Math.min(wpLow, c.wpLow);
            wpHigh = Math.max(wpHigh, c.wpHigh);
          }
        }
      } finally {
        seq.writeEnd();
      }
      // The check takes i_mmap (R), so only after the windows closed: a CPU holding a window must
      // never wait for i_mmap (a walker waits for the window holding R, behind a queued writer).
      child.ctx.closeRmapWindowsLocked();
      if (DEBUG && r === 0) checkMmLocked(child);
    } finally {
      child.ctx.closeRmapWindowsLocked();
      mmapWriteUnlock(child.locks);
    }
    // The parent's CPUs may cache writable translations of the pages now shared read-only.
    if (wpHigh > wpLow && parent.tlb.inUse()) parent.tlb.shootdown(wpLow, wpHigh);
  } finally {
    mmapWriteUnlock(parent.locks);
  }
  return r;
}

/**
 * copy_pmd_range's tables: each 2 MiB region of [start, end) with a PMD entry in the parent gets
 * one in the child (copy_pte_range allocates the child's PTE table before it looks at the
 * entries), marked PMD_THP_TABLE where the parent's is: the child's THP decisions follow the
 * parent's. 0 or -ENOMEM. Preconditions: both mmap_locks held for write; no PTL held.
 */
function copyPmdEntries(parent: ForkSpace, child: ForkSpace, start: number, end: number): number {
  for (let r = start - (start % PMD_SIZE); r < end; r += PMD_SIZE) {
    const x = parent.pt.pmdEntry(r);
    if (x === 0 || child.pt.pmdEntry(r) !== 0) continue;
    const t = (x & (PMD_THP_TABLE | PTE_HUGE)) !== 0 ? child.pt.allocThpPte(r) : child.pt.allocPte(r);
    if (t <= 0) return -ENOMEM;
  }
  return 0;
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
    // A pinned anonymous page is copied; a file page (a private file mapping's) is shared as is.
    if (mem.kind[pfn] === KIND_ANON && mem.maybeDmaPinned(pfn)) {
      // copy_present_page: the child gets its own copy; the parent's page stays exclusive.
      const np = mem.allocFrameCopy(KIND_ANON, anon, pgoff + (addr - start) / PAGE_SIZE, pfn);
      if (np === 0) {
        res.result = -ENOMEM;
        return;
      }
      mem.setFlag(np, PG_ANON_EXCLUSIVE);
      mem.incMapcount(np);
      // The copy takes the VMA's protection (vm_page_prot): no user access under PROT_NONE.
      const user = (vmFlags & VM_ACCESS_FLAGS) !== 0 ? PTE_USER : 0;
      const w = (vmFlags & VM_WRITE) !== 0 ? PTE_WRITE | PTE_DIRTY : 0;
      cpt.setPte(ct, ci, makePte(np, PTE_PRESENT | user | PTE_ACCESSED | w));
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
