/**
 * PhysMem on one CPU (the main thread): allocation and free round trips, zeroing, poison checks,
 * exhaustion, failure injection at every allocation, references and pins, the zero page, map
 * counts and flags, accounting back to the initial state, bad arguments, and the validator's view
 * of allocation under mmap_lock. test/mem/frames-cpus.test.ts runs it on worker CPUs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEBUG, VmAssertionError } from '../../src/assert.js';
import { MAX_CPUS } from '../../src/cpu/current.js';
import { enableLockdep, lockdepReset, lockdepSiteCounts } from '../../src/lockdep/index.js';
import { PhysMem, type PhysMemStats } from '../../src/mem/frames.js';
import {
  F64_PER_PAGE,
  FIELD_NAMES,
  FIRST_PFN,
  FLAGS,
  formatFlags,
  GUP_PIN_COUNTING_BIAS,
  I32_PER_PAGE,
  KIND,
  KIND_ANON,
  KIND_FILE,
  KIND_FREE,
  KIND_OTHER,
  KIND_PAGETABLE,
  KIND_ZERO,
  PAGE_SIZE,
  PG_ANON,
  PG_DIRTY,
  PG_LOCKED,
  PG_PAGETABLE,
  PG_REFERENCED,
  PG_STALE,
  PG_UPTODATE,
  PG_ZERO,
  REFCOUNT,
  ZERO_PFN,
} from '../../src/mem/page.js';
import { H_COUNT, H_HEAD, HOMES, NEXT, Zone } from '../../src/mem/zone.js';
import { FailureInjector, POISON_WORD } from '../../src/shm/arena.js';
import { RwSem } from '../../src/sync/rwsem.js';

/** The counts that must come back once every frame is put back. */
function counts(s: PhysMemStats) {
  return { free: s.free, anon: s.anon, file: s.file, pagetable: s.pagetable, zero: s.zero, other: s.other };
}

const INITIAL = (usable: number) => ({ free: usable, anon: 0, file: 0, pagetable: 0, zero: 1, other: 0 });

/** Every frame back, every row drained, every invariant holds. */
function assertClean(mem: PhysMem): void {
  mem.drainAll();
  assert.equal(mem.check(), undefined);
  const s = mem.stats();
  assert.deepEqual(counts(s), INITIAL(mem.frames - FIRST_PFN));
  assert.equal(s.cached, 0);
  assert.equal(s.zone + s.untouched, s.usable);
}

function frameWords(mem: PhysMem, pfn: number): Int32Array {
  return mem.i32.subarray(pfn * I32_PER_PAGE, (pfn + 1) * I32_PER_PAGE);
}

test('allocation sets up the descriptor; the last put frees; the counts per kind come back', () => {
  const mem = PhysMem.create({ frames: 66, pcpHigh: 8, pcpBatch: 4 });
  assert.deepEqual(counts(mem.stats()), INITIAL(64));
  assert.equal(mem.check(), undefined);
  const kinds = [KIND_ANON, KIND_FILE, KIND_PAGETABLE, KIND_OTHER];
  const got: number[] = [];
  for (let i = 0; i < 40; i++) {
    const kind = kinds[i % kinds.length];
    const pfn = mem.allocFrame(kind, 100 + i, i * 3);
    assert.ok(pfn >= FIRST_PFN && pfn < mem.frames, `pfn ${pfn}`);
    assert.equal(mem.refcountOf(pfn), 1);
    assert.equal(mem.mapcountOf(pfn), 0);
    assert.equal(mem.kind[pfn], kind);
    assert.equal(mem.fields[KIND][pfn], kind, 'fields[] are the same views');
    assert.equal(mem.owner[pfn], 100 + i);
    assert.equal(mem.index[pfn], i * 3);
    assert.equal(
      mem.flags[pfn],
      kind === KIND_ANON ? PG_ANON : kind === KIND_PAGETABLE ? PG_PAGETABLE : 0,
      formatFlags(mem.flags[pfn]),
    );
    got.push(pfn);
  }
  assert.equal(new Set(got).size, got.length, 'no frame handed out twice');
  const s = mem.stats();
  assert.deepEqual(counts(s), { free: 24, anon: 10, file: 10, pagetable: 10, zero: 1, other: 10 });
  assert.equal(s.allocs, 40);
  assert.ok(s.refills >= 10, `refilled in batches of 4 (${s.refills})`);
  assert.equal(mem.check(), undefined, 'consistent while frames are in use');
  for (const pfn of got) mem.putPage(pfn);
  const after = mem.stats();
  assert.deepEqual(counts(after), INITIAL(64));
  assert.equal(after.frees, 40);
  assert.ok(after.cached <= 8, 'a row keeps at most pcpHigh frames');
  assert.ok(after.drains > 0, 'frees above pcpHigh went back to the zone');
  for (const pfn of got) {
    assert.equal(mem.kind[pfn], KIND_FREE);
    assert.equal(mem.flags[pfn], PG_STALE);
  }
  assertClean(mem);
  assert.deepEqual(FIELD_NAMES, ['refcount', 'mapcount', 'flags', 'owner', 'index', 'kind']);
});

