/**
 * The page patterns of the copy-on-write and pin tests (cow-cpus.test.ts and its task, cow-pins):
 * a page filled from a seed through a process's Mmu, and checks of what a mapping, a pin (the
 * frame read as a device would) or a pipe shows against a seed. Every word of the page is
 * written and checked: a page that crossed between processes differs in all of them.
 */
import assert from 'node:assert/strict';
import type { Mmu } from '../../src/mem/mmu.js';
import { P } from '../support/process-fixture.js';

/** The map constants of the memory tests (BASE: where they map their anonymous pages). */
export { ANON, BASE, P, RW } from '../support/process-fixture.js';

/** The 32-bit word at byte `w` of a page filled from `seed` (distinct per seed and per word). */
export function wordOf(seed: number, w: number): number {
  return (Math.imul(seed, 0x9e3779b1) + w) | 0;
}

/** Fills the page at `addr` with wordOf(seed, w), through `mmu` (write faults as needed). */
export function fillPage(mmu: Mmu, addr: number, seed: number): void {
  for (let w = 0; w < P; w += 4) mmu.store32(addr + w, wordOf(seed, w));
}

/** Asserts that the page at `addr`, loaded through `mmu`, holds the words of `seed`. */
export function expectPage(mmu: Mmu, addr: number, seed: number, what: string): void {
  for (let w = 0; w < P; w += 4) {
    const got = mmu.load32(addr + w);
    if (got !== wordOf(seed, w))
      assert.fail(`${what}: word ${w} is ${hex(got)}, not ${hex(wordOf(seed, w))}`);
  }
}

/** Asserts that `bytes` (a page or a prefix of one, little-endian) hold the words of `seed`. */
export function expectBytes(bytes: Uint8Array, seed: number, what: string): void {
  assert.equal(bytes.length % 4, 0, `${what}: ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let w = 0; w < bytes.length; w += 4) {
    const got = view.getInt32(w, true);
    if (got !== wordOf(seed, w))
      assert.fail(`${what}: word ${w} is ${hex(got)}, not ${hex(wordOf(seed, w))}`);
  }
}

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16)}`;
}
