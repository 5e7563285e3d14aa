/**
 * Page tables against VMAs: the whole-structure check of one address space's page tables and of
 * the frames they map (src/mm/check.ts checks the VMAs themselves). For tests and stress runs:
 * it walks every present entry, so it is not for debug mode after every commit.
 *
 *   - the radix is well formed (PageTables.validate);
 *   - every present entry lies inside a VMA: none in a gap between VMAs;
 *   - an entry gives user access only if its VMA allows some access (mprotect(PROT_NONE) takes it
 *     away) and write access only if the VMA has VM_WRITE: to an anonymous page that is
 *     PG_ANON_EXCLUSIVE (a write never reaches a page another mm or the zero page shares), or to a
 *     file page of a shared VMA that is PG_DIRTY (write-notify: page_mkwrite ran);
 *   - every mapped frame but the zero page is in use (map count >= 1, reference count >= map
 *     count) and is either an anonymous page whose owner is its VMA's anon_vma (private VMAs only:
 *     anonymous memory, or the copy-on-write copies of a private file mapping), or a file page
 *     (KIND_FILE, in file and shared VMAs only) whose owner is the VMA's file; either way its index
 *     is the VMA's linear page index (vm_pgoff + the page's offset in the VMA);
 *   - a VMA neither anonymous nor backed by a file (a special mapping) maps nothing;
 * Huge (PMD) entries are checked for place and permissions only (faults do not install them yet).
 *
 * `checkFrameMaps(mem, mapped, refs)` then compares the map counts summed over every address space
 * of a PhysMem (checkPtesLocked adds each mapped frame at mapped[pfn]), and the references known to
 * be held besides (pins), with the page descriptors.
 *
 * Preconditions: mmap_lock held and no CPU changing the page tables (no fault running: the
 * per-VMA-lock fault path runs beside mmap_lock (R)), or no other CPU running. Each throws an
 * Error naming the first broken invariant.
 */

import { rangeOut } from '../maple/api.js';
import type { PhysMem } from '../mem/frames.js';
import {
  FIRST_PFN,
  KIND_ANON,
  KIND_FILE,
  KIND_FREE,
  PG_ANON_EXCLUSIVE,
  PG_DIRTY,
  ZERO_PFN,
} from '../mem/page.js';
import { PTE_HUGE, PTE_USER, PTE_WRITE, ptePfn, USER_ADDR_LIMIT } from '../mem/pte.js';
import type { MmShared } from './context.js';
import { PAGE_SIZE, VM_ACCESS_FLAGS, VM_SHARED, VM_WRITE } from './vm-flags.js';

/** What one VMA allows its entries (filled per VMA; one object per check, not per entry). */
interface VmaScope {
  mm: MmShared;
  where: string;
  start: number;
  pgoff: number;
  flags: number;
  anon: number;
  /** The VMA's file (0: none). */
  file: number;
  /** Frames may be mapped (a private VMA without a file). */
  anonymous: boolean;
  mapped: Int32Array | undefined;
}

/**
 * Every invariant of the file comment for `mm`; with `mapped`, adds 1 at mapped[pfn] for every
 * entry mapping frame pfn (not the zero page).
 */
export function checkPtesLocked(mm: MmShared, mapped?: Int32Array): void {
  const problem = mm.pt.validate();
  if (problem !== undefined) fail(`page tables: ${problem}`);
  const a = mm.arena;
  const out = rangeOut();
  const scope: VmaScope = {
    mm,
    where: '',
    start: 0,
    pgoff: 0,
    flags: 0,
    anon: 0,
    file: 0,
    anonymous: false,
    mapped,
  };
  const onEntry = (addr: number, entry: number): void => checkEntry(scope, addr, entry);
  let gapStart = 0;
  for (let q = 0; q < USER_ADDR_LIMIT && mm.index.next(q, USER_ADDR_LIMIT - 1, out) !== 0; q = out.last + 1) {
    const h = out.value;
    const start = a.start(h);
    const end = a.end(h);
    noEntries(mm, gapStart, start);
    scope.where = `VMA [${hex(start)}, ${hex(end)})`;
    scope.start = start;
    scope.pgoff = a.pgoff(h);
    scope.flags = a.flags(h);
    scope.anon = a.anon(h);
    scope.file = a.file(h);
    scope.anonymous = a.file(h) === 0 && (scope.flags & VM_SHARED) === 0;
    mm.pt.forEachPresent(start, end, onEntry);
    gapStart = end;
  }
  noEntries(mm, gapStart, USER_ADDR_LIMIT);
}

function noEntries(mm: MmShared, start: number, end: number): void {
  if (start < end) mm.pt.forEachPresent(start, end, inGap);
}

function inGap(addr: number, entry: number): void {
  fail(`entry 0x${(entry >>> 0).toString(16)} at ${hex(addr)} lies in a gap between VMAs`);
}

