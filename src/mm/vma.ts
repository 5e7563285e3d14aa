/**
 * The pure VMA layer: Linux's mm/vma.c rules for merging, splitting, expanding and unmapping,
 * applied to a VmaTxn (no locks, no threads: unit tests drive it directly, like the kernel's
 * tools/testing/vma). Slots of the transaction stand for `struct vm_area_struct *`; -1 is NULL.
 *
 * Merge compatibility (is_mergeable_vma / is_mergeable_anon_vma / can_vma_merge_before/after):
 * equal flags (VM_SOFTDIRTY ignored), the same file (or none), the same special name, anon_vmas
 * that are both unset, one unset or equal, and contiguous page offsets. VM_SPECIAL VMAs never
 * merge. A three-way merge also needs prev's and next's anon_vmas compatible with each other;
 * when they are not, the range merges with prev only.
 */
import { ENOMEM } from '../errno.js';
import { PAGE_SIZE, VM_IGNORE_MERGE, VM_SPECIAL } from './vm-flags.js';
import { type VmaFields, vmaCopy, vmaFields } from './vma-record.js';
import type { VmaTxn } from './vma-txn.js';

/**
 * The proposed VMA of a merge (struct vma_merge_struct): every VMA field (VMA_FIELDS, as plain
 * numbers) plus the neighbours and options of the merge. Reused, never allocated per call.
 */
export interface MergeState extends VmaFields {}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the interface above
export class MergeState {
  prev = -1;
  next = -1;
  middle = -1;
  /** mremap: the VMA being copied (its anon_vma is inherited by the target). */
  copiedFrom = -1;
  /** brk: only try to expand prev. */
  justExpand = false;

  constructor() {
    Object.assign(this, vmaFields());
  }

  /** VMG_STATE for a new range with the fields of `f`. */
  forNew(prev: number, next: number, start: number, end: number, pgoff: number, f: VmaFields): this {
    vmaCopy.copyFields(this, f);
    this.prev = prev;
    this.next = next;
    this.middle = -1;
    this.start = start;
    this.end = end;
    this.pgoff = pgoff;
    this.copiedFrom = -1;
    this.justExpand = false;
    return this;
  }

  /** VMG_VMA_STATE: [start, end) of an existing VMA `vma`, with `prev` before it (or vma). */
  forVma(t: VmaTxn, prev: number, vma: number, start: number, end: number): this {
    vmaCopy.toFields(this, t, vma);
    this.prev = prev;
    this.next = -1;
    this.middle = vma;
    this.start = start;
    this.end = end;
    this.pgoff = t.pgoff[vma] + (start - t.start[vma]) / PAGE_SIZE;
    this.copiedFrom = -1;
    this.justExpand = false;
    return this;
  }
}

/** Two anon_vmas can share one VMA: both unset, one unset, or the same. */
export function anonCompatible(a: number, b: number): boolean {
  return a === 0 || b === 0 || a === b;
}

/**
 * Told about every unmap: the `n` removed ranges (the first n entries of starts and ends), and the
 * end of the VMA before / start of the one after.
 */
export type UnmapObserver = (
  starts: Float64Array,
  ends: Float64Array,
  n: number,
  floor: number,
  ceiling: number,
) => void;

export class VmaLayer {
  readonly t: VmaTxn;
  /** VMAs in the address space before the transaction. */
  mapCountBase = 0;
  maxMapCount: number;
  /** Page-table bookkeeping of the address space (zap + free_pgtables), if any. */
  onUnmap: UnmapObserver | null = null;
  /** unmapRange's removed VMAs (reused: no allocation, and no array length store, per call). */
  private removedStarts = new Float64Array(16);
  private removedEnds = new Float64Array(16);
  private removedSlots = new Int32Array(16);

  constructor(t: VmaTxn, maxMapCount: number) {
    this.t = t;
    this.maxMapCount = maxMapCount;
  }

  /** mm->map_count as the transaction stands. */
  mapCount(): number {
    return this.mapCountBase + this.t.mapCountDelta;
  }

  // ---- compatibility -------------------------------------------------------------------------

  /** is_mergeable_vma: equal flags (but for VM_IGNORE_MERGE) and every `equal` field equal. */
  private isMergeableVma(ms: MergeState, vma: number): boolean {
    const t = this.t;
    return ((t.flags[vma] ^ ms.flags) & ~VM_IGNORE_MERGE) === 0 && vmaCopy.equalFieldsMatch(t, vma, ms);
  }

