/**
 * PageTables (src/mem/pgtable.ts) on one CPU: walks, single entries, huge entries and their
 * deposits, each range operation on hand-picked cases (free_pgtables' floor and ceiling at every
 * level), ENOMEM injected at every table allocation of allocPte, installHugePmd and movePtes
 * (nothing changes, nothing leaks), and the leak check after destroy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EAGAIN, EEXIST, ENOMEM } from '../../src/errno.js';
import { PageTables } from '../../src/mem/pgtable.js';
import {
  hugeSubpage,
  makePte,
  PAGE_SIZE,
  PGDIR_SIZE,
  PMD_SIZE,
  PTE_ACCESSED,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_USER,
  PTE_WRITE,
  PUD_SIZE,
  pteIndex,
  USER_ADDR_LIMIT,
} from '../../src/mem/pte.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { assertAgrees, PgtModel } from './pgtable-model.js';

const RW = PTE_USER | PTE_WRITE;

function map(pt: PageTables, model: PgtModel | null, addr: number, pfn: number, flags = RW): number {
  const t = pt.allocPte(addr);
  assert.ok(t > 0, `allocPte(${addr}) = ${t}`);
  const entry = makePte(pfn, flags);
  assert.equal(pt.setPte(t, pteIndex(addr), entry), 0);
  model?.setPte(addr, entry);
  return entry;
}

/** Destroys and checks that every table came back. */
function finish(pt: PageTables): void {
  pt.destroy();
  rcuBarrier();
  assert.equal(pt.live, 0, 'tables leaked');
  assert.equal(pt.validate(), undefined);
}

test('a new PageTables has a PGD only; walks of empty and out-of-range addresses give 0', () => {
  const pt = PageTables.create();
  assert.equal(pt.countTables(), 1);
  assert.equal(pt.live, 1);
  assert.deepEqual(pt.stats(), { tables: 1, pud: 0, pmd: 0, pte: 0, huge: 0, deposited: 0, thp: 0, live: 1 });
  for (const a of [0, 4096, 2 ** 40, USER_ADDR_LIMIT - 1, USER_ADDR_LIMIT, -1, 2 ** 60]) {
    assert.equal(pt.lookupPte(a), 0);
  }
  assert.throws(() => pt.allocPte(USER_ADDR_LIMIT), /outside user space/);
  finish(pt);
});

test('set, look up, replace and clear PTEs at every level boundary; counts and tables follow', () => {
  const pt = PageTables.create();
  const model = new PgtModel();
  const addrs = [
    0,
    PAGE_SIZE,
    PMD_SIZE - PAGE_SIZE,
    PMD_SIZE,
    PUD_SIZE - PAGE_SIZE,
    PUD_SIZE,
    PGDIR_SIZE,
    USER_ADDR_LIMIT - PAGE_SIZE,
  ];
  for (const [k, a] of addrs.entries()) map(pt, model, a, 100 + k);
  assertAgrees(pt, model, 'after set');
  // PGD 0: a PUD table, PMD tables for 1 GiB regions 0 and 1, PTE tables for 2 MiB regions 0, 1,
  // 511 and 512; PGD 1 and PGD 255: a PUD, a PMD and a PTE table each.
  assert.deepEqual(pt.stats(), {
    tables: 1 + 3 + 4 + 6,
    pud: 3,
    pmd: 4,
    pte: 6,
    huge: 0,
    deposited: 0,
    thp: 0,
    live: 14,
  });
  const t = pt.findPteTable(PMD_SIZE);
  assert.equal(pt.allocPte(PMD_SIZE + 7 * PAGE_SIZE), t, 'allocPte of a present table allocates nothing');
  assert.equal(pt.entryCount(t), 1);
  const replaced = makePte(999, PTE_USER | PTE_DIRTY);
  assert.equal(pt.setPte(t, 0, replaced), makePte(101 + 2, RW));
  model.setPte(PMD_SIZE, replaced);
  assert.equal(pt.entryCount(t), 1);
  assert.equal(pt.clearPte(t, 0), replaced);
  model.ptes.delete(PMD_SIZE);
  assert.equal(pt.clearPte(t, 0), 0, 'clearing an empty PTE returns 0');
  assert.equal(pt.entryCount(t), 0);
  assertAgrees(pt, model, 'after clear');
  assert.throws(() => pt.setPte(t, 0, 0), /not present/);
  assert.throws(() => pt.setPte(t, 0, makePte(1, PTE_HUGE)), /huge/);
  assert.throws(() => pt.setPte(t, 512, makePte(1, 0)), RangeError);
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  finish(pt);
});

