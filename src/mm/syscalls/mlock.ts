/**
 * mlock2(2), munlock(2), mlockall(2), munlockall(2) (mm/mlock.c). The range is page-rounded
 * outward (addr need not be aligned); flags are applied VMA by VMA (apply_vma_lock_flags), a hole
 * ends the walk with ENOMEM after the VMAs before it changed; special mappings are skipped. mlock
 * then populates the range (unless MLOCK_ONFAULT): a fault error becomes ENOMEM (EFAULT) or
 * EAGAIN (ENOMEM), with the flags already set.
 */
import { EINVAL, ENOMEM, EPERM } from '../../errno.js';
import type { MmConfig } from '../config.js';
import { CHECKED, POPULATE_IGNORE, POPULATE_MLOCK, type SyscallContext } from '../context.js';
import {
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MLOCK_ONFAULT,
  PAGE_SIZE,
  VM_DROPPABLE,
  VM_HUGETLB,
  VM_LOCKED,
  VM_LOCKED_MASK,
  VM_LOCKONFAULT,
  VM_SPECIAL,
} from '../vm-flags.js';
import { addWrap, pageAlign } from './args.js';

/** mlock_future_ok: locking `bytes` more stays within RLIMIT_MEMLOCK (or CAP_IPC_LOCK). */
export function mlockFutureOk(mm: SyscallContext, locked: boolean, bytes: number): boolean {
  if (!locked || mm.config.privileged) return true;
  return bytes / PAGE_SIZE + mm.lockedPages() <= Math.floor(mm.config.rlimitMemlock / PAGE_SIZE);
}

/** can_do_mlock. */
function canDoMlock(config: MmConfig): boolean {
  return config.privileged || config.rlimitMemlock !== 0;
}

/** The range mlock/munlock act on: [start & PAGE_MASK, PAGE_ALIGN(len + offset)). */
function lockRange(start: number, len: number): [number, number] {
  const offset = start % PAGE_SIZE;
  return [start - offset, pageAlign(len + offset)];
}

/** do_mlock's checks before mmap_lock: CHECKED or -errno. */
export function mlock2Check(config: MmConfig, flags: number): number {
  if ((flags & ~MLOCK_ONFAULT) !== 0) return -EINVAL;
  if (!canDoMlock(config)) return -EPERM;
  return CHECKED;
}

/**
 * do_mlock under mmap_lock; the population after the unlock decides the result (EFAULT -> ENOMEM,
 * ENOMEM -> EAGAIN, with the flags already set). Preconditions: mlock2Check passed; mmap_lock
 * held for write.
 */
export function mlock2Locked(mm: SyscallContext, startArg: number, lenArg: number, flags: number): number {
  const vmFlags = VM_LOCKED | ((flags & MLOCK_ONFAULT) !== 0 ? VM_LOCKONFAULT : 0);
  const [start, len] = lockRange(startArg, lenArg);
  if (!mm.config.privileged) {
    const limit = Math.floor(mm.config.rlimitMemlock / PAGE_SIZE);
    if (len / PAGE_SIZE + mm.lockedPages() - lockedIn(mm, start, start + len) > limit) return -ENOMEM;
  }
  const err = applyLockFlags(mm, start, len, vmFlags);
  if (err < 0) return err;
  mm.requestPopulate(start, len, POPULATE_MLOCK);
  return 0;
}

/** munlock under mmap_lock. Preconditions: mmap_lock held for write. */
export function munlockLocked(mm: SyscallContext, startArg: number, lenArg: number): number {
  const [start, len] = lockRange(startArg, lenArg);
  return applyLockFlags(mm, start, len, 0);
}

/** Pages of VM_LOCKED VMAs inside [start, end) (count_mm_mlocked_page_nr). */
function lockedIn(mm: SyscallContext, start: number, end: number): number {
  const t = mm.txn;
  let pages = 0;
  for (let v = t.intersecting(start, end); v >= 0 && t.start[v] < end; v = t.nextOf(v)) {
    if ((t.flags[v] & VM_LOCKED) !== 0)
      pages += (Math.min(end, t.end[v]) - Math.max(start, t.start[v])) / PAGE_SIZE;
  }
  return pages;
}

