/**
 * mprotect(2): do_mprotect_pkey / mprotect_fixup (mm/mprotect.c). Walks the VMAs of the range in
 * order, changing each (split/merge through vma_modify_flags); a hole stops the walk with ENOMEM
 * after the VMAs before it were changed, as in Linux. VM_ACCOUNT follows the commit rules: added
 * when a private mapping becomes writable, dropped when an anonymous VMA without an anon_vma stops
 * being writable.
 */
import { EACCES, EINVAL, ENOMEM } from '../../errno.js';
import { CHECKED, type SyscallContext } from '../context.js';
import { isAnonymous, populateVmaRange } from '../fault.js';
import {
  PAGE_SIZE,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_READ,
  PROT_SEM,
  PROT_WRITE,
  protToVm,
  VM_ACCESS_FLAGS,
  VM_ACCOUNT,
  VM_GROWSDOWN,
  VM_HUGETLB,
  VM_LOCKED,
  VM_NORESERVE,
  VM_SHARED,
  VM_WRITE,
} from '../vm-flags.js';
import { addWrap, pageAlign } from './args.js';

/** do_mprotect_pkey's checks before mmap_lock: CHECKED, 0 (nothing to do) or -errno. */
export function mprotectCheck(start: number, len: number, protArg: number): number {
  const grows = protArg & (PROT_GROWSDOWN | PROT_GROWSUP);
  const prot = protArg & ~(PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  if (len === 0) return 0;
  const end = addWrap(start, pageAlign(len));
  if (end <= start) return -ENOMEM;
  if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) !== 0 || protArg >= 2 ** 32) return -EINVAL;
  return CHECKED;
}

/** do_mprotect_pkey under mmap_lock. Preconditions: mprotectCheck passed; mmap_lock held for write. */
export function mprotectLocked(mm: SyscallContext, start: number, len: number, protArg: number): number {
  const grows = protArg & (PROT_GROWSDOWN | PROT_GROWSUP);
  const prot = protArg & ~(PROT_GROWSDOWN | PROT_GROWSUP);
  const end = addWrap(start, pageAlign(len));
  const t = mm.txn;
  let vma = t.intersecting(start, end);
  if (vma < 0) return -ENOMEM;
  if ((grows & PROT_GROWSDOWN) !== 0) {
    if (t.start[vma] >= end) return -ENOMEM;
    start = t.start[vma];
    if ((t.flags[vma] & VM_GROWSDOWN) === 0) return -EINVAL;
  } else {
    if (t.start[vma] > start) return -ENOMEM;
    // x86 has no VM_GROWSUP: PROT_GROWSUP never applies.
    if ((grows & PROT_GROWSUP) !== 0) return -EINVAL;
  }
  let prev = start > t.start[vma] ? vma : t.prevOf(vma);
  let nstart = start;
  let tmp = t.start[vma];
  let error = 0;
  while (vma >= 0 && t.start[vma] < end) {
    if (t.start[vma] !== tmp) {
      error = -ENOMEM;
      break;
    }
    const newFlags = protToVm(prot) | (t.flags[vma] & ~VM_ACCESS_FLAGS);
    if ((newFlags & ~(newFlags >>> 4) & VM_ACCESS_FLAGS) !== 0) {
      error = -EACCES;
      break;
    }
    tmp = Math.min(t.end[vma], end);
    const res = mprotectFixup(mm, prev, vma, nstart, tmp, newFlags);
    if (res < 0) {
      error = res;
      break;
    }
    prev = res;
    tmp = t.end[res];
    nstart = tmp;
    // The range is done when this VMA reaches its end: no need to look the next one up.
    vma = tmp < end ? t.nextOf(res) : -1;
  }
  if (error === 0 && tmp < end) error = -ENOMEM;
  return error;
}

/** mprotect_fixup: returns the VMA now covering [start, end) (the new prev) or -errno. */
function mprotectFixup(
  mm: SyscallContext,
  prev: number,
  vma: number,
  start: number,
  end: number,
  newFlags: number,
): number {
  const t = mm.txn;
  const oldFlags = t.flags[vma];
  if (newFlags === oldFlags) return vma;
  if ((newFlags & VM_WRITE) !== 0) {
    if ((oldFlags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE)) === 0) {
      if ((end - start) / PAGE_SIZE > mm.config.commitLimitPages) return -ENOMEM;
      newFlags |= VM_ACCOUNT;
    }
  } else if ((oldFlags & VM_ACCOUNT) !== 0 && isAnonymous(mm, vma) && t.anon[vma] === 0) {
    newFlags &= ~VM_ACCOUNT;
  }
  const res = mm.layer.modifyFlags(mm.ms, prev, vma, start, end, newFlags);
  if (res < 0) return res;
  mm.ptWork.protect(start, end, newFlags);
  // A locked private VMA becoming writable is populated to break COW.
  if (
    (newFlags & VM_WRITE) !== 0 &&
    (oldFlags & VM_LOCKED) !== 0 &&
    (oldFlags & (VM_WRITE | VM_SHARED)) === 0
  ) {
    populateVmaRange(mm, res, start, end);
  }
  return res;
}
