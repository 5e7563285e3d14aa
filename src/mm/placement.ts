/**
 * get_unmapped_area for x86_64 with the top-down layout: the hint rules of
 * arch_get_unmapped_area_topdown, the gap search of unmapped_area_topdown over the tree's gap
 * tracking (with the stack guard gap below VM_GROWSDOWN mappings), the bottom-up fallback, the
 * THP alignment of anonymous mappings and of files whose file system uses thp_get_unmapped_area,
 * and the final checks of __get_unmapped_area (TASK_SIZE, mmap_min_addr).
 *
 * Runs against the tree as it is (placement always precedes mutation in a syscall).
 */
import { EINVAL, ENOMEM, EPERM } from '../errno.js';
import { type FileTable, PLACE_SHMEM, PLACE_THP } from '../fs/file-table.js';
import { type RangeIndex, rangeOut } from '../maple/api.js';
import type { MmConfig } from './config.js';
import { MAP_FIXED, MAP_SHARED, PAGE_SIZE, PMD_SIZE, VM_GROWSDOWN } from './vm-flags.js';
import type { VmaArena } from './vma-record.js';

const LIMIT = 2 ** 53 - 1;

export class Placement {
  private readonly index: RangeIndex;
  private readonly arena: VmaArena;
  private readonly config: MmConfig;
  private readonly files: FileTable;
  private readonly out = rangeOut();
  /**
   * What the last getUnmappedArea's search found: the free range [foundAt, foundAt + foundLen)
   * and the VMA right after it (a record handle, 0 = none), or foundAt -1. mmap_region then knows
   * find_vma(addr) without a walk (nextVmaIfFound).
   */
  private foundAt = -1;
  private foundLen = 0;
  private foundNext = 0;

  constructor(index: RangeIndex, arena: VmaArena, config: MmConfig, files: FileTable) {
    this.index = index;
    this.arena = arena;
    this.config = config;
    this.files = files;
  }

  /**
   * __get_unmapped_area: an address for [addr, addr + len) or -errno. `len` is page-aligned;
   * `file` is a file id (0 = anonymous).
   */
  getUnmappedArea(file: number, addr: number, len: number, pgoff: number, flags: number): number {
    const c = this.config;
    this.foundAt = -1;
    if (len > c.taskSize) return -ENOMEM;
    let res: number;
    if (file !== 0) {
      const placement = this.files.placement(file);
      if (placement === PLACE_THP) res = this.thpGetUnmappedArea(addr, len, pgoff, flags);
      else if (placement === PLACE_SHMEM)
        res = this.shmemGetUnmappedArea(addr, len, pgoff, flags, this.files.shmemIndex(file) >= 0);
      else res = this.archTopdown(addr, len, flags);
    } else if ((flags & MAP_SHARED) !== 0) {
      res = this.shmemGetUnmappedArea(addr, len, 0, flags, true);
    } else if (c.thpAlignAnon && addr === 0 && len % PMD_SIZE === 0) {
      res = this.thpGetUnmappedArea(addr, len, 0, flags);
    } else {
      res = this.archTopdown(addr, len, flags);
    }
    if (res < 0) return res;
    if (res > c.taskSize - len) return -ENOMEM;
    if (res % PAGE_SIZE !== 0) return -EINVAL;
    if (res < c.mmapMinAddr && !c.privileged) return -EPERM;
    return res;
  }

