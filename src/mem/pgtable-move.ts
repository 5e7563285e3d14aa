/**
 * The page-table radix, part 3: movePtes, mremap's move_page_tables (docs/mem.md, "movePtes").
 * `PageTables` (pgtable.ts) extends this with the other range operations.
 */
import { EINVAL, ENOMEM, VmError } from '../errno.js';
import { PageTableAlloc } from './pgtable-alloc.js';
import { COUNT, META_WORDS, PTL_NESTED } from './pgtable-core.js';
import { LEVEL_PMD, LEVEL_PTE, PAGE_SIZE, PMD_SIZE, PTE_HUGE, PUD_SIZE } from './pte.js';

export class PageTableMove extends PageTableAlloc {
  /** movePtes' plan on this CPU: regions with an entry, their PMD tables, whether each moves whole. */
  private moveRegions = new Float64Array(16);
  private moveTables = new Int32Array(16);
  private moveWholeFlags = new Uint8Array(16);

  /**
   * move_page_tables for mremap: moves the entries of [oldStart, oldStart + len) to newStart
   * without touching frames. The ranges must not overlap and [newStart, ...) must be empty. Like
   * Linux's move_normal_pmd / move_huge_pmd: a 2 MiB region with a PMD entry moved whole to a
   * 2 MiB-aligned place whose PMD entry is empty takes its PMD entry along (a PTE table, empty or
   * not and with its PMD_THP_TABLE mark, or a huge entry with its deposit); otherwise a huge entry
   * is split (a mark dropped) and every destination region the moved part meets gets a PTE table.
   * All-or-nothing: the tables needed are counted and allocated (or taken from the tables
   * reserveTables holds) before anything moves. Returns 0, or -ENOMEM with nothing changed.
   */
  movePtes(oldStart: number, newStart: number, len: number): number {
    this.checkRange(oldStart, oldStart + len);
    this.checkRange(newStart, newStart + len);
    if (len === 0 || oldStart === newStart) return 0;
    if (oldStart < newStart + len && newStart < oldStart + len) {
      throw new VmError(EINVAL, `movePtes: [${oldStart}, +${len}) overlaps [${newStart}, +${len})`);
    }
    const end = oldStart + len;
    const delta = newStart - oldStart;
    // Plan: the regions with an entry now (what moves), and the tables their destinations need.
    this.planReset();
    let need = 0;
    let count = 0;
    for (let r = this.seekPmd(oldStart, end); r >= 0; r = this.seekPmd(r + PMD_SIZE, end)) {
      const from = Math.max(oldStart, r);
      const to = Math.min(r + PMD_SIZE, end);
      const whole =
        from === r && to === r + PMD_SIZE && delta % PMD_SIZE === 0 && this.pmdEntry(r + delta) === 0;
      this.noteRegion(count++, r, whole);
      if (whole) {
        need += this.planPath(r + delta, LEVEL_PMD);
        continue;
      }
      for (let d = from + delta; d < to + delta; d = d - (d % PMD_SIZE) + PMD_SIZE) {
        const k = this.planPath(d, LEVEL_PTE);
        if (k < 0) throw new VmError(EINVAL, `movePtes: destination ${d} is mapped huge`);
        need += k;
      }
    }
    if (!this.reserve(need)) return -ENOMEM;
    // Move: only the regions planned (a region may get entries as a destination meanwhile).
    for (let k = 0; k < count; k++) {
      const r = this.moveRegions[k];
      const pmd = this.moveTables[k];
      const i = (r % PUD_SIZE) / PMD_SIZE;
      if (this.moveWholeFlags[k] !== 0) {
        this.moveWhole(pmd, i, r + delta);
        continue;
      }
      this.lockTable(pmd);
      this.splitLocked(pmd, i);
      this.unlockTable(pmd);
      const src = Atomics.load(this.entries, (pmd << 9) | i) >>> 12;
      const from = Math.max(oldStart, r);
      const to = Math.min(r + PMD_SIZE, end);
      for (let d = from + delta; d < to + delta; ) {
        const dEnd = Math.min(d - (d % PMD_SIZE) + PMD_SIZE, to + delta);
        const dst = this.ensurePath(d, LEVEL_PTE);
        if (dst <= 0) throw new VmError(ENOMEM, 'movePtes: reserved tables ran out (concurrent change?)');
        this.moveRun(
          src,
          ((d - delta) % PMD_SIZE) / PAGE_SIZE,
          dst,
          (d % PMD_SIZE) / PAGE_SIZE,
          (dEnd - d) / PAGE_SIZE,
        );
        d = dEnd;
      }
    }
    this.releasePool();
    return 0;
  }

