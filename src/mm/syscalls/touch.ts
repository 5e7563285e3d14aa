/**
 * touch: the traces' stand-in for page faults. Accesses one byte of every page of
 * [addr, addr + len) that can be accessed without a fatal fault (mapped, readable or writable as
 * asked, inside the file or shmem object) and skips the others, as the recorder does. A write
 * on a private VMA gives it an anon_vma; so does a read that maps a transparent huge page, and any
 * read of private anonymous memory on a kernel without the zero page.
 *
 * A touch may start in the free gap below a VM_GROWSDOWN VMA: its first access grows the VMA down
 * to addr, then is checked against the VMA's permissions; if either fails, the access raises
 * SIGSEGV, which the recorder reports as EFAULT (the VMA may have grown all the same).
 */
import { EFAULT, EINVAL, ENOMEM } from '../../errno.js';
import { CHECKED, POPULATE_TOUCH_READ, POPULATE_TOUCH_WRITE, type SyscallContext } from '../context.js';
import { accessError, backedEnd, expandDownwards, faultRange } from '../fault.js';
import { FILE_NEED_IO } from '../file-fault.js';
import { PAGE_SIZE, VM_GROWSDOWN, VM_READ, VM_WRITE } from '../vm-flags.js';

/** touch's checks before mmap_lock: CHECKED or -EINVAL. */
export function touchCheck(taskSize: number, addr: number, len: number): number {
  if (addr % PAGE_SIZE !== 0 || len % PAGE_SIZE !== 0 || addr + len > taskSize) return -EINVAL;
  return CHECKED;
}

/**
 * touch under mmap_lock held for write: only the growth of a VM_GROWSDOWN VMA needs the write
 * lock (lock_mm_and_find_vma upgrades for it); the accesses themselves are faults, run by the
 * populate stage after the unlock (touchFaults).
 */
export function touchLocked(mm: SyscallContext, addr: number, len: number, write: boolean): number {
  const from = len > 0 ? growForAccess(mm, addr, addr + len, write) : addr;
  if (from < 0) return from;
  if (len > 0) mm.requestPopulate(addr, len, write ? POPULATE_TOUCH_WRITE : POPULATE_TOUCH_READ);
  return 0;
}

/**
 * The accesses of a touch: every page of [start, end) in a VMA that allows the access and inside
 * its backing object faults in. 0, -ENOMEM, or FILE_NEED_IO (file-fault.ts). Preconditions: mmap_lock (R) and page_table_lock.
 */
export function touchFaults(mm: SyscallContext, start: number, end: number, write: boolean): number {
  const t = mm.txn;
  const need = write ? VM_WRITE : VM_READ;
  for (let vma = t.intersecting(start, end); vma >= 0 && t.start[vma] < end; vma = t.nextOf(vma)) {
    if ((t.flags[vma] & need) === 0) continue;
    const lo = Math.max(start, t.start[vma]);
    const hi = Math.min(end, t.end[vma], backedEnd(mm, vma));
    const r = faultRange(mm, vma, lo, hi, write);
    if (r === -ENOMEM || r === FILE_NEED_IO) return r;
  }
  return 0;
}

/**
 * The first access, at `addr`, when it lies in no VMA but below a VM_GROWSDOWN one: the fault
 * path (lock_mm_and_find_vma) grows that VMA, then checks the access (access_error); the
 * accesses up to the VMA's end then fault in normally. Returns where the ordinary walk goes on
 * (addr when there is nothing to grow), or -EFAULT for the SIGSEGV.
 */
function growForAccess(mm: SyscallContext, addr: number, end: number, write: boolean): number {
  const t = mm.txn;
  const vma = t.findFrom(addr);
  if (vma < 0 || t.start[vma] <= addr || (t.flags[vma] & VM_GROWSDOWN) === 0) return addr;
  if (expandDownwards(mm, vma, addr) < 0 || accessError(t.flags[vma], write)) return -EFAULT;
  const grown = Math.min(end, t.end[vma]);
  if (faultRange(mm, vma, addr, grown, write) === -ENOMEM) return -ENOMEM;
  return grown;
}
