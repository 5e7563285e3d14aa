/**
 * mremap(2) (mm/mremap.c, Linux 6.17+): shrink in place (unmapping the tail, even past the VMA),
 * grow in place (vma_merge_extend) or move (copy_vma + unmap of the source), MREMAP_FIXED (which
 * first unmaps the target), MREMAP_DONTUNMAP (the source stays, loses VM_LOCKED and, when moved
 * whole, its anon_vma), old_len 0 on shared mappings (a second mapping of the same object), and
 * MREMAP_FIXED|MAYMOVE with equal lengths moving every VMA of a range that may span holes.
 */
import { EAGAIN, EFAULT, EINVAL, ENOMEM } from '../../errno.js';
import { CHECKED, POPULATE_IGNORE, type SyscallContext } from '../context.js';
import { isAnonymous } from '../fault.js';
import {
  MAP_FIXED,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  VM_DONTEXPAND,
  VM_LOCKED,
  VM_LOCKED_MASK,
  VM_MAYSHARE,
  VM_PFNMAP,
  VM_SHARED,
} from '../vm-flags.js';
import { pageAlign, U64 } from './args.js';
import { mlockFutureOk } from './mlock.js';
import { doMunmap, doVmiMunmap } from './munmap.js';

/** struct vma_remap_struct, reused. */
class Remap {
  addr = 0;
  oldLen = 0;
  newLen = 0;
  flags = 0;
  newAddr = 0;
  vma = -1;
  delta = 0;
  populateExpand = false;
}

const vrm = new Remap();

function setRemap(addr: number, oldLen: number, newLen: number, flags: number, newAddr: number): Remap {
  vrm.addr = addr;
  vrm.oldLen = pageAlign(oldLen);
  vrm.newLen = pageAlign(newLen);
  vrm.flags = flags;
  vrm.newAddr = newAddr;
  vrm.vma = -1;
  vrm.populateExpand = false;
  return vrm;
}

/** mremap's checks before mmap_lock (check_mremap_params): CHECKED or -errno. */
export function mremapCheck(
  taskSize: number,
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): number {
  const bad = checkParams(taskSize, setRemap(addr, oldLen, newLen, flags, newAddr), flags >= 2 ** 32);
  return bad !== 0 ? bad : CHECKED;
}

/** do_mremap under mmap_lock. Preconditions: mremapCheck passed; mmap_lock held for write. */
export function mremapLocked(
  mm: SyscallContext,
  addr: number,
  oldLen: number,
  newLen: number,
  flags: number,
  newAddr: number,
): number {
  setRemap(addr, oldLen, newLen, flags, newAddr);
  if (mm.mapCount + 4 > mm.config.maxMapCount) return -ENOMEM;
  let res: number;
  if ((vrm.flags & MREMAP_FIXED) !== 0 && vrm.oldLen === vrm.newLen) {
    res = remapMove(mm, vrm);
  } else {
    vrm.vma = mm.txn.vmaAt(vrm.addr);
    res = checkPrepVma(mm, vrm);
    if (res === 0) res = impliesNewAddr(vrm) ? mremapTo(mm, vrm) : mremapAt(mm, vrm);
  }
  if (res >= 0 && vrm.populateExpand)
    mm.requestPopulate(vrm.newAddr + vrm.oldLen, vrm.delta, POPULATE_IGNORE);
  return res;
}

function impliesNewAddr(v: Remap): boolean {
  return (v.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) !== 0;
}

/** check_mremap_params. */
function checkParams(task: number, v: Remap, highFlags: boolean): number {
  if ((v.flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) !== 0 || highFlags) return -EINVAL;
  if (v.addr % PAGE_SIZE !== 0) return -EINVAL;
  if (v.newLen === 0) return -EINVAL;
  if (v.newLen > task) return -EINVAL;
  if (!impliesNewAddr(v)) return 0;
  if (v.newAddr > task - v.newLen) return -EINVAL;
  if (v.newAddr % PAGE_SIZE !== 0) return -EINVAL;
  if ((v.flags & MREMAP_MAYMOVE) === 0) return -EINVAL;
  if ((v.flags & MREMAP_DONTUNMAP) !== 0 && v.oldLen !== v.newLen) return -EINVAL;
  const endOld = v.addr + v.oldLen;
  const endNew = v.newAddr + v.newLen;
  if (endOld > v.newAddr && endNew > v.addr) return -EINVAL;
  return 0;
}

