/**
 * Random operations on PageTables against the plain model (pgtable-model.ts), the way the mm
 * layer will drive them: VMAs come and go; faults map pages and huge pages inside VMAs; munmap
 * zaps and frees page tables with free_pgtables' floor and ceiling (the neighbouring VMAs);
 * mprotect and fork change protections; THP splits; mremap moves entries and unmaps the old
 * range; faults that map a THP as 4 KiB entries mark their PTE table (PMD_THP_TABLE), which zaps,
 * protections, splits and moves treat like a huge entry. After every operation every walk,
 * forEachPresent, the PMD-level picture (none, table, THP-marked table, huge), the PUD/PMD tables,
 * the counters and
 * validate() must agree with the model. Allocation failures are injected at random: a failed
 * operation changes nothing and leaks nothing. Seeded: PGTABLE_SEED=n reproduces one run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EEXIST, ENOMEM } from '../../src/errno.js';
import { PageTables } from '../../src/mem/pgtable.js';
import {
  makePte,
  PAGE_SIZE,
  PGDIR_SIZE,
  PMD_SIZE,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_SOFT_DIRTY,
  PTE_USER,
  PTE_WRITE,
  PUD_SIZE,
  pteIndex,
  USER_ADDR_LIMIT,
} from '../../src/mem/pte.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { prng } from '../maple/model.js';
import { assertAgrees, PgtModel, PMD_NONE, THP_TABLE } from './pgtable-model.js';

/** Clusters of address space the VMAs live in: at level boundaries so that every level is shared and freed. */
const BASES = [
  0,
  PUD_SIZE - 12 * PMD_SIZE,
  5 * PUD_SIZE,
  PGDIR_SIZE - 10 * PMD_SIZE,
  PGDIR_SIZE + 3 * PUD_SIZE - 6 * PMD_SIZE,
  200 * PGDIR_SIZE,
];
const WINDOW = 20 * PMD_SIZE;
const FLAGS = [PTE_WRITE, PTE_USER, PTE_ACCESSED, PTE_DIRTY, PTE_SOFT_DIRTY];

interface Vma {
  start: number;
  end: number;
}

class Run {
  readonly injector = new FailureInjector();
  readonly pt = PageTables.create({ injector: this.injector, capacity: 4096 });
  readonly model = new PgtModel();
  vmas: Vma[] = [];
  readonly log: string[] = [];
  /** PUD, PMD and PTE tables freed (for PGTABLE_VERBOSE). */
  readonly freed = [0, 0, 0];
  private readonly random: () => number;

