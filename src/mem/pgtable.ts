/**
 * PageTables: the page tables of one address space (docs/mem.md, "Page tables"), shared by every
 * CPU (`describe()` here, `PageTables.attach(desc)` there). Storage, locks and walks are in
 * pgtable-core.ts, allocation, huge entries and freeing in pgtable-alloc.ts, movePtes in
 * pgtable-move.ts; this file has the other range operations the mm layer calls:
 *
 *   zapRange(start, end, onPage)                  unmap: clear entries, hand each page to onPage
 *   freePgtables(start, end, floor, ceiling)      free_pgd_range: free tables nothing else can use
 *   movePtes(oldStart, newStart, len)             mremap: move entries, all-or-nothing
 *   changeProtection(start, end, set, clear)      mprotect, fork (writeProtectRange)
 *   forEachPresent(start, end, fn)                every leaf entry (checks)
 *   forEachPmd(start, end, fn), hasPmdEntries     the PMD entries (checks, mremap)
 *
 * Callers serialise range operations on overlapping ranges (mmap_lock, or the VMA detached), as
 * Linux's callers do; single entries, allocation and lock-free walks may run beside them. A huge
 * entry that a range covers only in part is split first (never allocates: see the deposits).
 */
import { EINVAL, VmError } from '../errno.js';
import { checkPageTables, countPageTables } from './pgtable-check.js';
import { COUNT, META_WORDS, type PageTablesDescriptor, type PageTablesOptions } from './pgtable-core.js';
import { PageTableMove } from './pgtable-move.js';
import {
  LEVEL_PMD,
  LEVEL_PTE,
  LEVEL_PUD,
  PAGE_SIZE,
  PGDIR_SIZE,
  PMD_SIZE,
  PMD_THP_TABLE,
  PTE_FLAGS_MASK,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_WRITE,
  PTRS_PER_TABLE,
  PUD_SIZE,
} from './pte.js';

export type { PageTableStats, PageTablesDescriptor, PageTablesOptions } from './pgtable-core.js';
export { PTL_CLASS } from './pgtable-core.js';

/** Told of every entry zapRange clears (under its table's PTL: must not block or take a PTL). */
export type ZapCallback = (pfn: number, entry: number) => void;
/** Told of every present leaf entry: addr is the page's (or the huge mapping's) start. */
export type PresentCallback = (addr: number, entry: number) => void;

export class PageTables extends PageTableMove {
  /** New page tables with an empty PGD; throws ENOMEM if not even that can be allocated. */
  static create(options: PageTablesOptions = {}): PageTables {
    return new PageTables(PageTables.newDescriptor(options));
  }

  static attach(desc: PageTablesDescriptor): PageTables {
    return new PageTables(desc);
  }

  /**
   * Clears every entry in [start, end) under its table's PTL and calls onPage(pfn, entry) for each
   * (a huge entry covered whole once, with PTE_HUGE set; one covered in part is split first).
   * Tables stay (freePgtables frees them), but for a PTE table marked PMD_THP_TABLE covered whole:
   * like a huge entry, it leaves with its PMD entry (after a grace period), and the region's PMD
   * entry is empty again; one covered in part loses the mark. Preconditions: no fault can install
   * an entry in a region covered whole meanwhile (the mm layer write-locks its VMAs). Returns the
   * number of entries cleared.
   */
  zapRange(start: number, end: number, onPage: ZapCallback): number {
    this.checkRange(start, end);
    let n = 0;
    for (let r = this.seekPmd(start, end); r >= 0; r = this.seekPmd(r + PMD_SIZE, end)) {
      const pmd = this.seekTable;
      const i = this.seekIndex;
      const to = Math.min(r + PMD_SIZE, end);
      n += this.zapPmdEntry(pmd, i, r, Math.max(start, r), to, onPage);
    }
    return n;
  }

  private zapPmdEntry(
    pmd: number,
    i: number,
    r: number,
    from: number,
    to: number,
    onPage: ZapCallback,
  ): number {
    const e = this.entries;
    const w = (pmd << 9) | i;
    const whole = from === r && to === r + PMD_SIZE;
    const mark = Atomics.load(e, w) & (PTE_HUGE | PMD_THP_TABLE);
    if (mark === PMD_THP_TABLE && !whole) {
      this.lockTable(pmd);
      this.splitLocked(pmd, i);
      this.unlockTable(pmd);
    } else if (mark === PTE_HUGE) {
      this.lockTable(pmd);
      const x = e[w];
      if ((x & PTE_HUGE) !== 0 && whole) {
        const deposit = this.clearHugeLocked(pmd, i);
        try {
          onPage(x >>> 12, x);
        } finally {
          this.unlockTable(pmd);
          this.arena.free(deposit);
        }
        return 1;
      }
      this.splitLocked(pmd, i);
      this.unlockTable(pmd);
    }
    const x = Atomics.load(e, w);
    if (x === 0) return 0;
    const t = x >>> 12;
    const m = t * META_WORDS + COUNT;
    const base = t << 9;
    const last = base + (to - r) / PAGE_SIZE;
    let n = 0;
    this.lockTable(t);
    try {
      for (let k = base + (from - r) / PAGE_SIZE; k < last; k++) {
        const y = e[k];
        if (y === 0) continue;
        Atomics.store(e, k, 0);
        this.meta[m]--;
        n++;
        onPage(y >>> 12, y);
      }
    } finally {
      this.unlockTable(t);
    }
    // A THP region zapped whole: its PMD entry goes, as zap_huge_pmd's does.
    if (whole && (Atomics.load(e, w) & PMD_THP_TABLE) !== 0) this.detachTable(pmd, i, t, LEVEL_PTE);
    return n;
  }