  /**
   * The most tables movePtes(oldStart, newStart, len) can allocate, even after other operations
   * that only clear entries or add tables ran first (a syscall's earlier zaps and moves:
   * PageTableWork reserves this many before any runs): for each source region with a PMD entry, a
   * PTE table in each destination region it meets, and the PUD and PMD tables missing now on
   * their paths.
   */
  moveTablesBound(oldStart: number, newStart: number, len: number): number {
    this.checkRange(oldStart, oldStart + len);
    this.checkRange(newStart, newStart + len);
    const end = oldStart + len;
    const delta = newStart - oldStart;
    this.planReset();
    let need = 0;
    for (let r = this.seekPmd(oldStart, end); r >= 0; r = this.seekPmd(r + PMD_SIZE, end)) {
      const to = Math.min(r + PMD_SIZE, end) + delta;
      for (let d = Math.max(oldStart, r) + delta; d < to; d = d - (d % PMD_SIZE) + PMD_SIZE) {
        need += 1 + this.planPath(d, LEVEL_PMD);
      }
    }
    return need;
  }

  /** Records the k-th region of a move: its start, its PMD table (seekTable), whether it moves whole. */
  private noteRegion(k: number, r: number, whole: boolean): void {
    if (k === this.moveRegions.length) {
      const regions = new Float64Array(k * 2);
      regions.set(this.moveRegions);
      this.moveRegions = regions;
      const tables = new Int32Array(k * 2);
      tables.set(this.moveTables);
      this.moveTables = tables;
      const flags = new Uint8Array(k * 2);
      flags.set(this.moveWholeFlags);
      this.moveWholeFlags = flags;
    }
    this.moveRegions[k] = r;
    this.moveTables[k] = this.seekTable;
    this.moveWholeFlags[k] = whole ? 1 : 0;
  }

  private moveWhole(pmd: number, i: number, dAddr: number): void {
    const dst = this.ensurePath(dAddr, LEVEL_PMD);
    if (dst <= 0) throw new VmError(ENOMEM, 'movePtes: reserved tables ran out (concurrent change?)');
    const e = this.entries;
    const ws = (pmd << 9) | i;
    const wd = (dst << 9) | ((dAddr % PUD_SIZE) / PMD_SIZE);
    this.lockTable(pmd);
    if (dst !== pmd) this.lockTable(dst, PTL_NESTED);
    const x = e[ws];
    Atomics.store(e, ws, 0);
    this.meta[pmd * META_WORDS + COUNT]--;
    if ((x & PTE_HUGE) !== 0) this.depositTable(dst, this.withdrawTable(pmd));
    Atomics.store(e, wd, x);
    this.meta[dst * META_WORDS + COUNT]++;
    if (dst !== pmd) this.unlockTable(dst);
    this.unlockTable(pmd);
  }

  /** Moves `count` PTEs from table src (from index si) to table dst (from index di). */
  private moveRun(src: number, si: number, dst: number, di: number, count: number): void {
    const e = this.entries;
    const s = (src << 9) + si;
    const d = (dst << 9) + di;
    this.lockTable(src);
    if (dst !== src) this.lockTable(dst, PTL_NESTED);
    let moved = 0;
    for (let k = 0; k < count; k++) {
      const y = e[s + k];
      if (y === 0) continue;
      if (e[d + k] !== 0) {
        if (dst !== src) this.unlockTable(dst);
        this.unlockTable(src);
        throw new VmError(EINVAL, 'movePtes: the destination has an entry');
      }
      Atomics.store(e, s + k, 0);
      Atomics.store(e, d + k, y);
      moved++;
    }
    this.meta[src * META_WORDS + COUNT] -= moved;
    this.meta[dst * META_WORDS + COUNT] += moved;
    if (dst !== src) this.unlockTable(dst);
    this.unlockTable(src);
  }
}