test('huge PMD entries: install with a deposit, EEXIST over a table, split into 512 PTEs without allocating, clear', () => {
  const pt = PageTables.create();
  const model = new PgtModel();
  const r = 3 * PMD_SIZE;
  const huge = makePte(1024, RW | PTE_HUGE | PTE_ACCESSED);
  assert.equal(pt.installHugePmd(r + 5 * PAGE_SIZE, huge), 0);
  model.installHuge(r, huge);
  assertAgrees(pt, model, 'installed');
  assert.equal(pt.lookupPte(r + 17 * PAGE_SIZE), huge);
  assert.equal(hugeSubpage(huge, r + 17 * PAGE_SIZE), makePte(1024 + 17, RW | PTE_ACCESSED));
  assert.equal(pt.installHugePmd(r, makePte(2048, PTE_HUGE)), -EEXIST);
  assert.equal(pt.allocPte(r), -EAGAIN, 'allocPte under a huge entry');
  map(pt, model, r + PMD_SIZE, 7);
  assert.equal(pt.installHugePmd(r + PMD_SIZE, makePte(2048, PTE_HUGE)), -EEXIST);
  assert.throws(() => pt.installHugePmd(0, makePte(1025, PTE_HUGE)), /not aligned/);
  const live = pt.live;
  assert.equal(pt.splitHugePmd(r), true);
  model.split(r);
  assert.equal(pt.live, live, 'the split used the deposit');
  assertAgrees(pt, model, 'split');
  assert.equal(pt.splitHugePmd(r), false);
  assert.equal(pt.entryCount(pt.findPteTable(r)), 512);
  const r2 = 8 * PMD_SIZE;
  assert.equal(pt.installHugePmd(r2, huge), 0);
  assert.equal(pt.clearHugePmd(r2), huge);
  assert.equal(pt.clearHugePmd(r2), 0);
  assert.equal(pt.stats().deposited, 0);
  assertAgrees(pt, model, 'cleared');
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  finish(pt);
});

test('zapRange clears [start, end) only, hands every page to onPage, splits a huge entry it covers in part', () => {
  const pt = PageTables.create();
  const model = new PgtModel();
  for (let k = 0; k < 40; k++) map(pt, model, PMD_SIZE - 20 * PAGE_SIZE + k * PAGE_SIZE, 10 + k);
  const h1 = makePte(512, RW | PTE_HUGE);
  const h2 = makePte(1536, RW | PTE_HUGE);
  pt.installHugePmd(4 * PMD_SIZE, h1);
  model.installHuge(4 * PMD_SIZE, h1);
  pt.installHugePmd(5 * PMD_SIZE, h2);
  model.installHuge(5 * PMD_SIZE, h2);
  const zap = (start: number, end: number) => {
    const seen: number[][] = [];
    const n = pt.zapRange(start, end, (pfn, entry) => seen.push([pfn, entry]));
    seen.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    assert.deepEqual(seen, model.zap(start, end), `zap [${start}, ${end})`);
    assert.equal(n, seen.length);
    assertAgrees(pt, model, `zap [${start}, ${end})`);
  };
  zap(PMD_SIZE - 5 * PAGE_SIZE, PMD_SIZE + 5 * PAGE_SIZE);
  zap(4 * PMD_SIZE, 5 * PMD_SIZE); // h1 whole: one call with the huge entry
  zap(5 * PMD_SIZE + PAGE_SIZE, 5 * PMD_SIZE + 3 * PAGE_SIZE); // h2 in part: split
  assert.equal(pt.stats().huge, 0);
  zap(0, USER_ADDR_LIMIT);
  assert.equal(
    pt.zapRange(0, USER_ADDR_LIMIT, () => assert.fail('nothing left')),
    0,
  );
  assert.throws(() => pt.zapRange(1, PAGE_SIZE, () => {}), /page-aligned/);
  finish(pt);
});