/** apply_vma_lock_flags. */
function applyLockFlags(mm: SyscallContext, start: number, len: number, lockFlags: number): number {
  const t = mm.txn;
  const end = addWrap(start, len);
  if (end < start) return -EINVAL;
  if (end === start) return 0;
  let vma = t.vmaAt(start);
  if (vma < 0) return -ENOMEM;
  let prev = start > t.start[vma] ? vma : t.prevOf(vma);
  let nstart = start;
  let tmp = t.start[vma];
  while (vma >= 0 && t.start[vma] < end) {
    if (t.start[vma] !== tmp) return -ENOMEM;
    const newFlags = (t.flags[vma] & ~VM_LOCKED_MASK) | lockFlags;
    tmp = Math.min(t.end[vma], end);
    const res = mlockFixup(mm, prev, vma, nstart, tmp, newFlags);
    if (res < 0) return res;
    prev = res;
    tmp = t.end[res];
    nstart = tmp;
    vma = t.nextOf(res);
  }
  return tmp < end ? -ENOMEM : 0;
}

/** mlock_fixup: returns the VMA covering the range afterwards (the new prev) or -ENOMEM. */
function mlockFixup(
  mm: SyscallContext,
  prev: number,
  vma: number,
  start: number,
  end: number,
  newFlags: number,
): number {
  const old = mm.txn.flags[vma];
  if (newFlags === old || (old & (VM_SPECIAL | VM_HUGETLB | VM_DROPPABLE)) !== 0) return vma;
  return mm.layer.modifyFlags(mm.ms, prev, vma, start, end, newFlags);
}

/** mlockall's checks before mmap_lock: CHECKED or -errno. */
export function mlockallCheck(config: MmConfig, flags: number): number {
  if (flags === 0 || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) !== 0 || flags === MCL_ONFAULT) {
    return -EINVAL;
  }
  if (!canDoMlock(config)) return -EPERM;
  return CHECKED;
}

/** mlockall under mmap_lock (a failed commit restores def_flags too). Preconditions: mlockallCheck passed. */
export function mlockallLocked(mm: SyscallContext, flags: number): number {
  if ((flags & MCL_CURRENT) !== 0 && !mm.config.privileged) {
    if (totalPages(mm) > Math.floor(mm.config.rlimitMemlock / PAGE_SIZE)) return -ENOMEM;
  }
  applyMlockall(mm, flags);
  if ((flags & MCL_CURRENT) !== 0) mm.requestPopulate(0, mm.config.taskSize, POPULATE_IGNORE);
  return 0;
}

/** munlockall under mmap_lock. */
export function munlockallLocked(mm: SyscallContext): number {
  applyMlockall(mm, 0);
  return 0;
}

function totalPages(mm: SyscallContext): number {
  const t = mm.txn;
  let pages = 0;
  for (let v = t.findFrom(0); v >= 0; v = t.nextOf(v)) pages += (t.end[v] - t.start[v]) / PAGE_SIZE;
  return pages;
}

/** apply_mlockall_flags: sets def_flags and (MCL_CURRENT or none) every VMA's lock flags. */
function applyMlockall(mm: SyscallContext, flags: number): void {
  mm.defFlags &= ~VM_LOCKED_MASK;
  if ((flags & MCL_FUTURE) !== 0) {
    mm.defFlags |= VM_LOCKED | ((flags & MCL_ONFAULT) !== 0 ? VM_LOCKONFAULT : 0);
    if ((flags & MCL_CURRENT) === 0) return;
  }
  const toAdd =
    (flags & MCL_CURRENT) !== 0 ? VM_LOCKED | ((flags & MCL_ONFAULT) !== 0 ? VM_LOCKONFAULT : 0) : 0;
  const t = mm.txn;
  let prev = -1;
  for (let vma = t.findFrom(0); vma >= 0; ) {
    const newFlags = (t.flags[vma] & ~VM_LOCKED_MASK) | toAdd;
    const res = mlockFixup(mm, prev, vma, t.start[vma], t.end[vma], newFlags);
    prev = res < 0 ? vma : res;
    vma = t.nextOf(prev);
  }
}
