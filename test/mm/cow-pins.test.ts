/**
 * Get/pin-user-pages (src/mm/gup.ts) and the page-reference pipe (src/mm/pipe.ts) against the
 * copy-on-write cases of /work/shared/cow-scenarios.md that involve a pipe or a pin (3-7, 9-14),
 * on one CPU through each process's Mmu. Every case ends with its references put and every frame
 * and anon_vma back after both processes exit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EFAULT, EINVAL } from '../../src/errno.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { GUP_PIN_COUNTING_BIAS, PAGE_SIZE, PG_ANON_EXCLUSIVE } from '../../src/mem/page.js';
import { PTE_WRITE, ptePfn } from '../../src/mem/pte.js';
import { putUserPages, readPage, unpinUserPages, writePage } from '../../src/mm/gup.js';
import { Pipe } from '../../src/mm/pipe.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';

const P = PAGE_SIZE;
const BASE = 0x100000000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

function setup(): { kernel: Kernel; parent: Process } {
  const kernel = Kernel.create({ frames: 4096 });
  const parent = Process.create(kernel, { config: { privileged: true }, rcuFree: false });
  parent.mm.mmap(BASE, 2 * P, RW, ANON);
  fill(parent, 100);
  return { kernel, parent };
}

function exitAll(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), { processes: 0, frames: 0, files: 0, openFiles: 0, anonVmas: 0 });
}

/** Fills page 0 of BASE with words derived from `seed` through the process's Mmu. */
function fill(proc: Process, seed: number): void {
  const mmu = proc.mm.mmu();
  for (let w = 0; w < P; w += 256) mmu.store32(BASE + w, seed + w);
}

/** The words page 0 must hold after fill(seed), as bytes (little-endian). */
function expected(seed: number): Uint8Array {
  const b = new Uint8Array(P);
  const v = new DataView(b.buffer);
  for (let w = 0; w < P; w += 256) v.setUint32(w, seed + w, true);
  return b;
}

function expectBytes(got: Uint8Array, seed: number, what: string): void {
  const want = expected(seed);
  for (let w = 0; w < P; w += 256) {
    assert.equal(new DataView(got.buffer, got.byteOffset).getUint32(w, true), seed + w, `${what}: word ${w}`);
  }
  assert.equal(got.length, want.length);
}

function pins(result: number[] | number): number[] {
  assert.ok(Array.isArray(result), `GUP failed: ${String(result)}`);
  return result;
}

for (const mprotectOpt of [false, true]) {
  const n = mprotectOpt ? 4 : 3;
  test(`case ${n}: vmsplice before unmap in the child${mprotectOpt ? ' with the mprotect optimisation' : ''}: the pipe delivers the old data`, () => {
    const { kernel, parent } = setup();
    const child = parent.fork();
    const pipe = new Pipe(kernel.mem);
    assert.equal(pipe.spliceFrom(child.mm, BASE, P), P);
    child.mm.munmap(BASE, 2 * P);
    if (mprotectOpt) {
      parent.mm.mprotect(BASE, 2 * P, PROT_READ);
      parent.mm.mprotect(BASE, 2 * P, RW);
    }
    fill(parent, 900);
    expectBytes(pipe.read(P), 100, 'pipe');
    assert.equal(pipe.size, 0);
    pipe.close();
    exitAll(kernel, parent, child);
  });
}

for (const afterFork of [false, true]) {
  const n = afterFork ? 6 : 5;
  test(`case ${n}: vmsplice in the parent ${afterFork ? 'after' : 'before'} fork; parent unmaps; child writes: the pipe holds the parent's data`, () => {
    const { kernel, parent } = setup();
    const pipe = new Pipe(kernel.mem);
    let child: Process;
    if (afterFork) {
      child = parent.fork();
      assert.equal(pipe.spliceFrom(parent.mm, BASE, P), P);
    } else {
      assert.equal(pipe.spliceFrom(parent.mm, BASE, P), P);
      child = parent.fork();
    }
    parent.mm.munmap(BASE, 2 * P);
    fill(child, 700);
    expectBytes(pipe.read(P), 100, 'pipe');
    pipe.close();
    exitAll(kernel, parent, child);
  });
}

test('case 7: R/W longterm pin, then mprotect(R)/mprotect(RW); a write through the mapping is seen by the pin', () => {
  const { kernel, parent } = setup();
  const mem = kernel.mem;
  const [pfn] = pins(parent.mm.pinUserPages(BASE, 1, { write: true, longterm: true }));
  assert.equal(mem.refcountOf(pfn), 1 + GUP_PIN_COUNTING_BIAS);
  parent.mm.mprotect(BASE, 2 * P, PROT_READ);
  parent.mm.mprotect(BASE, 2 * P, RW);
  fill(parent, 300);
  expectBytes(readPage(mem, pfn, 0, P), 300, 'pin');
  // The device writes; the process sees it.
  writePage(mem, pfn, 8, new Uint8Array([1, 2, 3, 4]));
  assert.equal(parent.mm.mmu().load32(BASE + 8), 0x04030201);
  unpinUserPages(mem, [pfn]);
  exitAll(kernel, parent);
});

