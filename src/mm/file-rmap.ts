/**
 * The rmap seam's implementation (src/fs/rmap-seam.ts; docs/fs.md, "The reverse map"): Linux's
 * unmap_mapping_range and page_mkclean over a file's i_mmap entries, in every address space that
 * maps the file, reached by id through the registry (mm-registry.ts). Installed on every thread
 * that loads this module (the AddressSpace imports it, and installs it again when it is made, in
 * case a test put its own operations in meanwhile).
 *
 * Both walks hold the file's i_mmap for read and first wait until no VMA commit has a window open
 * on the file (src/fs/i-mmap.ts): then every record an entry names is as a commit left it, and so
 * are the PTEs under it, and none of those page tables can be freed before the walk drops i_mmap
 * (a table under a file VMA is only freed by a commit that changes that VMA: inside a window).
 * A walk takes each table's PTL to change its entries, shoots the changed pages down in that
 * address space's TLB domain, and only then puts the frames it unmapped. Resident-set sizes are
 * counted from the page tables (proc-maps.ts), so a zap needs no counter update.
 *
 * Preconditions of both (the page cache's, docs/fs.md): unmapMappingRange is called holding the
 * file's invalidate_lock for write (truncate, punch) or the page lock of the one page it unmaps;
 * mkcleanPage holding the page lock of `pfn`. No spinlock, no mmap_lock, no RCU read section; the
 * calling CPU's Mmus are offline (it is in a syscall or the miss handler), so a shootdown in an
 * address space it also runs in does not wait for itself. Lock order: invalidate_lock -> page_lock
 * -> i_mmap -> PTL.
 */
import { assert } from '../assert.js';
import type { FileTable } from '../fs/file-table.js';
import {
  iMmapCount,
  iMmapEntryMm,
  iMmapEntryVma,
  iMmapFirst,
  iMmapLockRead,
  iMmapNext,
  iMmapUnlockRead,
  iMmapWaitCommitsLocked,
} from '../fs/i-mmap.js';
import { installRmap, type RmapOps } from '../fs/rmap-seam.js';
import type { PhysMem } from '../mem/frames.js';
import { PG_ANON, ZERO_PFN } from '../mem/page.js';
import { PAGE_SIZE, PMD_SIZE, PTE_DIRTY, PTE_HUGE, PTE_WRITE, pteIndex } from '../mem/pte.js';
import { type MmView, mmLookup } from './mm-registry.js';
import { VM_SHARED } from './vm-flags.js';

/** Frames a zap unmapped, put after its shootdown (a reusable list: no allocation per call). */
const zapped = { pfns: new Int32Array(256), n: 0, lowVpn: 0, highVpn: 0 };

/**
 * unmap_mapping_range for pages [first, last] of file `id`: the PTEs mapping them go from every
 * address space, the file's pages always, a private mapping's anonymous copies of them only with
 * `evenCows` (truncate; a punch keeps them).
 */
export function unmapMappingRange(
  files: FileTable,
  id: number,
  first: number,
  last: number,
  evenCows: boolean,
): void {
  assert(
    Number.isInteger(first) && Number.isInteger(last) && first >= 0 && first <= last,
    'unmapMappingRange: bad range',
  );
  const mem = files.mem as PhysMem;
  iMmapLockRead(files, id);
  try {
    iMmapWaitCommitsLocked(files, id);
    let budget = iMmapCount(files, id);
    for (let e = iMmapFirst(files, id); e !== 0; e = iMmapNext(files, e)) {
      assert(budget-- > 0, 'unmapMappingRange: the i_mmap list is longer than its count');
      zapEntry(mem, mmLookup(iMmapEntryMm(files, e)), iMmapEntryVma(files, e), first, last, evenCows);
    }
  } finally {
    iMmapUnlockRead(files, id);
  }
}

/** Zaps what record h of mm maps of pages [first, last]. */
function zapEntry(mem: PhysMem, mm: MmView, h: number, first: number, last: number, evenCows: boolean): void {
  const a = mm.arena;
  const start = a.start(h);
  const pgoff = a.pgoff(h);
  const lastOfVma = pgoff + (a.end(h) - start) / PAGE_SIZE - 1;
  const lo = Math.max(first, pgoff);
  const hi = Math.min(last, lastOfVma);
  if (lo > hi) return;
  const keepAnon = !evenCows && (a.flags(h) & VM_SHARED) === 0;
  zapPtes(mem, mm, start + (lo - pgoff) * PAGE_SIZE, start + (hi - pgoff + 1) * PAGE_SIZE, keepAnon);
}

