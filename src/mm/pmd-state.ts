/**
 * Which 2 MiB regions have a page-middle-directory entry (a page table, or a huge page mapped
 * whole). It decides one VMA-visible thing: a fault in an anonymous VMA eligible for transparent
 * huge pages maps a huge page - and creates the VMA's anon_vma even for a read - only when the
 * region's entry is still empty (pmd_none). Faults fill entries; unmapping clears them like
 * zap + free_pgtables do (a table is freed only when no remaining VMA can share its region);
 * MADV_DONTNEED clears a huge entry it covers whole and splits one it covers in part. (The memory
 * layer's real page tables will take this over.)
 *
 * Shared by every CPU of the address space, as a two-level radix of one byte per region:
 *
 *   directory SAB (Int32): HUGE_COUNT | (pad) | DIR[0..dirEntries): leaf handle or 0
 *   leaves (an Arena of 4 KiB records): one byte per region, PMD_NONE | PTE_TABLE | HUGE
 *
 * Guards: entries and HUGE_COUNT change under mmap_lock held for write, or under mmap_lock held
 * for read plus the mm's page_table_lock (faults of populate, zaps after a downgrade). Changes a
 * CPU makes inside a syscall's transaction are logged on that CPU so a failed commit restores them.
 */
import { Arena, type ArenaDescriptor } from '../shm/arena.js';
import { PMD_SIZE } from './vm-flags.js';

export const PMD_NONE = 0;
export const PTE_TABLE = 1;
export const HUGE = 2;

const HUGE_COUNT = 0;
const DIR = 4;
/** Regions per leaf (a 4 KiB record covers 8 GiB). */
const LEAF_REGIONS = 4096;
const MAX_LEAVES = 4096;

export interface PmdStateDescriptor {
  dir: SharedArrayBuffer;
  leaves: ArenaDescriptor;
}

export class PmdState {
  private readonly dir: Int32Array;
  private readonly leaves: Arena;
  private readonly bytes: Uint8Array;
  private readonly dirEntries: number;
  /** This CPU's log of changes since `begin`: [region, old state, ...]. */
  private readonly undo: number[] = [];

  static create(taskSize: number): PmdState {
    const dirEntries = Math.ceil(taskSize / PMD_SIZE / LEAF_REGIONS);
    return new PmdState({
      dir: new SharedArrayBuffer((DIR + dirEntries) * 4),
      leaves: Arena.create({
        name: 'pmd_leaf',
        recordBytes: LEAF_REGIONS,
        capacity: 4,
        maxCapacity: MAX_LEAVES,
      }).describe(),
    });
  }

  static attach(desc: PmdStateDescriptor): PmdState {
    return new PmdState(desc);
  }

  private constructor(desc: PmdStateDescriptor) {
    this.dir = new Int32Array(desc.dir);
    this.dirEntries = this.dir.length - DIR;
    this.leaves = Arena.attach(desc.leaves);
    this.bytes = new Uint8Array(
      this.leaves.i32.buffer,
      this.leaves.i32.byteOffset,
      this.leaves.i32.byteLength,
    );
  }

  describe(): PmdStateDescriptor {
    return { dir: this.dir.buffer as SharedArrayBuffer, leaves: this.leaves.describe() };
  }

  /** Regions with a huge entry (lets the common no-THP case skip all work). */
  get hugeCount(): number {
    return this.dir[HUGE_COUNT];
  }

  /** State of the region containing addr. */
  at(addr: number): number {
    return this.stateOf(Math.floor(addr / PMD_SIZE));
  }

  private stateOf(r: number): number {
    const d = Math.floor(r / LEAF_REGIONS);
    const leaf = d < this.dirEntries ? this.dir[DIR + d] : 0;
    return leaf === 0 ? PMD_NONE : this.bytes[leaf * LEAF_REGIONS + (r % LEAF_REGIONS)];
  }

  set(addr: number, state: number): void {
    const r = Math.floor(addr / PMD_SIZE);
    const old = this.stateOf(r);
    if (old === state) return;
    this.undo.push(r, old);
    this.put(r, old, state);
  }

  private put(r: number, old: number, state: number): void {
    const d = Math.floor(r / LEAF_REGIONS);
    if (d >= this.dirEntries) throw new RangeError(`pmd state: region ${r} beyond the address space`);
    let leaf = this.dir[DIR + d];
    if (leaf === 0) {
      leaf = this.leaves.alloc();
      if (leaf === 0) throw new Error('pmd state: out of leaves');
      this.bytes.fill(PMD_NONE, leaf * LEAF_REGIONS, (leaf + 1) * LEAF_REGIONS);
      this.dir[DIR + d] = leaf;
    }
    this.bytes[leaf * LEAF_REGIONS + (r % LEAF_REGIONS)] = state;
    this.dir[HUGE_COUNT] += (state === HUGE ? 1 : 0) - (old === HUGE ? 1 : 0);
  }

  /** Every region meeting [start, end) with an entry, ascending (region start addresses). */
  regionsIn(start: number, end: number): number[] {
    const out: number[] = [];
    const first = Math.floor(start / PMD_SIZE);
    const last = Math.floor((end - 1) / PMD_SIZE);
    for (let r = first; r <= last; ) {
      const d = Math.floor(r / LEAF_REGIONS);
      const leafEnd = (d + 1) * LEAF_REGIONS;
      if (d >= this.dirEntries) break;
      if (this.dir[DIR + d] === 0) {
        r = leafEnd;
        continue;
      }
      for (const stop = Math.min(leafEnd - 1, last); r <= stop; r++) {
        if (this.stateOf(r) !== PMD_NONE) out.push(r * PMD_SIZE);
      }
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
    if (addr > end - 1) return;
    this.clearRegions(Math.floor(addr / PMD_SIZE), Math.floor((end - 1) / PMD_SIZE));
  }

  /** Clears the entries of regions first..last (indices), skipping absent leaves, allocating nothing. */
  private clearRegions(first: number, last: number): void {
    for (let r = first; r <= last; ) {
      const d = Math.floor(r / LEAF_REGIONS);
      if (d >= this.dirEntries) return;
      const stop = Math.min((d + 1) * LEAF_REGIONS - 1, last);
      if (this.dir[DIR + d] === 0) {
        r = stop + 1;
        continue;
      }
      for (; r <= stop; r++) if (this.stateOf(r) !== PMD_NONE) this.set(r * PMD_SIZE, PMD_NONE);
    }
  }

  /** Starts logging this CPU's changes for one syscall. */
  begin(): void {
    if (this.undo.length !== 0) this.undo.length = 0;
  }

  /** Undoes every change since `begin`. */
  rollback(): void {
    for (let i = this.undo.length - 2; i >= 0; i -= 2) {
      const r = this.undo[i];
      this.put(r, this.stateOf(r), this.undo[i + 1]);
    }
    if (this.undo.length !== 0) this.undo.length = 0;
  }

  /** Frees every leaf (the address space is gone). */
  destroy(): void {
    for (let d = 0; d < this.dirEntries; d++) {
      const leaf = this.dir[DIR + d];
      if (leaf === 0) continue;
      this.dir[DIR + d] = 0;
      this.leaves.free(leaf);
    }
    this.dir[HUGE_COUNT] = 0;
  }

  /** Leaves in use (0 after destroy). */
  get liveLeaves(): number {
    return this.leaves.live;
  }
}