test('a reused frame is zeroed on allocation, with and without poisoning', () => {
  for (const poison of [false, true]) {
    const mem = PhysMem.create({ frames: 8, poison, pcpHigh: 2, pcpBatch: 1 });
    const pfn = mem.allocFrame(KIND_ANON, 1, 0);
    mem.bytes.fill(0xa5, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
    mem.putPage(pfn);
    if (poison)
      assert.ok(
        frameWords(mem, pfn).every((w) => w === POISON_WORD),
        'poisoned while free',
      );
    else assert.equal(frameWords(mem, pfn)[7], 0xa5a5a5a5 | 0, 'stale while free');
    assert.equal(mem.allocFrame(KIND_FILE, 2, 0), pfn, 'the row hands back the last freed frame first');
    assert.ok(
      frameWords(mem, pfn).every((w) => w === 0),
      `poison ${poison}: zeroed`,
    );
    mem.putPage(pfn);
    assertClean(mem);
  }
});

test("allocFrameCopy: a fresh descriptor with the source frame's bytes; poison still checked; bad sources EINVAL", () => {
  for (const poison of [false, true]) {
    const mem = PhysMem.create({ frames: 8, poison, pcpHigh: 2, pcpBatch: 1 });
    const src = mem.allocFrame(KIND_ANON, 1, 0);
    const words = frameWords(mem, src);
    for (let k = 0; k < words.length; k++) words[k] = (k * 2654435761) | 0;
    const stale = mem.allocFrame(KIND_ANON, 1, 1);
    mem.bytes.fill(0xa5, stale * PAGE_SIZE, (stale + 1) * PAGE_SIZE);
    mem.putPage(stale);
    const copy = mem.allocFrameCopy(KIND_ANON, 7, 9, src);
    assert.equal(copy, stale, 'the reused (stale) frame');
    assert.deepEqual(frameWords(mem, copy), frameWords(mem, src), `poison ${poison}: every byte copied`);
    assert.equal(mem.refcountOf(copy), 1);
    assert.equal(mem.owner[copy], 7);
    assert.equal(mem.index[copy], 9);
    assert.equal(mem.flags[copy], PG_ANON, 'PG_STALE gone');
    assert.equal(mem.refcountOf(src), 1, 'the source keeps its reference');
    const zeroCopy = mem.allocFrameCopy(KIND_OTHER, 0, 0, ZERO_PFN);
    assert.ok(
      frameWords(mem, zeroCopy).every((w) => w === 0),
      'a copy of the zero page is zero',
    );
    for (const bad of [0, -1, mem.frames, 2.5, Number.NaN]) {
      const before = mem.stats();
      assert.throws(() => mem.allocFrameCopy(KIND_ANON, 0, 0, bad), /EINVAL: allocFrameCopy: source pfn/);
      assert.deepEqual(mem.stats(), before, 'nothing taken');
    }
    for (const pfn of [src, copy, zeroCopy]) mem.putPage(pfn);
    assertClean(mem);
  }
  // A write to the free frame is caught before the copy hides it.
  const mem = PhysMem.create({ frames: 8, poison: true, pcpHigh: 2, pcpBatch: 1 });
  const src = mem.allocFrame(KIND_ANON, 1, 0);
  const freed = mem.allocFrame(KIND_ANON, 1, 1);
  mem.putPage(freed);
  mem.bytes[freed * PAGE_SIZE + 40] = 1;
  assert.throws(
    () => mem.allocFrameCopy(KIND_ANON, 1, 0, src),
    new RegExp(`pfn ${freed} was written while free \\(byte 40 `),
  );
});

test('poisoning: a write to a free frame is caught when the frame is next allocated, naming it', () => {
  const mem = PhysMem.create({ frames: 8, poison: true, pcpHigh: 2, pcpBatch: 1 });
  const pfn = mem.allocFrame(KIND_ANON, 1, 0);
  mem.putPage(pfn);
  mem.bytes[pfn * PAGE_SIZE + 100] = 7;
  assert.match(mem.check() ?? '', new RegExp(`free pfn ${pfn} was written while free \\(byte 100\\)`));
  if (DEBUG) {
    assert.throws(
      () => mem.drainAll(),
      /checkPhysMem: free pfn \d+ was written while free/,
      'debug mode checks at drainAll',
    );
  }
  assert.throws(
    () => mem.allocFrame(KIND_ANON, 1, 0),
    (e: unknown) =>
      e instanceof VmAssertionError &&
      new RegExp(`pfn ${pfn} was written while free \\(byte 100 `).test(e.message),
  );
  // A frame never handed out must still be zero.
  const other = PhysMem.create({ frames: 8, poison: true, pcpHigh: 0, pcpBatch: 1 });
  other.i32[FIRST_PFN * I32_PER_PAGE + 5] = -1;
  assert.throws(
    () => other.allocFrame(KIND_ANON, 1, 0),
    /pfn 2 was written while free \(byte 20 is not zero\)/,
  );
  // A write into a frame that sits on the zone's stack (not a row).
  const zoned = PhysMem.create({ frames: 8, poison: true, pcpHigh: 0, pcpBatch: 1 });
  const z = zoned.allocFrame(KIND_ANON, 1, 0);
  zoned.putPage(z);
  assert.equal(zoned.stats().zone, 1, 'pcpHigh 0: the free went straight to the zone');
  zoned.f64[z * F64_PER_PAGE + 3] = 0;
  assert.throws(
    () => zoned.allocFrame(KIND_ANON, 1, 0),
    new RegExp(`pfn ${z} was written while free \\(byte 24 `),
  );
});

test('check() walks the home lists: a cycle, a list running past its count, a wrong count are reported', () => {
  const mem = PhysMem.create({ frames: 64, pcpHigh: 0, pcpBatch: 1 });
  const got = Array.from({ length: 8 }, (_, i) => mem.allocFrame(KIND_ANON, 1, i));
  for (const pfn of got) mem.putPage(pfn);
  assert.equal(mem.stats().zone, 8, 'pcpHigh 0: every free went to the zone');
  assert.equal(mem.check(), undefined);
  const c = new Zone(mem.describe().control).control;
  let home = -1;
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) if (c[HOMES + 2 * cpu + H_COUNT] === 8) home = cpu;
  assert.ok(home >= 0, 'one CPU (the main thread) holds all 8 on its home list');
  const h = HOMES + 2 * home;
  const chain = [c[h + H_HEAD]];
  while (chain.length < 8) chain.push(c[NEXT + chain[chain.length - 1]]);
  assert.deepEqual(
    [...chain].sort((x, y) => x - y),
    [...got].sort((x, y) => x - y),
    'the list holds exactly the frames given',
  );
  assert.equal(chain[0], got[7], 'the last given is the head');
  const corrupt = (at: number, value: number, expected: RegExp) => {
    const saved = c[at];
    c[at] = value;
    assert.match(mem.check() ?? '', expected);
    c[at] = saved;
    assert.equal(mem.check(), undefined);
  };
  corrupt(
    NEXT + chain[3],
    chain[1],
    new RegExp(`pfn ${chain[1]} is on the free lists twice \\(again in cpu ${home}'s home list\\)`),
  );
  corrupt(NEXT + chain[7], got[0] + 40, new RegExp(`cpu ${home}'s home list goes on past its 8 frames`));
  corrupt(h + H_COUNT, 9, new RegExp(`cpu ${home}'s home list counts 9 frames`));
  corrupt(h + H_COUNT, 7, new RegExp(`cpu ${home}'s home list goes on past its 7 frames`));
  assertClean(mem);
});