  /**
   * shmem_get_unmapped_area: the plain search, then, when the object's mount may use huge pages, a
   * search padded by 2 MiB - 4 KiB whose result is moved up to the offset's 2 MiB alignment. The
   * internal mount of shared anonymous memory follows shmem_enabled; tmpfs files follow their
   * mount's huge= option, taken as never (only shmem_enabled=force aligns them). A MAP_FIXED
   * address or an honoured hint stays as it is.
   */
  private shmemGetUnmappedArea(
    hint: number,
    len: number,
    pgoff: number,
    flags: number,
    internal: boolean,
  ): number {
    const c = this.config;
    const addr = this.archTopdown(hint, len, flags);
    if (addr < 0 || addr > c.taskSize - len) return addr;
    const mode = c.thpShmemEnabled;
    if (mode === 'deny' || (flags & MAP_FIXED) !== 0 || addr === hint) return addr;
    if (mode !== 'force' && (!internal || mode === 'never')) return addr;
    if (len < PMD_SIZE) return addr;
    const offset = (pgoff % (PMD_SIZE / PAGE_SIZE)) * PAGE_SIZE;
    if (offset !== 0 && offset + len < 2 * PMD_SIZE) return addr;
    if (addr % PMD_SIZE === offset) return addr;
    const inflatedLen = len + PMD_SIZE - PAGE_SIZE;
    if (inflatedLen > c.taskSize) return addr;
    let inflated = this.archTopdown(hint, inflatedLen, flags);
    if (inflated < 0) return addr;
    const inflatedOffset = inflated % PMD_SIZE;
    inflated += offset - inflatedOffset;
    if (inflatedOffset > offset) inflated += PMD_SIZE;
    return inflated > c.taskSize - len ? addr : inflated;
  }

  /** thp_get_unmapped_area_vmflags: 2 MiB-aligned placement when the file range allows it. */
  private thpGetUnmappedArea(addr: number, len: number, pgoff: number, flags: number): number {
    const aligned = this.thpAligned(addr, len, pgoff, flags);
    return aligned !== 0 ? aligned : this.archTopdown(addr, len, flags);
  }

  /** __thp_get_unmapped_area: 0 when alignment does not apply or the padded search fails. */
  private thpAligned(addr: number, len: number, pgoff: number, flags: number): number {
    const off = pgoff * PAGE_SIZE;
    let offMod: number;
    if (off + len + PMD_SIZE < 2 ** 53) {
      const offAlign = Math.ceil(off / PMD_SIZE) * PMD_SIZE;
      if (off + len <= offAlign || off + len - offAlign < PMD_SIZE) return 0;
      offMod = off % PMD_SIZE;
    } else {
      offMod = thpOffsetHuge(pgoff, len);
      if (offMod < 0) return 0;
    }
    const res = this.archTopdown(addr, len + PMD_SIZE, flags);
    if (res < 0) return 0;
    if (res === addr) return addr;
    const offSub = (((offMod - (res % PMD_SIZE)) % PMD_SIZE) + PMD_SIZE) % PMD_SIZE;
    return offSub === 0 ? res + PMD_SIZE : res + offSub;
  }

  /** arch_get_unmapped_area_topdown (x86_64). */
  archTopdown(addr0: number, len: number, flags: number): number {
    const c = this.config;
    if (len > c.taskSize) return -ENOMEM;
    if ((flags & MAP_FIXED) !== 0) return addr0;
    if (addr0 !== 0) {
      const addr = addr0 - (addr0 % PAGE_SIZE);
      if (this.hintValid(addr, len)) {
        const h = this.firstVmaFrom(addr);
        if (h === 0 || addr + len <= this.vmStartGap(h)) return this.found(addr, len, h);
      }
    }
    const res = this.unmappedAreaTopdown(len, PAGE_SIZE, c.mmapBase);
    if (res >= 0) return res;
    return this.archBottomUp(addr0, len);
  }

  /** arch_get_unmapped_area: the bottom-up search from mmap_legacy_base. */
  private archBottomUp(addr0: number, len: number): number {
    const c = this.config;
    const end = c.taskSize;
    if (len > end) return -ENOMEM;
    if (addr0 !== 0) {
      const addr = Math.ceil(addr0 / PAGE_SIZE) * PAGE_SIZE;
      const h = this.firstVmaFrom(addr);
      if (end - len >= addr && (h === 0 || addr + len <= this.vmStartGap(h))) return addr;
    }
    return this.unmappedArea(len, c.mmapLegacyBase, end);
  }

