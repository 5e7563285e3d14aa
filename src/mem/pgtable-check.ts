/**
 * Whole-tree checks of a page-table radix (tests, debug mode, leak checks): walks every table, so
 * call them while nothing changes the tree.
 */
import { COUNT, LINK, META_WORDS, type PageTableCore, PTL_STATE } from './pgtable-core.js';
import {
  LEVEL_PMD,
  LEVEL_PTE,
  PMD_THP_TABLE,
  PTE_HUGE,
  PTE_PRESENT,
  PTRS_PER_TABLE,
  TABLE_FLAGS,
} from './pte.js';

/** Tables reachable from the root, the root included. */
export function countPageTables(pt: PageTableCore): number {
  return pt.rootTable === 0 ? 0 : countBelow(pt, pt.rootTable, 0);
}

function countBelow(pt: PageTableCore, t: number, level: number): number {
  let n = 1;
  if (level === LEVEL_PTE) return n;
  for (let i = 0; i < PTRS_PER_TABLE; i++) {
    const x = Atomics.load(pt.entries, (t << 9) | i);
    if (x !== 0 && (x & PTE_HUGE) === 0) n += countBelow(pt, x >>> 12, level + 1);
  }
  return n;
}

interface Found {
  seen: Set<number>;
  /** Tables per level. */
  levels: number[];
  huge: number;
  deposited: number;
  thp: number;
}

/**
 * Every invariant of the tree: each reachable table is live and reached once, unlocked, its COUNT
 * matches its entries; entries are 0 or present; an upper entry naming a table has exactly
 * TABLE_FLAGS (and, at the PMD level only, possibly PMD_THP_TABLE); huge entries only at the PMD
 * level with aligned frames, one deposited table each (live, empty, reached once); the header's
 * counters match.
 * Returns a description of the first problem, or undefined (debugAssert-shaped).
 */
export function checkPageTables(pt: PageTableCore): string | undefined {
  const s = pt.stats();
  if (pt.rootTable === 0) return s.tables === 0 ? undefined : 'destroyed, but counters left';
  const found: Found = { seen: new Set(), levels: [0, 0, 0, 0], huge: 0, deposited: 0, thp: 0 };
  const problem = checkTable(pt, pt.rootTable, 0, found);
  if (problem !== undefined) return problem;
  const [, pud, pmd, pte] = found.levels;
  if (s.pud !== pud || s.pmd !== pmd || s.pte !== pte) {
    return `counters pud/pmd/pte ${s.pud}/${s.pmd}/${s.pte}, the tree has ${pud}/${pmd}/${pte}`;
  }
  if (s.huge !== found.huge || s.deposited !== found.deposited) {
    return `counters huge/deposited ${s.huge}/${s.deposited}, the tree has ${found.huge}/${found.deposited}`;
  }
  if (s.thp !== found.thp) return `counter thp ${s.thp}, the tree has ${found.thp} marked PMD entries`;
  return undefined;
}

function checkTable(pt: PageTableCore, t: number, level: number, found: Found): string | undefined {
  const { entries, meta } = pt;
  if (!pt.arena.isLive(t)) return `table ${t} (level ${level}) is not live`;
  if (found.seen.has(t)) return `table ${t} reached twice`;
  found.seen.add(t);
  found.levels[level]++;
  const m = t * META_WORDS;
  if (meta[m + PTL_STATE] !== 0) return `table ${t} is locked`;
  let used = 0;
  let huge = 0;
  for (let i = 0; i < PTRS_PER_TABLE; i++) {
    const x = entries[(t << 9) | i];
    if (x === 0) continue;
    used++;
    if ((x & PTE_PRESENT) === 0) return `table ${t} entry ${i} = ${x} is not present`;
    if ((x & PTE_HUGE) !== 0) {
      if (level !== LEVEL_PMD) return `table ${t} (level ${level}) entry ${i} is huge`;
      if ((x >>> 12) % 512 !== 0) return `huge entry ${x} of table ${t} has an unaligned pfn`;
      huge++;
      continue;
    }
    if (level === LEVEL_PTE) continue;
    const bits = x & 0xfff & ~PMD_THP_TABLE;
    if (bits !== TABLE_FLAGS || ((x & PMD_THP_TABLE) !== 0 && level !== LEVEL_PMD)) {
      return `table ${t} (level ${level}) entry ${i} = ${x} is not a table entry`;
    }
    if ((x & PMD_THP_TABLE) !== 0) found.thp++;
    const problem = checkTable(pt, x >>> 12, level + 1, found);
    if (problem !== undefined) return problem;
  }
  if (meta[m + COUNT] !== used) return `table ${t} counts ${meta[m + COUNT]} entries, has ${used}`;
  let deposits = 0;
  for (let d = meta[m + LINK]; d !== 0; d = meta[d * META_WORDS + LINK]) {
    if (level !== LEVEL_PMD) return `table ${t} (level ${level}) has deposits`;
    if (!pt.arena.isLive(d) || found.seen.has(d))
      return `deposit ${d} of table ${t}: not live, or reached twice`;
    found.seen.add(d);
    for (let i = 0; i < PTRS_PER_TABLE; i++) {
      if (entries[(d << 9) | i] !== 0) return `deposit ${d} of table ${t} is not empty`;
    }
    deposits++;
  }
  if (deposits !== huge) return `PMD table ${t} has ${huge} huge entries and ${deposits} deposits`;
  found.huge += huge;
  found.deposited += deposits;
  return undefined;
}
