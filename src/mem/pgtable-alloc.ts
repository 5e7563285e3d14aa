/**
 * The page-table radix, part 2: allocating tables (pte_alloc and the plan-then-reserve scheme that
 * makes multi-table operations all-or-nothing), huge PMD entries with their deposited tables,
 * unlinking and freeing tables (after an RCU grace period), destroy. See pgtable-core.ts for the
 * layout and docs/mem.md for the protocol.
 *
 * Allocation never happens under a PTL: an operation first counts the tables it will create (a
 * plan pass over the current tree), allocates them all into this CPU's pool (zeroed, unpublished;
 * on failure they go straight back and the operation returns ENOMEM having changed nothing), then
 * publishes each with one Atomics.store into its parent under the parent's PTL, after re-checking
 * the parent's entry (another CPU may have installed a table meanwhile: then that one is used).
 * Whatever the pool still holds at the end was never published and is freed at once.
 */
import { assert, VmAssertionError } from '../assert.js';
import { EAGAIN, EEXIST, EINVAL, ENOMEM, VmError } from '../errno.js';
import { rcuDeferFree } from '../sync/rcu.js';
import {
  COUNT,
  LINK,
  META_WORDS,
  N_DEPOSITED,
  N_HUGE,
  N_PTE,
  N_PUD,
  N_THP,
  PageTableCore,
  PTL_NESTED,
  PTL_STATE,
  ROOT,
} from './pgtable-core.js';
import {
  LEVEL_PMD,
  LEVEL_PTE,
  LEVEL_PUD,
  PMD_SIZE,
  PMD_THP_TABLE,
  PTE_FLAGS_MASK,
  PTE_HUGE,
  PTE_PRESENT,
  PTRS_PER_TABLE,
  PUD_SIZE,
  tableEntry,
} from './pte.js';

export class PageTableAlloc extends PageTableCore {
  /** This CPU's tables reserved for the running operation (never published until taken). */
  private pool = new Int32Array(8);
  private poolCount = 0;
  /** reserveTables holds the pool for later operations: releasePool keeps it until releaseTables. */
  private held = false;
  /** Keys of tables a plan pass counted as to be created, per level (PUD, PMD, PTE). */
  private readonly planned = new Float64Array(3);

  // --- allocation ----------------------------------------------------------------------------

  /**
   * The PTE table for addr (pte_alloc), allocating the missing PUD, PMD and PTE tables: its handle
   * (the entry's index is pteIndex(addr)), or 0 when a table cannot be allocated (ENOMEM: then no
   * table was added), or -EAGAIN when addr is mapped by a huge PMD entry (the caller re-checks,
   * as Linux's fault path does after pmd_trans_unstable).
   */
  allocPte(addr: number): number {
    const t = this.findPteTable(addr);
    if (t !== 0) return t;
    this.checkAddr(addr);
    return this.allocPath(addr, LEVEL_PTE, 0);
  }

  /**
   * allocPte for a fault that maps a transparent huge page in addr's region as 4 KiB entries: a PTE
   * table created now is linked with PMD_THP_TABLE (the region counts as mapped huge); one that
   * exists already is returned as it is. The same results as allocPte.
   */
  allocThpPte(addr: number): number {
    const t = this.findPteTable(addr);
    if (t !== 0) return t;
    this.checkAddr(addr);
    return this.allocPath(addr, LEVEL_PTE, PMD_THP_TABLE);
  }

  /** The PMD table for addr, allocating missing PUD and PMD tables; 0 on ENOMEM (nothing added). */
  allocPmd(addr: number): number {
    const t = this.findPmdTable(addr);
    if (t !== 0) return t;
    this.checkAddr(addr);
    return this.allocPath(addr, LEVEL_PMD, 0);
  }

  /** allocPte / allocPmd; `pmdBits` go into the PMD entry of a PTE table created. */
  private allocPath(addr: number, level: number, pmdBits: number): number {
    this.planReset();
    const need = this.planPath(addr, level);
    if (need < 0) return -EAGAIN;
    if (!this.reserve(need)) return 0;
    const t = this.ensurePath(addr, level, pmdBits);
    this.releasePool();
    return t === -1 ? -EAGAIN : t;
  }

  /** Forgets what earlier plan passes counted. */
  protected planReset(): void {
    this.planned.fill(-1);
  }

