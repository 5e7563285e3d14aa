/**
 * Faults on file-backed and shared memory (Linux's filemap_fault, do_read_fault, do_cow_fault,
 * do_shared_fault and do_page_mkwrite; docs/mm.md, "File faults"). Shared anonymous memory is a
 * file too (a BACKING_MEM shmem object, FileTable.addShmem), so it faults here.
 *
 *   index = vm_pgoff + (page - vm_start) / 4096
 *   index >= pages of i_size                                                  -EFAULT (SIGBUS)
 *     (i_size is read before any I/O and again once the page is locked, as filemap_fault does;
 *     the per-VMA-lock path skips the first read for a cached page, and answers an entry already
 *     present without it: a read is done, a write to a writable entry marks it DIRTY, as
 *     Linux's fault on a present entry does)
 *   the page cached, up to date, and its lock free (trylock), still cached and inside i_size:
 *     read (or exec)                 map it read-only (also in a shared writable VMA: the first
 *                                    write must call page_mkwrite, write-notify)
 *     private write                  copy it into a new anonymous page of the VMA's anon_vma
 *                                    (copy-on-write; the file page is no longer seen there)
 *     shared write                   page_mkwrite (injection INJECT_MKWRITE, PG_DIRTY set under the
 *                                    page lock), then a writable, dirty entry
 *     a read-only entry of an anonymous page (private, after a copy and a fork): the anonymous
 *     fault (faultAnonPageOf) reuses or copies it
 *   otherwise (not cached, not up to date, locked, or a page_mkwrite that may not run here)
 *                                    FILE_NEED_IO: the work is recorded for this CPU (a file
 *                                    reference and a page reference taken), and the caller drops
 *                                    its locks (the design knob, fault-design.ts:
 *                                    faultMayDropLockForIo), runs fileFaultIo, and retries
 *
 * fileFaultIo (no lock held, or mmap_lock (R) alone under the 'global' design; never a spinlock):
 * the file system's `fault` callback (injection INJECT_FAULT) then readCachePage, or a wait for the
 * page lock, or page_mkwrite; then it puts its references. The retry finds the page cached.
 *
 * Where page_mkwrite runs: inline only on the per-VMA-lock fast path (`inline`: the VMA's read
 * lock alone is held, as Linux 6.4+ runs ->page_mkwrite); under mmap_lock plus page_table_lock
 * (the populate stage and the fallback) nothing may sleep, so a shared write to a clean page is
 * FILE_NEED_IO and page_mkwrite runs after the locks are dropped; the retry finds the page dirty
 * and maps it writable under the page lock. A write to a page already dirty goes the same way
 * when the file system's callback is armed (INJECT_MKWRITE): Linux calls ->page_mkwrite on every
 * shared write fault, and the retry does not call it twice (mkwriteDone). So a writable shared entry exists only for a dirty
 * page, installed under its page lock: writeback (which write-protects under the page lock before
 * it clears PG_DIRTY) never misses a write.
 *
 * Page references: a mapped file page holds one reference and one map count per entry (KIND_FILE,
 * OWNER = the file, INDEX = the page index), besides the cache's; a zap puts them (pgtable-work).
 * The new entry takes over the lookup's reference (findGetPage), as Linux's finish_fault keeps the
 * fault's folio reference.
 *
 * The per-VMA-lock path runs with this CPU's Mmu online (as the anonymous one): it trylocks the
 * page and waits only for PTE locks; it takes the Mmu offline (ctx.mmuOffline) before an injected
 * page_mkwrite latency may sleep, and its caller does so before fileFaultIo (mmu-fault.ts).
 * The per-CPU pending record below is this CPU's alone (each CPU is one thread): no lock guards it.
 */
import { assert } from '../assert.js';
import { EFAULT, ENOMEM } from '../errno.js';
import { stillCached } from '../fs/cache-core.js';
import type { FileTable } from '../fs/file-table.js';
import { INJECT_FAULT, INJECT_MKWRITE, injectArmed, injectOp } from '../fs/inject.js';
import { findGetPage, markPageDirty, newReadahead, readCachePage } from '../fs/page-cache.js';
import { lockPage, trylockPageFlags, unlockPage } from '../fs/page-lock.js';
import type { PhysMem } from '../mem/frames.js';
import { setMissHint } from '../mem/mmu.js';
import { KIND_ANON, PG_ANON_EXCLUSIVE, PG_DIRTY, PG_UPTODATE } from '../mem/page.js';
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
import { FAULT_SIGBUS } from '../mem/tlb.js';
import { faultAnonPageOf } from './anon-fault.js';
import type { SyscallContext } from './context.js';
import { FAULT_FALLBACK, FAULT_OOM, FAULT_RETRY } from './fault-codes.js';
import { PAGE_SIZE, VM_SHARED } from './vm-flags.js';

