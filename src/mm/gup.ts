/**
 * get_user_pages / pin_user_pages (Linux's mm/gup.c, anonymous base pages): references to the
 * frames behind a range of user addresses, for a "device" (or a pipe, pipe.ts) to read and write
 * while the process goes on using its mapping. Called without mmap_lock; GUP takes it for read.
 *
 * For each page, under mmap_lock (R) (no munmap, mprotect or fork runs; page tables stay allocated):
 *   lookupPte -> not present or no user access                   fault (read, or write) and retry
 *             -> write asked, entry not WRITE | DIRTY             write fault (copy or reuse) and retry
 *             -> read-only pin of the zero page or of an anon page that is not PG_ANON_EXCLUSIVE
 *                                                                 unshare fault (FAULT_FLAG_UNSHARE:
 *                                                                 reuse or copy into an exclusive page,
 *                                                                 entry stays read-only) and retry
 *             -> else: the PTE table's PTL; the entry re-read; unchanged: getPage (get) or pinPage
 *                (pin: +GUP_PIN_COUNTING_BIAS) under the PTL; changed (a fault-path CoW on another
 *                CPU, which needs only the VMA lock or the PTL): retry
 * A fault drops mmap_lock first (AddressSpace.faultPage takes it itself) and the page is looked up
 * again; at most MAX_TRIES rounds a page (-EAGAIN after). Linux's partial counts: a page that
 * cannot be had ends the call with the pages done so far, or with its errno when none was done:
 * EFAULT (no VMA, no access, a fault's SIGBUS, which includes running out of memory), ENOMEM
 * (a pin count overflow), EAGAIN (the entry kept changing).
 *
 * Race with munmap: munmap and every table free hold mmap_lock (W), so the entry read under our
 * mmap_lock (R) and re-read under the table's PTL is still mapped when the reference is taken; a
 * later munmap drops the mapping's reference and map count but not ours. The frame then lives on
 * until the last put/unpin.
 *
 * GUP-fast (lockless, under RCU) is this same function: the mmap_lock read side is cheap here, so
 * pinUserPagesFast is an alias. Huge (PMD) entries are not handled yet: such a page ends the call
 * like an unmapped one.
 *
 * A got or pinned page is read and written "as a device would" through mem.bytes at pfn * 4096
 * (readPage / writePage below). Every reference is dropped with putUserPages, every pin with
 * unpinUserPages.
 */
import { EAGAIN, EFAULT, EINVAL, ENOMEM } from '../errno.js';
import type { PhysMem } from '../mem/frames.js';
import { KIND_ANON, PAGE_SIZE, PG_ANON_EXCLUSIVE, ZERO_PFN } from '../mem/page.js';
import type { PageTables } from '../mem/pgtable.js';
import { PTE_DIRTY, PTE_HUGE, PTE_PRESENT, PTE_USER, PTE_WRITE, pteIndex, ptePfn } from '../mem/pte.js';
import { type MmLocks, mmapReadLock, mmapReadUnlock } from './vma-lock.js';

/** FOLL_WRITE: the pages will be written (a private page is made exclusive and writable). */
export const FOLL_WRITE = 1;
/** FOLL_PIN: pin (GUP_PIN_COUNTING_BIAS) instead of a plain reference. */
export const FOLL_PIN = 2;
/** FOLL_LONGTERM: the pin is held indefinitely (no migration here, so only recorded). */
export const FOLL_LONGTERM = 4;

export interface GupOptions {
  write?: boolean;
  longterm?: boolean;
}

/** What GUP needs of an address space (AddressSpace). */
export interface GupSpace {
  readonly pt: PageTables;
  readonly mem: PhysMem;
  readonly locks: MmLocks;
  faultPage(addr: number, write: boolean, exec: boolean): number;
  faultPageUnshare(addr: number): number;
}

const MAX_TRIES = 8;
/** grab's answers besides a pfn. */
const NEED_FAULT = 0;
const NEED_UNSHARE = -1;
const USER_PRESENT = PTE_PRESENT | PTE_USER;
const WRITE_DIRTY = PTE_WRITE | PTE_DIRTY;

/**
 * `pages` pages from the page-aligned `addr`: their pfns (as many as could be had, at least one),
 * or -errno (-EINVAL for a bad address or count, else the first page's error). Preconditions: the
 * calling CPU holds no lock and its Mmu on `mm` is offline.
 */
