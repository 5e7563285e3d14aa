/**
 * madvise(2) (mm/madvise.c). Unknown advice is EINVAL before anything else; the range is walked
 * VMA by VMA (madvise_walk_vmas): holes are skipped and reported as ENOMEM at the end, an error in
 * a VMA stops the walk with the earlier VMAs already changed. Flag advice (NORMAL, RANDOM,
 * SEQUENTIAL, DONTFORK, DOFORK, WIPEONFORK, KEEPONFORK, DONTDUMP, DODUMP, HUGEPAGE, NOHUGEPAGE,
 * MERGEABLE, UNMERGEABLE) splits and merges like mprotect, with ENOMEM turned into EAGAIN;
 * DONTNEED/FREE/COLD/PAGEOUT/WILLNEED/REMOVE check the VMA (their page work belongs to the memory
 * layer); POPULATE_READ/WRITE fault the range in (faultin_page_range).
 */
import { EACCES, EAGAIN, EINVAL, ENOMEM } from '../../errno.js';
import { CHECKED, POPULATE_FAULTIN_READ, POPULATE_FAULTIN_WRITE, type SyscallContext } from '../context.js';
import { anonPrepare, isAnonymous } from '../fault.js';
import {
  MADV_COLD,
  MADV_COLLAPSE,
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_DONTNEED_LOCKED,
  MADV_FREE,
  MADV_GUARD_INSTALL,
  MADV_GUARD_REMOVE,
  MADV_HUGEPAGE,
  MADV_KEEPONFORK,
  MADV_MERGEABLE,
  MADV_NOHUGEPAGE,
  MADV_NORMAL,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MADV_REMOVE,
  MADV_SEQUENTIAL,
  MADV_UNMERGEABLE,
  MADV_WILLNEED,
  MADV_WIPEONFORK,
  PAGE_SIZE,
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_DROPPABLE,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_MERGEABLE,
  VM_MIXEDMAP,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
  VM_RAND_READ,
  VM_SEQ_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WIPEONFORK,
} from '../vm-flags.js';
import { addWrap, pageAlign } from './args.js';

/** madvise_behavior_valid (x86_64 with THP and KSM). Memory-failure injection is not offered. */
function validAdvice(advice: number): boolean {
  return (advice >= 0 && advice <= 4) || (advice >= 8 && advice <= 25) || advice === 102 || advice === 103;
}

/** do_madvise's checks before mmap_lock: CHECKED, 0 (nothing to do) or -errno. */
export function madviseCheck(start: number, lenIn: number, advice: number): number {
  if (!validAdvice(advice)) return -EINVAL;
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  const len = pageAlign(lenIn);
  if (lenIn !== 0 && len === 0) return -EINVAL;
  const end = addWrap(start, len);
  if (end < start) return -EINVAL;
  if (lenIn === 0) return 0;
  return CHECKED;
}

/**
 * do_madvise under mmap_lock. MADV_POPULATE_* changes no VMA: it asks for the populate stage,
 * which faults the range in under mmap_lock held for read after the write lock is gone.
 * Preconditions: madviseCheck passed; mmap_lock held for write.
 */
export function madviseLocked(mm: SyscallContext, start: number, lenIn: number, advice: number): number {
  const end = addWrap(start, pageAlign(lenIn));
  if (advice === MADV_POPULATE_READ || advice === MADV_POPULATE_WRITE) {
    const mode = advice === MADV_POPULATE_WRITE ? POPULATE_FAULTIN_WRITE : POPULATE_FAULTIN_READ;
    mm.requestPopulate(start, end - start, mode);
    return 0;
  }
  return walkVmas(mm, start, end, advice);
}

/** madvise_walk_vmas. */
function walkVmas(mm: SyscallContext, start: number, end: number, advice: number): number {
  const t = mm.txn;
  let vma = t.findFrom(start);
  let prev = vma >= 0 && start > t.start[vma] ? vma : vma >= 0 ? t.prevOf(vma) : -1;
  let unmapped = 0;
  for (;;) {
    if (vma < 0) return -ENOMEM;
    if (start < t.start[vma]) {
      unmapped = -ENOMEM;
      start = t.start[vma];
      if (start >= end) break;
    }
    let rangeEnd = Math.min(t.end[vma], end);
    const res = vmaBehavior(mm, prev, vma, start, rangeEnd, advice);
    if (res < 0) return res;
    vma = res;
    prev = vma;
    if (rangeEnd < t.end[vma]) rangeEnd = t.end[vma];
    if (rangeEnd >= end) break;
    vma = t.findFrom(t.end[vma]);
    start = rangeEnd;
  }
  return unmapped;
}

