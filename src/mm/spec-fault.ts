/**
 * The speculative page fault (the `speculative` design, fault-design.ts; Michel Lespinasse's
 * speculative page faults, re-derived): an anonymous fault that takes no lock of the address space
 * at all, neither mmap_lock nor the VMA's read lock, so its fast path writes no word another CPU
 * reads but the page table's own PTL and entry. It reads the VMA as a seqcount reader reads: the
 * VMA record's write-lock stamp (LOCK_SEQ, vma-lock.ts) is the sequence, since every change to a
 * VMA record (commit, detach, fork, DONTNEED over a THP region) stamps it with the mm's current,
 * strictly growing, odd lock sequence before it changes anything, and before it touches the
 * page tables of the VMA's range:
 *
 *   all in one RCU read section (it keeps the record and the page tables found allocated):
 *   1  walk the tree to the record; seq = its stamp (give up if write-locked now); copy the
 *      fields the fault needs; re-read the stamp (a change: abort); the PTE table and the entry
 *   2  no lock held: allocate (and zero) the frame (the frame allocator never sleeps: per-CPU
 *      lists and zone_lock, a spinlock, which an RCU read section allows)
 *   3  take the PTE table's PTL, re-check that the PMD entry still names the table, that the
 *      stamp is still seq and that the entry is still the one seen in 1; install; unlock
 *
 * Why 3 suffices: a writer that changes the VMA stamps it, then zaps, re-protects or moves its
 * entries under each PTE table's PTL (zapRange, changeProtection and movePtes lock every table of
 * the range; a table leaves its PMD only under its own PTL, detachTable). If our PTL came after
 * the writer's, we see the stamp and abort; if before, the writer finds our entry and treats it
 * as it treats every other (a zap removes it, mprotect re-protects it, a move carries it along).
 * The record cannot be freed and reused inside the read section; a detach stamps it first. (The
 * stamps come from a per-mm sequence that only grows; 2^31 write sections would wrap it.)
 *
 * Eligible: a private anonymous VMA, in a region whose PMD entry is a PTE table, at an entry that
 * is empty (do_anonymous_page: the zero page on a read, a zeroed frame on a write) or the zero
 * page written (a zeroed frame replaces it); the VMA must have its anon_vma unless the fault maps
 * the zero page (the vma-lock path leaves that case to mmap_lock too); not GUP's unshare. An access
 * error read from a valid snapshot is answered at once. Everything else, file and shared faults
 * included, is left to the vma-lock path (SPEC_SKIP); a failed validation is SPEC_ABORT. Both are
 * counted (vmstat: speculativeSkips, speculativeAborts) and go on to lockVmaUnderRcu.
 *
 * Allocation-free but for the frame; module state is per CPU (each CPU is one thread).
 */
import { assert } from '../assert.js';
import { rangeOut } from '../maple/api.js';
import { KIND_ANON, PG_ANON_EXCLUSIVE, ZERO_PFN } from '../mem/page.js';
import {
  makePte,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITE,
  pmdIndex,
  pteIndex,
  ptePfn,
} from '../mem/pte.js';
import { FAULT_SEGV_ACCERR } from '../mem/tlb.js';
import { rcuReadLock, rcuReadLockHeld, rcuReadUnlock } from '../sync/rcu.js';
import type { SyscallContext } from './context.js';
import { accessError } from './fault.js';
import { PAGE_SIZE, VM_EXEC, VM_SHARED, VM_WRITE } from './vm-flags.js';
import { countEvent, EV_SPEC_ABORT, EV_SPEC_SKIP, vmaSeqBegin, vmaSeqRetry } from './vma-lock.js';
import { NAME_ANON } from './vma-record.js';

/** faultPageSpeculative: the fault is done (a PTE installed, or one another CPU installed kept). */
export const SPEC_DONE = 0;
/** Not a fault this path handles: the vma-lock path takes it. (Apart from fault-codes.ts's.) */
export const SPEC_SKIP = 5;
/** The VMA or its page table changed under the fault: the vma-lock path takes it. */
export const SPEC_ABORT = 6;
/** install: the VMA is unchanged but another CPU changed the entry meanwhile (its page is kept). */
const SPEC_RACED = 7;

/** Per CPU: the tree walk's result. */
const out = rangeOut();

/** Per CPU: phase 1's snapshot (the record, its stamp, the fields the fault needs, the entry seen). */
let snapRecord = 0;
let snapSeq = 0;
let snapFlags = 0;
let snapOwner = 0;
let snapIndex = 0;
let snapEntry = 0;
/** The PTE table, and the index in `pt.entries` of the PMD entry naming it. */
let snapTable = 0;
let snapPmdWord = 0;

/**
 * The speculative fault of the page at `page` (see the file comment): SPEC_DONE,
 * FAULT_SEGV_ACCERR, SPEC_SKIP or SPEC_ABORT (the last two counted here). A replaced zero page is
 * left in mm.ptWork's deferred list (the caller flushes it). Preconditions: no lock held, not in
 * an RCU read section; this CPU's transaction is not open.
 */
export function faultPageSpeculative(
  mm: SyscallContext,
  page: number,
  write: boolean,
  exec: boolean,
): number {
  rcuReadLock();
  let r: number;
  try {
    r = snapshot(mm, page, write, exec);
    if (r === SPEC_DONE) r = prepareAndInstall(mm, page, write);
  } finally {
    rcuReadUnlock();
  }
  return r === SPEC_SKIP || r === SPEC_ABORT ? count(mm, r) : r;
}