test('exhaustion returns 0 and changes no frame; the counts come back once all are put', () => {
  const mem = PhysMem.create({ frames: 12, pcpHigh: 4, pcpBatch: 2 });
  const got: number[] = [];
  for (;;) {
    const pfn = mem.allocFrame(KIND_ANON, 9, got.length);
    if (pfn === 0) break;
    got.push(pfn);
  }
  assert.equal(got.length, 10, 'every allocatable frame, and neither 0 nor the zero page');
  assert.ok(!got.includes(ZERO_PFN));
  const fields = mem.fields.map((f) => f.slice());
  const bytes = mem.bytes.slice();
  const before = mem.stats();
  for (let i = 0; i < 3; i++) assert.equal(mem.allocFrame(KIND_FILE, 1, 1), 0);
  assert.deepEqual(
    mem.fields.map((f) => f.slice()),
    fields,
  );
  assert.ok(Buffer.from(mem.bytes).equals(Buffer.from(bytes)), 'no frame byte changed');
  const after = mem.stats();
  assert.deepEqual(counts(after), counts(before));
  assert.equal(after.failures, before.failures + 3);
  assert.equal(after.allocs, before.allocs);
  assert.equal(mem.check(), undefined);
  for (const pfn of got) mem.putPage(pfn);
  assertClean(mem);
  assert.ok(mem.allocFrame(KIND_ANON, 1, 1) > 0, 'and memory is available again');
});

