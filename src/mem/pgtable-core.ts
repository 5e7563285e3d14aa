/**
 * The page-table radix of one address space, part 1: storage, the split page-table locks, the
 * lock-free walks and single entries. pgtable-alloc.ts adds table allocation, huge PMD entries and
 * freeing; pgtable.ts (`PageTables`) the range operations; docs/mem.md has the picture, the
 * invariants and the lock and RCU protocol.
 *
 *   header (Int32, shared)      ROOT  N_PUD  N_PMD  N_PTE  N_HUGE  N_DEPOSITED  N_THP
 *   tables (an Arena of 2 KiB records = 512 Uint32 entries, viewed whole as `entries`):
 *     entry i of table t is entries[t << 9 | i]; PGD (the root, allocated at creation) ->
 *     PUD -> PMD -> PTE tables; an upper entry is tableEntry(child), a PMD entry may be huge
 *   meta (Int32, shared, page-aligned, indexed by table handle, META_WORDS each: one 64-byte line
 *   per table, so CPUs faulting in different tables never write one line):
 *     PTL_STATE PTL_ID   the table's split page-table lock (a spinlock of class 'ptl')
 *     COUNT              non-zero entries of the table (so freeing can tell an empty one)
 *     LINK               a PMD table: first deposited PTE table; a deposited table: the next one
 *
 * Invariants: an entry changes only under its table's PTL, published with Atomics.store (so a
 * lock-free walker sees the old or the new entry, never a mix); COUNT and LINK change only under
 * the table's PTL (a deposited table's LINK under its PMD table's PTL); a table is published
 * fully initialised, by one Atomics.store into its parent; a table leaves the tree by one
 * Atomics.store of 0 into its parent and is freed only after an RCU grace period (rcuDeferFree);
 * every huge PMD entry has one deposited PTE table on its PMD table's LINK list (Linux's
 * pgtable_trans_huge_deposit), so splitting one never allocates and a zap never fails.
 */
import { WAIT_SPIN } from '../cpu/waits.js';
import { EINVAL, ENOMEM, VmError } from '../errno.js';
import { LOCK_ATOMIC, WRITE } from '../lockhooks.js';
import { Arena, type ArenaDescriptor, type FailureInjector } from '../shm/arena.js';
import { exclusiveLock, exclusiveUnlock } from '../sync/exclusive.js';
import { lockClass } from '../sync/lockclass.js';
import { SPINLOCK_SPINS } from '../sync/spinlock.js';
import { pageAligned } from './page.js';
import {
  MAX_TABLE_HANDLE,
  PAGE_SIZE,
  PGDIR_SIZE,
  PMD_SIZE,
  PTE_HUGE,
  PTE_PRESENT,
  PTRS_PER_TABLE,
  PUD_SIZE,
  USER_ADDR_LIMIT,
} from './pte.js';

/** The split page-table lock: innermost mm lock (src/mm/locking.ts). */
export const PTL_CLASS = lockClass('ptl');
/** Subclass of the second PTL held at once (mremap's destination table). */
export const PTL_NESTED = 1;
/** What the validator sees: a spinlock (atomic context). */
const PTL_MODE = WRITE | LOCK_ATOMIC;

/**
 * Words of `meta` per table (a cache line: with four tables to a line, two CPUs faulting in their
 * own tables, allocated one after the other, bounced the line at every PTL and COUNT write), and
 * the offsets of the words used.
 */
export const META_WORDS = 16;
export const PTL_STATE = 0;
export const COUNT = 2;
export const LINK = 3;

/** Words of `header`. */
export const ROOT = 0;
export const N_PUD = 1;
export const N_PMD = 2;
export const N_PTE = 3;
export const N_HUGE = 4;
export const N_DEPOSITED = 5;
/** PMD entries pointing to a PTE table with PMD_THP_TABLE (THP regions mapped by 4 KiB entries). */
export const N_THP = 6;
const HEADER_WORDS = 8;

/** Default most tables of one address space (a 128 MiB reservation, committed as touched). */
export const DEFAULT_MAX_TABLES = 1 << 16;
const INITIAL_TABLES = 64;
const TABLE_BYTES = PTRS_PER_TABLE * 4;