  /**
   * Plan pass: how many tables ensurePath(addr, level) will create, not counting those an earlier
   * planPath of this pass already counted (calls must come in ascending address order); -1 when
   * a PTE table is wanted and addr is mapped huge.
   */
  protected planPath(addr: number, level: number): number {
    const e = this.entries;
    const hi = Math.floor(addr / PUD_SIZE);
    const gi = hi >>> 9;
    let need = 0;
    let x = Atomics.load(e, (this.root << 9) | gi);
    let missing = x === 0;
    if (missing && this.planned[0] !== gi) {
      need++;
      this.planned[0] = gi;
    }
    if (!missing) {
      x = Atomics.load(e, ((x >>> 12) << 9) | (hi & 511));
      missing = x === 0;
    }
    if (missing && this.planned[1] !== hi) {
      need++;
      this.planned[1] = hi;
    }
    if (level !== LEVEL_PTE) return need;
    if (!missing) {
      x = Atomics.load(e, ((x >>> 12) << 9) | ((addr % PUD_SIZE) >>> 21));
      if ((x & PTE_HUGE) !== 0) return -1;
      missing = x === 0;
    }
    const region = Math.floor(addr / PMD_SIZE);
    if (missing && this.planned[2] !== region) {
      need++;
      this.planned[2] = region;
    }
    return need;
  }

  /**
   * The table at `level` (LEVEL_PMD or LEVEL_PTE) for addr, creating missing ones from the pool
   * (or, past it, the arena); 0 when a table cannot be had, -1 when addr is mapped huge. A PTE
   * table created gets `pmdBits` (0 or PMD_THP_TABLE) in its PMD entry.
   */
  protected ensurePath(addr: number, level: number, pmdBits = 0): number {
    const hi = Math.floor(addr / PUD_SIZE);
    let t = this.ensureChild(this.root, hi >>> 9, LEVEL_PUD, 0);
    if (t > 0) t = this.ensureChild(t, hi & 511, LEVEL_PMD, 0);
    if (t > 0 && level === LEVEL_PTE) t = this.ensureChild(t, (addr % PUD_SIZE) >>> 21, LEVEL_PTE, pmdBits);
    return t;
  }

  /** Entry `index` of `parent` as a table (created with `bits` if none), 0 without memory, -1 if huge. */
  private ensureChild(parent: number, index: number, childLevel: number, bits: number): number {
    const e = this.entries;
    const w = (parent << 9) | index;
    let x = Atomics.load(e, w);
    if (x === 0) {
      const h = this.takeTable();
      if (h === 0) return 0;
      this.lockTable(parent);
      x = e[w];
      if (x === 0) {
        Atomics.store(e, w, (tableEntry(h) | bits) >>> 0);
        this.meta[parent * META_WORDS + COUNT]++;
        this.unlockTable(parent);
        Atomics.add(this.header, N_PUD + childLevel - LEVEL_PUD, 1);
        if (bits !== 0) Atomics.add(this.header, N_THP, 1);
        return h;
      }
      // Another CPU installed one meanwhile: use it, keep ours for later or for releasePool.
      this.unlockTable(parent);
      this.putBack(h);
    }
    return (x & PTE_HUGE) !== 0 ? -1 : x >>> 12;
  }

  /**
   * Fills this CPU's pool up to n zeroed tables (a pool held by reserveTables may have them
   * already); false (the pool emptied, unless held) when one cannot be had.
   */
  protected reserve(n: number): boolean {
    if (n > this.pool.length) this.growPool(n);
    while (this.poolCount < n) {
      const h = this.arena.alloc();
      if (h === 0) {
        this.releasePool();
        return false;
      }
      this.pool[this.poolCount++] = h;
    }
    return true;
  }

  /**
   * Allocates n tables into this CPU's pool and holds them there for the operations that follow
   * (PageTableWork: the moves of one syscall, which must not fail once they start): they take
   * their tables from the pool first. 0, or -ENOMEM with nothing held. Preconditions: no tables
   * held already (releaseTables ends the hold).
   */
  reserveTables(n: number): number {
    assert(!this.held && this.poolCount === 0, 'pgtable: reserveTables while tables are held');
    if (!this.reserve(n)) return -ENOMEM;
    this.held = true;
    return 0;
  }

  /** Ends reserveTables' hold: the tables not used go back to the arena (never published). */
  releaseTables(): void {
    this.held = false;
    this.releasePool();
  }

  /** A table from the pool (or a fresh one), its meta reset; 0 without memory. */
  protected takeTable(): number {
    const h = this.poolCount > 0 ? this.pool[--this.poolCount] : this.arena.alloc();
    if (h === 0) return 0;
    const m = h * META_WORDS;
    if (this.meta[m + PTL_STATE] !== 0) throw new VmAssertionError(`pgtable: new table ${h} is locked`);
    this.meta[m + COUNT] = 0;
    this.meta[m + LINK] = 0;
    return h;
  }

  /** Returns an unpublished, untouched table to the pool. */
  private putBack(h: number): void {
    if (this.poolCount === this.pool.length) this.growPool(this.poolCount + 1);
    this.pool[this.poolCount++] = h;
  }