/** check_prep_vma: 0 or -errno; sets delta. */
function checkPrepVma(mm: SyscallContext, v: Remap): number {
  const t = mm.txn;
  const vma = v.vma;
  if (vma < 0) return -EFAULT;
  v.delta = Math.abs(v.oldLen - v.newLen);
  if (!impliesNewAddr(v)) v.newAddr = v.addr;
  if (!(v.newLen > v.oldLen || impliesNewAddr(v))) return 0;
  const flags = t.flags[vma];
  let oldLen = v.oldLen;
  if (oldLen === 0 && (flags & (VM_SHARED | VM_MAYSHARE)) === 0) return -EINVAL;
  if ((v.flags & MREMAP_DONTUNMAP) !== 0 && (flags & (VM_DONTEXPAND | VM_PFNMAP)) !== 0) return -EINVAL;
  if (v.oldLen > v.newLen) oldLen = v.newLen;
  if (oldLen > t.end[vma] - v.addr) return -EFAULT;
  if (v.newLen === oldLen) return 0;
  if ((flags & VM_LOCKED) !== 0) v.populateExpand = true;
  const pgoff = t.pgoff[vma] + (v.addr - t.start[vma]) / PAGE_SIZE;
  if (pgoff + v.newLen / PAGE_SIZE >= U64) return -EINVAL;
  if ((flags & (VM_DONTEXPAND | VM_PFNMAP)) !== 0) return -EFAULT;
  if (!mlockFutureOk(mm, (flags & VM_LOCKED) !== 0, v.delta)) return -EAGAIN;
  return 0;
}

/** mremap_at: resize in place, moving if it must and may. */
function mremapAt(mm: SyscallContext, v: Remap): number {
  if (v.oldLen === v.newLen) return v.addr;
  if (v.oldLen > v.newLen) {
    const r = doVmiMunmap(mm, v.addr + v.newLen, v.delta);
    return r < 0 ? r : v.addr;
  }
  return expandVma(mm, v);
}

/** expand_vma. */
function expandVma(mm: SyscallContext, v: Remap): number {
  const t = mm.txn;
  if (t.end[v.vma] - v.addr === v.oldLen && expandable(mm, v.vma, v.delta)) {
    const ms = mm.ms.forVma(t, v.vma, v.vma, t.end[v.vma], t.end[v.vma] + v.delta);
    ms.middle = -1;
    ms.next = t.findFrom(t.end[v.vma]);
    if (mm.layer.mergeNewRange(ms) < 0) return -ENOMEM;
    return v.addr;
  }
  if ((v.flags & MREMAP_MAYMOVE) === 0) return -ENOMEM;
  const err = setNewAddr(mm, v);
  if (err < 0) return err;
  return moveVma(mm, v);
}

/** vma_expandable: [vm_end, vm_end + delta) is free and inside TASK_SIZE. */
function expandable(mm: SyscallContext, vma: number, delta: number): boolean {
  const t = mm.txn;
  const end = t.end[vma] + delta;
  if (mm.txn.intersecting(t.end[vma], end) >= 0) return false;
  const len = end - t.start[vma];
  const c = mm.config;
  if (len > c.taskSize || t.start[vma] > c.taskSize - len) return false;
  return t.start[vma] >= c.mmapMinAddr || c.privileged;
}

/** mremap_to: MREMAP_FIXED / MREMAP_DONTUNMAP. */
function mremapTo(mm: SyscallContext, v: Remap): number {
  const t = mm.txn;
  if ((v.flags & MREMAP_FIXED) !== 0) {
    const r = doVmiMunmap(mm, v.newAddr, v.newLen);
    if (r < 0) return r;
    v.vma = t.vmaAt(v.addr);
    if (v.vma < 0) return -EFAULT;
  }
  if (v.oldLen > v.newLen) {
    const r = doVmiMunmap(mm, v.addr + v.newLen, v.oldLen - v.newLen);
    if (r < 0) return r;
    v.vma = t.vmaAt(v.addr);
    if (v.vma < 0) return -EFAULT;
    v.oldLen = v.newLen;
  }
  const err = setNewAddr(mm, v);
  if (err < 0) return err;
  return moveVma(mm, v);
}