for (const [n, fast] of [
  [9, false],
  [10, true],
] as const) {
  test(`case ${n}: R/O longterm pin on a shared page (${fast ? 'GUP-fast' : 'GUP'}), child alive; the parent's write is seen by the pin`, () => {
    const { kernel, parent } = setup();
    const mem = kernel.mem;
    const child = parent.fork();
    const shared = ptePfn(parent.mm.pt.lookupPte(BASE));
    const opts = { write: false, longterm: true };
    const [pfn] = pins(
      fast ? parent.mm.pinUserPagesFast(BASE, 1, opts) : parent.mm.pinUserPages(BASE, 1, opts),
    );
    // Unshared: the parent got its own exclusive copy, still read-only; the child keeps the old.
    assert.notEqual(pfn, shared);
    assert.equal(mem.testFlag(pfn, PG_ANON_EXCLUSIVE), true);
    assert.equal(parent.mm.pt.lookupPte(BASE) & PTE_WRITE, 0);
    fill(parent, 500);
    assert.equal(ptePfn(parent.mm.pt.lookupPte(BASE)), pfn, 'the write reused the pinned page');
    expectBytes(readPage(mem, pfn, 0, P), 500, 'pin');
    const mmu = child.mm.mmu();
    assert.equal(mmu.load32(BASE + 256), 100 + 256, 'the child keeps its data');
    unpinUserPages(mem, [pfn]);
    exitAll(kernel, parent, child);
  });
}

for (const [n, fast] of [
  [11, false],
  [12, true],
] as const) {
  test(`case ${n}: R/O longterm pin on a previously shared page (${fast ? 'GUP-fast' : 'GUP'}), child exited: the write is seen by the pin`, () => {
    const { kernel, parent } = setup();
    const mem = kernel.mem;
    const child = parent.fork();
    const shared = ptePfn(parent.mm.pt.lookupPte(BASE));
    child.exit();
    const opts = { longterm: true };
    const [pfn] = pins(
      fast ? parent.mm.pinUserPagesFast(BASE, 1, opts) : parent.mm.pinUserPages(BASE, 1, opts),
    );
    assert.equal(pfn, shared, 'refcount 1: made exclusive in place');
    assert.equal(mem.testFlag(pfn, PG_ANON_EXCLUSIVE), true);
    fill(parent, 600);
    expectBytes(readPage(mem, pfn, 0, P), 600, 'pin');
    unpinUserPages(mem, [pfn]);
    exitAll(kernel, parent);
  });
}

for (const [n, fast] of [
  [13, false],
  [14, true],
] as const) {
  test(`case ${n}: R/O longterm pin on an exclusive page (${fast ? 'GUP-fast' : 'GUP'}) after mprotect(R); mprotect(RW); write: the pin sees it`, () => {
    const { kernel, parent } = setup();
    const mem = kernel.mem;
    const before = ptePfn(parent.mm.pt.lookupPte(BASE));
    parent.mm.mprotect(BASE, 2 * P, PROT_READ);
    const opts = { longterm: true };
    const [pfn] = pins(
      fast ? parent.mm.pinUserPagesFast(BASE, 1, opts) : parent.mm.pinUserPages(BASE, 1, opts),
    );
    assert.equal(pfn, before);
    parent.mm.mprotect(BASE, 2 * P, RW);
    fill(parent, 800);
    expectBytes(readPage(mem, pfn, 0, P), 800, 'pin');
    unpinUserPages(mem, [pfn]);
    exitAll(kernel, parent);
  });
}

test('GUP: partial counts, errors, zero page unshared for a pin, get references', () => {
  const { kernel, parent } = setup();
  const mem = kernel.mem;
  // Page 1 untouched (no entry): a read pin gives it a fresh exclusive page, not the zero page.
  const two = pins(parent.mm.pinUserPages(BASE, 2, {}));
  assert.equal(two.length, 2);
  assert.equal(mem.testFlag(two[1], PG_ANON_EXCLUSIVE), true);
  unpinUserPages(mem, two);
  // Past the mapping: the pages done so far; nothing mapped: EFAULT; bad address: EINVAL.
  const part = pins(parent.mm.getUserPages(BASE, 3, { write: true }));
  assert.equal(part.length, 2);
  putUserPages(mem, part);
  assert.equal(parent.mm.getUserPages(BASE + 2 * P, 1), -EFAULT);
  assert.equal(parent.mm.pinUserPages(BASE + 1, 1), -EINVAL);
  // A write pin of a read-only mapping: EFAULT.
  parent.mm.mprotect(BASE, 2 * P, PROT_READ);
  assert.equal(parent.mm.pinUserPages(BASE, 1, { write: true }), -EFAULT);
  // Pipe: partial pages, a read across pages, close puts the rest.
  parent.mm.mprotect(BASE, 2 * P, RW);
  const pipe = new Pipe(mem);
  assert.equal(pipe.spliceFrom(parent.mm, BASE + 256, P), P);
  const head = pipe.read(P - 256);
  assert.equal(new DataView(head.buffer).getUint32(0, true), 100 + 256);
  assert.equal(pipe.size, 256);
  pipe.close();
  assert.equal(pipe.spliceFrom(parent.mm, BASE, P), -EINVAL);
  exitAll(kernel, parent);
});