test('failure injection fails exactly the k-th allocation, for every k, also when the row has frames', () => {
  const injector = new FailureInjector();
  const mem = PhysMem.create({ frames: 34, pcpHigh: 8, pcpBatch: 4, injector });
  const n = 24;
  for (let k = 0; k <= n; k++) {
    injector.failAfter(k);
    const got: number[] = [];
    let failedAt = -1;
    for (let i = 0; i <= n; i++) {
      const cachedBefore = mem.stats().cached;
      const pfn = mem.allocFrame(KIND_ANON, 1, i);
      if (pfn !== 0) {
        got.push(pfn);
        continue;
      }
      assert.equal(failedAt, -1, 'only one failure');
      failedAt = i;
      assert.equal(mem.stats().cached, cachedBefore, 'a failed allocation took nothing from the row');
    }
    assert.equal(failedAt, k, `failAfter(${k})`);
    assert.equal(injector.injected, 1);
    assert.equal(got.length, n);
    for (const pfn of got) mem.putPage(pfn);
    assert.deepEqual(counts(mem.stats()), INITIAL(32));
  }
  assert.equal(mem.stats().failures, n + 1);
  // The per-CPU path: frames in this CPU's row, yet the injected failure wins.
  injector.disarm();
  mem.putPage(mem.allocFrame(KIND_OTHER, 0, 0));
  assert.ok(mem.stats().cached > 0);
  injector.failAfter(0);
  assert.equal(mem.allocFrame(KIND_OTHER, 0, 0), 0);
  const attached = PhysMem.attach(mem.describe());
  injector.failAfter(0);
  assert.equal(attached.allocFrame(KIND_OTHER, 0, 0), 0, 'an attached view shares the injector');
  assertClean(mem);
});

