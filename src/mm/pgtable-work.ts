/**
 * PageTableWork: the page-table changes of one syscall. A body records them in order (zap an
 * unmapped range, zap pages of MADV_DONTNEED, move entries for mremap, change protections for
 * mprotect), and the entry adds the splits of THP regions that a new VMA edge cuts; the entry
 * applies them once the VMA commit can no longer fail, still under mmap_lock held for write, so a
 * failed syscall never loses a page (docs/mem.md, "Wiring"). The page tables are the one record of
 * which 2 MiB regions have a PMD entry and which map a transparent huge page (docs/mem.md, "THP
 * regions"), so this work is also what changes that state.
 *
 *   prepare()   reserves the most tables the moves can need (PageTables.moveTablesBound; all-or-
 *               nothing: -ENOMEM, and the syscall changes nothing)
 *   apply()     runs the work in body order (mremap's "move, then unmap the source" and
 *               MREMAP_FIXED's "unmap the destination, then move" keep their order; a move takes
 *               its tables from the reserve and cannot fail any more), then frees the tables of the
 *               unmapped ranges that no VMA covers now, with free_pgtables' floor and ceiling
 *               taken from the VMAs around each gap
 *
 * TLB shootdown: every op that removes or downgrades translations (zap, dontneed, a move's source,
 * protect) is followed by `tlb.shootdown` over its pages, before the next op and before the
 * syscall returns. A zapped page loses its mapping (and map count) at once, but its reference is
 * only dropped once every op's shootdown returned (`zapped`, a reusable list: no CPU can still
 * reach the frame through a cached translation when it goes back to the allocator). The fault
 * path's copy-on-write uses the same list (`deferPut` + `flushDeferred`). While no CPU ever had
 * an Mmu on the address space (`tlb.inUse()` false) there is nothing to shoot down.
 * Preconditions of every method except deferPut / flushDeferred: mmap_lock held for write; the
 * ops of a munmap (zaps and free_pgtables alone: onlyZapsAndFrees) may run after a downgrade to
 * read, once the VMA commit is done (applyOps), and the frames are put after the unlock.
 */
import type { RangeIndex } from '../maple/api.js';
import { rangeOut } from '../maple/api.js';
import type { PhysMem } from '../mem/frames.js';
import { ZERO_PFN } from '../mem/page.js';
import type { PageTables } from '../mem/pgtable.js';
import { PAGE_SIZE, PTE_USER, PTE_WRITE, USER_ADDR_LIMIT } from '../mem/pte.js';
import type { TlbDomain } from '../mem/tlb.js';
import { PMD_SIZE, VM_ACCESS_FLAGS, VM_WRITE } from './vm-flags.js';
import { type MmLocks, vmaStartWrite } from './vma-lock.js';

const ZAP = 1;
const DONTNEED = 2;
const MOVE = 3;
const PROTECT = 4;
const SPLIT = 5;
const FREE = 6;
const FILL = 7;
/** Tables one FILL may create: PUD, PMD and PTE. */
const FILL_TABLES = 3;
const OP_WORDS = 5;

export class PageTableWork {
  private ops = new Float64Array(OP_WORDS * 16);
  private n = 0;
  private readonly out = rangeOut();
  private readonly onPage: (pfn: number, entry: number) => void;
  /** Frames whose reference is put after the shootdown (a reusable list). */
  private zapped = new Int32Array(256);
  private nZapped = 0;
  /** Pages of the deferred puts of the fault path (copy-on-write): [lowVpn, highVpn). */
  private lowVpn = 0;
  private highVpn = 0;
  private deferred = false;
  private sawEntry = false;
  /** FILL ops recorded since reset. */
  private nFills = 0;

  constructor(
    private readonly pt: PageTables,
    private readonly mem: PhysMem,
    private readonly index: RangeIndex,
    private readonly tlb: TlbDomain,
    private readonly locks: MmLocks,
  ) {
    this.onPage = (pfn) => {
      this.sawEntry = true;
      if (pfn === ZERO_PFN) return;
      this.mem.decMapcount(pfn);
      this.pushZapped(pfn);
    };
  }

  /**
   * The fault path replaced the entry of page `vpn` (copy-on-write): it mapped `pfn` (its map
   * count already dropped; ZERO_PFN: nothing to put). Both the shootdown and the put happen at
   * flushDeferred. Preconditions: the caller calls flushDeferred before its fault returns (it may
   * hold a spinlock here, not there).
   */
  deferPut(pfn: number, vpn: number): void {
    if (!this.deferred || vpn < this.lowVpn) this.lowVpn = vpn;
    if (!this.deferred || vpn + 1 > this.highVpn) this.highVpn = vpn + 1;
    this.deferred = true;
    if (pfn !== ZERO_PFN) this.pushZapped(pfn);
  }

