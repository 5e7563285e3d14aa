/**
 * What faults do to VMA metadata. Pages belong to the memory layer; here a fault matters for the
 * one piece of VMA state it creates, the anon_vma, and for the PMD entry it gives an empty 2 MiB
 * region in the page tables (a PTE table, marked PMD_THP_TABLE when the fault maps a transparent
 * huge page), which decides whether a later read there maps a huge page. A write fault on a private VMA
 * (anonymous or file, copy-on-write), a read fault that maps a transparent huge page into an
 * anonymous VMA, and (without the zero page, `config.zeroPage` false) any read fault on private
 * anonymous memory allocate it (anon_vma_prepare), reusing an adjacent compatible VMA's so that the
 * two can merge again later (find_mergeable_anon_vma). A fault below a VM_GROWSDOWN VMA grows it
 * first (expand_downwards). File pages at or past the end of the file
 * (and shmem pages past the object's size) fault with SIGBUS, reported as -EFAULT like GUP does.
 *
 * Also the GUP walks built on it: populate_vma_page_range / __mm_populate (mlock, MAP_POPULATE,
 * MAP_LOCKED) and faultin_page_range (MADV_POPULATE_READ/WRITE).
 */
import { EFAULT, EINVAL, ENOMEM, EPERM } from '../errno.js';
import { faultAnonPages } from './anon-fault.js';
import type { SyscallContext } from './context.js';
import { FILE_NEED_IO, faultFilePages } from './file-fault.js';
import {
  PAGE_SIZE,
  PMD_SIZE,
  VM_ACCESS_FLAGS,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_HUGEPAGE,
  VM_IO,
  VM_LOCKED,
  VM_LOCKONFAULT,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_SOFTDIRTY,
  VM_WRITE,
} from './vm-flags.js';
import { NAME_ANON, NAME_SPECIAL, SPECIAL_STACK } from './vma-record.js';

/** vma_is_anonymous: no vm_ops (private anonymous memory, including the stack). */
export function isAnonymous(mm: SyscallContext, slot: number): boolean {
  const t = mm.txn;
  return t.file[slot] === 0 && (t.nameKind[slot] === NAME_ANON || isStackName(mm, slot));
}

function isStackName(mm: SyscallContext, slot: number): boolean {
  return mm.txn.nameKind[slot] === NAME_SPECIAL && mm.txn.nameId[slot] === SPECIAL_STACK;
}

/** anon_vma_compatible(a, b): b directly follows a and could share its anon_vma. */
function anonVmaCompatible(mm: SyscallContext, a: number, b: number): boolean {
  const t = mm.txn;
  return (
    t.end[a] === t.start[b] &&
    t.file[a] === t.file[b] &&
    ((t.flags[a] ^ t.flags[b]) & ~(VM_ACCESS_FLAGS | VM_SOFTDIRTY)) === 0 &&
    t.pgoff[b] === t.pgoff[a] + (t.start[b] - t.start[a]) / PAGE_SIZE
  );
}

/**
 * anon_vma_prepare: gives `slot` an anon_vma (a neighbour's when compatible, else a new one).
 * Returns 0, or -ENOMEM when a new one cannot be allocated.
 */
export function anonPrepare(mm: SyscallContext, slot: number): number {
  if (mm.txn.anon[slot] !== 0) return 0;
  const r = anonAssign(mm, slot);
  // A fault stage (mmap_lock (R) + page_table_lock) publishes it now, before it maps a page of it
  // (anon_vma_prepare's order): a CPU that finds the page's entry under its PTL (a lockless fault,
  // the speculative race's oracle) finds the VMA naming the page's anon_vma, not none.
  if (r === 0 && mm.installPtes) mm.txn.commitAnonOnly();
  return r;
}