/**
 * faultFilePage's answer when the fault must wait (I/O, a locked page, page_mkwrite outside the
 * locks): below every -errno, so no caller mistakes it for a count or an errno.
 */
export const FILE_NEED_IO = -4096;

const IO_NONE = 0;
/** The page is not cached or not up to date: `fault` + readCachePage. */
const IO_READ = 1;
/** The page is locked: wait for its lock (folio_lock_or_retry). */
const IO_WAIT_LOCK = 2;
/** A shared write to a clean page outside the fast path: page_mkwrite. */
const IO_MKWRITE = 3;

/** This CPU's pending fault work (one per thread: each CPU is one thread). */
const pending = { op: IO_NONE, file: 0, index: 0, pfn: 0, addr: 0 };
/**
 * The page this CPU's last IO_MKWRITE ran page_mkwrite for (pfn 0: none): the retry of that fault
 * maps it writable without calling page_mkwrite again (Linux calls it once per fault, holding the
 * page lock into the mapping; here the locks were dropped in between). Set by fileFaultIo, taken by
 * the retry (mkwriteDone), forgotten when other work is recorded (needIo).
 */
const mkwriteRan = { file: 0, index: 0, pfn: 0 };
/** A populate walk restarted after failed I/O answers this address with the error once. */
const poison = { addr: -1, err: 0 };

const RO = PTE_PRESENT | PTE_USER | PTE_ACCESSED;
const RW = RO | PTE_WRITE | PTE_DIRTY;

/** Pages of file `id` a fault may map (round_up(i_size) / 4096). */
function pagesOf(files: FileTable, id: number): number {
  return files.sizePages(id);
}

/** Whether this CPU has fault work pending (set by the last faultFilePage). */
export function fileFaultPending(): boolean {
  return pending.op !== IO_NONE;
}

/** The address of the pending work (where a restarted populate walk goes on). */
export function fileFaultPendingAddr(): number {
  return pending.addr;
}

/** This CPU's readahead state for faults (one window per CPU, not per file: a heuristic). */
const faultRa = newReadahead();
/** A restarted walk answers `addr` with `err` (-EFAULT or -ENOMEM) instead of faulting it again. */
export function fileFaultPoison(addr: number, err: number): void {
  poison.addr = addr;
  poison.err = err;
}

/** Forgets a poisoned address (the end of a fault stage). */
export function fileFaultClearPoison(): void {
  poison.addr = -1;
}

/**
 * Records the work for fileFaultIo, taking a file reference; `pfn` (0 or a page the caller holds
 * a reference to) passes its reference on. Returns FILE_NEED_IO.
 */
function needIo(
  files: FileTable,
  op: number,
  file: number,
  index: number,
  pfn: number,
  addr: number,
): number {
  assert(pending.op === IO_NONE, 'file fault: work already pending on this CPU');
  mkwriteRan.pfn = 0;
  files.get(file);
  pending.op = op;
  pending.file = file;
  pending.index = index;
  pending.pfn = pfn;
  pending.addr = addr;
  return FILE_NEED_IO;
}

/** A page to read: past EOF -EFAULT (no I/O for it), else IO_READ pending (needIo). */
function needRead(files: FileTable, file: number, index: number, addr: number): number {
  return index >= pagesOf(files, file) ? -EFAULT : needIo(files, IO_READ, file, index, 0, addr);
}

/**
 * The pending work (see the file comment), then its references put: 0, -EFAULT (an I/O error or
 * a page_mkwrite failure: SIGBUS) or -ENOMEM. Preconditions: work pending; no spinlock, no RCU
 * read section; no lock at all unless the design keeps mmap_lock (R) ('global').
 */
export function fileFaultIo(files: FileTable, mem: PhysMem): number {
  const op = pending.op;
  const file = pending.file;
  const index = pending.index;
  const pfn = pending.pfn;
  assert(op !== IO_NONE, 'fileFaultIo: nothing pending');
  pending.op = IO_NONE;
  let r = 0;
  try {
    if (op === IO_READ) r = faultRead(files, mem, file, index);
    else if (op === IO_WAIT_LOCK) {
      r = injectOp(files, file, INJECT_FAULT);
      lockPage(mem, pfn);
      unlockPage(mem, pfn);
    } else {
      r = mkwrite(files, mem, file, index, pfn);
      if (r === 0) {
        mkwriteRan.file = file;
        mkwriteRan.index = index;
        mkwriteRan.pfn = pfn;
      }
    }
  } finally {
    if (pfn !== 0) mem.putPage(pfn);
    files.put(file);
  }
  return r === 0 ? 0 : r === -ENOMEM ? -ENOMEM : -EFAULT;
}