  /** Shoots down the deferred pages and puts their frames. Preconditions: no spinlock held. */
  flushDeferred(): void {
    if (!this.deferred) return;
    this.deferred = false;
    this.shootdown(this.lowVpn, this.highVpn);
    this.putZapped();
  }

  private pushZapped(pfn: number): void {
    if (this.nZapped === this.zapped.length) {
      const grown = new Int32Array(this.zapped.length * 2);
      grown.set(this.zapped);
      this.zapped = grown;
    }
    this.zapped[this.nZapped++] = pfn;
  }

  /** Puts the frames the ops zapped (their shootdowns are done). Needs no lock. */
  putZapped(): void {
    const mem = this.mem;
    for (let i = 0; i < this.nZapped; i++) mem.putPage(this.zapped[i]);
    this.nZapped = 0;
  }

  private shootdown(start: number, end: number): void {
    if (this.tlb.inUse()) this.tlb.shootdown(start, end);
  }

  /** Shoots down the pages of [start, end) (byte addresses, clamped to user space). */
  private shootdownRange(start: number, end: number): void {
    const e = Math.min(end, USER_ADDR_LIMIT);
    if (e > start) this.shootdown(Math.floor(start / PAGE_SIZE), Math.ceil(e / PAGE_SIZE));
  }

  reset(): void {
    this.n = 0;
    this.nFills = 0;
    // Frames still listed (only after an internal error) stay listed until the next put.
  }

  /** An unmapped range: its pages go (its tables go with free_pgtables, `freeTables`). */
  zap(start: number, end: number): void {
    this.push(ZAP, start, end, 0);
  }
  /**
   * free_pgd_range(start, end, floor, ceiling) after the zaps of an unmap, with the floor and
   * ceiling the body saw (the VMAs around the unmapped ones at that point of the syscall): run in
   * body order, it sees the tables as Linux's unmap does at that point.
   */
  freeTables(start: number, end: number, floor: number, ceiling: number): void {
    this.push(FREE, start, end, floor, ceiling);
  }
  /** MADV_DONTNEED: the pages go, the tables stay (the VMA does). */
  dontneed(start: number, end: number): void {
    this.push(DONTNEED, start, end, 0);
  }
  /** mremap: the entries of [from, from + len) move to `to`. */
  move(from: number, to: number, len: number): void {
    this.push(MOVE, from, to, len);
  }
  /** mprotect: the entries of [start, end) follow the VMA's new flags. */
  protect(start: number, end: number, vmFlags: number): void {
    this.push(PROTECT, start, end, vmFlags);
  }
  /**
   * A VMA edge at addr (not 2 MiB aligned) that this syscall creates: a THP region there is split
   * (a huge mapping cannot straddle VMAs: vma_adjust_trans_huge). After the body's own work.
   */
  split(addr: number): void {
    this.push(SPLIT, addr, 0, 0);
  }

  /**
   * A fault under mmap_lock (W) (stack growth, mprotect's populate of a locked VMA) found the PMD
   * entry of `region` empty: it gets a PTE table after the commit, marked PMD_THP_TABLE when the
   * fault maps a THP (the frames come with the populate stage, or the next fault).
   */
  fill(region: number, thp: boolean): void {
    this.push(FILL, region, thp ? 1 : 0, 0);
    this.nFills++;
  }

  /** Whether this syscall's work already fills `region`'s PMD entry (fill). */
  fills(region: number): boolean {
    if (this.nFills === 0) return false;
    const ops = this.ops;
    for (let k = 0; k < this.n; k++) {
      if (ops[k * OP_WORDS] === FILL && ops[k * OP_WORDS + 1] === region) return true;
    }
    return false;
  }

  /** Reserves the tables the moves and fills may need (see the file comment): 0 or -ENOMEM. */
  prepare(): number {
    const ops = this.ops;
    let moves = 0;
    for (let k = 0; k < this.n; k++) if (ops[k * OP_WORDS] === MOVE) moves++;
    // needed() reads the table count (an atomic): only for work that may reserve tables.
    if ((moves === 0 && this.nFills === 0) || !this.needed()) return 0;
    let need = 0;
    for (let k = 0; k < this.n; k++) {
      const at = k * OP_WORDS;
      if (ops[at] === MOVE) need += this.pt.moveTablesBound(ops[at + 1], ops[at + 2], ops[at + 3]);
      if (ops[at] === FILL) need += FILL_TABLES;
    }
    return need === 0 ? 0 : this.pt.reserveTables(need);
  }

  /** Runs the work in order, then puts the zapped frames. Preconditions: prepare() gave 0. */
  apply(): void {
    this.applyOps();
    // Every translation of a zapped page is gone from every TLB: the frames may be reused.
    this.putZapped();
  }