  /**
   * free_pgd_range(start, end, floor, ceiling): frees the tables under [start, end) that no
   * address outside [floor, ceiling) can need (ceiling 0: no ceiling). The rules of Linux: start rounds down to 2 MiB, up again if that is below
   * floor; ceiling rounds down to 2 MiB and end drops by 2 MiB if it is past that; the PTE tables
   * of the regions left are freed; a PMD (PUD) table is freed after its entries when its 1 GiB
   * (512 GiB) span starts at or above floor and the part visited ends at or below ceiling rounded
   * down to 1 GiB (512 GiB). The PGD stays. Entries must be zapped first: a table freed with
   * entries or deposits throws. Returns the number of tables unlinked (freed after a grace period).
   */
  freePgtables(start: number, end: number, floor: number, ceiling: number): number {
    this.checkRange(start, end);
    if (!(Number.isInteger(floor) && Number.isInteger(ceiling) && floor >= 0 && ceiling >= 0)) {
      throw new VmError(EINVAL, `freePgtables: floor ${floor}, ceiling ${ceiling}`);
    }
    let addr = start - (start % PMD_SIZE);
    if (addr < floor) addr += PMD_SIZE;
    if (ceiling !== 0) {
      ceiling -= ceiling % PMD_SIZE;
      if (ceiling === 0) return 0;
      if (end - 1 > ceiling - 1) end -= PMD_SIZE;
    }
    if (addr > end - 1) return 0;
    const root = this.root;
    let freed = 0;
    for (let a = addr; a < end; ) {
      const next = Math.min(a - (a % PGDIR_SIZE) + PGDIR_SIZE, end);
      const gi = Math.floor(a / PGDIR_SIZE);
      const x = Atomics.load(this.entries, (root << 9) | gi);
      if (x !== 0) freed += this.freePudRange(root, gi, x >>> 12, a, next, floor, ceiling);
      a = next;
    }
    return freed;
  }

  private freePudRange(
    pgd: number,
    gi: number,
    pud: number,
    addr: number,
    end: number,
    floor: number,
    ceiling: number,
  ): number {
    let freed = 0;
    for (let a = addr; a < end; ) {
      const next = Math.min(a - (a % PUD_SIZE) + PUD_SIZE, end);
      const ui = Math.floor(a / PUD_SIZE) & 511;
      const x = Atomics.load(this.entries, (pud << 9) | ui);
      if (x !== 0) freed += this.freePmdRange(pud, ui, x >>> 12, a, next, floor, ceiling);
      a = next;
    }
    if (!mayFree(addr, end, PGDIR_SIZE, floor, ceiling)) return freed;
    this.detachTable(pgd, gi, pud, LEVEL_PUD);
    return freed + 1;
  }

  private freePmdRange(
    pud: number,
    ui: number,
    pmd: number,
    addr: number,
    end: number,
    floor: number,
    ceiling: number,
  ): number {
    let freed = 0;
    // Slot numbers from 2 MiB region numbers: user addresses are doubles above 2^32, and `%` on
    // them is an fmod call (two per slot cost a munmap of 128 MiB beside a mapped table ~1.3 us).
    const table = Math.floor(addr / PUD_SIZE) * PTRS_PER_TABLE;
    const last = Math.floor((end - 1) / PMD_SIZE);
    for (let region = Math.floor(addr / PMD_SIZE); region <= last; region++) {
      const mi = region - table;
      // A plain read finds the slots to look at (seekPmd's note); the entry is read again atomically.
      if (this.entries[(pmd << 9) | mi] === 0) continue;
      const x = Atomics.load(this.entries, (pmd << 9) | mi);
      if (x !== 0) {
        if ((x & PTE_HUGE) !== 0) {
          throw new VmError(EINVAL, `freePgtables: huge entry at ${region * PMD_SIZE}: zap first`);
        }
        this.detachTable(pmd, mi, x >>> 12, LEVEL_PTE);
        freed++;
      }
    }
    if (!mayFree(addr, end, PUD_SIZE, floor, ceiling)) return freed;
    this.detachTable(pud, ui, pmd, LEVEL_PMD);
    return freed + 1;
  }

  /** Clears PTE_WRITE on every entry in [start, end) (fork's COW, mprotect); returns how many changed. */
  writeProtectRange(start: number, end: number): number {
    return this.changeProtection(start, end, 0, PTE_WRITE);
  }