test('references and pins: a pin adds GUP_PIN_COUNTING_BIAS; maybeDmaPinned; the last of either frees', () => {
  const mem = PhysMem.create({ frames: 8, pcpHigh: 2, pcpBatch: 1 });
  const pfn = mem.allocFrame(KIND_ANON, 1, 0);
  assert.equal(GUP_PIN_COUNTING_BIAS, 1024);
  mem.getPage(pfn);
  assert.equal(mem.refcountOf(pfn), 2);
  assert.equal(mem.maybeDmaPinned(pfn), false);
  assert.equal(mem.pinPage(pfn), true);
  assert.equal(mem.refcountOf(pfn), 2 + 1024);
  assert.equal(mem.maybeDmaPinned(pfn), true);
  mem.putPage(pfn);
  mem.putPage(pfn);
  assert.equal(mem.refcountOf(pfn), 1024, 'the pin alone keeps the frame');
  assert.equal(mem.kind[pfn], KIND_ANON);
  assert.equal(mem.getPageUnlessZero(pfn), true);
  mem.putPage(pfn);
  mem.unpinPage(pfn);
  assert.equal(mem.refcountOf(pfn), 0);
  assert.equal(mem.kind[pfn], KIND_FREE, 'the unpin was the last reference');
  assert.equal(mem.getPageUnlessZero(pfn), false, 'no reference to a free frame');
  assert.equal(mem.refcountOf(pfn), 0);
  assert.throws(() => mem.putPage(pfn), /putPage of pfn \d+: refcount 0: the frame is free/);
  assert.throws(() => mem.getPage(pfn), /getPage of pfn \d+: refcount 0/);
  assert.throws(() => mem.pinPage(pfn), /pinPage of pfn \d+: refcount 0/);
  assert.equal(mem.refcountOf(pfn), 0, 'misuse changes nothing');
  const b = mem.allocFrame(KIND_FILE, 1, 0);
  assert.throws(
    () => mem.unpinPage(b),
    new RegExp(`unpinPage of pfn ${b}: refcount 1 is below the pin bias`),
  );
  assert.equal(mem.refcountOf(b), 1);
  // 1024 plain references look pinned: "maybe" (as in Linux).
  for (let i = 0; i < 1023; i++) mem.getPage(b);
  assert.equal(mem.maybeDmaPinned(b), true);
  for (let i = 0; i < 1024; i++) mem.putPage(b);
  mem.putPage(mem.allocFrame(KIND_ANON, 1, 0));
  assertClean(mem);
});

test('tryPinPage (GUP-fast): a pin unless the frame is free or the count would overflow', () => {
  const mem = PhysMem.create({ frames: 8, pcpHigh: 2, pcpBatch: 1 });
  const pfn = mem.allocFrame(KIND_ANON, 1, 0);
  assert.equal(mem.tryPinPage(pfn), true);
  assert.equal(mem.refcountOf(pfn), 1 + GUP_PIN_COUNTING_BIAS);
  mem.unpinPage(pfn);
  // Near the top: a pin that would overflow is refused, the count unchanged.
  Atomics.store(mem.refcount, pfn, 0x7fffffff - GUP_PIN_COUNTING_BIAS + 1);
  assert.equal(mem.tryPinPage(pfn), false);
  assert.equal(mem.refcountOf(pfn), 0x7fffffff - GUP_PIN_COUNTING_BIAS + 1);
  Atomics.store(mem.refcount, pfn, 1);
  mem.putPage(pfn);
  assert.equal(mem.kind[pfn], KIND_FREE);
  assert.equal(mem.tryPinPage(pfn), false, 'no pin of a free frame');
  assert.equal(mem.refcountOf(pfn), 0);
  assertClean(mem);
});