/** madvise_vma_behavior for one VMA's part [start, end): the VMA covering it after, or -errno. */
function vmaBehavior(
  mm: SyscallContext,
  prev: number,
  vma: number,
  start: number,
  end: number,
  advice: number,
): number {
  const t = mm.txn;
  let flags = t.flags[vma];
  switch (advice) {
    case MADV_REMOVE:
      if ((flags & VM_LOCKED) !== 0 || t.file[vma] === 0) return -EINVAL;
      if ((flags & (VM_SHARED | VM_MAYWRITE)) !== (VM_SHARED | VM_MAYWRITE)) return -EACCES;
      return vma;
    case MADV_WILLNEED:
      return vma;
    case MADV_COLD:
    case MADV_PAGEOUT:
      return (flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) !== 0 ? -EINVAL : vma;
    case MADV_FREE:
    case MADV_DONTNEED:
    case MADV_DONTNEED_LOCKED: {
      const forbidden = VM_PFNMAP | (advice === MADV_DONTNEED_LOCKED ? 0 : VM_LOCKED);
      if ((flags & forbidden) !== 0) return -EINVAL;
      if (advice === MADV_FREE && !isAnonymous(mm, vma)) return -EINVAL;
      if (advice !== MADV_FREE) mm.ptWork.dontneed(start, end);
      return vma;
    }
    case MADV_COLLAPSE:
      // Synchronous THP collapse needs resident pages; vmspace refuses it (see docs/mm.md).
      return -EINVAL;
    case MADV_GUARD_INSTALL:
      if ((flags & (VM_SPECIAL | VM_HUGETLB | VM_LOCKED)) !== 0) return -EINVAL;
      if (isAnonymous(mm, vma) && anonPrepare(mm, vma) < 0) return -ENOMEM;
      return vma;
    case MADV_GUARD_REMOVE:
      return (flags & (VM_SPECIAL | VM_HUGETLB)) !== 0 ? -EINVAL : vma;
    case MADV_NORMAL:
      flags &= ~(VM_RAND_READ | VM_SEQ_READ);
      break;
    case MADV_SEQUENTIAL:
      flags = (flags & ~VM_RAND_READ) | VM_SEQ_READ;
      break;
    case MADV_RANDOM:
      flags = (flags & ~VM_SEQ_READ) | VM_RAND_READ;
      break;
    case MADV_DONTFORK:
      flags |= VM_DONTCOPY;
      break;
    case MADV_DOFORK:
      if ((flags & VM_SPECIAL) !== 0) return -EINVAL;
      flags &= ~VM_DONTCOPY;
      break;
    case MADV_WIPEONFORK:
      if (t.file[vma] !== 0 || (flags & VM_SHARED) !== 0) return -EINVAL;
      flags |= VM_WIPEONFORK;
      break;
    case MADV_KEEPONFORK:
      if ((flags & VM_DROPPABLE) !== 0) return -EINVAL;
      flags &= ~VM_WIPEONFORK;
      break;
    case MADV_DONTDUMP:
      flags |= VM_DONTDUMP;
      break;
    case MADV_DODUMP:
      if ((flags & (VM_SPECIAL | VM_DROPPABLE)) !== 0 && (flags & VM_HUGETLB) === 0) return -EINVAL;
      flags &= ~VM_DONTDUMP;
      break;
    case MADV_MERGEABLE:
      if (
        (flags & (VM_SHARED | VM_MAYSHARE | VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_HUGETLB | VM_MIXEDMAP)) ===
        0
      ) {
        flags |= VM_MERGEABLE;
      }
      break;
    case MADV_UNMERGEABLE:
      flags &= ~VM_MERGEABLE;
      break;
    case MADV_HUGEPAGE:
      flags = (flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
      break;
    case MADV_NOHUGEPAGE:
      flags = (flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
      break;
    default:
      throw new Error(`madvise: unhandled advice ${advice}`);
  }
  if (flags === t.flags[vma]) return vma;
  const res = mm.layer.modifyFlags(mm.ms, prev, vma, start, end, flags);
  return res === -ENOMEM ? -EAGAIN : res;
}
