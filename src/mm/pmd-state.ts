/**
 * Which 2 MiB regions have a page-middle-directory entry (a page table, or a huge page mapped
 * whole). It decides one VMA-visible thing: a fault in an anonymous VMA eligible for transparent
 * huge pages maps a huge page - and creates the VMA's anon_vma even for a read - only when the
 * region's entry is still empty (pmd_none). Faults fill entries; unmapping clears them like
 * zap + free_pgtables do (a table is freed only when no remaining VMA can share its region);
 * MADV_DONTNEED clears a huge entry it covers whole and splits one it covers in part.
 *
 *   entries: Map<region index (addr >> 21), PTE_TABLE | HUGE>     undo: [region, old, ...]
 *
 * Changes made during a syscall are logged so a failed commit can restore the previous state.
 */
import { PMD_SIZE } from './vm-flags.js';

export const PMD_NONE = 0;
export const PTE_TABLE = 1;
export const HUGE = 2;

export class PmdState {
  private readonly entries = new Map<number, number>();
  private undo: number[] = [];
  /** Regions with a huge entry (lets the common no-THP case skip all work). */
  hugeCount = 0;

  /** State of the region containing addr. */
  at(addr: number): number {
    return this.entries.get(Math.floor(addr / PMD_SIZE)) ?? PMD_NONE;
  }

  set(addr: number, state: number): void {
    const r = Math.floor(addr / PMD_SIZE);
    const old = this.entries.get(r) ?? PMD_NONE;
    if (old === state) return;
    this.undo.push(r, old);
    this.put(r, old, state);
  }

  private put(r: number, old: number, state: number): void {
    this.hugeCount += (state === HUGE ? 1 : 0) - (old === HUGE ? 1 : 0);
    if (state === PMD_NONE) this.entries.delete(r);
    else this.entries.set(r, state);
  }

  /** Region start addresses with a huge entry. */
  hugeRegions(): number[] {
    const out: number[] = [];
    for (const [r, s] of this.entries) if (s === HUGE) out.push(r * PMD_SIZE);
    return out;
  }

  /** Every region meeting [start, end) with an entry, ascending. */
  regionsIn(start: number, end: number): number[] {
    const out: number[] = [];
    const first = Math.floor(start / PMD_SIZE);
    const last = Math.floor((end - 1) / PMD_SIZE);
    if (last - first < this.entries.size) {
      for (let r = first; r <= last; r++) if (this.entries.has(r)) out.push(r * PMD_SIZE);
    } else {
      for (const r of this.entries.keys()) if (r >= first && r <= last) out.push(r * PMD_SIZE);
      out.sort((a, b) => a - b);
    }
    return out;
  }

  /** zap of [start, end): huge entries covered whole are cleared, those covered in part split. */
  zap(start: number, end: number): void {
    if (this.hugeCount === 0) return;
    for (const r of this.regionsIn(start, end)) {
      if (this.at(r) !== HUGE) continue;
      this.set(r, start <= r && r + PMD_SIZE <= end ? PMD_NONE : PTE_TABLE);
    }
  }

  /** free_pgd_range(addr, end, floor, ceiling): frees the tables no VMA outside can share. */
  freeRange(addr: number, end: number, floor: number, ceiling: number): void {
    addr -= addr % PMD_SIZE;
    if (addr < floor) addr += PMD_SIZE;
    if (ceiling !== 0) {
      ceiling -= ceiling % PMD_SIZE;
      if (ceiling === 0) return;
      if (end - 1 > ceiling - 1) end -= PMD_SIZE;
    }
    if (addr > end - 1 || this.entries.size === 0) return;
    this.clearRegions(Math.floor(addr / PMD_SIZE), Math.floor((end - 1) / PMD_SIZE));
  }

  /** Clears the entries of regions first..last (indices), without allocating. */
  private clearRegions(first: number, last: number): void {
    if (last - first < this.entries.size) {
      for (let r = first; r <= last; r++) if (this.entries.has(r)) this.set(r * PMD_SIZE, PMD_NONE);
    } else {
      // Deleting the current key while iterating a Map is safe: iteration goes on after it.
      for (const r of this.entries.keys()) if (r >= first && r <= last) this.set(r * PMD_SIZE, PMD_NONE);
    }
  }

  /** Starts logging changes for one syscall. */
  begin(): void {
    if (this.undo.length !== 0) this.undo.length = 0;
  }

  /** Undoes every change since `begin`. */
  rollback(): void {
    for (let i = this.undo.length - 2; i >= 0; i -= 2) {
      const r = this.undo[i];
      this.put(r, this.entries.get(r) ?? PMD_NONE, this.undo[i + 1]);
    }
    this.undo.length = 0;
  }
}
