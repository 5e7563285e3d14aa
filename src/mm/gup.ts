/**
 * get_user_pages / pin_user_pages and their fast variants (Linux's mm/gup.c; base pages, anonymous
 * and file): references to the frames behind a range of user addresses, for a "device" (or a pipe,
 * pipe.ts) to read and write while the process goes on using its mapping. The caller holds no lock.
 *
 *   gupPagesFast  gupFast (no lock: RCU walk, speculative reference, re-check) for as many pages
 *                 as it can, then gupSlow for the rest (get/pin_user_pages_fast)
 *   gupPages      gupSlow alone (get/pin_user_pages)
 *
 * gupSlow (__get_user_pages), for each page, under mmap_lock (R) (no munmap, mremap, mprotect or
 * fork commits; page tables stay allocated):
 *   the VMA (looked up when the page leaves the last one): none -> EFAULT (GUP does not grow a
 *   stack, as Linux since 6.5); checkVma (check_vma_flags) -> EFAULT for VM_IO / VM_PFNMAP, a write
 *   without VM_WRITE, a read without VM_READ, a longterm write pin that needs dirty tracking
 *   grab: lookupPte -> not present or no user access             fault (read, or write) and retry
 *               -> write asked, entry not WRITE | DIRTY             write fault (copy or reuse), retry
 *               -> read-only pin, entry read-only, the zero page or an anon page not
 *                  PG_ANON_EXCLUSIVE (gup_must_unshare)             unshare fault (FAULT_FLAG_UNSHARE:
 *                                                                  reuse or copy into an exclusive
 *                                                                  page, entry stays read-only), retry
 *               -> else: the PTE table's PTL; the entry re-read; unchanged: getPage (get) or pinPage
 *                  (+GUP_PIN_COUNTING_BIAS) under the PTL; changed (a fault on another CPU, which
 *                  needs only the VMA lock or the PTL): retry
 * A fault drops mmap_lock first and the page is looked up again (see "Dropped locks"). At most
 * MAX_TRIES faults without I/O and MAX_RETRIES with it a page (EAGAIN after: Linux loops until a
 * fatal signal). The fault's answer becomes Linux's errno (vm_fault_to_errno): out of memory
 * ENOMEM, SIGBUS and SIGSEGV EFAULT. Partial counts as Linux: a page that cannot be had ends the
 * call with the pages done so far, or with its errno when none was done.
 *
 * Dropped locks (Linux's `locked` out-parameter with FOLL_UNLOCKABLE; every caller here allows
 * it, since every caller holds no lock: there is no "caller holds mmap_lock and wants it kept"
 * variant). The contract:
 *   - `locked` says whether this call holds mmap_lock (R) now. It is taken to look a page up and
 *     grab it, and dropped before every fault: the fault (AddressSpace.faultForGup, one try of the
 *     design's fault path) takes what its design takes (the VMA lock, or mmap_lock (R)), and
 *     returns holding nothing, with FAULT_RETRY when it dropped those too for I/O or a page lock.
 *     So GUP itself never holds a lock across I/O; the fault holds mmap_lock (R) across it only
 *     under the `global` design (fault-design.ts), by definition of that design.
 *   - Every retake forgets the VMA (vma = 0): the range may have been unmapped (EFAULT), moved
 *     away by mremap (EFAULT, or whatever is mapped there now), reprotected (checkVma again) or
 *     mapped anew (the new mapping's pages) while no lock was held. Nothing learnt before the drop
 *     is used after it: the page's entry is read again under the retaken lock and its PTL.
 *   - Pages already returned keep their reference or pin: each is a page the mapping had at the
 *     instant it was grabbed (the entry re-read under its PTL, mmap_lock (R) held, so no munmap,
 *     mremap or mprotect committed in between), and the frame cannot be freed while held. Pages of
 *     one call may come from different mappings of the range (one before a munmap, the next from
 *     the mmap after it), as in Linux; each single page is always one mapping's.
 * The populate stages (AddressSpace.faultStage) follow the same contract for MAP_POPULATE, mlock
 * and MADV_POPULATE_*; user copies (Mmu.copyIn/copyOut, file read/write) fault page by page
 * through the Mmu's miss handler, which holds no lock of the mm between faults either.
 *
 * gupFast (gup_fast), lockless:
 *   pins only: s = write_protect_seq (MmState), odd -> give up (fork is copying page tables)
 *   RCU read section: per 2 MiB region the PMD entry (a PTE table; none or huge -> stop), then per
 *   page the PTE: stop unless present, user, (write) WRITE | DIRTY, not the zero page (Linux's
 *   pte_special). Speculative reference: getPageUnlessZero / tryPinPage (fails on a free frame).
 *   Then re-check the PMD entry and the PTE: either changed -> drop the reference, stop. Then the
 *   frame must be anonymous (file pages need the VMA's checks: the slow path), and a read-only pin
 *   of a read-only entry needs PG_ANON_EXCLUSIVE (else the unshare fault: stop). Each stop leaves
 *   the rest of the range to gupSlow.
 *   pins only: write_protect_seq moved -> unpin everything gupFast took, all of it goes slow.
 *
 * Why that is enough, without mmap_lock and without the TLB (Linux's gup_fast disables interrupts
 * so that the TLB-shootdown IPI, which precedes freeing a page table or, in old kernels, a page,
 * waits for it; nothing here can hold a shootdown up, and nothing needs to):
 *   - Page tables. A table leaves the tree by one store of 0 in its parent and goes back to its
 *     arena only after an RCU grace period; the walk runs inside a read section, so every table it
 *     reached stays allocated (and unpoisoned) until it is done, even if unlinked meanwhile.
 *   - Frames. A frame is freed only by its last reference: a zap clears the entry, shoots the TLBs
 *     down, then puts. The speculative reference is a compare-exchange from a non-zero count, so it
 *     never revives a free frame; it may land on a frame freed and reused meanwhile, which the
 *     re-check then catches (the entry no longer names it) and the reference is put back (perhaps
 *     the last one: the frame is then freed here, as Linux's gup_put_folio may). Entries and counts
 *     are all seq-cst atomics: if the re-check still reads the entry, it precedes the store that
 *     clears it, which precedes the zap's put, so that put finds our reference. From then on the
 *     page is referenced exactly like one the slow path returned before a munmap.
 *   - Why the PMD too. mremap moves a whole PTE table by moving its PMD entry (pgtable-move.ts):
 *     the table keeps its entries, so only the PMD entry shows that the page now lives elsewhere.
 *   - The TLB. GUP-fast holds no translation: what it returns is a referenced frame, never a TLB
 *     slot, so a shootdown has nothing to wait for. The caller's Mmu is taken offline at entry
 *     (as at every entry that may block), so its CPU never delays a shootdown while it runs GUP.
 *   - fork. dup_mmap decides "copy or share" by maybeDmaPinned, then clears PG_ANON_EXCLUSIVE and
 *     write-protects; a pin taken between the two would then be on a shared page, and the next
 *     write fault would copy it away from the pin. fork does all of that inside a write section of
 *     write_protect_seq (fork.ts). With every access seq-cst: if the pin's second read of the
 *     sequence saw it unchanged and even, that read precedes fork's first increment, so the pin
 *     precedes fork's maybeDmaPinned, which sees it and copies the page for the child; if the
 *     first read came after fork's second increment, the walk sees the write-protected entry (a
 *     write pin stops) or the cleared PG_ANON_EXCLUSIVE (a read-only pin stops). Plain gets need
 *     no such care: Linux lets fork share a got page (the pipe keeps the old data, see pipe.ts).
 *
 * FOLL_LONGTERM (pins only; a get with it is EINVAL, as Linux's is_valid_gup_args): Linux first
 * migrates the pages out of ZONE_MOVABLE and CMA (there are no zones here: every frame is
 * longterm-pinnable) and refuses fsdax (there is none); since 6.5 it refuses a writable longterm
 * pin of a shared writable mapping of a file whose pages are written back (EFAULT: the file
 * system could not see the page dirtied behind its back). That is `longtermNeedsDirtyTracking`,
 * in checkVma: a shared writable file mapping not on shmem/tmpfs (soft-dirty tracking, its other
 * arm, does not exist here). GUP-fast leaves file pages to the slow path, which checks the VMA.
 *
 * A got or pinned page is read and written "as a device would" through mem.bytes at pfn * 4096
 * (readPage / writePage below). Every reference is dropped with putUserPages, every pin with
 * unpinUserPages. Huge (PMD) entries are not handled: such a page ends the call like an unmapped
 * one (faults do not install them yet).
 */