  private growPool(min: number): void {
    const grown = new Int32Array(Math.max(min, this.pool.length * 2));
    grown.set(this.pool.subarray(0, this.poolCount));
    this.pool = grown;
  }

  /** Frees what the pool still holds (unless held): tables never published, no grace period needed. */
  protected releasePool(): void {
    if (this.held) return;
    while (this.poolCount > 0) this.arena.free(this.pool[--this.poolCount]);
  }

  // --- huge PMD entries ------------------------------------------------------------------------

  /**
   * Maps the 2 MiB region of addr with the huge entry `entry` (PTE_PRESENT | PTE_HUGE, pfn a
   * multiple of 512) if its PMD entry is empty: 0, -ENOMEM (tables or the deposit could not be
   * allocated; nothing was added), or -EEXIST (the region has a PTE table or a huge entry).
   */
  installHugePmd(addr: number, entry: number): number {
    this.checkAddr(addr);
    if ((entry & (PTE_PRESENT | PTE_HUGE)) !== (PTE_PRESENT | PTE_HUGE) || (entry >>> 12) % 512 !== 0) {
      throw new VmError(EINVAL, `pgtable: huge entry ${entry}: not present and huge, or pfn not aligned`);
    }
    this.planReset();
    if (!this.reserve(this.planPath(addr, LEVEL_PMD) + 1)) return -ENOMEM;
    const pmd = this.ensurePath(addr, LEVEL_PMD);
    assert(pmd > 0, 'pgtable: reserved tables ran out');
    const deposit = this.takeTable();
    assert(deposit > 0, 'pgtable: the reserved deposit ran out');
    const w = (pmd << 9) | ((addr % PUD_SIZE) >>> 21);
    this.lockTable(pmd);
    if (this.entries[w] !== 0) {
      this.unlockTable(pmd);
      this.putBack(deposit);
      this.releasePool();
      return -EEXIST;
    }
    this.depositTable(pmd, deposit);
    Atomics.store(this.entries, w, entry >>> 0);
    this.meta[pmd * META_WORDS + COUNT]++;
    this.unlockTable(pmd);
    Atomics.add(this.header, N_HUGE, 1);
    this.releasePool();
    return 0;
  }

  /** Clears addr's huge PMD entry; returns it (0 when the region is not mapped huge). */
  clearHugePmd(addr: number): number {
    const pmd = this.findPmdTable(addr);
    if (pmd === 0) return 0;
    const i = (addr % PUD_SIZE) >>> 21;
    this.lockTable(pmd);
    const old = this.entries[(pmd << 9) | i];
    if ((old & PTE_HUGE) === 0) {
      this.unlockTable(pmd);
      return 0;
    }
    const deposit = this.clearHugeLocked(pmd, i);
    this.unlockTable(pmd);
    this.arena.free(deposit);
    return old;
  }

  /**
   * Splits addr's huge PMD entry into a PTE table of 512 entries (__split_huge_pmd) from its
   * deposit, or drops PMD_THP_TABLE from a marked one: never allocates. False when the region is
   * not mapped huge.
   */
  splitHugePmd(addr: number): boolean {
    const pmd = this.findPmdTable(addr);
    if (pmd === 0) return false;
    this.lockTable(pmd);
    const split = this.splitLocked(pmd, (addr % PUD_SIZE) >>> 21);
    this.unlockTable(pmd);
    return split;
  }

  /** Under pmd's PTL: clears huge entry i; returns its deposited table, for the caller to free. */
  protected clearHugeLocked(pmd: number, i: number): number {
    Atomics.store(this.entries, (pmd << 9) | i, 0);
    this.meta[pmd * META_WORDS + COUNT]--;
    Atomics.sub(this.header, N_HUGE, 1);
    return this.withdrawTable(pmd);
  }

  /**
   * Under pmd's PTL: splits entry i if it is huge (the new table is filled, then published) or
   * marked PMD_THP_TABLE (the mark goes; the table and its entries stay). False if neither.
   */
  protected splitLocked(pmd: number, i: number): boolean {
    const e = this.entries;
    const w = (pmd << 9) | i;
    const x = e[w];
    if ((x & PMD_THP_TABLE) !== 0) {
      Atomics.store(e, w, (x & ~PMD_THP_TABLE) >>> 0);
      Atomics.sub(this.header, N_THP, 1);
      return true;
    }
    if ((x & PTE_HUGE) === 0) return false;
    const t = this.withdrawTable(pmd);
    const pfn = x >>> 12;
    const flags = x & PTE_FLAGS_MASK & ~PTE_HUGE;
    const base = t << 9;
    for (let k = 0; k < PTRS_PER_TABLE; k++) e[base + k] = ((pfn + k) << 12) | flags;
    this.meta[t * META_WORDS + COUNT] = PTRS_PER_TABLE;
    Atomics.store(e, w, tableEntry(t));
    Atomics.sub(this.header, N_HUGE, 1);
    Atomics.add(this.header, N_PTE, 1);
    return true;
  }