export interface PageTablesOptions {
  /** Most tables (default DEFAULT_MAX_TABLES, at most 2^20 - 1: a handle has 20 bits). */
  capacity?: number;
  injector?: FailureInjector;
  /** Poison freed tables (default: debug mode, as every arena). */
  poison?: boolean;
  name?: string;
}

export interface PageTablesDescriptor {
  arena: ArenaDescriptor;
  meta: SharedArrayBuffer;
  header: SharedArrayBuffer;
}

export interface PageTableStats {
  /** Tables in the tree, the root included. */
  tables: number;
  pud: number;
  pmd: number;
  pte: number;
  /** Huge PMD entries, and the PTE tables deposited for them (one each). */
  huge: number;
  deposited: number;
  /** PMD entries marked PMD_THP_TABLE (transparent huge pages mapped by a PTE table). */
  thp: number;
  /** Records of the table arena (tables + deposited + those waiting for a grace period). */
  live: number;
}

export class PageTableCore {
  readonly arena: Arena;
  /** Every table's entries: entry i of table t at [t << 9 | i]. */
  readonly entries: Uint32Array;
  /** Per table: PTL words, COUNT, LINK (META_WORDS each). */
  readonly meta: Int32Array;
  protected readonly header: Int32Array;
  /** The PGD's handle (0 after destroy). */
  protected root: number;
  /** Set by seekPmd: the PMD table and index of the entry found. */
  protected seekTable = 0;
  protected seekIndex = 0;

  protected static newDescriptor(options: PageTablesOptions = {}): PageTablesDescriptor {
    const max = options.capacity ?? DEFAULT_MAX_TABLES;
    if (!(Number.isInteger(max) && max >= 2 && max <= MAX_TABLE_HANDLE)) {
      throw new VmError(EINVAL, `page tables: capacity ${max} outside 2..${MAX_TABLE_HANDLE}`);
    }
    const arena = Arena.create({
      name: options.name ?? 'pgtable',
      recordBytes: TABLE_BYTES,
      capacity: Math.min(INITIAL_TABLES, max),
      maxCapacity: max,
      injector: options.injector,
      poison: options.poison,
    });
    const root = arena.alloc();
    if (root === 0) throw new VmError(ENOMEM, 'page tables: no memory for the PGD');
    const header = new Int32Array(new SharedArrayBuffer(HEADER_WORDS * 4));
    header[ROOT] = root;
    return {
      arena: arena.describe(),
      meta: pageAligned((max + 1) * META_WORDS * 4),
      header: header.buffer as SharedArrayBuffer,
    };
  }

  protected constructor(desc: PageTablesDescriptor) {
    this.arena = Arena.attach(desc.arena);
    const i32 = this.arena.i32;
    this.entries = new Uint32Array(i32.buffer, i32.byteOffset, i32.length);
    // An explicit length: a view that tracks a growable buffer's length is slower to access.
    this.meta = new Int32Array(desc.meta, 0, desc.meta.byteLength >> 2);
    this.header = new Int32Array(desc.header);
    this.root = Atomics.load(this.header, ROOT);
  }

  describe(): PageTablesDescriptor {
    return {
      arena: this.arena.describe(),
      meta: this.meta.buffer as SharedArrayBuffer,
      header: this.header.buffer as SharedArrayBuffer,
    };
  }

  // --- locks -------------------------------------------------------------------------------

  /** Takes table t's PTL (pte_offset_map_lock / pmd_lock); subclass PTL_NESTED for a second one. */
  lockTable(t: number, subclass = 0): void {
    exclusiveLock(this.meta, t * META_WORDS, PTL_CLASS, subclass, SPINLOCK_SPINS, WAIT_SPIN, PTL_MODE);
  }

  unlockTable(t: number): void {
    exclusiveUnlock(this.meta, t * META_WORDS, PTL_CLASS);
  }

  // --- lock-free walks ---------------------------------------------------------------------