  /**
   * apply without the puts: the zapped frames stay listed for putZapped, which the caller runs
   * once it has dropped mmap_lock (munmap: the read lock after its downgrade).
   */
  applyOps(): void {
    if (!this.needed()) return;
    try {
      this.runOps();
    } finally {
      this.pt.releaseTables();
    }
  }

  /**
   * Whether apply would touch the page tables: ops were recorded and some table besides the root
   * exists, or a fill asks for one. Without, munmap has nothing to do after its commit.
   */
  hasWork(): boolean {
    return this.needed();
  }

  /** Every op recorded is a zap or a free_pgtables (munmap's work, which may run under mmap_lock (R)). */
  onlyZapsAndFrees(): boolean {
    const ops = this.ops;
    for (let k = 0; k < this.n; k++)
      if (ops[k * OP_WORDS] !== ZAP && ops[k * OP_WORDS] !== FREE) return false;
    return true;
  }

  private runOps(): void {
    const ops = this.ops;
    const pt = this.pt;
    for (let k = 0; k < this.n; k++) {
      const at = k * OP_WORDS;
      const a = ops[at + 1];
      const b = ops[at + 2];
      const c = ops[at + 3];
      switch (ops[at]) {
        case DONTNEED:
          this.excludeFastFaults(a, b);
          this.zapOp(a, b);
          break;
        case ZAP:
          this.zapOp(a, b);
          break;
        case MOVE:
          // Empty PTE tables move too: the destination regions get their PMD entries (Linux).
          if (pt.hasPmdEntries(a, a + c)) {
            if (pt.movePtes(a, b, c) < 0) {
              throw new Error('page-table work: a move failed after its tables were reserved');
            }
            this.shootdownRange(a, a + c);
          }
          break;
        case PROTECT:
          protect(pt, a, b, c);
          this.shootdownRange(a, b);
          break;
        case SPLIT:
          pt.splitHugePmd(a);
          break;
        case FREE:
          pt.freePgtables(a, b, c, ops[at + 4]);
          break;
        case FILL:
          if ((b !== 0 ? pt.allocThpPte(a) : pt.allocPte(a)) <= 0) {
            throw new Error('page-table work: a fill failed after its tables were reserved');
          }
          break;
      }
    }
  }

  /** One zap: the entries of [start, end) go, then their translations. */
  private zapOp(start: number, end: number): void {
    this.sawEntry = false;
    this.pt.zapRange(start, end, this.onPage);
    if (this.sawEntry) this.shootdownRange(start, end);
  }

  /**
   * zapRange's precondition for MADV_DONTNEED, whose VMAs stay (and are not write-locked by the
   * commit): a THP region it covers whole leaves with its PTE table, so no per-VMA-lock fault may
   * be installing an entry there. Write-locks the VMAs of [start, end) when it covers a whole
   * region and some region maps a THP (the fast path then falls back to mmap_lock and waits).
   */
  private excludeFastFaults(start: number, end: number): void {
    if (this.pt.thpRegions === 0) return;
    if (end - (end % PMD_SIZE) - (start + ((PMD_SIZE - (start % PMD_SIZE)) % PMD_SIZE)) < PMD_SIZE) return;
    const out = this.out;
    for (let q = start; q < end && this.index.next(q, end - 1, out) !== 0; q = out.last + 1) {
      vmaStartWrite(this.locks, out.value);
    }
  }

  /** Nothing to do when only the root table exists (no entry anywhere) and nothing is filled. */
  private needed(): boolean {
    return this.n !== 0 && (this.pt.live > 1 || this.nFills !== 0);
  }

  private push(kind: number, a: number, b: number, c: number, d = 0): void {
    if ((this.n + 1) * OP_WORDS > this.ops.length) {
      const grown = new Float64Array(this.ops.length * 2);
      grown.set(this.ops);
      this.ops = grown;
    }
    const at = this.n * OP_WORDS;
    this.ops[at] = kind;
    this.ops[at + 1] = a;
    this.ops[at + 2] = b;
    this.ops[at + 3] = c;
    this.ops[at + 4] = d;
    this.n++;
  }
}

/**
 * change_protection for mprotect: no access (PROT_NONE) takes user access away; without VM_WRITE
 * the entries lose WRITE. Write access is never granted here: a write fault decides it (reusing
 * an anon-exclusive page, copying a shared one), as Linux does without the mprotect optimisation.
 */
function protect(pt: PageTables, start: number, end: number, vmFlags: number): void {
  if ((vmFlags & VM_ACCESS_FLAGS) === 0) pt.changeProtection(start, end, 0, PTE_USER | PTE_WRITE);
  else pt.changeProtection(start, end, PTE_USER, (vmFlags & VM_WRITE) === 0 ? PTE_WRITE : 0);
}