test('freePgtables follows free_pgd_range: floor and ceiling keep shared tables at every level, as Linux free_pgd_range does', () => {
  const cases: { maps: number[]; free: [number, number, number, number]; freed: number }[] = [
    // alone in its 2 MiB, 1 GiB and 512 GiB: everything but the PGD goes
    { maps: [PMD_SIZE + PAGE_SIZE], free: [PMD_SIZE, PMD_SIZE + 2 * PAGE_SIZE, 0, 0], freed: 3 },
    // a neighbour below in the same 2 MiB (floor inside the region): nothing goes
    {
      maps: [PMD_SIZE + 10 * PAGE_SIZE],
      free: [PMD_SIZE + 10 * PAGE_SIZE, PMD_SIZE + 11 * PAGE_SIZE, PMD_SIZE + PAGE_SIZE, 0],
      freed: 0,
    },
    // a neighbour above in the same 2 MiB (ceiling inside the region): nothing goes
    { maps: [PMD_SIZE], free: [PMD_SIZE, PMD_SIZE + PAGE_SIZE, 0, PMD_SIZE + 8 * PAGE_SIZE], freed: 0 },
    // neighbour in the next 2 MiB region, same 1 GiB: the PTE table goes, the PMD table stays
    { maps: [PMD_SIZE], free: [PMD_SIZE, PMD_SIZE + PAGE_SIZE, 0, 2 * PMD_SIZE + PAGE_SIZE], freed: 1 },
    // neighbour in the next 1 GiB, same 512 GiB: PTE and PMD tables go, the PUD table stays
    { maps: [PMD_SIZE], free: [PMD_SIZE, PMD_SIZE + PAGE_SIZE, 0, PUD_SIZE + PAGE_SIZE], freed: 2 },
    // ceiling exactly at the next 1 GiB boundary: the PMD table goes too
    { maps: [PUD_SIZE - PAGE_SIZE], free: [PUD_SIZE - PAGE_SIZE, PUD_SIZE, 0, PUD_SIZE], freed: 2 },
    // floor exactly at the 512 GiB boundary, ceiling 0: all three levels go
    {
      maps: [PGDIR_SIZE + 5 * PMD_SIZE],
      free: [PGDIR_SIZE + 5 * PMD_SIZE, PGDIR_SIZE + 6 * PMD_SIZE, PGDIR_SIZE, 0],
      freed: 3,
    },
    // floor one page past the boundary: the 2 MiB region (and so everything above) stays
    {
      maps: [PGDIR_SIZE + 5 * PAGE_SIZE],
      free: [PGDIR_SIZE + 5 * PAGE_SIZE, PGDIR_SIZE + 6 * PAGE_SIZE, PGDIR_SIZE + PAGE_SIZE, 0],
      freed: 0,
    },
    // a range over several regions and 1 GiB tables, ceiling below 2 MiB: nothing
    { maps: [0], free: [0, PAGE_SIZE, 0, PAGE_SIZE], freed: 0 },
    // a long range across two PGD entries with the ceiling inside the last 2 MiB region
    {
      maps: [PGDIR_SIZE - PMD_SIZE, PGDIR_SIZE + PAGE_SIZE, PGDIR_SIZE + 3 * PMD_SIZE],
      free: [
        PGDIR_SIZE - PMD_SIZE,
        PGDIR_SIZE + 3 * PMD_SIZE + PAGE_SIZE,
        0,
        PGDIR_SIZE + 3 * PMD_SIZE + 4 * PAGE_SIZE,
      ],
      freed: 4,
    },
  ];
  for (const { maps, free, freed: expected } of cases) {
    const pt = PageTables.create();
    const model = new PgtModel();
    for (const a of maps) map(pt, model, a, 9);
    const [start, end, floor, ceiling] = free;
    pt.zapRange(start, end, () => {});
    model.zap(start, end);
    const before = pt.countTables();
    const freed = pt.freePgtables(start, end, floor, ceiling);
    assert.equal(freed, expected, `free ${free.join(', ')}: tables freed`);
    model.freePgtables(start, end, floor, ceiling);
    assertAgrees(pt, model, `free ${free.join(', ')}`);
    assert.equal(pt.countTables(), before - freed);
    rcuBarrier();
    assert.equal(pt.live, pt.countTables(), 'freed tables come back after a grace period');
    pt.zapRange(0, USER_ADDR_LIMIT, () => {});
    finish(pt);
  }
});

test('freePgtables refuses to free a table with entries (not zapped) or a huge entry', () => {
  const pt = PageTables.create();
  map(pt, null, PMD_SIZE, 3);
  assert.throws(() => pt.freePgtables(PMD_SIZE, 2 * PMD_SIZE, 0, 0), /with 1 entries/);
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  pt.installHugePmd(4 * PMD_SIZE, makePte(512, PTE_HUGE));
  assert.throws(() => pt.freePgtables(4 * PMD_SIZE, 5 * PMD_SIZE, 0, 0), /zap first/);
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  assert.equal(pt.validate(), undefined);
  finish(pt);
});