  /**
   * The leaf entry mapping addr: its PTE, or its PMD entry when that is huge (PTE_HUGE set;
   * hugeSubpage gives the 4 KiB view), or 0. Lock-free and allocation-free: call it inside an RCU
   * read section (or holding what keeps addr's tables from being freed, as mmap_lock does).
   *
   * Memory ordering (docs/mem.md, "Walking without locks"): every entry that is followed to a
   * table is read with Atomics.load, which synchronises with the Atomics.store that published
   * that table, so the table's initialisation (zeroing, a split's 512 entries) happens before
   * every read of it; the leaf is a plain load, which is tear-free and, being after that
   * synchronisation, returns the initial value or one a later Atomics.store wrote - an entry that
   * was installed, never older contents of the record. RCU keeps every table reached allocated
   * until the read section ends. (Measured: three atomic loads and a plain one cost 22 ns a walk,
   * four atomic loads 26 ns, four plain loads 8 ns, but plain loads of pointers are not ordered
   * in the JS memory model.)
   */
  lookupPte(addr: number): number {
    if (!(addr >= 0 && addr < USER_ADDR_LIMIT)) return 0;
    const e = this.entries;
    const hi = Math.floor(addr / PUD_SIZE);
    const lo = addr - hi * PUD_SIZE;
    let x = Atomics.load(e, (this.root << 9) | (hi >>> 9));
    if (x === 0) return 0;
    x = Atomics.load(e, ((x >>> 12) << 9) | (hi & 511));
    if (x === 0) return 0;
    x = Atomics.load(e, ((x >>> 12) << 9) | (lo >>> 21));
    if (x === 0 || (x & PTE_HUGE) !== 0) return x;
    return e[((x >>> 12) << 9) | ((lo >>> 12) & 511)];
  }

  /** addr's PMD entry (a table entry, a huge entry, or 0); lock-free like lookupPte. */
  pmdEntry(addr: number): number {
    const pmd = this.findPmdTable(addr);
    return pmd === 0 ? 0 : Atomics.load(this.entries, (pmd << 9) | ((addr % PUD_SIZE) >>> 21));
  }

  /** The PMD table covering addr, or 0; lock-free like lookupPte. */
  findPmdTable(addr: number): number {
    if (!(addr >= 0 && addr < USER_ADDR_LIMIT)) return 0;
    const e = this.entries;
    const hi = Math.floor(addr / PUD_SIZE);
    const x = Atomics.load(e, (this.root << 9) | (hi >>> 9));
    if (x === 0) return 0;
    return Atomics.load(e, ((x >>> 12) << 9) | (hi & 511)) >>> 12;
  }

  /** The PTE table covering addr, or 0 (none, or mapped huge); lock-free like lookupPte. */
  findPteTable(addr: number): number {
    const pmd = this.findPmdTable(addr);
    if (pmd === 0) return 0;
    const x = Atomics.load(this.entries, (pmd << 9) | ((addr % PUD_SIZE) >>> 21));
    return (x & PTE_HUGE) !== 0 ? 0 : x >>> 12;
  }

  /** Entry i of table t (an atomic load). */
  readEntry(t: number, i: number): number {
    return Atomics.load(this.entries, (t << 9) | i);
  }

  /** Non-zero entries of table t (stable under its PTL). */
  entryCount(t: number): number {
    return this.meta[t * META_WORDS + COUNT];
  }

  // --- single entries --------------------------------------------------------------------------

  /** Sets PTE i of table t under its PTL; returns the old entry. */
  setPte(t: number, i: number, entry: number): number {
    this.lockTable(t);
    try {
      return this.setPteLocked(t, i, entry);
    } finally {
      this.unlockTable(t);
    }
  }

  /** Clears PTE i of table t under its PTL; returns the old entry (0 if there was none). */
  clearPte(t: number, i: number): number {
    this.lockTable(t);
    const old = this.clearPteLocked(t, i);
    this.unlockTable(t);
    return old;
  }

  /** setPte with t's PTL held by the caller. `entry` must be present and not huge. */
  setPteLocked(t: number, i: number, entry: number): number {
    if (!(i >= 0 && i < PTRS_PER_TABLE)) throw new RangeError(`pgtable: PTE index ${i}`);
    if ((entry & (PTE_PRESENT | PTE_HUGE)) !== PTE_PRESENT || entry >>> 0 !== entry) {
      throw new VmError(EINVAL, `pgtable: setPte of entry ${entry}: not present, or huge`);
    }
    const w = (t << 9) | i;
    const old = this.entries[w];
    Atomics.store(this.entries, w, entry);
    if (old === 0) this.meta[t * META_WORDS + COUNT]++;
    return old;
  }