  constructor(readonly seed: number) {
    this.random = prng(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: T[]): T {
    return items[this.int(items.length)];
  }

  flags(): number {
    let f = 0;
    for (const bit of FLAGS) if (this.random() < 0.5) f |= bit;
    return f;
  }

  free(start: number, end: number): boolean {
    return start >= 0 && end <= USER_ADDR_LIMIT && this.vmas.every((v) => v.end <= start || v.start >= end);
  }

  addVma(start: number, end: number): void {
    this.vmas.push({ start, end });
    this.vmas.sort((a, b) => a.start - b.start);
  }

  /** Removes [start, end) from the VMAs (splitting them); returns floor and ceiling around it. */
  removeRange(start: number, end: number): [number, number] {
    const kept: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= start || v.start >= end) kept.push(v);
      else {
        if (v.start < start) kept.push({ start: v.start, end: start });
        if (v.end > end) kept.push({ start: end, end: v.end });
      }
    }
    this.vmas = kept;
    let floor = 0;
    let ceiling = 0;
    for (const v of kept) {
      if (v.end <= start) floor = Math.max(floor, v.end);
      if (v.start >= end && (ceiling === 0 || v.start < ceiling)) ceiling = v.start;
    }
    return [floor, ceiling];
  }

  /** Maybe arms a failure among the next few allocations; returns whether it did. */
  arm(): boolean {
    if (this.random() >= 0.25) return false;
    this.injector.failAfter(this.int(4));
    return true;
  }

  /** After an operation that may have had an allocation fail: was it this one? */
  failed(got: number, failure: number, before: number, what: string): boolean {
    const injected = this.injector.injected > 0;
    this.injector.disarm();
    if (!injected) return false;
    assert.equal(got, failure, `${what}: an allocation failed`);
    assert.equal(this.pt.live, before, `${what}: failed, tables leaked`);
    assertAgrees(this.pt, this.model, `${what} (failed)`);
    this.log.push(`${what}: ENOMEM`);
    return true;
  }

  mmap(): void {
    const base = this.pick(BASES);
    const start = base + this.int(WINDOW / PAGE_SIZE) * PAGE_SIZE;
    const len = (1 + (this.random() < 0.3 ? this.int(4 * 512) : this.int(64))) * PAGE_SIZE;
    if (!this.free(start, start + len)) return;
    this.addVma(start, start + len);
    this.log.push(`mmap [${start}, +${len})`);
  }

  fault(): void {
    if (this.vmas.length === 0) return;
    const v = this.pick(this.vmas);
    const pages = (v.end - v.start) / PAGE_SIZE;
    const run = this.random() < 0.3;
    const first = this.int(pages);
    const n = run ? Math.min(pages - first, 1 + this.int(600)) : 1 + this.int(12);
    for (let k = 0; k < n; k++) {
      const addr = v.start + (run ? first + k : this.int(pages)) * PAGE_SIZE;
      if (this.model.huges.has(addr - (addr % PMD_SIZE))) continue;
      const armed = this.arm();
      const before = this.pt.live;
      const t = this.pt.allocPte(addr);
      if (armed && this.failed(t, 0, before, `allocPte(${addr})`)) continue;
      this.injector.disarm();
      assert.ok(t > 0, `allocPte(${addr}) = ${t}`);
      const entry = makePte(1 + this.int(2 ** 20 - 1), this.flags());
      this.pt.setPte(t, pteIndex(addr), entry);
      this.model.setPte(addr, entry);
    }
    this.log.push(`fault ${n} pages in [${v.start}, ${v.end})`);
  }

  hugeFault(): void {
    const whole = this.vmas.filter((v) => Math.ceil(v.start / PMD_SIZE) * PMD_SIZE + PMD_SIZE <= v.end);
    if (whole.length === 0) return;
    const v = this.pick(whole);
    const first = Math.ceil(v.start / PMD_SIZE);
    const last = Math.floor(v.end / PMD_SIZE) - 1;
    const r = (first + this.int(last - first + 1)) * PMD_SIZE;
    const entry = makePte(512 * (1 + this.int(2047)), this.flags() | PTE_HUGE);
    const armed = this.arm();
    const before = this.pt.live;
    const got = this.pt.installHugePmd(r, entry);
    if (armed && this.failed(got, -ENOMEM, before, `installHugePmd(${r})`)) return;
    this.injector.disarm();
    if (this.model.pmd.at(r) !== PMD_NONE) {
      assert.equal(got, -EEXIST, `installHugePmd(${r}) over an entry`);
      return;
    }
    assert.equal(got, 0);
    this.model.installHuge(r, entry);
    this.log.push(`huge ${r}`);
  }

  /** A fault mapping a THP as 4 KiB entries: allocThpPte marks a new table, then a few entries. */
  thpFault(): void {
    const whole = this.vmas.filter((v) => Math.ceil(v.start / PMD_SIZE) * PMD_SIZE + PMD_SIZE <= v.end);
    if (whole.length === 0) return;
    const v = this.pick(whole);
    const first = Math.ceil(v.start / PMD_SIZE);
    const r = (first + this.int(Math.floor(v.end / PMD_SIZE) - first)) * PMD_SIZE;
    if (this.model.huges.has(r)) return;
    const armed = this.arm();
    const before = this.pt.live;
    const had = this.model.pmd.at(r);
    const t = this.pt.allocThpPte(r + this.int(512) * PAGE_SIZE);
    if (armed && this.failed(t, 0, before, `allocThpPte(${r})`)) return;
    this.injector.disarm();
    assert.ok(t > 0, `allocThpPte(${r}) = ${t}`);
    if (had !== PMD_NONE)
      assert.equal(this.pt.live, before, 'allocThpPte of a present table allocates nothing');
    this.model.thpTable(r);
    for (let k = this.int(4); k > 0; k--) {
      const addr = r + this.int(512) * PAGE_SIZE;
      const entry = makePte(1 + this.int(2 ** 20 - 1), this.flags());
      this.pt.setPte(t, pteIndex(addr), entry);
      this.model.setPte(addr, entry);
    }
    this.log.push(`thp ${r}${had !== PMD_NONE ? ' (had an entry)' : ''}`);
  }

  split(): void {
    const picture = this.model.pmdPicture();
    const huges = [
      ...this.model.huges.keys(),
      ...[...picture.keys()].filter((r) => picture.get(r) === THP_TABLE),
    ];
    if (huges.length === 0) return;
    const r = this.pick(huges);
    assert.equal(this.pt.splitHugePmd(r + this.int(512) * PAGE_SIZE), true);
    this.model.split(r);
    this.log.push(`split ${r}`);
  }

  /** munmap: all of a VMA, or a part (a page-aligned piece, often cutting a huge entry). */
  munmap(): void {
    if (this.vmas.length === 0) return;
    const v = this.pick(this.vmas);
    let start = v.start;
    let end = v.end;
    if (this.random() < 0.5) {
      const pages = (v.end - v.start) / PAGE_SIZE;
      const a = this.int(pages);
      start = v.start + a * PAGE_SIZE;
      end = start + (1 + this.int(pages - a)) * PAGE_SIZE;
    }
    this.unmap(start, end, `munmap [${start}, ${end})`);
  }

  /** MADV_DONTNEED: a zap whose VMA stays (no free_pgtables): a THP region covered whole goes. */
  dontneed(): void {
    if (this.vmas.length === 0) return;
    const v = this.pick(this.vmas);
    const pages = (v.end - v.start) / PAGE_SIZE;
    const a = this.int(pages);
    let start = v.start + a * PAGE_SIZE;
    let end = this.random() < 0.5 ? v.end : start + (1 + this.int(pages - a)) * PAGE_SIZE;
    const thp = this.model.pmd
      .regionsIn(0, USER_ADDR_LIMIT)
      .filter((r) => this.model.pmd.at(r) === THP_TABLE);
    if (thp.length > 0 && this.random() < 0.5) {
      // Often exactly a THP region, or a range cutting one.
      const r = this.pick(thp);
      start = r + (this.random() < 0.5 ? 0 : this.int(512) * PAGE_SIZE);
      end = Math.max(start + PAGE_SIZE, r + PMD_SIZE - (this.random() < 0.5 ? 0 : this.int(512) * PAGE_SIZE));
    }
    const seen: number[][] = [];
    const n = this.pt.zapRange(start, end, (pfn, entry) => seen.push([pfn, entry]));
    seen.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    assert.deepEqual(seen, this.model.zap(start, end), `dontneed [${start}, ${end}): zapped`);
    assert.equal(n, seen.length);
    this.log.push(`dontneed [${start}, ${end})`);
  }

  unmap(start: number, end: number, what: string): void {
    const [floor, ceiling] = this.removeRange(start, end);
    const seen: number[][] = [];
    const n = this.pt.zapRange(start, end, (pfn, entry) => seen.push([pfn, entry]));
    seen.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    assert.deepEqual(seen, this.model.zap(start, end), `${what}: zapped`);
    assert.equal(n, seen.length);
    const before = this.pt.stats();
    this.pt.freePgtables(start, end, floor, ceiling);
    this.model.freePgtables(start, end, floor, ceiling);
    const after = this.pt.stats();
    this.freed[0] += before.pud - after.pud;
    this.freed[1] += before.pmd - after.pmd;
    this.freed[2] += before.pte - after.pte;
    this.log.push(`${what} floor ${floor} ceiling ${ceiling}`);
  }

  protect(): void {
    const base = this.pick(BASES);
    const start = base + this.int(WINDOW / PAGE_SIZE) * PAGE_SIZE;
    const end = Math.min(start + (1 + this.int(3 * 512)) * PAGE_SIZE, USER_ADDR_LIMIT);
    const set = this.random() < 0.5 ? 0 : this.pick(FLAGS);
    const clear = this.random() < 0.3 ? 0 : this.pick(FLAGS);
    const n = this.pt.changeProtection(start, end, set, clear & ~set);
    assert.equal(n, this.model.changeProtection(start, end, set, clear & ~set), `protect [${start}, ${end})`);
    this.log.push(`protect [${start}, ${end}) +${set} -${clear & ~set}`);
  }

  /** mremap: moves a VMA (or its part) to a free place, keeping the 2 MiB offset half the time. */
  mremap(): void {
    if (this.vmas.length === 0) return;
    const v = this.pick(this.vmas);
    let start = v.start;
    let len = v.end - v.start;
    if (this.random() < 0.3) {
      const pages = len / PAGE_SIZE;
      const a = this.int(pages);
      start += a * PAGE_SIZE;
      len = (1 + this.int(pages - a)) * PAGE_SIZE;
    }
    let dest = this.pick(BASES) + this.int(WINDOW / PAGE_SIZE) * PAGE_SIZE;
    if (this.random() < 0.5) dest = dest - (dest % PMD_SIZE) + (start % PMD_SIZE);
    if (!this.free(dest, dest + len) || (dest < start + len && start < dest + len)) return;
    const armed = this.arm();
    const before = this.pt.live;
    const got = this.pt.movePtes(start, dest, len);
    const what = `mremap [${start}, +${len}) -> ${dest}`;
    if (armed && this.failed(got, -ENOMEM, before, what)) return;
    this.injector.disarm();
    assert.equal(got, 0, what);
    this.model.move(start, dest, len);
    this.addVma(dest, dest + len);
    this.log.push(what);
    this.unmap(start, start + len, `${what}: unmap the old range`);
  }

  step(): void {
    const op = this.random();
    if (op < 0.2) this.mmap();
    else if (op < 0.45) this.fault();
    else if (op < 0.5) this.hugeFault();
    else if (op < 0.55) this.thpFault();
    else if (op < 0.6) this.split();
    else if (op < 0.7) this.munmap();
    else if (op < 0.75) this.dontneed();
    else if (op < 0.85) this.protect();
    else this.mremap();
  }
}

