/**
 * A plain model of one address space's page tables, for the model-based tests: the leaf entries
 * (a Map addr -> entry for 4 KiB pages, another region -> entry for huge mappings), the PMD-level
 * picture (`PmdPicture`: per 2 MiB region none, a PTE table, a PTE table marked as mapping a THP,
 * or a huge entry; the per-region state the mm layer kept beside the page tables before they took
 * it over, with its zap and free_pgd_range written independently of pgtable.ts), and which PUD and
 * PMD tables exist, freed by free_pgd_range's rules written as a filter over the tables (not as a
 * walk, as pgtable.ts does).
 *
 * `shapeOf(pt)` reads the same pictures off a real PageTables (by walking its entries directly),
 * and `assertAgrees` compares everything: walks, forEachPresent, shapes, counters, validate().
 */
import assert from 'node:assert/strict';
import type { PageTables } from '../../src/mem/pgtable.js';
import {
  HUGE_PAGES,
  hugeSubpage,
  PAGE_SIZE,
  PGDIR_SIZE,
  PMD_SIZE,
  PMD_THP_TABLE,
  PTE_HUGE,
  PUD_SIZE,
  USER_ADDR_LIMIT,
} from '../../src/mem/pte.js';

/** States of a 2 MiB region's PMD entry. */
export const PMD_NONE = 0;
export const PTE_TABLE = 1;
export const HUGE = 2;
/** A PTE table whose PMD entry has PMD_THP_TABLE. */
export const THP_TABLE = 3;
export const PMD_STATE_NAMES = ['none', 'table', 'huge', 'thp'];

/** The PMD-level picture: region start -> state (absent: PMD_NONE). */
export class PmdPicture {
  private readonly states = new Map<number, number>();

  at(addr: number): number {
    return this.states.get(addr - (addr % PMD_SIZE)) ?? PMD_NONE;
  }

  set(addr: number, state: number): void {
    const r = addr - (addr % PMD_SIZE);
    if (state === PMD_NONE) this.states.delete(r);
    else this.states.set(r, state);
  }

  /** Regions meeting [start, end) with an entry, ascending. */
  regionsIn(start: number, end: number): number[] {
    return [...this.states.keys()].filter((r) => r < end && r + PMD_SIZE > start).sort((a, b) => a - b);
  }

  /** zap: a huge or THP region covered whole loses its entry, one covered in part becomes a table. */
  zap(start: number, end: number): void {
    for (const r of this.regionsIn(start, end)) {
      const s = this.at(r);
      if (s !== HUGE && s !== THP_TABLE) continue;
      this.set(r, start <= r && r + PMD_SIZE <= end ? PMD_NONE : PTE_TABLE);
    }
  }

  /** free_pgd_range at the PMD level: the regions no VMA outside [floor, ceiling) can share. */
  freeRange(addr: number, end: number, floor: number, ceiling: number): void {
    addr -= addr % PMD_SIZE;
    if (addr < floor) addr += PMD_SIZE;
    if (ceiling !== 0) {
      ceiling -= ceiling % PMD_SIZE;
      if (ceiling === 0) return;
      if (end - 1 > ceiling - 1) end -= PMD_SIZE;
    }
    if (addr > end - 1) return;
    for (const r of this.regionsIn(addr, end)) this.set(r, PMD_NONE);
  }
}

export class PgtModel {
  readonly ptes = new Map<number, number>();
  readonly huges = new Map<number, number>();
  readonly pmd = new PmdPicture();
  /** PGD indices with a PUD table; 1 GiB region numbers with a PMD table. */
  readonly puds = new Set<number>();
  readonly pmds = new Set<number>();

  /** The tables a new entry in region r (a region start) needs. */
  private touch(r: number): void {
    this.puds.add(Math.floor(r / PGDIR_SIZE));
    this.pmds.add(Math.floor(r / PUD_SIZE));
  }

  setPte(addr: number, entry: number): void {
    const r = addr - (addr % PMD_SIZE);
    assert.ok(!this.huges.has(r));
    this.ptes.set(addr, entry);
    if (this.pmd.at(r) === PMD_NONE) this.pmd.set(r, PTE_TABLE);
    this.touch(r);
  }

  installHuge(r: number, entry: number): void {
    assert.equal(this.pmd.at(r), PMD_NONE);
    this.huges.set(r, entry);
    this.pmd.set(r, HUGE);
    this.touch(r);
  }

  /** allocThpPte in region r: a new table is marked; an existing entry stays as it is. */
  thpTable(r: number): void {
    if (this.pmd.at(r) === PMD_NONE) this.pmd.set(r, THP_TABLE);
    this.touch(r);
  }

