/**
 * VMA_FIELDS is the one list of a VMA's fields: every field goes through the record, a
 * transaction's slots and the merge state by that list alone. Each test walks the table, so a
 * field added to it is covered without touching this file.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MergeState } from '../../src/mm/vma.js';
import { VMA_FIELDS, VmaArena, vmaFields } from '../../src/mm/vma-record.js';
import { VmaTxn } from '../../src/mm/vma-txn.js';
import { ArrayRangeIndex } from '../support/array-range-index.js';

const P = 4096;
const BASE = 0x7f0000000000;

/** Distinct values per field (page-aligned for the range, small integers for the rest). */
function sample(seed: number): ReturnType<typeof vmaFields> {
  const f = vmaFields();
  VMA_FIELDS.forEach((field, i) => {
    f[field.name] = 100 * seed + i + 1;
  });
  f.start = BASE + seed * 16 * P;
  f.end = f.start + 4 * P;
  return f;
}

test('every field survives insert, commit, the record and a reload into another transaction', () => {
  const arena = VmaArena.create(8, 64);
  const index = new ArrayRangeIndex();
  const txn = new VmaTxn(arena, index, (h) => arena.arena.free(h));
  const f = sample(1);
  txn.insert(f);
  assert.equal(txn.commit(), 0);
  const h = index.load(f.start, { first: 0, last: 0, value: 0 });
  VMA_FIELDS.forEach((field, i) => {
    assert.equal(arena.field(h, i), f[field.name], `record field ${field.name}`);
  });
  const again = new VmaTxn(arena, index, (x) => arena.arena.free(x));
  const s = again.vmaAt(f.start);
  for (const field of VMA_FIELDS)
    assert.equal(again[field.name][s], f[field.name], `slot field ${field.name}`);
});

test('the merge state takes every field from a proposal and from an existing VMA', () => {
  const arena = VmaArena.create(8, 64);
  const txn = new VmaTxn(arena, new ArrayRangeIndex(), (h) => arena.arena.free(h));
  const f = sample(2);
  const s = txn.insert(f);
  const ms = new MergeState();
  ms.forNew(-1, -1, f.start, f.end, f.pgoff, f);
  for (const field of VMA_FIELDS) assert.equal(ms[field.name], f[field.name], `forNew ${field.name}`);
  const ms2 = new MergeState().forVma(txn, -1, s, f.start, f.end);
  for (const field of VMA_FIELDS) assert.equal(ms2[field.name], f[field.name], `forVma ${field.name}`);
});

test('a split copies every field to the new VMA (the offset moves with the range)', () => {
  const arena = VmaArena.create(8, 64);
  const txn = new VmaTxn(arena, new ArrayRangeIndex(), (h) => arena.arena.free(h));
  const f = sample(3);
  const s = txn.insert(f);
  const upper = txn.split(s, f.start + P, false);
  for (const field of VMA_FIELDS) {
    if (field.merge === 'range' || field.merge === 'offset') continue;
    assert.equal(txn[field.name][upper], f[field.name], `split copies ${field.name}`);
  }
  assert.equal(txn.pgoff[upper], f.pgoff + 1);
  assert.equal(txn.start[upper], f.start + P);
});
