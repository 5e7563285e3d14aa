/**
 * touch: the traces' stand-in for page faults. Accesses one byte of every page of
 * [addr, addr + len) that can be accessed without a fatal fault (mapped, readable or writable as
 * asked, inside the file or shmem object) and skips the others, as the recorder does. A write
 * on a private VMA gives it an anon_vma; so does a read that maps a transparent huge page.
 */
import { EINVAL, ENOMEM } from '../../errno.js';
import { CHECKED, type SyscallContext } from '../context.js';
import { backedEnd, faultRange } from '../fault.js';
import { PAGE_SIZE, VM_READ, VM_WRITE } from '../vm-flags.js';

/** touch's checks before mmap_lock: CHECKED or -EINVAL. */
export function touchCheck(taskSize: number, addr: number, len: number): number {
  if (addr % PAGE_SIZE !== 0 || len % PAGE_SIZE !== 0 || addr + len > taskSize) return -EINVAL;
  return CHECKED;
}

/** touch under mmap_lock held for write (the trace stand-in runs its faults in one transaction). */
export function touchLocked(mm: SyscallContext, addr: number, len: number, write: boolean): number {
  const t = mm.txn;
  const end = addr + len;
  const need = write ? VM_WRITE : VM_READ;
  for (let vma = t.intersecting(addr, end); vma >= 0 && t.start[vma] < end; vma = t.nextOf(vma)) {
    if ((t.flags[vma] & need) === 0) continue;
    const from = Math.max(addr, t.start[vma]);
    const to = Math.min(end, t.end[vma], backedEnd(mm, vma));
    if (faultRange(mm, vma, from, to, write) === -ENOMEM) return -ENOMEM;
  }
  return 0;
}
