/**
 * The pure VMA layer (src/mm/vma.ts) driven directly, like Linux's tools/testing/vma: merges with
 * prev, next or both, modifying the middle of a VMA into three, expand and shrink, refused merges,
 * anon_vma compatibility, max_map_count, and rollback when an allocation fails at commit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENOMEM } from '../../src/errno.js';
import { VM_IO, VM_MAYREAD, VM_MAYWRITE, VM_READ, VM_WRITE } from '../../src/mm/vm-flags.js';
import { MergeState } from '../../src/mm/vma.js';
import { VmaArena, vmaFields } from '../../src/mm/vma-record.js';
import { VmaTxn } from '../../src/mm/vma-txn.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { ArrayRangeIndex } from '../support/array-range-index.js';
import { BASE, P, Rig } from '../support/mm-fixture.js';

const R = VM_READ | VM_MAYREAD | VM_MAYWRITE;
const RW = R | VM_WRITE;
const ms = new MergeState();

/** Proposes a new anonymous range [s, e) (pages) with the given flags; returns the merge result. */
/** Inserts one read-only anonymous VMA of `pages` pages at BASE and commits it. */
function insertCommitted(txn: VmaTxn, pages: number): void {
  txn.insert({
    ...vmaFields(),
    start: BASE,
    end: BASE + pages * P,
    pgoff: 0,
    flags: R,
  });
  assert.equal(txn.commit(), 0);
}

function mergeNew(rig: Rig, s: number, e: number, flags: number, anon = 0): number {
  const t = rig.begin();
  const start = BASE + s * P;
  const end = BASE + e * P;
  const f = { ...vmaFields(), start, end, pgoff: start / P, flags, anon };
  ms.forNew(t.findBefore(start), t.findFrom(end), start, end, start / P, f);
  const target = rig.layer.mergeNewRange(ms);
  if (target < 0) t.insert(f);
  assert.equal(rig.commit(), 0);
  return target;
}

function modify(rig: Rig, s: number, e: number, flags: number): number {
  const t = rig.begin();
  const vma = rig.at(s);
  const prev = t.start[vma] < BASE + s * P ? vma : t.prevOf(vma);
  const r = rig.layer.modifyFlags(ms, prev, vma, BASE + s * P, BASE + e * P, flags);
  const c = rig.commit();
  return r < 0 ? r : c;
}

test('a new range merges with prev, with next, and with both', () => {
  const rig = new Rig();
  rig.add(0, 4, RW);
  assert.ok(mergeNew(rig, 4, 8, RW) >= 0);
  assert.deepEqual(rig.list(), ['0-8@0 f33']);
  rig.add(12, 16, RW);
  assert.ok(mergeNew(rig, 10, 12, RW) >= 0, 'merge with next');
  assert.deepEqual(rig.list(), ['0-8@0 f33', '10-16@10 f33']);
  assert.ok(mergeNew(rig, 8, 10, RW) >= 0, 'three-way merge');
  assert.deepEqual(rig.list(), ['0-16@0 f33']);
  assert.equal(rig.mapCount, 1);
});

test('merges are refused for different flags, discontiguous offsets and special VMAs', () => {
  const rig = new Rig();
  rig.add(0, 4, R);
  assert.equal(mergeNew(rig, 4, 8, RW), -1, 'different flags');
  rig.add(20, 24, RW, { pgoff: 7 });
  assert.equal(mergeNew(rig, 16, 20, RW), -1, 'next pgoff is not contiguous');
  rig.add(30, 34, RW | VM_IO);
  assert.equal(mergeNew(rig, 34, 36, RW | VM_IO), -1, 'VM_SPECIAL never merges');
  assert.deepEqual(rig.list(), [
    '0-4@0 f31',
    '4-8@4 f33',
    '16-20@16 f33',
    `20-24@${7 - BASE / P} f33`,
    '30-34@30 f4033',
    '34-36@34 f4033',
  ]);
});

test('anon_vma compatibility: unset merges with set, two different ones refuse; three-way falls back to prev', () => {
  const rig = new Rig();
  rig.add(0, 4, RW, { anon: 1 });
  rig.add(8, 12, RW, { anon: 2 });
  assert.ok(mergeNew(rig, 4, 8, RW) >= 0);
  assert.deepEqual(
    rig.list(),
    ['0-8@0 a1 f33', '8-12@8 a2 f33'],
    'prev and next anon_vmas differ: merge with prev only',
  );
  rig.add(20, 24, RW, { anon: 3 });
  assert.equal(mergeNew(rig, 24, 28, RW, 4), -1, 'different anon_vmas do not merge');
  rig.add(40, 44, RW);
  rig.add(60, 64, RW, { anon: 5 });
  const t = rig.begin();
  const start = BASE + 44 * P;
  const f = {
    ...vmaFields(),
    start,
    end: start + 4 * P,
    pgoff: start / P,
    flags: RW,
    anon: 5,
  };
  ms.forNew(rig.at(40), rig.at(60), start, start + 4 * P, start / P, f);
  ms.copiedFrom = rig.at(60);
  assert.ok(
    rig.layer.mergeNewRange(ms) >= 0,
    'an unset anon_vma merges with a copy and inherits its anon_vma',
  );
  assert.equal(t.anon[rig.at(40)], 5);
  assert.equal(rig.commit(), 0);
  assert.deepEqual(rig.list().slice(-2), ['40-48@40 a5 f33', '60-64@60 a5 f33']);
});