  /** Under pmd's PTL: one more deposited (unpublished, zeroed) table on pmd's list. */
  protected depositTable(pmd: number, t: number): void {
    this.meta[t * META_WORDS + LINK] = this.meta[pmd * META_WORDS + LINK];
    this.meta[pmd * META_WORDS + LINK] = t;
    Atomics.add(this.header, N_DEPOSITED, 1);
  }

  /** Under pmd's PTL: takes a deposited table off pmd's list. */
  protected withdrawTable(pmd: number): number {
    const t = this.meta[pmd * META_WORDS + LINK];
    if (t === 0) throw new VmAssertionError(`pgtable: PMD table ${pmd} has a huge entry but no deposit`);
    this.meta[pmd * META_WORDS + LINK] = this.meta[t * META_WORDS + LINK];
    this.meta[t * META_WORDS + LINK] = 0;
    Atomics.sub(this.header, N_DEPOSITED, 1);
    return t;
  }

  /**
   * Unlinks child table `child` (entry i of `parent`, at `level`) and frees it after a grace
   * period. It must be empty: a table with entries or deposits left would leak their pages.
   */
  protected detachTable(parent: number, i: number, child: number, level: number): void {
    const m = child * META_WORDS;
    // A PTE table leaves under its own PTL: a lockless fault that found it under RCU may be about
    // to lock it, and re-checks under that lock that the PMD entry still names it (src/mm/
    // spec-fault.ts). Upper tables are never locked by faults.
    const own = level === LEVEL_PTE;
    if (own) this.lockTable(child);
    if (this.meta[m + COUNT] !== 0 || this.meta[m + LINK] !== 0 || (!own && this.meta[m + PTL_STATE] !== 0)) {
      if (own) this.unlockTable(child);
      throw new VmAssertionError(
        `pgtable: freeing table ${child} (level ${level}) with ${this.meta[m + COUNT]} entries, ` +
          `deposit ${this.meta[m + LINK]}, lock ${this.meta[m + PTL_STATE]}`,
      );
    }
    this.lockTable(parent, own ? PTL_NESTED : 0);
    const x = this.entries[(parent << 9) | i];
    assert(x >>> 12 === child && (x & PTE_HUGE) === 0, 'pgtable: detaching a table its parent does not name');
    Atomics.store(this.entries, (parent << 9) | i, 0);
    this.meta[parent * META_WORDS + COUNT]--;
    this.unlockTable(parent);
    if (own) this.unlockTable(child);
    Atomics.sub(this.header, N_PUD + level - LEVEL_PUD, 1);
    if ((x & PMD_THP_TABLE) !== 0) Atomics.sub(this.header, N_THP, 1);
    rcuDeferFree(this.arena, child);
  }

  /**
   * Frees every table (exit_mmap's last step): the root's entries are cleared first, the tables
   * are freed after a grace period, deposits at once. Entries still present are dropped without
   * a word to anyone: zap first. No other operation may run meanwhile or after.
   */
  destroy(): void {
    const root = this.root;
    if (root === 0) return;
    this.root = 0;
    Atomics.store(this.header, ROOT, 0);
    for (let i = 0; i < PTRS_PER_TABLE; i++) {
      const x = this.entries[(root << 9) | i];
      if (x === 0) continue;
      Atomics.store(this.entries, (root << 9) | i, 0);
      this.freeBelow(x >>> 12, LEVEL_PUD);
    }
    for (let w = N_PUD; w <= N_THP; w++) Atomics.store(this.header, w, 0);
    rcuDeferFree(this.arena, root);
  }

  private freeBelow(t: number, level: number): void {
    if (level !== LEVEL_PTE) {
      for (let i = 0; i < PTRS_PER_TABLE; i++) {
        const x = this.entries[(t << 9) | i];
        if (x !== 0 && (x & PTE_HUGE) === 0) this.freeBelow(x >>> 12, level + 1);
      }
    }
    for (let d = this.meta[t * META_WORDS + LINK]; d !== 0; ) {
      const next = this.meta[d * META_WORDS + LINK];
      this.meta[d * META_WORDS + LINK] = 0;
      this.arena.free(d);
      d = next;
    }
    this.meta[t * META_WORDS + LINK] = 0;
    this.meta[t * META_WORDS + COUNT] = 0;
    rcuDeferFree(this.arena, t);
  }
}