  /** clearPte with t's PTL held by the caller. */
  clearPteLocked(t: number, i: number): number {
    if (!(i >= 0 && i < PTRS_PER_TABLE)) throw new RangeError(`pgtable: PTE index ${i}`);
    const w = (t << 9) | i;
    const old = this.entries[w];
    if (old !== 0) {
      Atomics.store(this.entries, w, 0);
      this.meta[t * META_WORDS + COUNT]--;
    }
    return old;
  }

  // --- helpers for the range operations --------------------------------------------------------

  /**
   * The start of the first 2 MiB region at or after addr's and below `end` whose PMD entry is not
   * empty, or -1; sets seekTable/seekIndex to that entry. Skips absent PUD and PMD tables whole.
   */
  protected seekPmd(addr: number, end: number): number {
    const e = this.entries;
    let a = addr - (addr % PMD_SIZE);
    while (a < end) {
      const hi = Math.floor(a / PUD_SIZE);
      const x = Atomics.load(e, (this.root << 9) | (hi >>> 9));
      if (x === 0) {
        a = (Math.floor(a / PGDIR_SIZE) + 1) * PGDIR_SIZE;
        continue;
      }
      const y = Atomics.load(e, ((x >>> 12) << 9) | (hi & 511));
      const base = hi * PUD_SIZE;
      if (y !== 0) {
        const pmd = (y >>> 12) << 9;
        // A plain read per slot (an Atomics.load costs ~7 ns, a plain one ~2): the scan is a hint,
        // every caller re-reads the entry it is given with Atomics.load or under the table's PTL.
        for (let i = (a - base) / PMD_SIZE; i < PTRS_PER_TABLE; i++) {
          const r = base + i * PMD_SIZE;
          if (r >= end) return -1;
          if (e[pmd | i] !== 0) {
            this.seekTable = y >>> 12;
            this.seekIndex = i;
            return r;
          }
        }
      }
      a = base + PUD_SIZE;
    }
    return -1;
  }

  protected checkAddr(addr: number): void {
    if (!(Number.isInteger(addr) && addr >= 0 && addr < USER_ADDR_LIMIT)) {
      throw new VmError(EINVAL, `pgtable: address ${addr} outside user space`);
    }
  }

  /** [start, end) page-aligned inside user space. */
  protected checkRange(start: number, end: number): void {
    if (
      !(
        Number.isInteger(start) &&
        Number.isInteger(end) &&
        start >= 0 &&
        start <= end &&
        end <= USER_ADDR_LIMIT &&
        start % PAGE_SIZE === 0 &&
        end % PAGE_SIZE === 0
      )
    ) {
      throw new VmError(EINVAL, `pgtable: range [${start}, ${end}) not page-aligned user addresses`);
    }
  }

  // --- whole-tree operations -------------------------------------------------------------------

  stats(): PageTableStats {
    const h = this.header;
    const pud = Atomics.load(h, N_PUD);
    const pmd = Atomics.load(h, N_PMD);
    const pte = Atomics.load(h, N_PTE);
    return {
      tables: (this.root === 0 ? 0 : 1) + pud + pmd + pte,
      pud,
      pmd,
      pte,
      huge: Atomics.load(h, N_HUGE),
      deposited: Atomics.load(h, N_DEPOSITED),
      thp: Atomics.load(h, N_THP),
      live: this.arena.live,
    };
  }

  /**
   * Huge PMD entries plus PMD entries marked PMD_THP_TABLE: 0 when no region maps a THP. Plain
   * loads: a hint for a caller that skips work when it is 0 (an atomic load would order nothing
   * here: the counts change under page-table locks the caller does not hold).
   */
  get thpRegions(): number {
    const h = this.header;
    return h[N_HUGE] + h[N_THP];
  }

  /** Records of the table arena in use (0 after destroy and rcuBarrier). */
  get live(): number {
    return this.arena.live;
  }

  /** The PGD's handle (0 after destroy). */
  get rootTable(): number {
    return this.root;
  }
}