export function gupPages(mm: GupSpace, addr: number, pages: number, foll: number): number[] | number {
  if (!Number.isSafeInteger(addr) || addr < 0 || addr % PAGE_SIZE !== 0) return -EINVAL;
  if (!Number.isSafeInteger(pages) || pages < 0) return -EINVAL;
  const out: number[] = [];
  let locked = false;
  try {
    for (let i = 0; i < pages; i++) {
      const a = addr + i * PAGE_SIZE;
      let r = NEED_FAULT;
      for (let tries = 0; ; tries++) {
        if (tries === MAX_TRIES) {
          r = -EAGAIN;
          break;
        }
        if (!locked) {
          mmapReadLock(mm.locks);
          locked = true;
        }
        r = grab(mm.pt, mm.mem, a, foll);
        if (r > 0 || r < NEED_UNSHARE) break;
        // Fault the page in as needed, without mmap_lock (faultPage takes it), then look again.
        mmapReadUnlock(mm.locks);
        locked = false;
        const f =
          r === NEED_UNSHARE ? mm.faultPageUnshare(a) : mm.faultPage(a, (foll & FOLL_WRITE) !== 0, false);
        if (f !== 0) {
          // SEGV (no VMA, no access) or SIGBUS (out of memory, or not anonymous memory).
          r = -EFAULT;
          break;
        }
      }
      if (r < 0) return out.length > 0 ? out : r;
      out.push(r);
    }
  } finally {
    if (locked) mmapReadUnlock(mm.locks);
  }
  return out;
}

/** Linux's gup_must_unshare for a read-only pin: the zero page, or an anon page not exclusive. */
function mustUnshare(mem: PhysMem, pfn: number): boolean {
  if (pfn === ZERO_PFN) return true;
  return mem.kind[pfn] === KIND_ANON && !mem.testFlag(pfn, PG_ANON_EXCLUSIVE);
}

/**
 * One page under mmap_lock (R): its pfn with the reference taken, NEED_FAULT, NEED_UNSHARE, or
 * -EFAULT (a huge entry) / -ENOMEM (pin overflow).
 */
function grab(pt: PageTables, mem: PhysMem, addr: number, foll: number): number {
  const e = pt.lookupPte(addr);
  if ((e & USER_PRESENT) !== USER_PRESENT) return NEED_FAULT;
  if ((e & PTE_HUGE) !== 0) return -EFAULT;
  const write = (foll & FOLL_WRITE) !== 0;
  if (write && (e & WRITE_DIRTY) !== WRITE_DIRTY) return NEED_FAULT;
  const pin = (foll & FOLL_PIN) !== 0;
  const pfn = ptePfn(e);
  if (pin && !write && mustUnshare(mem, pfn)) return NEED_UNSHARE;
  const t = pt.findPteTable(addr);
  if (t === 0) return NEED_FAULT;
  pt.lockTable(t);
  try {
    // A fault on another CPU (per-VMA lock or the PTL alone) may have replaced the entry.
    if (pt.readEntry(t, pteIndex(addr)) !== e) return NEED_FAULT;
    if (!pin) mem.getPage(pfn);
    else if (!mem.pinPage(pfn)) return -ENOMEM;
  } finally {
    pt.unlockTable(t);
  }
  return pfn;
}

/** Drops the references getUserPages took (put_page each). */
export function putUserPages(mem: PhysMem, pfns: readonly number[]): void {
  for (let i = 0; i < pfns.length; i++) mem.putPage(pfns[i]);
}

/** Drops the pins pinUserPages took (unpin_user_pages). */
export function unpinUserPages(mem: PhysMem, pfns: readonly number[]): void {
  for (let i = 0; i < pfns.length; i++) mem.unpinPage(pfns[i]);
}

/** Copies `len` bytes at `offset` of frame `pfn` (a device's read of a got or pinned page). */
export function readPage(mem: PhysMem, pfn: number, offset: number, len: number): Uint8Array {
  checkSpan(offset, len);
  const from = pfn * PAGE_SIZE + offset;
  return mem.bytes.slice(from, from + len);
}

/** Writes `data` at `offset` of frame `pfn` (a device's write; the page must be write-pinned). */
export function writePage(mem: PhysMem, pfn: number, offset: number, data: Uint8Array): void {
  checkSpan(offset, data.length);
  mem.bytes.set(data, pfn * PAGE_SIZE + offset);
}

function checkSpan(offset: number, len: number): void {
  if (
    !(
      Number.isInteger(offset) &&
      Number.isInteger(len) &&
      offset >= 0 &&
      len >= 0 &&
      offset + len <= PAGE_SIZE
    )
  ) {
    throw new RangeError(`page span ${offset}+${len} is not within a page`);
  }
}
