/**
 * The bytes of physical memory (src/mem/phys-memory.ts): a shared WebAssembly.Memory sized in
 * 64 KiB pages, its memmove (overlap both ways, offsets from 2^31 on, out of bounds refused with
 * nothing copied), and PhysMem's views over it on this thread and on another CPU.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PhysMem } from '../../src/mem/frames.js';
import { PAGE_SIZE } from '../../src/mem/page.js';
import { allocPhysMemory, physMove } from '../../src/mem/phys-memory.js';

function fill(u8: Uint8Array, at: number, len: number, seed: number): void {
  for (let i = 0; i < len; i++) u8[at + i] = (i * 31 + seed) & 0xff;
}

test('a shared memory of whole 64 KiB pages, at least the bytes asked; over 4 GiB is refused', () => {
  const m = allocPhysMemory(100_000);
  assert.ok(m.buffer instanceof SharedArrayBuffer);
  assert.equal(m.buffer.byteLength, 2 * 65536);
  assert.equal(allocPhysMemory(65536).buffer.byteLength, 65536);
  assert.throws(() => allocPhysMemory(2 ** 32 + 1), RangeError);
});

test('move is memmove: forward and backward overlaps, any length and alignment', () => {
  const m = allocPhysMemory(65536);
  const u8 = new Uint8Array(m.buffer);
  const move = physMove(m);
  for (const [dst, src, len] of [
    [1000, 0, 3000], // destination after the source, overlapping
    [0, 1000, 3000], // before it, overlapping
    [20_001, 7, 9_999], // apart, odd offsets
    [500, 500, 100], // onto itself
  ]) {
    fill(u8, 0, 65536, dst + src);
    const expected = u8.slice();
    expected.set(u8.slice(src, src + len), dst);
    move(dst, src, len);
    assert.deepEqual(u8, expected, `move(${dst}, ${src}, ${len})`);
  }
});

test('offsets from 2^31 on reach the upper half; out of bounds throws with nothing copied', () => {
  const m = allocPhysMemory(2 ** 31 + 65536); // reserved: only the pages touched are committed
  const u8 = new Uint8Array(m.buffer);
  const move = physMove(m);
  const high = 2 ** 31 + 4096;
  fill(u8, high, 5000, 3);
  move(100, high, 5000);
  assert.deepEqual(u8.subarray(100, 5100), u8.subarray(high, high + 5000));
  fill(u8, 0, 5000, 9);
  move(high + 1, 0, 5000);
  assert.deepEqual(u8.subarray(high + 1, high + 5001), u8.subarray(0, 5000));
  const before = u8.slice(0, 8192);
  assert.throws(() => move(0, m.buffer.byteLength - 100, 200));
  assert.deepEqual(u8.subarray(0, 8192), before, 'nothing copied');
});

test("PhysMem's views and move share one memory: a move is seen through bytes, also by an attached PhysMem", () => {
  const mem = PhysMem.create({ frames: 64 });
  const other = PhysMem.attach(mem.describe());
  const a = mem.allocFrame(1, 0, 0);
  const b = mem.allocFrame(1, 0, 0);
  fill(mem.bytes, a * PAGE_SIZE, PAGE_SIZE, 5);
  other.move(b * PAGE_SIZE, a * PAGE_SIZE, PAGE_SIZE);
  assert.deepEqual(
    mem.bytes.subarray(b * PAGE_SIZE, (b + 1) * PAGE_SIZE),
    mem.bytes.subarray(a * PAGE_SIZE, (a + 1) * PAGE_SIZE),
  );
  assert.notEqual(other.move, mem.move, 'each view has its own instance');
  mem.putPage(a);
  mem.putPage(b);
});