function checkEntry(s: VmaScope, addr: number, entry: number): void {
  const at = `entry 0x${(entry >>> 0).toString(16)} at ${hex(addr)} of ${s.where}`;
  if (!s.anonymous && s.file === 0) fail(`${at}: a special VMA maps a page`);
  if ((entry & PTE_USER) !== 0 && (s.flags & VM_ACCESS_FLAGS) === 0) fail(`${at}: user access to PROT_NONE`);
  const write = (entry & PTE_WRITE) !== 0;
  if (write && (s.flags & VM_WRITE) === 0) fail(`${at}: writable, but the VMA is not`);
  if ((entry & PTE_HUGE) !== 0) return;
  const pfn = ptePfn(entry);
  if (pfn === ZERO_PFN) {
    if (write) fail(`${at}: the zero page mapped writable`);
    return;
  }
  const mem = s.mm.mem;
  const shared = (s.flags & VM_SHARED) !== 0;
  const kind = pfn < FIRST_PFN || pfn >= mem.frames ? KIND_FREE : mem.kind[pfn];
  if (kind === KIND_FILE && s.file === 0) fail(`${at}: pfn ${pfn} is a file page in an anonymous VMA`);
  if (kind === KIND_ANON && shared) fail(`${at}: pfn ${pfn} is an anonymous page in a shared VMA`);
  if (kind !== KIND_ANON && kind !== KIND_FILE) {
    fail(`${at}: pfn ${pfn} is neither an anonymous nor a file page (${describe(mem, pfn)})`);
  }
  const mapcount = Atomics.load(mem.mapcount, pfn);
  if (mapcount < 1 || Atomics.load(mem.refcount, pfn) < mapcount) {
    fail(`${at}: pfn ${pfn} has map and reference counts out of order (${describe(mem, pfn)})`);
  }
  const flags = Atomics.load(mem.flags, pfn);
  if (write && kind === KIND_ANON && (flags & PG_ANON_EXCLUSIVE) === 0) {
    fail(`${at}: writable, but pfn ${pfn} is not anon-exclusive (${describe(mem, pfn)})`);
  }
  if (write && kind === KIND_FILE && (!shared || (flags & PG_DIRTY) === 0)) {
    fail(`${at}: a file page writable in a private VMA or while clean (${describe(mem, pfn)})`);
  }
  const index = s.pgoff + (addr - s.start) / PAGE_SIZE;
  const owner = kind === KIND_ANON ? s.anon : s.file;
  if (mem.owner[pfn] !== owner || mem.index[pfn] !== (index | 0)) {
    const what = kind === KIND_ANON ? 'anon_vma' : 'file';
    fail(
      `${at}: pfn ${pfn} belongs to ${what} ${mem.owner[pfn]} index ${mem.index[pfn]}, not ${owner} ${index}`,
    );
  }
  if (s.mapped !== undefined) s.mapped[pfn]++;
}

/**
 * The map counts against the page tables of every address space on `mem` (`mapped`, summed by
 * checkPtesLocked): every frame in use but the zero page is anonymous or a file page and has
 * exactly as many mappings as its map count. With `refs` (the references held besides the
 * mappings and the page cache's own, by pfn: GUP_PIN_COUNTING_BIAS per pin, 1 per get; zero when
 * nothing but page tables and the cache holds frames), each frame's reference count is exactly its
 * map count plus refs[pfn] (plus one for a page still in a file's cache, OWNER set), so a frame
 * nobody maps or holds is a leak. Preconditions: as checkPtesLocked, for every address space on `mem` at once,
 * and no deferred put pending (no syscall or fault running).
 */
export function checkFrameMaps(mem: PhysMem, mapped: Int32Array, refs?: Int32Array): void {
  for (let pfn = FIRST_PFN; pfn < mem.frames; pfn++) {
    const kind = mem.kind[pfn];
    const held = refs === undefined ? 0 : refs[pfn];
    if (kind === KIND_FREE) {
      if (mapped[pfn] !== 0 || held !== 0)
        fail(`pfn ${pfn} is free but mapped ${mapped[pfn]} times, held ${held}`);
      continue;
    }
    if (kind !== KIND_ANON && kind !== KIND_FILE)
      fail(`pfn ${pfn} is in use but neither anonymous nor a file page (${describe(mem, pfn)})`);
    if (mem.mapcount[pfn] !== mapped[pfn]) {
      fail(`pfn ${pfn} is mapped ${mapped[pfn]} times, its map count says ${mem.mapcount[pfn]}`);
    }
    const cached = kind === KIND_FILE && mem.owner[pfn] !== 0 ? 1 : 0;
    if (refs !== undefined && mem.refcount[pfn] !== mem.mapcount[pfn] + held + cached) {
      fail(
        `pfn ${pfn} holds ${mem.refcount[pfn]} references for ${mem.mapcount[pfn]} mappings and ${held} held (a leak)`,
      );
    }
  }
}

function describe(mem: PhysMem, pfn: number): string {
  return pfn >= 0 && pfn < mem.frames ? mem.describeFrame(pfn) : 'out of range';
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function fail(message: string): never {
  throw new Error(`page tables against VMAs: ${message}`);
}