/**
 * The file system's `fault` callback (INJECT_FAULT) and the read of the page: 0 or -errno. A file
 * with FAULT_TAKES_I_RWSEM takes its i_rwsem for read around both (the lab's inversion: under
 * 'global' that is mmap_lock -> i_rwsem). Preconditions: as fileFaultIo's.
 */
function faultRead(files: FileTable, mem: PhysMem, file: number, index: number): number {
  const takesRwsem = files.faultTakesIRwsem(file);
  if (takesRwsem) files.iRwsemLock(file, false);
  try {
    const r = injectOp(files, file, INJECT_FAULT);
    if (r !== 0) return r;
    // filemap_fault's synchronous readahead: sequential misses read a growing window.
    const got = readCachePage(files, file, index, faultRa, 0);
    if (got <= 0) return got;
    mem.putPage(got);
    return 0;
  } finally {
    if (takesRwsem) files.iRwsemUnlock(file, false);
  }
}

/** Drops pending work without running it (an internal error unwinds the fault). */
export function fileFaultCancel(files: FileTable, mem: PhysMem): void {
  if (pending.op === IO_NONE) return;
  pending.op = IO_NONE;
  if (pending.pfn !== 0) mem.putPage(pending.pfn);
  files.put(pending.file);
}

/**
 * page_mkwrite (do_page_mkwrite): the file system hears of the write (INJECT_MKWRITE), then the
 * page, locked and still cached, is marked dirty. 0 or -errno. Preconditions: a reference to pfn;
 * no spinlock held (it may sleep).
 */
function mkwrite(files: FileTable, mem: PhysMem, file: number, index: number, pfn: number): number {
  const r = injectOp(files, file, INJECT_MKWRITE);
  if (r < 0) return r;
  lockPage(mem, pfn);
  if (stillCached(mem, pfn, file, index) && (Atomics.load(mem.flags, pfn) & PG_UPTODATE) !== 0)
    markPageDirty(files, pfn);
  unlockPage(mem, pfn);
  return 0;
}

/**
 * The per-VMA-lock fast path for a file or shared VMA record `h` (faultPageVmaLocked calls it
 * once the access is allowed): 0, FAULT_SIGBUS, FAULT_OOM, FAULT_FALLBACK (no PTE table yet, or a
 * private write without an anon_vma: mmap_lock decides), or FAULT_RETRY with work pending (the
 * caller drops the VMA lock, then runs fileFaultIo). Preconditions: `h` read-locked and covering
 * `page`; no spinlock held.
 */
export function faultFileVmaLocked(mm: SyscallContext, h: number, page: number, write: boolean): number {
  const a = mm.arena;
  const flags = a.flags(h);
  const anon = a.anon(h);
  if (write && (flags & VM_SHARED) === 0 && anon === 0) return FAULT_FALLBACK;
  const file = a.file(h);
  const index = a.pgoff(h) + (page - a.start(h)) / PAGE_SIZE;
  let r = faultFilePrelude(page);
  if (r === 0) {
    // pmd_none (or a huge entry): the table is made under mmap_lock. Found once, used for the entry.
    const table = mm.pt.findPteTable(page);
    if (table === 0) return FAULT_FALLBACK;
    r = faultFileEntry(mm, table, page, file, index, flags, anon, write, true);
  }
  return r === 0 ? 0 : r === FILE_NEED_IO ? FAULT_RETRY : r === -ENOMEM ? FAULT_OOM : FAULT_SIGBUS;
}

/**
 * Faults [start, end) of file or shared VMA `slot` in (faultRange with installPtes): 0, -EFAULT
 * (past EOF, or a poisoned address), -ENOMEM, or FILE_NEED_IO (work pending for the page at
 * fileFaultPendingAddr; the pages before it are done). Preconditions: mmap_lock (R) and
 * page_table_lock; the PMD entries filled and, for a private write, the anon_vma given.
 */
export function faultFilePages(
  mm: SyscallContext,
  slot: number,
  start: number,
  end: number,
  write: boolean,
): number {
  const t = mm.txn;
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const index = t.pgoff[slot] + (addr - t.start[slot]) / PAGE_SIZE;
    const r = faultFilePage(mm, addr, t.file[slot], index, t.flags[slot], t.anon[slot], write, false);
    if (r < 0) return r;
  }
  return 0;
}

