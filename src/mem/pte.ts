/**
 * Page-table entries and the address geometry of the page tables (docs/mem.md, "Page-table
 * entries"): x86-64 with 4 KiB pages, four levels of 512 entries (9 bits each), 47-bit user
 * addresses. An entry is one Uint32:
 *
 *    31                                   12 11        0
 *   +--------------------------------------+-----------+
 *   | pfn (or table handle at upper levels)| flag bits |
 *   +--------------------------------------+-----------+
 *
 * An entry is 0 (none) or has PTE_PRESENT set: a non-zero entry without PRESENT (Linux's swap and
 * migration entries) does not exist yet. An upper-level entry that points to a table is
 * `tableEntry(handle)` (at the PMD level possibly with PMD_THP_TABLE); a PMD-level entry with
 * PTE_HUGE maps 2 MiB (512 frames from a pfn that is a multiple of 512).
 *
 * Addresses are plain numbers below 2^47 (more than 32 bits, so no shifts on whole addresses):
 * the walkers split one into `hi = floor(addr / 2^30)` (PGD index hi >>> 9, PUD index hi & 511)
 * and `lo = addr - hi * 2^30` (PMD index lo >>> 21, PTE index (lo >>> 12) & 511).
 */

import { PAGE_SHIFT, PAGE_SIZE } from './page.js';

export { PAGE_SHIFT, PAGE_SIZE } from './page.js';
/** Entries per table, and the bits of an address each level decodes. */
export const PTRS_PER_TABLE = 512;
export const TABLE_SHIFT = 9;
/** What one entry maps at each level: PTE 4 KiB, PMD 2 MiB, PUD 1 GiB, PGD 512 GiB. */
export const PMD_SIZE = 2 ** 21;
export const PUD_SIZE = 2 ** 30;
export const PGDIR_SIZE = 2 ** 39;
/** User addresses are [0, USER_ADDR_LIMIT). */
export const USER_ADDR_LIMIT = 2 ** 47;
/** Frames of a huge (PMD-level) mapping. */
export const HUGE_PAGES = PMD_SIZE / PAGE_SIZE;

export const PTE_PRESENT = 0x1;
export const PTE_WRITE = 0x2;
export const PTE_USER = 0x4;
export const PTE_ACCESSED = 0x20;
export const PTE_DIRTY = 0x40;
/** At the PMD level only: the entry maps 2 MiB instead of pointing to a PTE table. */
export const PTE_HUGE = 0x80;
export const PTE_SOFT_DIRTY = 0x200;
/**
 * At the PMD level only, on an entry pointing to a PTE table: a transparent huge page is mapped in
 * this 2 MiB region, by that table's 4 KiB entries (no 2 MiB frame block is allocated: docs/mem.md,
 * "THP regions"). Range operations treat such a region as they treat a huge entry: zapped whole,
 * its PMD entry goes with the table; covered in part, the bit goes (a split); moved whole, the
 * entry moves with it. A software bit: walkers ignore it.
 */
export const PMD_THP_TABLE = 0x400;
export const PTE_FLAGS_MASK = 0xfff;
/** Flags of an upper-level entry pointing to a table (Linux's _PAGE_TABLE). */
export const TABLE_FLAGS = PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED | PTE_DIRTY;
/** Most tables (and frames) an entry can name: 20 bits of handle or pfn. */
export const MAX_TABLE_HANDLE = 2 ** 20 - 1;

/** Levels, root first. */
export const LEVEL_PGD = 0;
export const LEVEL_PUD = 1;
export const LEVEL_PMD = 2;
export const LEVEL_PTE = 3;

/** An entry mapping frame `pfn` with `flags` (PTE_PRESENT is added). */
export function makePte(pfn: number, flags: number): number {
  return ((pfn << PAGE_SHIFT) | flags | PTE_PRESENT) >>> 0;
}

/** The entry of an upper-level table pointing to table `handle`. */
export function tableEntry(handle: number): number {
  return ((handle << PAGE_SHIFT) | TABLE_FLAGS) >>> 0;
}

/** The frame (or table handle) an entry names. */
export function ptePfn(entry: number): number {
  return entry >>> PAGE_SHIFT;
}

export function pteFlags(entry: number): number {
  return entry & PTE_FLAGS_MASK;
}

/** The 4 KiB entry for `addr` inside the huge mapping `huge` (a PMD entry with PTE_HUGE). */
export function hugeSubpage(huge: number, addr: number): number {
  const page = ((addr % PMD_SIZE) / PAGE_SIZE) | 0;
  return (((ptePfn(huge) + page) << PAGE_SHIFT) | (huge & PTE_FLAGS_MASK & ~PTE_HUGE)) >>> 0;
}

/** Index of addr's entry in its PTE table. */
export function pteIndex(addr: number): number {
  return (addr % PMD_SIZE) >>> PAGE_SHIFT;
}

/** Index of addr's entry in its PMD table. */
export function pmdIndex(addr: number): number {
  return (addr % PUD_SIZE) >>> 21;
}

/** Index of addr's entry in its PUD table. */
export function pudIndex(addr: number): number {
  return Math.floor(addr / PUD_SIZE) & 511;
}

/** Index of addr's entry in the PGD. */
export function pgdIndex(addr: number): number {
  return Math.floor(addr / PGDIR_SIZE);
}