/**
 * Clears the PTEs of [start, end) in mm (keeping anonymous pages' with `keepAnon`) under their
 * tables' PTLs, shoots them down, then puts the frames.
 */
function zapPtes(mem: PhysMem, mm: MmView, start: number, end: number, keepAnon: boolean): void {
  const pt = mm.pt;
  zapped.n = 0;
  zapped.highVpn = 0;
  for (let r = start - (start % PMD_SIZE); r < end; r += PMD_SIZE) {
    const t = pt.findPteTable(r);
    if (t === 0) {
      assert((pt.pmdEntry(r) & PTE_HUGE) === 0, 'unmapMappingRange: a huge entry under a file VMA');
      continue;
    }
    const from = Math.max(start, r);
    const to = Math.min(end, r + PMD_SIZE);
    const last = pteIndex(to - PAGE_SIZE);
    pt.lockTable(t);
    try {
      for (let i = pteIndex(from); i <= last; i++) {
        const y = pt.readEntry(t, i);
        if (y === 0) continue;
        const pfn = y >>> 12;
        if (keepAnon && pfn !== ZERO_PFN && mem.testFlag(pfn, PG_ANON)) continue;
        pt.clearPteLocked(t, i);
        noteZapped(mem, pfn, r / PAGE_SIZE + i);
      }
    } finally {
      pt.unlockTable(t);
    }
  }
  if (zapped.highVpn === 0) return;
  if (mm.tlb.inUse()) mm.tlb.shootdown(zapped.lowVpn, zapped.highVpn);
  for (let i = 0; i < zapped.n; i++) mem.putPage(zapped.pfns[i]);
  zapped.n = 0;
  zapped.highVpn = 0;
}

/** A PTE of page vpn mapping pfn was cleared: its map count goes now, its reference after the shootdown. */
function noteZapped(mem: PhysMem, pfn: number, vpn: number): void {
  if (zapped.highVpn === 0 || vpn < zapped.lowVpn) zapped.lowVpn = vpn;
  if (vpn + 1 > zapped.highVpn) zapped.highVpn = vpn + 1;
  if (pfn === ZERO_PFN) return;
  mem.decMapcount(pfn);
  if (zapped.n === zapped.pfns.length) {
    const grown = new Int32Array(zapped.n * 2);
    grown.set(zapped.pfns);
    zapped.pfns = grown;
  }
  zapped.pfns[zapped.n++] = pfn;
}

/**
 * page_mkclean: every PTE mapping `pfn` as page `index` of file `id` loses WRITE and DIRTY, and is
 * shot down, so the next store through any mapping faults (page_mkwrite) and dirties the page again.
 */
export function mkcleanPage(files: FileTable, id: number, index: number, pfn: number): void {
  iMmapLockRead(files, id);
  try {
    iMmapWaitCommitsLocked(files, id);
    let budget = iMmapCount(files, id);
    for (let e = iMmapFirst(files, id); e !== 0; e = iMmapNext(files, e)) {
      assert(budget-- > 0, 'mkcleanPage: the i_mmap list is longer than its count');
      mkcleanEntry(mmLookup(iMmapEntryMm(files, e)), iMmapEntryVma(files, e), index, pfn);
    }
  } finally {
    iMmapUnlockRead(files, id);
  }
}

function mkcleanEntry(mm: MmView, h: number, index: number, pfn: number): void {
  const a = mm.arena;
  const pgoff = a.pgoff(h);
  const addr = a.start(h) + (index - pgoff) * PAGE_SIZE;
  if (index < pgoff || addr >= a.end(h)) return;
  const pt = mm.pt;
  const t = pt.findPteTable(addr);
  if (t === 0) return;
  const i = pteIndex(addr);
  let cleaned = false;
  pt.lockTable(t);
  try {
    const y = pt.readEntry(t, i);
    if (y >>> 12 === pfn && (y & (PTE_WRITE | PTE_DIRTY)) !== 0) {
      pt.setPteLocked(t, i, (y & ~(PTE_WRITE | PTE_DIRTY)) >>> 0);
      cleaned = true;
    }
  } finally {
    pt.unlockTable(t);
  }
  const vpn = addr / PAGE_SIZE;
  if (cleaned && mm.tlb.inUse()) mm.tlb.shootdown(vpn, vpn + 1);
}

const ops: RmapOps = { unmapMappingRange, mkcleanPage };

/** Installs these operations into the page cache's seam on this thread (idempotent). */
export function installFileRmap(): void {
  installRmap(ops);
}

installFileRmap();