/** vrm_set_new_addr: where the moved VMA goes (the fixed address, or a search with hint). */
function setNewAddr(mm: SyscallContext, v: Remap): number {
  const t = mm.txn;
  const vma = v.vma;
  const pgoff = t.pgoff[vma] + (v.addr - t.start[vma]) / PAGE_SIZE;
  const hint = impliesNewAddr(v) ? v.newAddr : 0;
  let mapFlags = (v.flags & MREMAP_FIXED) !== 0 ? MAP_FIXED : 0;
  if ((t.flags[vma] & VM_MAYSHARE) !== 0) mapFlags |= MAP_SHARED;
  const file = t.file[vma];
  const res = mm.placement.getUnmappedArea(file, hint, v.newLen, file !== 0 ? pgoff : 0, mapFlags);
  if (res < 0) return res;
  v.newAddr = res;
  return 0;
}

/** move_vma: copy the VMA to newAddr, then unmap the source (or, with DONTUNMAP, unlock it). */
function moveVma(mm: SyscallContext, v: Remap): number {
  const t = mm.txn;
  if (mm.mapCount + t.mapCountDelta + 2 > mm.config.maxMapCount) return -ENOMEM;
  const newVma = copyVma(mm, v);
  // move_page_tables, after the commit (PageTableWork, PageTables.movePtes): a region moved whole
  // to an equally aligned place takes its PMD entry along; otherwise a THP region is split and the
  // destination regions get page tables.
  mm.ptWork.move(v.addr, v.newAddr, v.oldLen);
  if ((v.flags & MREMAP_DONTUNMAP) !== 0) {
    const src = v.vma;
    t.flags[src] &= ~VM_LOCKED_MASK;
    if (newVma !== src && v.addr === t.start[src] && v.addr + v.oldLen === t.end[src]) t.anon[src] = 0;
  } else if (v.oldLen !== 0) {
    doMunmap(mm, v.addr, v.addr + v.oldLen);
  }
  return v.newAddr;
}

/** copy_vma: the new VMA at newAddr (merged with neighbours there if possible). */
function copyVma(mm: SyscallContext, v: Remap): number {
  const t = mm.txn;
  const src = v.vma;
  const addr = v.newAddr;
  const len = v.newLen;
  let pgoff = t.pgoff[src] + (v.addr - t.start[src]) / PAGE_SIZE;
  if (isAnonymous(mm, src) && t.anon[src] === 0) pgoff = addr / PAGE_SIZE;
  const prev = t.findBefore(addr);
  const next = t.findFrom(addr);
  const ms = mm.ms.forVma(t, prev, src, t.start[src], t.end[src]);
  ms.middle = -1;
  ms.next = next;
  ms.start = addr;
  ms.end = addr + len;
  ms.pgoff = pgoff;
  ms.copiedFrom = src;
  const merged = mm.layer.mergeNewRange(ms);
  if (merged >= 0) {
    const srcStart = t.start[src];
    if (!t.isLive(src) || (srcStart >= t.start[merged] && srcStart < t.end[merged])) v.vma = merged;
    return merged;
  }
  return t.insertCopy(src, addr, addr + len, pgoff);
}

/** remap_move: MREMAP_FIXED with old_len == new_len moves every VMA of [addr, addr + old_len). */
function remapMove(mm: SyscallContext, v: Remap): number {
  const t = mm.txn;
  const start = v.addr;
  const end = v.addr + v.oldLen;
  let target = v.newAddr;
  let res = -EFAULT;
  let seen = false;
  let lastEnd = 0;
  let cursor = start;
  while (cursor < end) {
    const vma = t.intersecting(cursor, end);
    if (vma < 0) break;
    if (!seen && start < t.start[vma]) return -EFAULT;
    const addr = Math.max(t.start[vma], start);
    const len = Math.min(end, t.end[vma]) - addr;
    const offset = seen ? t.start[vma] - lastEnd : 0;
    lastEnd = t.end[vma];
    cursor = Math.min(end, t.end[vma]);
    v.vma = vma;
    v.addr = addr;
    v.newAddr = target + offset;
    v.oldLen = len;
    v.newLen = len;
    let r = checkPrepVma(mm, v);
    if (r === 0) r = mremapTo(mm, v);
    if (r < 0) return r;
    if (!seen) res = r;
    seen = true;
    target = r + v.newLen;
  }
  return res;
}