function runSeed(seed: number, steps: number): void {
  const run = new Run(seed);
  try {
    for (let i = 0; i < steps; i++) {
      run.step();
      assertAgrees(run.pt, run.model, `step ${i}`);
      if (i % 50 === 49) {
        rcuBarrier();
        assert.equal(run.pt.live, run.pt.countTables() + run.pt.stats().deposited, `step ${i}: live tables`);
      }
    }
    if (process.env.PGTABLE_VERBOSE) {
      const kinds = new Map<string, number>();
      for (const l of run.log) {
        const k = l.includes('ENOMEM') ? `${l.split(/[ (]/)[0]} ENOMEM` : l.split(/[ (]/)[0];
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
      console.log(`seed ${seed}`, Object.fromEntries(kinds), 'freed pud/pmd/pte', run.freed, run.pt.stats());
    }
    for (const v of [...run.vmas]) run.unmap(v.start, v.end, `final munmap [${v.start}, ${v.end})`);
    assertAgrees(run.pt, run.model, 'all unmapped');
    assert.equal(run.pt.countTables(), 1, 'only the PGD is left once every VMA is gone');
    run.pt.destroy();
    rcuBarrier();
    assert.equal(run.pt.live, 0, 'tables leaked');
  } catch (error) {
    (error as Error).message =
      `seed ${seed}: ${(error as Error).message}\n  last steps: ${run.log.slice(-8).join('\n    ')}`;
    throw error;
  }
}

test('random mm-shaped operations agree with the model (PMD picture included) after every step; injected ENOMEM changes nothing', () => {
  const given = process.env.PGTABLE_SEED;
  const seeds = given !== undefined ? [Number(given)] : [1, 2, 3, 4, 5, 6, Date.now() % 100_000];
  for (const seed of seeds) runSeed(seed, 400);
});