/**
 * One page of a file or shared VMA (see the file comment): 0, -EFAULT, -ENOMEM or FILE_NEED_IO.
 * `inline`: page_mkwrite may run here (only the VMA's read lock is held). Preconditions: the VMA
 * (or mmap_lock) held; a private write has the anon_vma `anon`.
 */
export function faultFilePage(
  mm: SyscallContext,
  addr: number,
  file: number,
  index: number,
  vmFlags: number,
  anon: number,
  write: boolean,
  inline: boolean,
): number {
  const r = faultFilePrelude(addr);
  if (r !== 0) return r;
  if (index >= pagesOf(mm.files, file)) return -EFAULT;
  const table = mm.pt.allocPte(addr);
  if (table <= 0) return -ENOMEM;
  return faultFileEntry(mm, table, addr, file, index, vmFlags, anon, write, inline);
}

/** A populate walk's poisoned address answers its error once (see fileFaultPoison); else 0. */
function faultFilePrelude(addr: number): number {
  if (poison.addr !== addr) return 0;
  poison.addr = -1;
  return poison.err;
}

/**
 * faultFilePage at entry pteIndex(addr) of PTE table `table` (see the file comment). The page
 * lock is a trylock whose old flags tell up-to-date and dirty at once (PG_DIRTY is cleared only
 * under the page lock, so a dirty page stays dirty while it is held); the lookup's reference
 * becomes the new entry's (mapFilePageLocked), as Linux's finish_fault keeps the fault's folio
 * reference. Preconditions: as faultFilePage's; `table` is addr's PTE table.
 */
function faultFileEntry(
  mm: SyscallContext,
  table: number,
  addr: number,
  file: number,
  index: number,
  vmFlags: number,
  anon: number,
  write: boolean,
  inline: boolean,
): number {
  const files = mm.files;
  const mem = mm.mem;
  const pt = mm.pt;
  const i = pteIndex(addr);
  const old = pt.readEntry(table, i);
  const shared = (vmFlags & VM_SHARED) !== 0;
  if (old !== 0) {
    if (!write) return 0;
    if ((old & PTE_WRITE) !== 0) return markPteDirty(pt, table, i, old);
    if (!shared && mem.kind[ptePfn(old)] === KIND_ANON)
      return faultAnonPageOf(mm, addr, true, vmFlags, anon, index);
  }
  const pfn = findGetPage(files, file, index);
  if (pfn === 0) return needRead(files, file, index, addr);
  if (shared && write && inline && injectArmed(files, file, INJECT_MKWRITE)) {
    // page_mkwrite may sleep (injected latency): only for a page that needs no read first, and
    // with this CPU's Mmu offline (the fault runs online).
    if ((Atomics.load(mem.flags, pfn) & PG_UPTODATE) === 0) {
      mem.putPage(pfn);
      return needRead(files, file, index, addr);
    }
    mm.mmuOffline();
    if (injectOp(files, file, INJECT_MKWRITE) < 0) {
      mem.putPage(pfn);
      return -EFAULT;
    }
  }
  const pageFlags = trylockPageFlags(mem, pfn);
  if (pageFlags < 0) return needIo(files, IO_WAIT_LOCK, file, index, pfn, addr);
  // PG_UPTODATE is set under the page lock (a reader holds it until its read ends): the flags the
  // lock found tell whether the page still has to be read.
  if ((pageFlags & PG_UPTODATE) === 0 || !stillCached(mem, pfn, file, index)) {
    unlockPage(mem, pfn);
    mem.putPage(pfn);
    return needRead(files, file, index, addr);
  }
  let r = 0;
  let ref = pfn; // the lookup's reference, until an entry takes it
  if (index >= pagesOf(files, file))
    r = -EFAULT; // past EOF (i_size read once the page is locked, as filemap_fault re-reads it)
  else if (!write) ref = mapFilePageLocked(mm, table, i, old, addr, pfn, RO);
  else if (!shared) r = cowFilePageLocked(mm, table, i, old, addr, pfn, anon, index);
  else if (inline || ((pageFlags & PG_DIRTY) !== 0 && mkwriteDone(files, file, index, pfn))) {
    if (inline && (pageFlags & PG_DIRTY) === 0) markPageDirty(files, pfn);
    ref = mapFilePageLocked(mm, table, i, old, addr, pfn, RW);
  } else {
    unlockPage(mem, pfn);
    return needIo(files, IO_MKWRITE, file, index, pfn, addr);
  }
  unlockPage(mem, pfn);
  if (ref !== 0) mem.putPage(ref);
  return r;
}