  /** can_vma_merge_before: the proposed range can be merged in front of ms.next. */
  private canMergeBefore(ms: MergeState): boolean {
    const next = ms.next;
    return (
      this.isMergeableVma(ms, next) &&
      anonCompatible(ms.anon, this.t.anon[next]) &&
      this.t.pgoff[next] === ms.pgoff + (ms.end - ms.start) / PAGE_SIZE
    );
  }

  /** can_vma_merge_after: the proposed range can be merged behind ms.prev. */
  private canMergeAfter(ms: MergeState): boolean {
    const t = this.t;
    const prev = ms.prev;
    return (
      this.isMergeableVma(ms, prev) &&
      anonCompatible(ms.anon, t.anon[prev]) &&
      t.pgoff[prev] + (t.end[prev] - t.start[prev]) / PAGE_SIZE === ms.pgoff
    );
  }

  private canMergeLeft(ms: MergeState): boolean {
    return ms.prev >= 0 && this.t.end[ms.prev] === ms.start && this.canMergeAfter(ms);
  }

  private canMergeRight(ms: MergeState, canMergeLeft: boolean): boolean {
    const t = this.t;
    const next = ms.next;
    if (next < 0 || ms.end !== t.start[next] || !this.canMergeBefore(ms)) return false;
    if (!canMergeLeft) return true;
    return anonCompatible(t.anon[ms.prev], t.anon[next]);
  }

  /** dup_anon_vma: the merged VMA takes the source's anon_vma if it has none. */
  private dupAnon(dst: number, src: number): void {
    const t = this.t;
    if (t.anon[src] !== 0 && t.anon[dst] === 0) t.anon[dst] = t.anon[src];
  }

  // ---- merges --------------------------------------------------------------------------------

  /**
   * vma_merge_new_range: a new range [ms.start, ms.end) (free, prev/next set) merges into prev,
   * next or both. Returns the expanded VMA, or -1 when no merge is possible.
   */
  mergeNewRange(ms: MergeState): number {
    const t = this.t;
    const prev = ms.prev;
    const next = ms.next;
    if ((ms.flags & VM_SPECIAL) !== 0 || (prev < 0 && next < 0)) return -1;
    const left = this.canMergeLeft(ms);
    const right = !ms.justExpand && this.canMergeRight(ms, left);
    let target = -1;
    let start = ms.start;
    let end = ms.end;
    let pgoff = ms.pgoff;
    if (right) {
      end = t.end[next];
      target = next;
    }
    if (left) {
      start = t.start[prev];
      target = prev;
      pgoff = t.pgoff[prev];
    }
    if (target < 0) return -1;
    // vma_expand
    const removeNext = next >= 0 && target !== next && end === t.end[next];
    if (removeNext) this.dupAnon(target, next);
    if (ms.copiedFrom >= 0) this.dupAnon(target, ms.copiedFrom);
    if (removeNext) t.remove(next);
    t.setRange(target, start, end, pgoff);
    return target;
  }

  /**
   * vma_merge_existing_range: [ms.start, ms.end) of ms.middle gets ms.flags; merges it with prev
   * and/or next when they are compatible. Returns the merged VMA, or -1 (nothing changed).
   */
  mergeExistingRange(ms: MergeState): number {
    const t = this.t;
    const middle = ms.middle;
    const prev = ms.prev;
    const leftSide = ms.start === t.start[middle];
    const rightSide = ms.end === t.end[middle];
    if ((ms.flags & VM_SPECIAL) !== 0 || (!leftSide && !rightSide)) return -1;
    const mergeLeft = leftSide && this.canMergeLeft(ms);
    let next = -1;
    let mergeRight = false;
    if (rightSide) {
      next = t.nextOf(middle);
      ms.next = next;
      mergeRight = this.canMergeRight(ms, mergeLeft);
    }
    if (!mergeLeft && !mergeRight) return -1;
    const removeMiddle = leftSide && rightSide;
    if (mergeLeft && mergeRight) {
      // prev extends over middle and next; both go away.
      this.dupAnon(prev, t.anon[next] !== 0 ? next : middle);
      const end = t.end[next];
      t.remove(middle);
      t.remove(next);
      t.setRange(prev, t.start[prev], end, t.pgoff[prev]);
      return prev;
    }
    if (mergeLeft) {
      // prev extends to ms.end; middle shrinks from the left or goes away.
      this.dupAnon(prev, middle);
      if (removeMiddle) t.remove(middle);
      else
        t.setRange(middle, ms.end, t.end[middle], t.pgoff[middle] + (ms.end - t.start[middle]) / PAGE_SIZE);
      t.setRange(prev, t.start[prev], ms.end, t.pgoff[prev]);
      return prev;
    }
    // mergeRight: next extends down to ms.start; middle shrinks from the right or goes away.
    this.dupAnon(next, middle);
    const nextPgoff = t.pgoff[next] - (t.start[next] - ms.start) / PAGE_SIZE;
    if (removeMiddle) t.remove(middle);
    else t.setRange(middle, t.start[middle], ms.start, t.pgoff[middle]);
    t.setRange(next, ms.start, t.end[next], nextPgoff);
    return next;
  }