/** anonPrepare's choice, in the transaction: a compatible neighbour's anon_vma, else a new one. */
function anonAssign(mm: SyscallContext, slot: number): number {
  const t = mm.txn;
  const next = t.findFrom(t.end[slot]);
  if (next >= 0 && t.anon[next] !== 0 && anonVmaCompatible(mm, slot, next)) {
    t.anon[slot] = t.anon[next];
    return 0;
  }
  const prev = t.prevOf(slot);
  if (prev >= 0 && t.anon[prev] !== 0 && anonVmaCompatible(mm, prev, slot)) {
    t.anon[slot] = t.anon[prev];
    return 0;
  }
  const id = mm.newAnonVma();
  if (id === 0) return -ENOMEM;
  t.anon[slot] = id;
  return 0;
}

/**
 * expand_downwards (mm/mmap.c): a fault at `addr` below the VM_GROWSDOWN VMA `slot` (the first VMA
 * above it, lock_mm_and_find_vma) grows the VMA down to addr's page. 0 or -errno, in Linux's order:
 * below mmap_min_addr -EPERM; within stack_guard_gap of the VMA before it when that one is
 * accessible and not VM_GROWSDOWN, -ENOMEM with nothing changed; then the anon_vma is prepared,
 * and only then acct_stack_growth: a grown size above RLIMIT_STACK, RLIMIT_MEMLOCK for a locked
 * VMA, the overcommit limit (-ENOMEM: the VMA keeps its new anon_vma). vm_start and vm_pgoff move
 * down together; the grown VMA never merges with the one below.
 */
export function expandDownwards(mm: SyscallContext, slot: number, addr: number): number {
  const t = mm.txn;
  const c = mm.config;
  const flags = t.flags[slot];
  if ((flags & VM_GROWSDOWN) === 0) return -EFAULT;
  const address = addr - (addr % PAGE_SIZE);
  if (address < c.mmapMinAddr) return -EPERM;
  const prev = t.prevOf(slot);
  if (
    prev >= 0 &&
    (t.flags[prev] & VM_GROWSDOWN) === 0 &&
    (t.flags[prev] & VM_ACCESS_FLAGS) !== 0 &&
    address - t.end[prev] < c.stackGuardGap
  ) {
    return -ENOMEM;
  }
  if (anonPrepare(mm, slot) < 0) return -ENOMEM;
  if (address >= t.start[slot]) return 0;
  const size = t.end[slot] - address;
  const grow = (t.start[slot] - address) / PAGE_SIZE;
  if (grow > t.pgoff[slot] || size > c.rlimitStack) return -ENOMEM;
  const lockLimit = Math.floor(c.rlimitMemlock / PAGE_SIZE);
  if ((flags & VM_LOCKED) !== 0 && !c.privileged && mm.lockedPages() + grow > lockLimit) return -ENOMEM;
  if (c.overcommitMemory !== 1 && grow > c.commitLimitPages) return -ENOMEM;
  t.setRange(slot, address, t.end[slot], t.pgoff[slot] - grow);
  return 0;
}

/** access_error (x86): a write needs VM_WRITE, a read any of VM_READ, VM_WRITE, VM_EXEC. */
export function accessError(flags: number, write: boolean): boolean {
  return (flags & (write ? VM_WRITE : VM_ACCESS_FLAGS)) === 0;
}

/** End of the part of `slot` backed by its file or shmem object (vm_end if anonymous). */
export function backedEnd(mm: SyscallContext, slot: number): number {
  const t = mm.txn;
  if (t.file[slot] === 0) return t.end[slot];
  const filePages = Math.ceil(mm.files.size(t.file[slot]) / PAGE_SIZE);
  const end = t.start[slot] + (filePages - t.pgoff[slot]) * PAGE_SIZE;
  return Math.max(t.start[slot], Math.min(t.end[slot], end));
}