test('the zero page is never handed out and never freed; counted references to it balance', () => {
  const mem = PhysMem.create({ frames: 20, pcpHigh: 4, pcpBatch: 2 });
  assert.equal(mem.kind[ZERO_PFN], KIND_ZERO);
  assert.equal(mem.flags[ZERO_PFN], PG_ZERO | PG_UPTODATE);
  assert.equal(mem.refcountOf(ZERO_PFN), 1);
  const got: number[] = [];
  for (let pfn = mem.allocFrame(KIND_OTHER, 0, 0); pfn !== 0; pfn = mem.allocFrame(KIND_OTHER, 0, 0))
    got.push(pfn);
  assert.equal(got.length, 18);
  assert.ok(!got.includes(ZERO_PFN) && !got.includes(0));
  mem.getPage(ZERO_PFN);
  mem.putPage(ZERO_PFN);
  assert.throws(
    () => mem.putPage(ZERO_PFN),
    (e: unknown) =>
      e instanceof VmAssertionError && /putPage of pfn 1: the zero page is never freed/.test(e.message),
  );
  assert.equal(mem.refcountOf(ZERO_PFN), 1);
  assert.equal(mem.pinPage(ZERO_PFN), true);
  assert.equal(mem.refcountOf(ZERO_PFN), 1 + GUP_PIN_COUNTING_BIAS);
  assert.equal(mem.maybeDmaPinned(ZERO_PFN), true);
  mem.unpinPage(ZERO_PFN);
  assert.throws(() => mem.unpinPage(ZERO_PFN), /unpinPage of pfn 1: refcount 1 is below the pin bias/);
  assert.equal(mem.refcountOf(ZERO_PFN), 1);
  assert.equal(mem.kind[ZERO_PFN], KIND_ZERO);
  for (const pfn of got) mem.putPage(pfn);
  assertClean(mem);
  mem.bytes[ZERO_PFN * PAGE_SIZE + 9] = 1;
  assert.equal(mem.check(), 'the zero page was written');
});

test('map counts: inc/dec return the new count; below zero and mapping a free frame throw; a mapped frame cannot be freed', () => {
  const mem = PhysMem.create({ frames: 8, pcpHigh: 2, pcpBatch: 1 });
  const pfn = mem.allocFrame(KIND_ANON, 1, 0);
  assert.equal(mem.incMapcount(pfn), 1);
  assert.equal(mem.incMapcount(pfn), 2);
  assert.equal(mem.decMapcount(pfn), 1);
  assert.equal(mem.decMapcount(pfn), 0);
  assert.throws(() => mem.decMapcount(pfn), /decMapcount of pfn \d+: mapcount 0 would go negative/);
  assert.equal(mem.mapcountOf(pfn), 0);
  mem.putPage(pfn);
  assert.throws(() => mem.incMapcount(pfn), /incMapcount of pfn \d+, which is free/);
  assertClean(mem);
  const mapped = mem.allocFrame(KIND_ANON, 1, 0);
  mem.incMapcount(mapped);
  assert.throws(
    () => mem.putPage(mapped),
    new RegExp(`putPage: pfn ${mapped} freed while in use \\(refcount 0 mapcount 1 `),
  );
  const locked = mem.allocFrame(KIND_FILE, 1, 0);
  mem.setFlag(locked, PG_LOCKED);
  assert.throws(() => mem.putPage(locked), /freed while in use/);
});

test('flag helpers set, clear and test bits atomically and leave the others', () => {
  const mem = PhysMem.create({ frames: 8, pcpHigh: 2, pcpBatch: 1 });
  const pfn = mem.allocFrame(KIND_ANON, 1, 0);
  mem.setFlag(pfn, PG_DIRTY | PG_REFERENCED);
  assert.equal(mem.testFlag(pfn, PG_DIRTY), true);
  assert.equal(formatFlags(mem.fields[FLAGS][pfn]), 'referenced|dirty|anon');
  mem.clearFlag(pfn, PG_REFERENCED);
  assert.equal(mem.testFlag(pfn, PG_REFERENCED), false);
  assert.equal(mem.testAndSetFlag(pfn, PG_LOCKED), false, 'took the bit');
  assert.equal(mem.testAndSetFlag(pfn, PG_LOCKED), true, 'already taken');
  assert.equal(mem.testAndClearFlag(pfn, PG_LOCKED), true);
  assert.equal(mem.testAndClearFlag(pfn, PG_LOCKED), false);
  assert.equal(mem.flags[pfn], PG_DIRTY | PG_ANON);
  assert.equal(formatFlags(1 << 20), '0x100000');
  mem.putPage(pfn);
  assert.equal(mem.flags[pfn], PG_STALE, 'a free frame keeps no flag');
  assertClean(mem);
});