test('movePtes: whole aligned regions take their PMD entry along, others move PTE by PTE; huge entries move or split', () => {
  const setups: [number, number, number][] = [
    // [old, new, len]
    [PMD_SIZE, 10 * PMD_SIZE, 3 * PMD_SIZE], // aligned: PTE table and huge entry move whole
    [PMD_SIZE + 5 * PAGE_SIZE, PUD_SIZE + 9 * PAGE_SIZE, 2 * PMD_SIZE], // unaligned: split, two destination tables each
    [PMD_SIZE, PGDIR_SIZE + PMD_SIZE, 3 * PMD_SIZE], // to another PGD entry: new PUD and PMD tables
    [PMD_SIZE + PAGE_SIZE, PMD_SIZE + 140 * PAGE_SIZE, 20 * PAGE_SIZE], // within one PTE table
    [10 * PMD_SIZE, PMD_SIZE, 3 * PMD_SIZE], // downwards, nothing there
  ];
  for (const [from, to, len] of setups) {
    const pt = PageTables.create();
    const model = new PgtModel();
    for (let k = 0; k < 30; k++) map(pt, model, PMD_SIZE + k * 3 * PAGE_SIZE, 50 + k);
    const huge = makePte(2048, RW | PTE_HUGE);
    pt.installHugePmd(2 * PMD_SIZE, huge);
    model.installHuge(2 * PMD_SIZE, huge);
    map(pt, model, 3 * PMD_SIZE + 511 * PAGE_SIZE, 77);
    assert.equal(pt.movePtes(from, to, len), 0);
    model.move(from, to, len);
    assertAgrees(pt, model, `move ${from} -> ${to} +${len}`);
    pt.zapRange(0, USER_ADDR_LIMIT, () => {});
    finish(pt);
  }
  const pt = PageTables.create();
  assert.throws(() => pt.movePtes(0, PAGE_SIZE, 2 * PAGE_SIZE), /overlaps/);
  map(pt, null, 0, 1);
  map(pt, null, 8 * PAGE_SIZE, 2);
  assert.throws(() => pt.movePtes(0, 8 * PAGE_SIZE, PAGE_SIZE), /destination has an entry/);
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  finish(pt);
});

test('changeProtection and writeProtectRange change only [start, end), count changes, split huge entries covered in part', () => {
  const pt = PageTables.create();
  const model = new PgtModel();
  for (let k = 0; k < 64; k++)
    map(pt, model, PMD_SIZE - 32 * PAGE_SIZE + k * PAGE_SIZE, 5 + k, k % 3 === 0 ? PTE_USER : RW);
  for (const r of [4, 5]) {
    const h = makePte(512 * r, RW | PTE_HUGE);
    pt.installHugePmd(r * PMD_SIZE, h);
    model.installHuge(r * PMD_SIZE, h);
  }
  const change = (start: number, end: number, set: number, clear: number) => {
    const n = pt.changeProtection(start, end, set, clear);
    assert.equal(n, model.changeProtection(start, end, set, clear), `changed in [${start}, ${end})`);
    assertAgrees(pt, model, `changeProtection [${start}, ${end}) +${set} -${clear}`);
  };
  change(PMD_SIZE - 10 * PAGE_SIZE, PMD_SIZE + 10 * PAGE_SIZE, 0, PTE_WRITE);
  change(0, 5 * PMD_SIZE, PTE_DIRTY, 0); // huge 4 whole
  change(5 * PMD_SIZE, 5 * PMD_SIZE + PAGE_SIZE, 0, PTE_WRITE); // huge 5 in part: split
  assert.equal(
    pt.writeProtectRange(0, USER_ADDR_LIMIT),
    model.changeProtection(0, USER_ADDR_LIMIT, 0, PTE_WRITE),
  );
  assert.equal(pt.writeProtectRange(0, USER_ADDR_LIMIT), 0, 'nothing left to change');
  assertAgrees(pt, model, 'write-protected');
  assert.throws(() => pt.changeProtection(0, PAGE_SIZE, 0, 1), /outside the flags/);
  assert.throws(() => pt.changeProtection(0, PAGE_SIZE, PTE_HUGE, 0), /outside the flags/);
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  finish(pt);
});

/** Everything a failed operation must leave as it was. */
function snapshot(pt: PageTables): string {
  const entries: number[] = [];
  pt.forEachPresent(0, USER_ADDR_LIMIT, (a, e) => entries.push(a, e));
  return JSON.stringify({ stats: pt.stats(), tables: pt.countTables(), entries });
}

