/**
 * brk(2) (mm/mmap.c SYSCALL_DEFINE1(brk) and do_brk_flags in mm/vma.c). The heap VMA starts at
 * mm->start_brk; growth expands the VMA ending at the old break only if it lies at or above
 * start_brk (vma_prev_limit), which is why the heap never merges with the executable's .bss right
 * below it. Growth needs a free page between the new break and the next VMA (its guard gap for a
 * stack). Shrinking unmaps [new break, old break). Returns the new break, or the old one when the
 * request is refused (brk has no errno): the entry turns a failed commit into the old break too.
 */
import { POPULATE_IGNORE, type SyscallContext } from '../context.js';
import { PAGE_SIZE, VM_ACCOUNT, VM_DATA_DEFAULT_FLAGS, VM_GROWSDOWN, VM_LOCKED } from '../vm-flags.js';
import { vmaFields } from '../vma-record.js';
import { pageAlign } from './args.js';
import { mlockFutureOk } from './mlock.js';
import { doMunmap } from './munmap.js';

/** brk under mmap_lock. Preconditions: mmap_lock held for write. */
export function brkLocked(mm: SyscallContext, brk: number): number {
  const origBrk = mm.curBrk;
  if (brk < mm.startBrk) return refuse(mm, origBrk);
  const newBrk = pageAlign(brk);
  const oldBrk = pageAlign(origBrk);
  const t = mm.txn;
  if (oldBrk === newBrk) return accept(mm, brk, 0, 0);
  if (brk <= origBrk) {
    const vma = t.intersecting(newBrk, oldBrk);
    if (vma < 0 || t.start[vma] >= oldBrk) return refuse(mm, origBrk);
    if (doMunmap(mm, newBrk, oldBrk) < 0) return refuse(mm, origBrk);
    return accept(mm, brk, 0, 0);
  }
  // check_brk_limits: get_unmapped_area(MAP_FIXED) and the mlock limit.
  // newBrk wraps to 0 near 2^64: Linux's unsigned length is then huge, so the limit refuses it.
  const len = newBrk - oldBrk;
  if (len < 0 || len > mm.config.taskSize || oldBrk > mm.config.taskSize - len) return refuse(mm, origBrk);
  if (!mlockFutureOk(mm, (mm.defFlags & VM_LOCKED) !== 0, len)) return refuse(mm, origBrk);
  const next = t.intersecting(oldBrk, newBrk + PAGE_SIZE + mm.config.stackGuardGap);
  if (next >= 0 && newBrk + PAGE_SIZE > vmStartGap(mm, next)) return refuse(mm, origBrk);
  if (mm.mapCount > mm.config.maxMapCount) return refuse(mm, origBrk);
  const before = t.findBefore(oldBrk);
  const brkVma = before >= 0 && t.end[before] > mm.startBrk ? before : -1;
  doBrkFlags(mm, brkVma, oldBrk, len);
  return accept(mm, brk, oldBrk, (mm.defFlags & VM_LOCKED) !== 0 ? len : 0);
}

function vmStartGap(mm: SyscallContext, vma: number): number {
  const t = mm.txn;
  if ((t.flags[vma] & VM_GROWSDOWN) === 0) return t.start[vma];
  return Math.max(0, t.start[vma] - mm.config.stackGuardGap);
}

/** The new heap VMA's fields (reused: no allocation per call). */
const scratch = vmaFields();

/** do_brk_flags: expands the brk VMA ending at addr, or adds a new anonymous VMA. */
function doBrkFlags(mm: SyscallContext, vma: number, addr: number, len: number): void {
  const t = mm.txn;
  const flags = VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | mm.defFlags;
  const f = scratch;
  f.start = addr;
  f.end = addr + len;
  f.pgoff = addr / PAGE_SIZE;
  f.flags = flags;
  if (vma >= 0 && t.end[vma] === addr) {
    const ms = mm.ms.forNew(vma, -1, addr, addr + len, addr / PAGE_SIZE, f);
    ms.justExpand = true;
    if (mm.layer.mergeNewRange(ms) >= 0) return;
  }
  t.insert(f);
}

function accept(mm: SyscallContext, brk: number, populateStart: number, populateLen: number): number {
  if (populateLen > 0) mm.requestPopulate(populateStart, populateLen, POPULATE_IGNORE);
  mm.curBrk = brk;
  return brk;
}

function refuse(_mm: SyscallContext, origBrk: number): number {
  return origBrk;
}