  /**
   * Sets `setBits` and clears `clearBits` (flag bits other than PRESENT and HUGE) on every entry
   * in [start, end); a huge entry covered whole changes as one, one covered in part is split
   * first (a PMD_THP_TABLE region covered in part loses its mark). Returns how many entries changed.
   */
  changeProtection(start: number, end: number, setBits: number, clearBits: number): number {
    this.checkRange(start, end);
    const allowed = PTE_FLAGS_MASK & ~(PTE_PRESENT | PTE_HUGE);
    if (((setBits | clearBits) & ~allowed) !== 0) {
      throw new VmError(EINVAL, `changeProtection: bits ${setBits} / ${clearBits} outside the flags`);
    }
    const e = this.entries;
    let n = 0;
    for (let r = this.seekPmd(start, end); r >= 0; r = this.seekPmd(r + PMD_SIZE, end)) {
      const pmd = this.seekTable;
      const w = (pmd << 9) | this.seekIndex;
      const from = Math.max(start, r);
      const to = Math.min(r + PMD_SIZE, end);
      const mark = Atomics.load(e, w) & (PTE_HUGE | PMD_THP_TABLE);
      if (mark === PMD_THP_TABLE && !(from === r && to === r + PMD_SIZE)) {
        this.lockTable(pmd);
        this.splitLocked(pmd, this.seekIndex);
        this.unlockTable(pmd);
      } else if (mark === PTE_HUGE) {
        this.lockTable(pmd);
        const x = e[w];
        if ((x & PTE_HUGE) !== 0 && from === r && to === r + PMD_SIZE) {
          const y = ((x | setBits) & ~clearBits) >>> 0;
          if (y !== x) {
            Atomics.store(e, w, y);
            n++;
          }
          this.unlockTable(pmd);
          continue;
        }
        this.splitLocked(pmd, this.seekIndex);
        this.unlockTable(pmd);
      }
      const t = Atomics.load(e, w) >>> 12;
      if (t === 0) continue;
      const base = t << 9;
      const last = base + (to - r) / PAGE_SIZE;
      this.lockTable(t);
      for (let k = base + (from - r) / PAGE_SIZE; k < last; k++) {
        const x = e[k];
        if (x === 0) continue;
        const y = ((x | setBits) & ~clearBits) >>> 0;
        if (y === x) continue;
        Atomics.store(e, k, y);
        n++;
      }
      this.unlockTable(t);
    }
    return n;
  }

  /**
   * fn(region, entry) for every 2 MiB region meeting [start, end) with a PMD entry (a table entry,
   * possibly PMD_THP_TABLE, or a huge entry), ascending. Lock-free (atomic loads); returns how many.
   */
  forEachPmd(start: number, end: number, fn: PresentCallback): number {
    this.checkRange(start, end);
    let n = 0;
    for (let r = this.seekPmd(start, end); r >= 0; r = this.seekPmd(r + PMD_SIZE, end)) {
      fn(r, Atomics.load(this.entries, (this.seekTable << 9) | this.seekIndex));
      n++;
    }
    return n;
  }

  /** Whether any 2 MiB region meeting [start, end) has a PMD entry (a PTE table, empty or not, or huge). */
  hasPmdEntries(start: number, end: number): boolean {
    this.checkRange(start, end);
    return start < end && this.seekPmd(start, end) >= 0;
  }

  /**
   * fn(addr, entry) for every present leaf entry meeting [start, end), in address order: PTEs with
   * their page's address, huge entries once with their region's start. Lock-free (atomic loads);
   * returns how many.
   */
  forEachPresent(start: number, end: number, fn: PresentCallback): number {
    this.checkRange(start, end);
    const e = this.entries;
    let n = 0;
    for (let r = this.seekPmd(start, end); r >= 0; r = this.seekPmd(r + PMD_SIZE, end)) {
      const x = Atomics.load(e, (this.seekTable << 9) | this.seekIndex);
      if ((x & PTE_HUGE) !== 0) {
        fn(r, x);
        n++;
        continue;
      }
      const base = (x >>> 12) << 9;
      const from = Math.max(start, r);
      const to = Math.min(r + PMD_SIZE, end);
      for (let a = from; a < to; a += PAGE_SIZE) {
        const y = Atomics.load(e, base + (a - r) / PAGE_SIZE);
        if (y === 0) continue;
        fn(a, y);
        n++;
      }
    }
    return n;
  }

  /** Tables reachable from the root, the root included (walks the whole tree). */
  countTables(): number {
    return countPageTables(this);
  }

  /** Every invariant of the tree (call while nothing changes it): a problem, or undefined. */
  validate(): string | undefined {
    return checkPageTables(this);
  }
}

/** free_p?d_range's last step: may the table spanning `span` around [addr, end) go? */
function mayFree(addr: number, end: number, span: number, floor: number, ceiling: number): boolean {
  if (addr - (addr % span) < floor) return false;
  if (ceiling === 0) return true;
  const c = ceiling - (ceiling % span);
  return c !== 0 && end - 1 <= c - 1;
}