test('describe/attach: a second view shares frames, descriptors, rows and the zone', () => {
  const mem = PhysMem.create({ frames: 16, pcpHigh: 4, pcpBatch: 2 });
  const view = PhysMem.attach(mem.describe());
  assert.equal(view.frames, 16);
  assert.deepEqual([view.pcpHigh, view.pcpBatch, view.poison], [4, 2, mem.poison]);
  const pfn = view.allocFrame(KIND_FILE, 3, 4);
  view.i32[pfn * I32_PER_PAGE] = 42;
  assert.equal(mem.i32[pfn * I32_PER_PAGE], 42);
  assert.equal(mem.fields[REFCOUNT][pfn], 1);
  assert.equal(mem.stats().file, 1);
  mem.putPage(pfn);
  assert.equal(view.stats().cached, mem.stats().cached);
  assert.equal(view.allocFrame(KIND_ANON, 1, 1), pfn, 'the same row (the same CPU)');
  view.putPage(pfn);
  assertClean(view);
});

test('default size: 64 Ki frames, pcpHigh 128 in batches of 32, reserved without being touched', () => {
  const mem = PhysMem.create();
  assert.equal(mem.frames, 65_536);
  assert.equal(mem.bytes.length, 256 * 2 ** 20);
  assert.deepEqual([mem.pcpHigh, mem.pcpBatch], [128, 32]);
  const pfn = mem.allocFrame(KIND_PAGETABLE, 0, 0);
  assert.equal(pfn, FIRST_PFN, 'never-used frames go out in ascending order');
  assert.equal(mem.allocFrame(KIND_ANON, 0, 0), FIRST_PFN + 1);
  mem.putPage(FIRST_PFN + 1);
  mem.putPage(pfn);
  const s = mem.stats();
  assert.equal(
    s.untouched,
    65_536 - 32,
    'one batch taken from the never-used frames, cut to end on a 16-pfn boundary (a descriptor line)',
  );
  assertClean(mem);
  const small = PhysMem.create({ frames: 1000 });
  assert.deepEqual([small.pcpHigh, small.pcpBatch], [3, 1], 'small memories cache little per CPU');
});

test('bad sizes and kinds are EINVAL and change nothing', () => {
  assert.throws(() => PhysMem.create({ frames: 2 }), /EINVAL: PhysMem: frames 2 is not in 3\.\.1048576/);
  assert.throws(() => PhysMem.create({ frames: 2 ** 20 + 1 }), /EINVAL/);
  assert.throws(() => PhysMem.create({ frames: 10.5 }), /EINVAL/);
  assert.throws(
    () => PhysMem.create({ frames: 64, pcpHigh: 224 }),
    /EINVAL: PhysMem: pcpHigh 224 is not in 0\.\.223/,
  );
  assert.throws(() => PhysMem.create({ frames: 64, pcpHigh: 8, pcpBatch: 9 }), /pcpBatch 9 is not in 1\.\.8/);
  assert.throws(() => PhysMem.create({ frames: 64, pcpHigh: 8, pcpBatch: 0 }), /EINVAL/);
  const mem = PhysMem.create({ frames: 8, pcpHigh: 2, pcpBatch: 1 });
  for (const kind of [KIND_FREE, KIND_ZERO, 6, -1, 1.5, Number.NaN]) {
    assert.throws(
      () => mem.allocFrame(kind, 0, 0),
      /EINVAL: allocFrame: kind .* is not anon, file, pagetable or other/,
    );
  }
  assertClean(mem);
  assert.equal(mem.stats().allocs, 0);
});

test('the validator sees frame allocation under mmap_lock (site "frame")', () => {
  lockdepReset();
  enableLockdep();
  const mmap = RwSem.create('mmap_lock');
  const mem = PhysMem.create({ frames: 8, pcpHigh: 2, pcpBatch: 1 });
  const outside = mem.allocFrame(KIND_ANON, 1, 0);
  mmap.downRead();
  const inside = mem.allocFrame(KIND_ANON, 1, 1);
  mem.putPage(inside);
  mmap.upRead();
  mem.putPage(outside);
  assert.deepEqual(
    lockdepSiteCounts().filter((s) => s.site === 'frame'),
    [{ site: 'frame', sleep: 0, alloc: 1, io: 0 }],
  );
  assertClean(mem);
  lockdepReset();
});