  split(r: number): void {
    if (this.pmd.at(r) === THP_TABLE) this.pmd.set(r, PTE_TABLE);
    const huge = this.huges.get(r);
    if (huge === undefined) return;
    this.huges.delete(r);
    for (let k = 0; k < HUGE_PAGES; k++)
      this.ptes.set(r + k * PAGE_SIZE, hugeSubpage(huge, r + k * PAGE_SIZE));
    this.pmd.set(r, PTE_TABLE);
  }

  /** Splits the huge entries and THP tables [start, end) covers in part. */
  private splitPartial(start: number, end: number): void {
    for (const r of this.pmd.regionsIn(start, end)) {
      if (!(start <= r && r + PMD_SIZE <= end)) this.split(r);
    }
  }

  /** zapRange: the entries cleared, as [pfn, entry] pairs sorted. */
  zap(start: number, end: number): number[][] {
    this.splitPartial(start, end);
    const gone: number[][] = [];
    for (const [r, e] of this.huges) {
      if (start <= r && r + PMD_SIZE <= end) {
        gone.push([e >>> 12, e]);
        this.huges.delete(r);
      }
    }
    for (const [a, e] of this.ptes) {
      if (a >= start && a < end) {
        gone.push([e >>> 12, e]);
        this.ptes.delete(a);
      }
    }
    this.pmd.zap(start, end);
    return gone.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  }

  changeProtection(start: number, end: number, set: number, clear: number): number {
    this.splitPartial(start, end);
    let n = 0;
    for (const map of [this.huges, this.ptes]) {
      for (const [a, e] of map) {
        if (a < start || a >= end) continue;
        const y = ((e | set) & ~clear) >>> 0;
        if (y !== e) n++;
        map.set(a, y);
      }
    }
    return n;
  }

  /** free_pgd_range at the PMD level (PmdPicture) and, as a filter, for PMD and PUD tables. */
  freePgtables(start: number, end: number, floor: number, ceiling: number): void {
    this.pmd.freeRange(start, end, floor, ceiling);
    let a = start - (start % PMD_SIZE);
    if (a < floor) a += PMD_SIZE;
    let e = end;
    if (ceiling !== 0) {
      const c = ceiling - (ceiling % PMD_SIZE);
      if (c === 0) return;
      if (e - 1 > c - 1) e -= PMD_SIZE;
    }
    if (a > e - 1) return;
    const freed = (s: number, span: number): boolean => {
      if (!(s + span > a && s < e && s >= floor)) return false;
      if (ceiling === 0) return true;
      const c = ceiling - (ceiling % span);
      return c !== 0 && Math.min(s + span, e) <= c;
    };
    for (const hi of [...this.pmds]) if (freed(hi * PUD_SIZE, PUD_SIZE)) this.pmds.delete(hi);
    for (const g of [...this.puds]) if (freed(g * PGDIR_SIZE, PGDIR_SIZE)) this.puds.delete(g);
  }

  /**
   * movePtes, plus the entries: a region moved whole to an aligned empty place keeps its entry
   * (huge, THP-marked or a table); otherwise huge entries and THP marks split.
   */
  move(oldStart: number, newStart: number, len: number): void {
    const delta = newStart - oldStart;
    const end = oldStart + len;
    for (const r of this.pmd.regionsIn(oldStart, end)) {
      const from = Math.max(r, oldStart);
      const to = Math.min(r + PMD_SIZE, end);
      const state = this.pmd.at(r);
      if (
        from === r &&
        to === r + PMD_SIZE &&
        delta % PMD_SIZE === 0 &&
        this.pmd.at(r + delta) === PMD_NONE
      ) {
        this.pmd.set(r + delta, state);
        this.pmd.set(r, PMD_NONE);
        this.touch(r + delta);
        const huge = this.huges.get(r);
        if (huge !== undefined) {
          this.huges.delete(r);
          this.huges.set(r + delta, huge);
        }
      } else {
        if (state === HUGE || state === THP_TABLE) this.split(r);
        for (let d = from + delta; d < to + delta; d = Math.floor(d / PMD_SIZE) * PMD_SIZE + PMD_SIZE) {
          if (this.pmd.at(d) === PMD_NONE) this.pmd.set(d, PTE_TABLE);
          this.touch(d);
        }
      }
      for (let a = from; a < to; a += PAGE_SIZE) {
        const e = this.ptes.get(a);
        if (e === undefined) continue;
        this.ptes.delete(a);
        assert.ok(!this.ptes.has(a + delta), `model: move onto an entry at ${a + delta}`);
        this.ptes.set(a + delta, e);
      }
    }
    // Entries moved later must not be moved again: the loop above moves each source page once,
    // since source and destination do not overlap.
  }