  // ---- splits and modification ---------------------------------------------------------------

  /** split_vma: refuses (ENOMEM) at max_map_count. Returns the new slot or -ENOMEM. */
  splitVma(vma: number, addr: number, newBelow: boolean): number {
    if (this.mapCount() >= this.maxMapCount) return -ENOMEM;
    return this.t.split(vma, addr, newBelow);
  }

  /**
   * vma_modify + flag update: gives [start, end) of `vma` the flags `newFlags`, merging with a
   * neighbour or splitting as needed. Returns the VMA now covering the range (or extending past
   * it after a merge), or -ENOMEM.
   */
  modifyFlags(
    ms: MergeState,
    prev: number,
    vma: number,
    start: number,
    end: number,
    newFlags: number,
  ): number {
    const t = this.t;
    ms.forVma(t, prev, vma, start, end);
    ms.flags = newFlags;
    const merged = this.mergeExistingRange(ms);
    if (merged >= 0) {
      t.flags[merged] = newFlags;
      return merged;
    }
    if (t.start[vma] < start) {
      const err = this.splitVma(vma, start, true);
      if (err < 0) return err;
    }
    if (t.end[vma] > end) {
      const err = this.splitVma(vma, end, false);
      if (err < 0) return err;
    }
    t.flags[vma] = newFlags;
    return vma;
  }

  /**
   * The gather step of do_vmi_align_munmap for [start, end) starting at `first` (the first VMA
   * meeting the range): splits the edge VMAs and removes everything inside. Returns the number
   * of pages unmapped, or -ENOMEM when the split at `start` would exceed max_map_count.
   */
  unmapRange(first: number, start: number, end: number): number {
    const t = this.t;
    let vma = first;
    if (start > t.start[vma]) {
      if (end < t.end[vma] && this.mapCount() >= this.maxMapCount) return -ENOMEM;
      t.split(vma, start, true);
    }
    let pages = 0;
    let n = 0;
    while (vma >= 0 && t.start[vma] < end) {
      if (t.end[vma] > end) t.split(vma, end, false);
      pages += (t.end[vma] - t.start[vma]) / PAGE_SIZE;
      if (n === this.removedSlots.length) this.growRemoved(2 * n);
      this.removedStarts[n] = t.start[vma];
      this.removedEnds[n] = t.end[vma];
      this.removedSlots[n++] = vma;
      vma = t.nextOf(vma);
    }
    t.removeMany(this.removedSlots, n);
    if (this.onUnmap !== null && n > 0) {
      const prev = t.findBefore(start);
      // The walk stopped at the first VMA at or past end (nothing it removed lies there): find_vma(end).
      const next = vma;
      this.onUnmap(
        this.removedStarts,
        this.removedEnds,
        n,
        prev >= 0 ? t.end[prev] : 0,
        next >= 0 ? t.start[next] : 0,
      );
    }
    return pages;
  }

  private growRemoved(cap: number): void {
    const starts = new Float64Array(cap);
    const ends = new Float64Array(cap);
    const slots = new Int32Array(cap);
    starts.set(this.removedStarts);
    ends.set(this.removedEnds);
    slots.set(this.removedSlots);
    this.removedStarts = starts;
    this.removedEnds = ends;
    this.removedSlots = slots;
  }
}
