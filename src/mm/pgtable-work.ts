/**
 * PageTableWork: the page-table changes of one syscall. A body records them in order (zap an
 * unmapped range, zap pages of MADV_DONTNEED, move entries for mremap, change protections for
 * mprotect); the entry applies them once the VMA commit can no longer fail, still under mmap_lock
 * held for write, so a failed syscall never loses a page (docs/mem.md, "Wiring").
 *
 *   prepare()   allocates the destination tables of every move (all-or-nothing: -ENOMEM, and the
 *               syscall changes nothing)
 *   apply()     runs the work in body order (mremap's "move, then unmap the source" and
 *               MREMAP_FIXED's "unmap the destination, then move" keep their order; no move can
 *               fail any more), then frees the tables of the unmapped ranges that no VMA covers
 *               now, with free_pgtables' floor and ceiling taken from the VMAs around each gap
 *
 * TLB shootdown: every op that removes or downgrades translations (zap, dontneed, a move's source,
 * protect) is followed by `tlb.shootdown` over its pages, before the next op and before the
 * syscall returns. A zapped page loses its mapping (and map count) at once, but its reference is
 * only dropped once every op's shootdown returned (`zapped`, a reusable list: no CPU can still
 * reach the frame through a cached translation when it goes back to the allocator). The fault
 * path's copy-on-write uses the same list (`deferPut` + `flushDeferred`). While no CPU ever had
 * an Mmu on the address space (`tlb.inUse()` false) there is nothing to shoot down.
 * Preconditions of every method except deferPut / flushDeferred: mmap_lock held for write; apply
 * of zaps alone (onlyZaps) may run after a downgrade to read, once the VMA commit is done.
 */
import { ENOMEM } from '../errno.js';
import type { RangeIndex } from '../maple/api.js';
import { rangeOut } from '../maple/api.js';
import type { PhysMem } from '../mem/frames.js';
import { ZERO_PFN } from '../mem/page.js';
import type { PageTables } from '../mem/pgtable.js';
import { PAGE_SIZE, PTE_USER, PTE_WRITE, USER_ADDR_LIMIT } from '../mem/pte.js';
import type { TlbDomain } from '../mem/tlb.js';
import { PMD_SIZE, VM_ACCESS_FLAGS, VM_WRITE } from './vm-flags.js';

const ZAP = 1;
const DONTNEED = 2;
const MOVE = 3;
const PROTECT = 4;
const OP_WORDS = 4;
const LIMIT = 2 ** 53 - 1;

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
  private readonly markSeen = (): void => {
    this.sawEntry = true;
  };

  constructor(
    private readonly pt: PageTables,
    private readonly mem: PhysMem,
    private readonly index: RangeIndex,
    private readonly tlb: TlbDomain,
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
    // Frames still listed (only after an internal error) stay listed until the next put.
  }

  /** An unmapped range: its pages go, and later its tables where no VMA needs them. */
  zap(start: number, end: number): void {
    this.push(ZAP, start, end, 0);
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

  /** Allocates every table a move needs (see the file comment): 0 or -ENOMEM. */
  prepare(): number {
    if (!this.needed()) return 0;
    const ops = this.ops;
    for (let k = 0; k < this.n; k++) {
      const at = k * OP_WORDS;
      if (ops[at] !== MOVE || !this.hasEntries(ops[at + 1], ops[at + 1] + ops[at + 3])) continue;
      const to = ops[at + 2];
      const end = to + ops[at + 3];
      for (let a = to; a < end; a = Math.floor(a / PMD_SIZE) * PMD_SIZE + PMD_SIZE) {
        if (this.pt.allocPte(a) === 0) return -ENOMEM;
      }
    }
    return 0;
  }

  /** Runs the work in order, frees the tables no VMA needs, then puts the zapped frames. Preconditions: prepare() gave 0. */
  apply(): void {
    this.applyOps();
    this.putZapped();
  }

  /**
   * apply without the puts: the zapped frames stay listed for putZapped, which the caller runs
   * once it has dropped mmap_lock (munmap: the read lock after its downgrade).
   */
  applyOps(): void {
    if (!this.needed()) return;
    const ops = this.ops;
    const pt = this.pt;
    for (let k = 0; k < this.n; k++) {
      const at = k * OP_WORDS;
      const a = ops[at + 1];
      const b = ops[at + 2];
      const c = ops[at + 3];
      switch (ops[at]) {
        case ZAP:
        case DONTNEED:
          this.sawEntry = false;
          pt.zapRange(a, b, this.onPage);
          if (this.sawEntry) this.shootdownRange(a, b);
          break;
        case MOVE:
          if (this.hasEntries(a, a + c)) {
            if (pt.movePtes(a, b, c) < 0) {
              throw new Error('page-table work: a move failed after its tables were allocated');
            }
            this.shootdownRange(a, a + c);
          }
          break;
        case PROTECT:
          protect(pt, a, b, c);
          this.shootdownRange(a, b);
          break;
      }
    }
    // Every translation of a zapped page is gone from every TLB: the frames may be reused (putZapped).
    this.freeUnmappedTables();
  }

  /** Every op recorded is a zap (munmap's work, which may run under mmap_lock (R)). */
  onlyZaps(): boolean {
    for (let k = 0; k < this.n; k++) if (this.ops[k * OP_WORDS] !== ZAP) return false;
    return true;
  }

  /** Only the root table exists: no entry anywhere, nothing to do. */
  private needed(): boolean {
    return this.n !== 0 && this.pt.live > 1;
  }

  private hasEntries(start: number, end: number): boolean {
    this.sawEntry = false;
    this.pt.forEachPresent(start, end, this.markSeen);
    return this.sawEntry;
  }

  /**
   * free_pgtables, once for every gap between the VMAs as they are now that an unmapped range
   * meets: the whole gap, with the VMAs around it as floor and ceiling. (Freeing per unmapped range
   * would let one range's upper-level free reach tables another range still links.)
   */
  private freeUnmappedTables(): void {
    const ops = this.ops;
    let done = 0;
    for (;;) {
      // The lowest unmapped range not yet inside a freed gap.
      let start = LIMIT;
      for (let k = 0; k < this.n; k++) {
        const at = k * OP_WORDS;
        if (ops[at] !== ZAP || ops[at + 2] <= done) continue;
        const s = Math.max(ops[at + 1], done);
        if (s < start) start = s;
      }
      if (start >= USER_ADDR_LIMIT) return;
      done = this.freeGapAt(start);
    }
  }

  /** Frees the tables of the gap around `addr` (or, if a VMA covers it, of the gap after that VMA); returns the gap's end. */
  private freeGapAt(addr: number): number {
    const out = this.out;
    if (this.index.next(addr, LIMIT, out) !== 0 && out.first <= addr) return out.last + 1;
    const ceiling = this.index.next(addr, LIMIT, out) !== 0 ? out.first : 0;
    const floor = addr > 0 && this.index.prev(addr - 1, 0, out) !== 0 ? out.last + 1 : 0;
    const end = ceiling === 0 ? USER_ADDR_LIMIT : Math.min(ceiling, USER_ADDR_LIMIT);
    if (end > floor) this.pt.freePgtables(floor, end, floor, ceiling);
    return end;
  }

  private push(kind: number, a: number, b: number, c: number): void {
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