  /** Regions (start addresses) with a PMD entry, with their state. */
  pmdPicture(): Map<number, number> {
    const out = new Map<number, number>();
    for (const r of this.pmd.regionsIn(0, USER_ADDR_LIMIT)) out.set(r, this.pmd.at(r));
    return out;
  }

  /** Tables the model says exist, the PGD included. */
  tables(): number {
    let ptes = 0;
    for (const s of this.pmdPicture().values()) if (s === PTE_TABLE || s === THP_TABLE) ptes++;
    return 1 + this.puds.size + this.pmds.size + ptes;
  }
}

export interface Shape {
  puds: Set<number>;
  pmds: Set<number>;
  /** Region start -> PTE_TABLE, THP_TABLE or HUGE. */
  regions: Map<number, number>;
}

/** The tables and PMD entries of a real PageTables, read off its entries directly. */
export function shapeOf(pt: PageTables): Shape {
  const shape: Shape = { puds: new Set(), pmds: new Set(), regions: new Map() };
  const e = pt.entries;
  const root = pt.rootTable;
  for (let g = 0; g < 512; g++) {
    const x = e[(root << 9) | g];
    if (x === 0) continue;
    shape.puds.add(g);
    for (let u = 0; u < 512; u++) {
      const y = e[((x >>> 12) << 9) | u];
      if (y === 0) continue;
      const hi = g * 512 + u;
      shape.pmds.add(hi);
      for (let m = 0; m < 512; m++) {
        const z = e[((y >>> 12) << 9) | m];
        if (z === 0) continue;
        const state = (z & PTE_HUGE) !== 0 ? HUGE : (z & PMD_THP_TABLE) !== 0 ? THP_TABLE : PTE_TABLE;
        shape.regions.set(hi * PUD_SIZE + m * PMD_SIZE, state);
      }
    }
  }
  return shape;
}

function sorted(s: Iterable<number>): number[] {
  return [...s].sort((a, b) => a - b);
}

/** Everything a PageTables shows agrees with the model. */
export function assertAgrees(pt: PageTables, model: PgtModel, what: string): void {
  const problem = pt.validate();
  assert.equal(problem, undefined, `${what}: validate: ${problem}`);
  const shape = shapeOf(pt);
  const picture = model.pmdPicture();
  const show = (m: Map<number, number>) =>
    sorted(m.keys()).map((r) => `${r / PMD_SIZE}:${PMD_STATE_NAMES[m.get(r)!]}`);
  assert.deepEqual(show(shape.regions), show(picture), `${what}: PMD entries vs the model's picture`);
  assert.deepEqual(sorted(shape.pmds), sorted(model.pmds), `${what}: PMD tables`);
  assert.deepEqual(sorted(shape.puds), sorted(model.puds), `${what}: PUD tables`);
  assert.equal(pt.countTables(), model.tables(), `${what}: countTables`);
  assert.equal(pt.stats().tables, model.tables(), `${what}: stats().tables`);
  assert.equal(pt.stats().huge, model.huges.size, `${what}: huge entries`);
  assert.equal(pt.stats().deposited, model.huges.size, `${what}: deposited tables`);
  const thp = [...picture.values()].filter((s) => s === THP_TABLE).length;
  assert.equal(pt.stats().thp, thp, `${what}: THP-marked PMD entries`);
  assert.equal(pt.thpRegions, thp + model.huges.size, `${what}: thpRegions`);
  const seen: number[][] = [];
  pt.forEachPresent(0, USER_ADDR_LIMIT, (addr, entry) => {
    seen.push([addr, entry]);
  });
  const want = [...model.ptes, ...model.huges].sort((x, y) => x[0] - y[0]);
  assert.deepEqual(seen, want, `${what}: forEachPresent`);
  for (const [a, entry] of model.ptes) {
    assert.equal(pt.lookupPte(a), entry, `${what}: lookupPte(${a})`);
    assert.equal(pt.lookupPte(a + PAGE_SIZE - 1), entry, `${what}: lookupPte(${a} + 4095)`);
  }
  for (const [r, entry] of model.huges) {
    assert.equal(pt.lookupPte(r + 5 * PAGE_SIZE), entry, `${what}: lookupPte of huge ${r}`);
  }
}