/**
 * Whether a shared write fault outside the fast path may map the dirty page pfn writable without
 * calling page_mkwrite first: the file system's callback (INJECT_MKWRITE) is not armed, so the call
 * would only find the page dirty already; or this CPU just ran it for this fault (the retry after
 * IO_MKWRITE: the record is taken). Linux calls ->page_mkwrite on every shared write fault, the
 * page dirty or not. Preconditions: pfn is file `id`'s page `index`, locked, dirty.
 */
function mkwriteDone(files: FileTable, id: number, index: number, pfn: number): boolean {
  if (mkwriteRan.pfn === pfn && mkwriteRan.file === id && mkwriteRan.index === index) {
    mkwriteRan.pfn = 0;
    return true;
  }
  return !injectArmed(files, id, INJECT_MKWRITE);
}

/** A writable entry written to: marked DIRTY (the Mmu stores only through WRITE | DIRTY). */
function markPteDirty(pt: PageTables, table: number, i: number, old: number): number {
  if ((old & PTE_DIRTY) !== 0) return 0;
  pt.lockTable(table);
  if (pt.readEntry(table, i) === old) pt.setPteLocked(table, i, old | PTE_DIRTY | PTE_ACCESSED);
  pt.unlockTable(table);
  return 0;
}

/**
 * Maps the locked file page pfn at entry i of `table` (found holding `old`) with `flags`, the
 * caller's reference to pfn becoming the entry's (with a map count); an entry changed meanwhile is
 * left as it is (another CPU faulted). The same page read-only before: only the entry changes.
 * Returns the pfn whose reference the caller still holds and must put (pfn when no new entry took
 * it), or 0. Preconditions: the page lock and a reference to pfn; no PTL held.
 */
function mapFilePageLocked(
  mm: SyscallContext,
  table: number,
  i: number,
  old: number,
  addr: number,
  pfn: number,
  flags: number,
): number {
  const pt = mm.pt;
  const mem = mm.mem;
  pt.lockTable(table);
  if (pt.readEntry(table, i) !== old) {
    pt.unlockTable(table);
    return pfn;
  }
  if (old !== 0 && ptePfn(old) === pfn) {
    const pte = makePte(pfn, flags);
    pt.setPteLocked(table, i, pte);
    pt.unlockTable(table);
    setMissHint(addr, pte);
    return pfn;
  }
  mem.incMapcount(pfn);
  const pte = makePte(pfn, flags);
  pt.setPteLocked(table, i, pte);
  pt.unlockTable(table);
  setMissHint(addr, pte);
  if (old !== 0) dropReplaced(mm, old, addr);
  return 0;
}

/**
 * do_cow_fault / wp_page_copy of a file page: a new anonymous page of `anon` (linear index
 * `index`) holding a copy of the locked file page pfn, mapped writable and dirty in place of `old`
 * (none, or pfn read-only). 0 or -ENOMEM. Preconditions: the page lock and a reference to pfn.
 */
function cowFilePageLocked(
  mm: SyscallContext,
  table: number,
  i: number,
  old: number,
  addr: number,
  pfn: number,
  anon: number,
  index: number,
): number {
  const pt = mm.pt;
  const mem = mm.mem;
  assert(anon !== 0, 'file fault: a private write without an anon_vma');
  // The copy is written once (allocFrameCopy: no zeroing first, a plain memmove).
  const copy = mem.allocFrameCopy(KIND_ANON, anon, index, pfn);
  if (copy === 0) return -ENOMEM;
  mem.setFlag(copy, PG_ANON_EXCLUSIVE);
  pt.lockTable(table);
  if (pt.readEntry(table, i) !== old) {
    pt.unlockTable(table);
    mem.clearFlag(copy, PG_ANON_EXCLUSIVE);
    mem.putPage(copy);
    return 0;
  }
  mem.incMapcount(copy);
  pt.setPteLocked(table, i, makePte(copy, RW));
  pt.unlockTable(table);
  if (old !== 0) dropReplaced(mm, old, addr);
  return 0;
}

/**
 * The page of a replaced entry loses its map count now and its reference after the TLB shootdown
 * (ptWork.deferPut: the caller flushes once it holds no spinlock).
 */
function dropReplaced(mm: SyscallContext, old: number, addr: number): void {
  const oldPfn = ptePfn(old);
  mm.mem.decMapcount(oldPfn);
  mm.ptWork.deferPut(oldPfn, Math.floor(addr / PAGE_SIZE));
}