test('modifying the middle of a VMA splits it in three with the right offsets, and re-merges', () => {
  const rig = new Rig();
  rig.add(0, 12, R, { anon: 7 });
  assert.equal(modify(rig, 4, 8, RW), 0);
  assert.deepEqual(rig.list(), ['0-4@0 a7 f31', '4-8@4 a7 f33', '8-12@8 a7 f31']);
  assert.equal(rig.mapCount, 3);
  assert.equal(modify(rig, 4, 8, R), 0);
  assert.deepEqual(rig.list(), ['0-12@0 a7 f31']);
  assert.equal(rig.mapCount, 1);
});

test('modifying an edge moves the boundary into a compatible neighbour (adjust next / prev start)', () => {
  const rig = new Rig();
  rig.add(0, 8, R);
  rig.add(8, 12, RW, { anon: 3 });
  assert.equal(modify(rig, 4, 8, RW), 0);
  assert.deepEqual(rig.list(), ['0-4@0 f31', '4-12@4 a3 f33'], 'next grows down over the changed tail');
  assert.equal(modify(rig, 4, 6, R), 0);
  assert.deepEqual(
    rig.list(),
    ['0-6@0 a3 f31', '6-12@6 a3 f33'],
    'prev grows over the changed head, takes the anon_vma',
  );
});

test('expand (brk-style just_expand) and shrink (unmap of a tail)', () => {
  const rig = new Rig();
  rig.add(0, 4, RW);
  rig.add(8, 12, RW);
  rig.begin();
  const start = BASE + 4 * P;
  const f = {
    ...vmaFields(),
    start,
    end: start + 4 * P,
    pgoff: start / P,
    flags: RW,
  };
  ms.forNew(rig.at(0), rig.at(8), start, start + 4 * P, start / P, f);
  ms.justExpand = true;
  assert.ok(rig.layer.mergeNewRange(ms) >= 0);
  assert.equal(rig.commit(), 0);
  assert.deepEqual(rig.list(), ['0-8@0 f33', '8-12@8 f33'], 'just_expand never takes next');
  rig.begin();
  assert.equal(rig.layer.unmapRange(rig.at(6), BASE + 6 * P, BASE + 10 * P), 4);
  assert.equal(rig.commit(), 0);
  assert.deepEqual(rig.list(), ['0-6@0 f33', '10-12@10 f33']);
});

test('split refuses at max_map_count; unmapping a middle piece too', () => {
  const rig = new Rig();
  rig.add(0, 12, R);
  rig.layer.maxMapCount = 1;
  assert.equal(modify(rig, 4, 8, RW), -ENOMEM);
  rig.begin();
  assert.equal(rig.layer.unmapRange(rig.at(4), BASE + 4 * P, BASE + 8 * P), -ENOMEM);
  rig.commit();
  assert.deepEqual(rig.list(), ['0-12@0 f31']);
});

test('an allocation failure at commit leaves records and index untouched (rollback)', () => {
  const injector = new FailureInjector();
  const arena = VmaArena.create(8, 64, injector);
  const index = new ArrayRangeIndex(injector);
  const txn = new VmaTxn(arena, index, (h) => arena.arena.free(h));
  insertCommitted(txn, 12);
  const live = arena.arena.live;
  for (const k of [0, 1, 2]) {
    txn.reset();
    const v = txn.vmaAt(BASE);
    txn.split(v, BASE + 4 * P, false);
    txn.split(v, BASE + 2 * P, false);
    injector.failAfter(k);
    const r = txn.commit();
    injector.disarm();
    if (r === 0) break;
    assert.equal(r, -ENOMEM);
    assert.equal(arena.arena.live, live, 'no record leaked');
    assert.equal(index.count(), 1);
    assert.equal(arena.end(index.load(BASE, { first: 0, last: 0, value: 0 })), BASE + 12 * P);
  }
});

/** An index that records every store the commit makes, as `first-last:value` in pages from BASE. */
class StoreLog extends ArrayRangeIndex {
  readonly log: string[] = [];
  override store(first: number, last: number, value: number): number {
    this.log.push(`${(first - BASE) / P}-${(last + 1 - BASE) / P}:${value === 0 ? 'erase' : 'vma'}`);
    return super.store(first, last, value);
  }
}

test('commit writes each range once: no erase under a store (split, merge back, punch a hole)', () => {
  const arena = VmaArena.create(8, 64);
  const index = new StoreLog();
  const txn = new VmaTxn(arena, index, (h) => arena.arena.free(h));
  insertCommitted(txn, 64);
  const committed = (): string[] => {
    index.log.length = 0;
    assert.equal(txn.commit(), 0);
    return [...index.log].sort();
  };
  // Split page 10 out of [0, 64): the shrunk record keeps its entry; two stores, nothing erased.
  txn.reset();
  const whole = txn.vmaAt(BASE);
  const upper = txn.split(whole, BASE + 10 * P, false);
  txn.split(upper, BASE + 11 * P, false);
  assert.deepEqual(committed(), ['10-11:vma', '11-64:vma']);
  // Merge the three back: one store.
  txn.reset();
  const a = txn.vmaAt(BASE);
  const b = txn.vmaAt(BASE + 10 * P);
  const c = txn.vmaAt(BASE + 11 * P);
  txn.remove(b);
  txn.remove(c);
  txn.setRange(a, BASE, BASE + 64 * P, 0);
  assert.deepEqual(committed(), ['0-64:vma']);
  // Unmap pages [4, 8): one store of the upper half and one erase of the hole.
  txn.reset();
  const v = txn.vmaAt(BASE);
  const hi = txn.split(v, BASE + 4 * P, false);
  const tail = txn.split(hi, BASE + 8 * P, false);
  txn.remove(hi);
  assert.ok(txn.isLive(tail));
  assert.deepEqual(committed(), ['4-8:erase', '8-64:vma']);
  assert.equal(index.count(), 2);
  assert.equal(arena.arena.live, 2);
});