import { EAGAIN, EFAULT, EINVAL, ENOMEM } from '../errno.js';
import { type FileTable, PLACE_SHMEM } from '../fs/file-table.js';
import { type RangeIndex, rangeOut } from '../maple/api.js';
import type { PhysMem } from '../mem/frames.js';
import { KIND_ANON, PAGE_SIZE, PG_ANON_EXCLUSIVE, ZERO_PFN } from '../mem/page.js';
import type { PageTables } from '../mem/pgtable.js';
import {
  PMD_SIZE,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITE,
  PUD_SIZE,
  pteIndex,
  ptePfn,
  USER_ADDR_LIMIT,
} from '../mem/pte.js';
import { rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import { vmaFlagsError } from './fault.js';
import { FAULT_OOM, FAULT_RETRY } from './fault-codes.js';
import type { MmState } from './mm-state.js';
import { VM_SHARED, VM_WRITE } from './vm-flags.js';
import { type MmLocks, mmapReadLock, mmapReadUnlock } from './vma-lock.js';
import type { VmaArena } from './vma-record.js';

/** FOLL_WRITE: the pages will be written (a private page is made exclusive and writable). */
export const FOLL_WRITE = 1;
/** FOLL_PIN: pin (GUP_PIN_COUNTING_BIAS) instead of a plain reference. */
export const FOLL_PIN = 2;
/** FOLL_LONGTERM: the pin is held indefinitely (pins only; see the file comment). */
export const FOLL_LONGTERM = 4;

export interface GupOptions {
  write?: boolean;
  /** Pins only (getUserPages with it is EINVAL). */
  longterm?: boolean;
}

/** What GUP needs of an address space (AddressSpace). */
export interface GupSpace {
  readonly pt: PageTables;
  readonly mem: PhysMem;
  readonly locks: MmLocks;
  readonly index: RangeIndex;
  readonly arena: VmaArena;
  readonly files: FileTable;
  readonly state: MmState;
  /** The calling CPU's Mmu goes offline (an entry that may block must not hold up a shootdown). */
  mmuOffline(): void;
  /**
   * One try at one page's fault for GUP, called holding no lock and returning holding none: 0,
   * FAULT_RETRY (it waited for I/O or a page lock, with its locks dropped but under `global`: look
   * again), a FAULT_* code or FAULT_OOM; never grows a stack.
   */
  faultForGup(addr: number, write: boolean, unshare: boolean): number;
}

/** Rounds a page whose fault did no I/O (each makes progress unless another CPU undoes it). */
const MAX_TRIES = 8;
/** Rounds a page whose fault dropped its locks for I/O or a page lock (FAULT_RETRY). */
const MAX_RETRIES = 64;
/** grab's answers besides a pfn. */
const NEED_FAULT = 0;
const NEED_UNSHARE = -1;
const USER_PRESENT = PTE_PRESENT | PTE_USER;
const WRITE_DIRTY = PTE_WRITE | PTE_DIRTY;
const SHARED_WRITE = VM_SHARED | VM_WRITE;

/** The FOLL_* flags of a get (pin false) or pin call, or -EINVAL (longterm without a pin). */
export function gupFlags(opts: GupOptions, pin: boolean): number {
  const longterm = opts.longterm === true;
  if (longterm && !pin) return -EINVAL;
  return (pin ? FOLL_PIN : 0) | (opts.write === true ? FOLL_WRITE : 0) | (longterm ? FOLL_LONGTERM : 0);
}

/**
 * get/pin_user_pages: `pages` pages from the page-aligned `addr`, their pfns written to out[0..n)
 * (out's length is left to the caller: entries from n on are stale, and out grows only as written,
 * so a reused array costs no allocation); returns n (at least one, or 0 for pages = 0) or -errno:
 * -EINVAL for a bad address, count or flags, else the first page's error. Preconditions: the
 * calling CPU holds no lock.
 */
export function gupPages(mm: GupSpace, addr: number, pages: number, foll: number, out: number[]): number {
  const bad = checkArgs(addr, pages, foll);
  if (bad < 0) return bad;
  return pages === 0 ? 0 : gupSlow(mm, addr, pages, foll, out, 0);
}

/**
 * get/pin_user_pages_fast: as gupPages, the pages GUP-fast can have taken without a lock, the rest
 * by the slow path. A range ending above the user address limit is -EFAULT (Linux's access_ok).
 */
export function gupPagesFast(mm: GupSpace, addr: number, pages: number, foll: number, out: number[]): number {
  const bad = checkArgs(addr, pages, foll);
  if (bad < 0) return bad;
  if (addr + pages * PAGE_SIZE > USER_ADDR_LIMIT) return -EFAULT;
  mm.mmuOffline();
  const n = gupFast(mm, addr, pages, foll, out, 0);
  if (n === pages) return n;
  const r = gupSlow(mm, addr + n * PAGE_SIZE, pages - n, foll, out, n);
  return r < 0 ? (n > 0 ? n : r) : n + r;
}

function checkArgs(addr: number, pages: number, foll: number): number {
  if (!Number.isSafeInteger(addr) || addr < 0 || Math.floor(addr / PAGE_SIZE) * PAGE_SIZE !== addr) {
    return -EINVAL;
  }
  if (!Number.isSafeInteger(pages) || pages < 0) return -EINVAL;
  if (foll < 0 || ((foll & FOLL_LONGTERM) !== 0 && (foll & FOLL_PIN) === 0)) return -EINVAL;
  return 0;
}

// ---- the slow path ----------------------------------------------------------------------------

/** Per CPU (each CPU is one thread): the VMA lookup's result. */
const found = rangeOut();

/**
 * __get_user_pages (see the file comment, "Dropped locks"): pfns written to out[at..), their
 * count, or -errno when none. Preconditions: this CPU holds no lock.
 */
function gupSlow(mm: GupSpace, addr: number, pages: number, foll: number, out: number[], at: number): number {
  mm.mmuOffline();
  const arena = mm.arena;
  // locked: Linux's `*locked`. vma: the record checked under the current hold (0: look it up).
  let locked = false;
  let vma = 0;
  let done = 0;
  try {
    for (; done < pages; done++) {
      const a = addr + done * PAGE_SIZE;
      let r = NEED_FAULT;
      // Bounded: a round without I/O counts a try, one that dropped its locks for I/O a retry.
      for (let tries = 0, retries = 0; ; ) {
        if (tries === MAX_TRIES || retries === MAX_RETRIES) {
          r = -EAGAIN;
          break;
        }
        if (!locked) {
          mmapReadLock(mm.locks);
          locked = true;
          vma = 0; // retaken: whatever was checked before may be unmapped, moved or reprotected
        }
        if (vma === 0 || a >= arena.end(vma)) {
          vma = findVma(mm, a);
          r = vma === 0 ? -EFAULT : checkVma(mm.files, arena.flags(vma), arena.file(vma), foll);
          if (r < 0) break;
        }
        r = grab(mm.pt, mm.mem, a, foll);
        if (r > 0 || r < NEED_UNSHARE) break;
        // Fault the page in as needed, without mmap_lock (faultForGup takes what it needs and
        // holds nothing when it returns), then look again from the VMA.
        mmapReadUnlock(mm.locks);
        locked = false;
        const fault = mm.faultForGup(a, (foll & FOLL_WRITE) !== 0, r === NEED_UNSHARE);
        if (fault === FAULT_RETRY) retries++;
        else tries++;
        r = faultErrno(fault);
        if (r < 0) break;
      }
      if (r < 0) return done > 0 ? done : r;
      out[at + done] = r;
    }
  } finally {
    if (locked) mmapReadUnlock(mm.locks);
  }
  return done;
}

/** The VMA record covering addr, or 0. Preconditions: mmap_lock held. */
function findVma(mm: GupSpace, addr: number): number {
  const h = mm.index.load(addr, found);
  return h > 0 && addr >= mm.arena.start(h) && addr < mm.arena.end(h) ? h : 0;
}

/**
 * vm_fault_to_errno: 0 and FAULT_RETRY (look again) stay 0; out of memory is -ENOMEM; SIGBUS and
 * SIGSEGV are -EFAULT.
 */
function faultErrno(fault: number): number {
  return fault === 0 || fault === FAULT_RETRY ? 0 : fault === FAULT_OOM ? -ENOMEM : -EFAULT;
}

/**
 * check_vma_flags for a VMA with flags `vmFlags` mapping `file` (0: anonymous): 0 or -EFAULT.
 * Preconditions: mmap_lock held (the record is stable).
 */
export function checkVma(files: FileTable, vmFlags: number, file: number, foll: number): number {
  const write = (foll & FOLL_WRITE) !== 0;
  if (write && (foll & FOLL_LONGTERM) !== 0 && longtermNeedsDirtyTracking(files, vmFlags, file)) {
    return -EFAULT;
  }
  return vmaFlagsError(vmFlags, write, false);
}

/**
 * !writable_file_mapping_allowed (Linux 6.5+): a writable longterm pin of this VMA would let a
 * device dirty file pages the file system writes back without it knowing: a shared writable
 * mapping of a file that is not on shmem/tmpfs (whose pages are never written back).
 */
export function longtermNeedsDirtyTracking(files: FileTable, vmFlags: number, file: number): boolean {
  if (file === 0 || (vmFlags & SHARED_WRITE) !== SHARED_WRITE) return false;
  return files.placement(file) !== PLACE_SHMEM;
}

/** Linux's gup_must_unshare for a read-only pin of a read-only entry: the zero page, or an anon page not exclusive. */
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
  if (pin && !write && (e & PTE_WRITE) === 0 && mustUnshare(mem, pfn)) return NEED_UNSHARE;
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

// ---- GUP-fast -----------------------------------------------------------------------------------

/** What GUP-fast needs of an address space: no lock, no VMA. */
export interface GupFastSpace {
  readonly pt: PageTables;
  readonly mem: PhysMem;
  readonly state: MmState;
}

/**
 * gup_fast (see the file comment): the pfns of the first pages of the range that can be had
 * without a lock, written to out[at..at + n); returns n (0 .. pages). Never blocks, never faults.
 * Preconditions: addr page-aligned, foll valid, at <= out.length.
 */
export function gupFast(
  mm: GupFastSpace,
  addr: number,
  pages: number,
  foll: number,
  out: number[],
  at = 0,
): number {
  const pin = (foll & FOLL_PIN) !== 0;
  const wpSeq = mm.state.writeProtectSeq;
  let seq = 0;
  if (pin) {
    seq = wpSeq.tryReadBegin();
    if ((seq & 1) !== 0) return 0;
  }
  let n = 0;
  rcuReadLock();
  try {
    n = walkRcu(mm.pt, mm.mem, addr, pages, foll, out, at);
  } finally {
    rcuReadUnlock();
  }
  if (pin && n > 0 && wpSeq.readRetry(seq)) {
    // fork ran meanwhile: a pin may be on a page it shared. Drop them all; the slow path waits.
    for (let i = at; i < at + n; i++) mm.mem.unpinPage(out[i]);
    return 0;
  }
  return n;
}

/**
 * The lockless walk: pfns written to out[at..), their count. Address arithmetic stays in small
 * integers (a modulo of an address above 2^31 is a floating-point remainder, ~20 ns each).
 * Preconditions: inside an RCU read section.
 */
function walkRcu(
  pt: PageTables,
  mem: PhysMem,
  addr: number,
  pages: number,
  foll: number,
  out: number[],
  at: number,
): number {
  const entries = pt.entries;
  let pmdSlot = 0;
  let pmd = 0;
  let regionEnd = 0;
  for (let i = 0; i < pages; i++) {
    const a = addr + i * PAGE_SIZE;
    const lo = a - Math.floor(a / PUD_SIZE) * PUD_SIZE; // offset in its 1 GiB: below 2^30
    if (a >= regionEnd) {
      const table = pt.findPmdTable(a);
      if (table === 0) return i;
      pmdSlot = (table << 9) | (lo >>> 21);
      pmd = Atomics.load(entries, pmdSlot);
      if (pmd === 0 || (pmd & PTE_HUGE) !== 0) return i;
      regionEnd = a - (lo & (PMD_SIZE - 1)) + PMD_SIZE;
    }
    const pfn = grabFast(entries, mem, pmdSlot, pmd, (ptePfn(pmd) << 9) | ((lo >>> 12) & 511), foll);
    if (pfn === 0) return i;
    out[at + i] = pfn;
  }
  return pages;
}

/**
 * One page of the lockless walk: its pfn with the reference or pin taken, or 0 (leave it to the
 * slow path). `pmd` is the PMD entry read at entries[pmdSlot], naming the PTE table of pteSlot.
 */
function grabFast(
  entries: Uint32Array,
  mem: PhysMem,
  pmdSlot: number,
  pmd: number,
  pteSlot: number,
  foll: number,
): number {
  const e = Atomics.load(entries, pteSlot);
  if ((e & USER_PRESENT) !== USER_PRESENT) return 0;
  if ((foll & FOLL_WRITE) !== 0 && (e & WRITE_DIRTY) !== WRITE_DIRTY) return 0;
  const pfn = ptePfn(e);
  if (pfn === ZERO_PFN) return 0;
  const pin = (foll & FOLL_PIN) !== 0;
  if (!(pin ? mem.tryPinPage(pfn) : mem.getPageUnlessZero(pfn))) return 0;
  if (
    Atomics.load(entries, pmdSlot) !== pmd ||
    Atomics.load(entries, pteSlot) !== e ||
    mem.kind[pfn] !== KIND_ANON ||
    (pin && (e & PTE_WRITE) === 0 && !mem.testFlag(pfn, PG_ANON_EXCLUSIVE))
  ) {
    if (pin) mem.unpinPage(pfn);
    else mem.putPage(pfn);
    return 0;
  }
  return pfn;
}

// ---- dropping references, device access ---------------------------------------------------------

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
