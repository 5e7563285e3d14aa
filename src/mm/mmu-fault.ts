/**
 * The page-fault path behind a CPU's Mmu (do_user_addr_fault for one page; docs/mem.md, "Wiring
 * into the address space"). `AddressSpace.mmu()` gives each facade (CPU) an Mmu whose miss
 * handler is an MmuFault; a TLB miss without a usable entry calls `onMiss`, which runs
 * `AddressSpace.faultPage`: mmap_lock (R) + the mm's page_table_lock, a one-page transaction like
 * the populate stage's, then `faultPageLocked` below:
 *
 *   no VMA contains addr            a VM_GROWSDOWN VMA above: grow it (FAULT_GROW: the caller
 *                                   drops the locks and runs the growth as a write-locked touch
 *                                   of the page), else FAULT_SEGV_MAPERR
 *   access_error                    write needs VM_WRITE, read VM_READ | VM_WRITE | VM_EXEC, exec
 *                                   VM_EXEC: FAULT_SEGV_ACCERR
 *   file-backed or shared           faultRange maps the page cache's page (file-fault.ts); a
 *                                   page that must wait for I/O: FAULT_RETRY with the work
 *                                   pending (the stage drops its locks, runs it, the caller
 *                                   retries); past EOF FAULT_SIGBUS
 *   private anonymous               faultRange for the page with installPtes (zero page on a read,
 *                                   a zeroed frame on a write, copy or reuse on a write to a
 *                                   read-only entry, DIRTY on a write): 0; out of memory (a frame,
 *                                   a table or the anon_vma): FAULT_OOM (VM_FAULT_OOM), which the
 *                                   Mmu's handler delivers as FAULT_SIGBUS (there is no OOM
 *                                   killer) and GUP as ENOMEM
 *
 * Before all that, the per-VMA-lock fast path (`faultPageVmaLocked`, do_user_addr_fault's
 * lock_vma_under_rcu): the VMA read-locked without mmap_lock; a private anonymous VMA that already
 * has its anon_vma, in a 2 MiB region that already has its PMD entry (a PTE table), faults the page
 * in under the page's PTE lock alone; a file or shared VMA likewise (faultFileVmaLocked: page_mkwrite
 * runs here, under the VMA lock; I/O is FAULT_RETRY with work pending); an access error is answered
 * at once; anything else (no VMA, a locked VMA, no anon_vma yet, a new region) falls back to the
 * mmap_lock path.
 *
 * The Mmu calls the handler online and walks again on 0: the per-VMA-lock path waits only for
 * spinlocks whose holders never wait for a shootdown (and shoots down itself, as a writer that
 * counts as acknowledged); the mmap_lock path takes the Mmu offline first (AddressSpace.faultStage).
 * A fast path that may sleep (I/O, a page lock) must take it offline too (see MissHandler).
 */
import { ENOMEM } from '../errno.js';
import type { MissHandler } from '../mem/mmu.js';
import { FAULT_SEGV_ACCERR, FAULT_SEGV_MAPERR, FAULT_SIGBUS } from '../mem/tlb.js';
import { faultAnonPageOf } from './anon-fault.js';
import type { SyscallContext } from './context.js';
import { accessError, faultRange, isAnonymous } from './fault.js';
import { FAULT_FALLBACK, FAULT_GROW, FAULT_OOM, FAULT_RETRY } from './fault-codes.js';
import { FILE_NEED_IO, faultFileVmaLocked } from './file-fault.js';
import { PAGE_SIZE, VM_EXEC, VM_GROWSDOWN, VM_SHARED } from './vm-flags.js';
import { NAME_ANON } from './vma-record.js';

export { FAULT_FALLBACK, FAULT_GROW, FAULT_OOM, FAULT_RETRY } from './fault-codes.js';

/** What the Mmu's handler needs of the address space (AddressSpace). */
export interface FaultPageMm {
  faultPage(addr: number, write: boolean, exec: boolean): number;
}

/** The Mmu's miss handler for one facade of an address space. */
export class MmuFault implements MissHandler {
  constructor(private readonly mm: FaultPageMm) {}

  onMiss(addr: number, write: boolean, exec: boolean): number {
    const r = this.mm.faultPage(addr, write, exec);
    return r === FAULT_OOM ? FAULT_SIGBUS : r;
  }
}

/**
 * One page's fault (see the file comment): 0, FAULT_GROW, FAULT_OOM, FAULT_RETRY (file work
 * pending: file-fault.ts) or a FAULT_* code. Preconditions:
 * mmap_lock (R) and page_table_lock held, the context's transaction open with installPtes.
 */
export function faultPageLocked(mm: SyscallContext, addr: number, write: boolean, exec: boolean): number {
  const t = mm.txn;
  const page = addr - (addr % PAGE_SIZE);
  const vma = t.vmaAt(page);
  if (vma < 0) {
    const above = t.findFrom(page);
    return above >= 0 && (t.flags[above] & VM_GROWSDOWN) !== 0 ? FAULT_GROW : FAULT_SEGV_MAPERR;
  }
  const flags = t.flags[vma];
  // An unshare (mm.faultUnshare) is checked as the read it serves.
  if (exec ? (flags & VM_EXEC) === 0 : accessError(flags, write && !mm.faultUnshare))
    return FAULT_SEGV_ACCERR;
  if (t.file[vma] === 0 && ((flags & VM_SHARED) !== 0 || !isAnonymous(mm, vma))) return FAULT_SIGBUS;
  const r = faultRange(mm, vma, page, page + PAGE_SIZE, write);
  if (r === FILE_NEED_IO) return FAULT_RETRY;
  return r === -ENOMEM ? FAULT_OOM : r < 0 ? FAULT_SIGBUS : 0;
}

/**
 * The fast path for the page at `page` of the read-locked VMA record `h` (see the file comment):
 * 0, FAULT_SEGV_ACCERR, FAULT_FALLBACK, or for a file or shared VMA FAULT_SIGBUS, FAULT_OOM or
 * FAULT_RETRY (work pending: the caller drops the VMA lock and runs fileFaultIo). A replaced page is left in mm.ptWork's deferred list
 * (the caller flushes it). Preconditions: `h` read-locked (lockVmaUnderRcu) and covering `page`;
 * no spinlock held; this CPU's transaction is not open (only its ptWork list is used).
 */
export function faultPageVmaLocked(
  mm: SyscallContext,
  h: number,
  page: number,
  write: boolean,
  exec: boolean,
): number {
  const a = mm.arena;
  const flags = a.flags(h);
  if (exec ? (flags & VM_EXEC) === 0 : accessError(flags, write && !mm.faultUnshare))
    return FAULT_SEGV_ACCERR;
  if (a.file(h) !== 0) return faultFileVmaLocked(mm, h, page, write);
  const owner = a.anon(h);
  if (owner === 0 || (flags & VM_SHARED) !== 0 || a.nameKind(h) !== NAME_ANON) {
    return FAULT_FALLBACK;
  }
  // pmd_none: the THP decision (and the table) are taken under mmap_lock.
  if (mm.pt.pmdEntry(page) === 0) return FAULT_FALLBACK;
  const index = a.pgoff(h) + (page - a.start(h)) / PAGE_SIZE;
  return faultAnonPageOf(mm, page, write, flags, owner, index) < 0 ? FAULT_FALLBACK : 0;
}