/** do_huge_pmd_anonymous_page applies: an anonymous THP-enabled VMA covering the whole region. */
function thpEligible(mm: SyscallContext, slot: number, region: number): boolean {
  const t = mm.txn;
  const flags = t.flags[slot];
  if (!isAnonymous(mm, slot) || (flags & VM_NOHUGEPAGE) !== 0) return false;
  const mode = mm.config.thpEnabled;
  if (!(mode === 'always' || (mode === 'madvise' && (flags & VM_HUGEPAGE) !== 0))) return false;
  return region >= t.start[slot] && region + PMD_SIZE <= t.end[slot];
}

/**
 * pmd_none for a fault: the region has no PMD entry in the page tables, nor one that this
 * syscall's page-table work adds after the commit (a fault under mmap_lock (W): see fillPmd).
 */
function pmdNone(mm: SyscallContext, region: number): boolean {
  return mm.pt.pmdEntry(region) === 0 && (mm.installPtes || !mm.ptWork.fills(region));
}

/**
 * A fault fills the empty PMD entry of `region` (thp: marked PMD_THP_TABLE): at once in a fault
 * stage (mmap_lock (R) + page_table_lock), else, under mmap_lock (W), as page-table work run
 * after the commit (nothing to undo if the commit fails). 0 or -ENOMEM (no table).
 */
function fillPmd(mm: SyscallContext, region: number, thp: boolean): number {
  if (!mm.installPtes) {
    mm.ptWork.fill(region, thp);
    return 0;
  }
  return (thp ? mm.pt.allocThpPte(region) : mm.pt.allocPte(region)) > 0 ? 0 : -ENOMEM;
}

/**
 * A fault on `slot` allocates an anonymous page (and so needs the anon_vma): a write to a private
 * VMA (copy-on-write), or a read of private anonymous memory on a kernel without the zero page
 * (do_anonymous_page). Read faults on private file mappings map the page cache either way.
 */
function allocatesPage(mm: SyscallContext, slot: number, write: boolean): boolean {
  if ((mm.txn.flags[slot] & VM_SHARED) !== 0) return false;
  return write || (!mm.config.zeroPage && isAnonymous(mm, slot));
}

/**
 * Faults every page of [start, end) (inside `slot`) for read or write (-ENOMEM: no anon_vma). A
 * region whose PMD entry is
 * empty gets a huge page if the VMA allows one (creating the anon_vma even on a read), else a page
 * table. Returns the pages done, or -EFAULT when a page lies past the end of the backing object
 * (after the pages before it; a private write fault allocates the anon_vma before it finds out),
 * or, in a fault stage, FILE_NEED_IO when a file page must wait (file-fault.ts).
 */
export function faultRange(
  mm: SyscallContext,
  slot: number,
  start: number,
  end: number,
  write: boolean,
): number {
  if (start >= end) return 0;
  const alloc = allocatesPage(mm, slot, write);
  const backed = backedEnd(mm, slot);
  const stop = Math.min(end, backed);
  for (let addr = start; addr < stop; addr = Math.floor(addr / PMD_SIZE) * PMD_SIZE + PMD_SIZE) {
    const region = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
    if (pmdNone(mm, region)) {
      // The fault fills the PMD entry: with a PTE table marked as mapping a THP when the VMA
      // allows one (do_huge_pmd_anonymous_page: the anon_vma first, even for a read), else with a
      // plain one (pte_alloc).
      const thp = thpEligible(mm, slot, region);
      if (thp && anonPrepare(mm, slot) < 0) return -ENOMEM;
      if (fillPmd(mm, region, thp) < 0) return -ENOMEM;
      if (thp) continue;
    }
    if (alloc && anonPrepare(mm, slot) < 0) return -ENOMEM;
  }
  if (
    mm.installPtes &&
    stop > start &&
    isAnonymous(mm, slot) &&
    (mm.txn.flags[slot] & VM_ACCESS_FLAGS) !== 0
  ) {
    if (faultAnonPages(mm, slot, start, stop, write) < 0) return -ENOMEM;
  } else if (
    mm.installPtes &&
    stop > start &&
    mm.txn.file[slot] !== 0 &&
    (mm.txn.flags[slot] & VM_ACCESS_FLAGS) !== 0
  ) {
    // File and shared memory (file-fault.ts): -EFAULT, -ENOMEM, or FILE_NEED_IO (the stage
    // drops its locks, runs the I/O and walks again from the page that waited).
    const r = faultFilePages(mm, slot, start, stop, write);
    if (r < 0) return r;
  }
  if (end > backed) {
    if (alloc && anonPrepare(mm, slot) < 0) return -ENOMEM;
    return -EFAULT;
  }
  return (end - start) / PAGE_SIZE;
}