/** Phases 2 and 3: SPEC_DONE or SPEC_SKIP / SPEC_ABORT. Preconditions: snapshot's. */
function prepareAndInstall(mm: SyscallContext, page: number, write: boolean): number {
  const fresh = write || !mm.config.zeroPage;
  const pfn = fresh ? mm.mem.allocFrame(KIND_ANON, snapOwner, snapIndex) : ZERO_PFN;
  // Out of memory: the vma-lock path allocates again and reports it.
  if (pfn === 0) return SPEC_SKIP;
  if (fresh) mm.mem.setFlag(pfn, PG_ANON_EXCLUSIVE);
  const r = install(mm, page, write, pfn);
  if (r !== SPEC_DONE && fresh) {
    mm.mem.clearFlag(pfn, PG_ANON_EXCLUSIVE);
    mm.mem.putPage(pfn);
  }
  // Raced: done like anon-fault.ts's lost race (the Mmu walks again, and faults again if needed).
  return r === SPEC_RACED ? SPEC_DONE : r;
}

function count(mm: SyscallContext, r: number): number {
  if (r === SPEC_SKIP) countEvent(mm.locks, EV_SPEC_SKIP);
  else if (r === SPEC_ABORT) countEvent(mm.locks, EV_SPEC_ABORT);
  return r;
}

/**
 * Phase 1: the VMA covering page read as a seqcount reader, then its PTE. SPEC_DONE with the
 * snapshot taken, FAULT_SEGV_ACCERR, SPEC_SKIP or SPEC_ABORT. Preconditions: in an RCU read section.
 */
function snapshot(mm: SyscallContext, page: number, write: boolean, exec: boolean): number {
  const h = mm.index.load(page, out);
  if (h <= 0) return SPEC_SKIP;
  const seq = vmaSeqBegin(mm.locks, h);
  if (seq < 0) return SPEC_ABORT;
  const a = mm.arena;
  const start = a.start(h);
  const end = a.end(h);
  const flags = a.flags(h);
  const file = a.file(h);
  const owner = a.anon(h);
  const nameKind = a.nameKind(h);
  const pgoff = a.pgoff(h);
  if (vmaSeqRetry(mm.locks, h, seq) || page < start || page >= end) return SPEC_ABORT;
  if (exec ? (flags & VM_EXEC) === 0 : accessError(flags, write && !mm.faultUnshare))
    return FAULT_SEGV_ACCERR;
  if (file !== 0 || (flags & VM_SHARED) !== 0 || nameKind !== NAME_ANON || mm.faultUnshare) return SPEC_SKIP;
  // A frame needs the anon_vma (made under mmap_lock); the zero page does not.
  if (owner === 0 && (write || !mm.config.zeroPage)) return SPEC_SKIP;
  const pmdTable = mm.pt.findPmdTable(page);
  if (pmdTable === 0) return SPEC_SKIP;
  const pmdWord = (pmdTable << 9) | pmdIndex(page);
  const pmd = Atomics.load(mm.pt.entries, pmdWord);
  if (pmd === 0 || (pmd & PTE_HUGE) !== 0) return SPEC_SKIP;
  const entry = mm.pt.readEntry(pmd >>> 12, pteIndex(page));
  if (entry !== 0 && !(write && ptePfn(entry) === ZERO_PFN)) return SPEC_SKIP;
  snapRecord = h;
  snapSeq = seq;
  snapFlags = flags;
  snapOwner = owner;
  snapIndex = pgoff + (page - start) / PAGE_SIZE;
  snapEntry = entry;
  snapTable = pmd >>> 12;
  snapPmdWord = pmdWord;
  return SPEC_DONE;
}

/**
 * Phase 3: validates the snapshot under the PTE table's PTL and installs `pfn` (ZERO_PFN: the
 * zero page): SPEC_DONE, SPEC_RACED (another CPU changed the entry meanwhile: the caller puts
 * ours) or SPEC_ABORT. Preconditions: in the RCU read section of the snapshot (it keeps the
 * table allocated); `pfn` allocated for this fault.
 */
function install(mm: SyscallContext, page: number, write: boolean, pfn: number): number {
  const pt = mm.pt;
  const t = snapTable;
  const i = pteIndex(page);
  assert(t > 0 && rcuReadLockHeld(), 'speculative fault: installing outside the snapshot');
  pt.lockTable(t);
  // A PTE table leaves its PMD entry only under its own PTL (detachTable); a whole-table move
  // (mremap) carries any entry installed here along, and stamps the VMA first.
  if (Atomics.load(pt.entries, snapPmdWord) >>> 12 !== t || vmaSeqRetry(mm.locks, snapRecord, snapSeq)) {
    pt.unlockTable(t);
    return SPEC_ABORT;
  }
  if (pt.readEntry(t, i) !== snapEntry) {
    // Another CPU faulted the page in meanwhile (the VMA is unchanged): keep its page.
    pt.unlockTable(t);
    return SPEC_RACED;
  }
  if (pfn === ZERO_PFN) {
    pt.setPteLocked(t, i, makePte(ZERO_PFN, PTE_PRESENT | PTE_USER));
    pt.unlockTable(t);
    return SPEC_DONE;
  }
  const writable = (snapFlags & VM_WRITE) !== 0;
  const bits = PTE_PRESENT | PTE_USER | PTE_ACCESSED | (writable ? PTE_WRITE | (write ? PTE_DIRTY : 0) : 0);
  mm.mem.incMapcount(pfn);
  pt.setPteLocked(t, i, makePte(pfn, bits));
  pt.unlockTable(t);
  // The zero page written: CPUs may still read it through a cached translation (anon-fault.ts).
  if (snapEntry !== 0) mm.ptWork.deferPut(ZERO_PFN, Math.floor(page / PAGE_SIZE));
  return SPEC_DONE;
}