test('ENOMEM at every table allocation of allocPte, installHugePmd and movePtes: 0 or -ENOMEM, nothing changed, nothing leaked', () => {
  const injector = new FailureInjector();
  const pt = PageTables.create({ injector });
  map(pt, null, 0, 1);
  /** Runs op with the k-th allocation failing for k = 0, 1, ... until it succeeds; returns k. */
  const everyFailure = (what: string, op: () => number, failed: number) => {
    for (let k = 0; ; k++) {
      const before = snapshot(pt);
      injector.failAfter(k);
      const got = op();
      const injected = injector.injected;
      injector.disarm();
      if (injected === 0) {
        assert.notEqual(got, failed, `${what}: succeeded with ${k} allocations`);
        return k;
      }
      assert.equal(got, failed, `${what}: allocation ${k} failed`);
      assert.equal(snapshot(pt), before, `${what}: allocation ${k} failed, state changed`);
      assert.equal(pt.validate(), undefined);
    }
  };
  // A PTE in a new 512 GiB: PUD, PMD and PTE tables.
  assert.equal(
    everyFailure('allocPte', () => pt.allocPte(3 * PGDIR_SIZE), 0),
    3,
  );
  // A huge entry in a new 1 GiB: a PMD table and the deposit.
  assert.equal(
    everyFailure('installHugePmd', () => pt.installHugePmd(5 * PUD_SIZE, makePte(512, PTE_HUGE)), -ENOMEM),
    2,
  );
  // A move to a new 512 GiB of a PTE table region (unaligned: two PTE tables) and the huge entry
  // (split): PUD, PMD and three PTE tables.
  for (let k = 0; k < 20; k++) map(pt, null, PMD_SIZE + k * 9 * PAGE_SIZE, 100 + k);
  const moved = everyFailure(
    'movePtes',
    () => pt.movePtes(PMD_SIZE, 7 * PGDIR_SIZE + PAGE_SIZE, PMD_SIZE),
    -ENOMEM,
  );
  assert.equal(moved, 4);
  assert.equal(
    everyFailure(
      'movePtes of a huge entry, split',
      () => pt.movePtes(5 * PUD_SIZE, 9 * PGDIR_SIZE + PAGE_SIZE, PMD_SIZE),
      -ENOMEM,
    ),
    4,
  );
  const before = snapshot(pt);
  injector.failAfter(0);
  assert.equal(pt.allocPte(100 * PAGE_SIZE), pt.findPteTable(0), 'a present table needs no allocation');
  injector.disarm();
  assert.equal(snapshot(pt), before);
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  finish(pt);
});

test('attach sees the same tables; destroy frees every table after a grace period', () => {
  const pt = PageTables.create({ capacity: 64 });
  const other = PageTables.attach(pt.describe());
  map(pt, null, 12 * PMD_SIZE, 44);
  assert.equal(other.lookupPte(12 * PMD_SIZE), makePte(44, RW));
  const t = other.allocPte(12 * PMD_SIZE + PAGE_SIZE);
  other.setPte(t, 1, makePte(45, RW));
  assert.equal(pt.lookupPte(12 * PMD_SIZE + PAGE_SIZE), makePte(45, RW));
  pt.installHugePmd(PUD_SIZE, makePte(512, PTE_HUGE));
  assert.equal(pt.live, 1 + 1 + 2 + 1 + 1);
  pt.destroy();
  assert.equal(pt.lookupPte(12 * PMD_SIZE), 0);
  rcuBarrier();
  assert.equal(pt.live, 0);
  assert.throws(() => PageTables.create({ capacity: 2 ** 20 }), /capacity/);
});

test('a full arena: allocPte returns 0 and leaves nothing behind', () => {
  const pt = PageTables.create({ capacity: 4 });
  map(pt, null, 0, 1); // PGD, PUD, PMD, PTE: full
  const before = snapshot(pt);
  assert.equal(pt.allocPte(PMD_SIZE), 0);
  assert.equal(pt.allocPte(PGDIR_SIZE), 0);
  assert.equal(snapshot(pt), before);
  pt.zapRange(0, PMD_SIZE, () => {});
  assert.equal(pt.freePgtables(0, PMD_SIZE, 0, 0), 3);
  rcuBarrier();
  assert.ok(pt.allocPte(PGDIR_SIZE) > 0, 'freed tables are reused');
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  finish(pt);
});