  /** mmap_address_hint_valid. */
  private hintValid(addr: number, len: number): boolean {
    const c = this.config;
    if (c.taskSize - len < addr) return false;
    return addr > c.taskSize === addr + len > c.taskSize;
  }

  /** unmapped_area_topdown: the highest free [gap, gap + len) below high, above low. */
  unmappedAreaTopdown(len: number, low: number, high: number): number {
    const min = Math.max(low, this.config.mmapMinAddr);
    for (;;) {
      if (high - 1 < min) return -ENOMEM;
      const s = this.index.gapHighest(min, high - 1, len, 1);
      if (s < 0) return -ENOMEM;
      const gapEnd = s + len;
      const next = this.firstVmaFrom(gapEnd);
      if (next !== 0 && (this.arena.flags(next) & VM_GROWSDOWN) !== 0 && this.vmStartGap(next) < gapEnd) {
        high = this.vmStartGap(next);
        continue;
      }
      return this.found(s, len, next);
    }
  }

  /** unmapped_area: the lowest free [gap, gap + len) above low, below high. */
  private unmappedArea(len: number, low: number, high: number): number {
    let min = Math.max(low, this.config.mmapMinAddr);
    for (;;) {
      if (high - 1 < min) return -ENOMEM;
      const s = this.index.gapLowest(min, high - 1, len, 1);
      if (s < 0) return -ENOMEM;
      const next = this.firstVmaFrom(s + len);
      if (
        next !== 0 &&
        (this.arena.flags(next) & VM_GROWSDOWN) !== 0 &&
        this.vmStartGap(next) < s + len - 1
      ) {
        min = this.arena.end(next);
        continue;
      }
      return s;
    }
  }

  /** Records that [addr, addr + len) is free and `next` (0 = none) the first VMA after it; returns addr. */
  private found(addr: number, len: number, next: number): number {
    this.foundAt = addr;
    this.foundLen = len;
    this.foundNext = next;
    return addr;
  }

  /**
   * The record of the first VMA after [addr, addr + len) (0 = none) when the last getUnmappedArea
   * found exactly that free range (an honoured hint or the top-down search), else -1. Preconditions: the tree has not
   * changed since (placement precedes mutation in a syscall).
   */
  nextVmaIfFound(addr: number, len: number): number {
    return this.foundAt === addr && this.foundLen === len ? this.foundNext : -1;
  }

  /** find_vma on the tree: the first VMA ending above addr (0 if none). */
  private firstVmaFrom(addr: number): number {
    if (addr > LIMIT) return 0;
    return this.index.next(addr, LIMIT, this.out);
  }

  /** vm_start_gap: a VM_GROWSDOWN VMA keeps stack_guard_gap free below it. */
  private vmStartGap(h: number): number {
    const start = this.arena.start(h);
    if ((this.arena.flags(h) & VM_GROWSDOWN) === 0) return start;
    return Math.max(0, start - this.config.stackGuardGap);
  }
}

/**
 * __thp_get_unmapped_area's checks for file offsets near 2^63, in the kernel's 64-bit arithmetic
 * (loff_t wraps, and its difference is compared unsigned with the huge page size). Returns the
 * offset modulo 2 MiB when alignment applies, else -1. Cold path: only absurd offsets get here.
 */
function thpOffsetHuge(pgoff: number, len: number): number {
  const size = BigInt(PMD_SIZE);
  const off = BigInt.asIntN(64, BigInt(pgoff) << 12n);
  const offEnd = BigInt.asIntN(64, off + BigInt(len));
  const offAlign = BigInt.asIntN(64, ((off - 1n) | (size - 1n)) + 1n);
  if (offEnd <= offAlign) return -1;
  if (BigInt.asUintN(64, offEnd - offAlign) < size) return -1;
  if (BigInt.asUintN(64, off + BigInt(len) + size) < BigInt.asUintN(64, off)) return -1;
  return Number(BigInt.asUintN(64, off) % size);
}
