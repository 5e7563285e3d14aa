/**
 * touch: the traces' stand-in for page faults. Accesses one byte of every page of
 * [addr, addr + len) that can be accessed without a fatal fault (mapped, readable or writable as
 * asked, inside the file or shmem object) and skips the others, as the recorder does. A write
 * on a private VMA gives it an anon_vma; so does a read that maps a transparent huge page.
 */
import { EINVAL } from '../../errno.js';
import type { AddressSpace } from '../address-space.js';
import { backedEnd, faultRange } from '../fault.js';
import { PAGE_SIZE, VM_READ, VM_WRITE } from '../vm-flags.js';

export function sysTouch(mm: AddressSpace, addr: number, len: number, write: boolean): number {
  if (addr % PAGE_SIZE !== 0 || len % PAGE_SIZE !== 0 || addr + len > mm.config.taskSize) return -EINVAL;
  mm.begin();
  const t = mm.txn;
  const end = addr + len;
  const need = write ? VM_WRITE : VM_READ;
  for (let vma = t.intersecting(addr, end); vma >= 0 && t.start[vma] < end; vma = t.nextOf(vma)) {
    if ((t.flags[vma] & need) === 0) continue;
    const from = Math.max(addr, t.start[vma]);
    const to = Math.min(end, t.end[vma], backedEnd(mm, vma));
    faultRange(mm, vma, from, to, write);
  }
  return mm.end(0);
}