/** check_vma_flags for the populate walks: 0 or -EFAULT. */
function checkVmaFlags(mm: SyscallContext, slot: number, write: boolean, force: boolean): number {
  return vmaFlagsError(mm.txn.flags[slot], write, force);
}

/**
 * The access half of GUP's check_vma_flags on a VMA's flags (the populate walks, gup.ts): 0, or
 * -EFAULT for VM_IO / VM_PFNMAP, a write without VM_WRITE, a read without VM_READ (FOLL_FORCE:
 * a private VM_MAYWRITE mapping may be written, a VM_MAYREAD one read).
 */
export function vmaFlagsError(flags: number, write: boolean, force: boolean): number {
  if ((flags & (VM_IO | VM_PFNMAP)) !== 0) return -EFAULT;
  if (write) {
    if ((flags & VM_WRITE) === 0) {
      if (!force) return -EFAULT;
      if ((flags & (VM_SHARED | VM_MAYWRITE)) !== VM_MAYWRITE) return -EFAULT;
    }
  } else if ((flags & VM_READ) === 0) {
    if (!force || (flags & VM_MAYREAD) === 0) return -EFAULT;
  }
  return 0;
}

/** populate_vma_page_range: the mlock/MAP_POPULATE walk over [start, end) of one VMA. */
export function populateVmaRange(mm: SyscallContext, slot: number, start: number, end: number): number {
  const flags = mm.txn.flags[slot];
  if ((flags & VM_LOCKONFAULT) !== 0) return (end - start) / PAGE_SIZE;
  const write = (flags & (VM_WRITE | VM_SHARED)) === VM_WRITE;
  const force = (flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
  const err = checkVmaFlags(mm, slot, write, force);
  if (err < 0) return err;
  return faultRange(mm, slot, start, end, write);
}

/** __mm_populate over [start, start + len): 0 or the first error (unless ignoring errors). */
export function mmPopulate(mm: SyscallContext, start: number, len: number, ignoreErrors: boolean): number {
  const t = mm.txn;
  const end = start + len;
  let nstart = start;
  while (nstart < end) {
    const vma = t.intersecting(nstart, end);
    if (vma < 0) break;
    const nend = Math.min(end, t.end[vma]);
    if ((t.flags[vma] & (VM_IO | VM_PFNMAP)) === 0) {
      const ret = populateVmaRange(mm, vma, Math.max(nstart, t.start[vma]), nend);
      if (ret === FILE_NEED_IO || (ret < 0 && !ignoreErrors)) return ret;
    }
    nstart = nend;
  }
  return 0;
}

/** faultin_page_range for MADV_POPULATE_(READ|WRITE): 0, -ENOMEM (hole), -EINVAL, -EFAULT. */
export function faultinRange(mm: SyscallContext, start: number, end: number, write: boolean): number {
  const t = mm.txn;
  let addr = start;
  while (addr < end) {
    const vma = t.vmaAt(addr);
    if (vma < 0) return -ENOMEM;
    if (checkVmaFlags(mm, vma, write, false) < 0) return -EINVAL;
    const stop = Math.min(end, t.end[vma]);
    const r = faultRange(mm, vma, addr, stop, write);
    if (r < 0) return r === -ENOMEM || r === FILE_NEED_IO ? r : -EFAULT;
    addr = stop;
  }
  return 0;
}
