/**
 * Process.fork (dup_mmap, src/mm/fork.ts) driven through the processes' Mmus on one CPU: the
 * copy-on-write cases of /work/shared/cow-scenarios.md (1, 2 and 8), MADV_DONTFORK and
 * MADV_WIPEONFORK, locks not inherited, descriptors copied, ENOMEM leaving nothing behind, the
 * wp-reuse of a page whose other sharer exited, and every frame and identity back after both exit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmError } from '../../src/errno.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import type { Process } from '../../src/kernel/process.js';
import { rangeOut } from '../../src/maple/api.js';
import { PG_ANON_EXCLUSIVE, ZERO_PFN } from '../../src/mem/page.js';
import { PTE_WRITE, ptePfn } from '../../src/mem/pte.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import {
  MADV_DONTFORK,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MCL_CURRENT,
  MCL_FUTURE,
  PROT_NONE,
  PROT_READ,
  VM_LOCKED,
} from '../../src/mm/vm-flags.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { ANON, BASE, P, RW, setup as setupProcess } from '../support/process-fixture.js';

function setup(injector?: FailureInjector): { kernel: Kernel; parent: Process } {
  const { kernel, proc } = setupProcess(4096, injector);
  return { kernel, parent: proc };
}

function exitAll(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  for (const p of procs) assert.equal(p.mm.pt.live, 0, 'page tables left');
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

/** Fills page `i` of BASE with words derived from `seed`. */
function fill(proc: Process, i: number, seed: number): void {
  const mmu = proc.mm.mmu();
  for (let w = 0; w < P; w += 256) mmu.store32(BASE + i * P + w, seed + w);
}

function expectPage(proc: Process, i: number, seed: number, what: string): void {
  const mmu = proc.mm.mmu();
  for (let w = 0; w < P; w += 256) assert.equal(mmu.load32(BASE + i * P + w), seed + w, `${what}: word ${w}`);
}

function pfnAt(proc: Process, addr: number): number {
  return ptePfn(proc.mm.pt.lookupPte(addr));
}

function vmaFlags(proc: Process, addr: number): number {
  const out = rangeOut();
  assert.notEqual(proc.mm.index.next(addr, addr, out), 0, `no VMA at ${addr.toString(16)}`);
  return proc.mm.arena.flags(out.value);
}

function vmaAnon(proc: Process, addr: number): number {
  const out = rangeOut();
  assert.notEqual(proc.mm.index.next(addr, addr, out), 0);
  return proc.mm.arena.anon(out.value);
}

test('basic COW: parent fills a page; fork; parent writes; the child still sees the old data (and the reverse)', () => {
  const { kernel, parent } = setup();
  const mem = kernel.mem;
  parent.mm.mmap(BASE, 4 * P, RW, ANON);
  fill(parent, 0, 100);
  fill(parent, 1, 200);
  assert.equal(parent.mm.mmu().load32(BASE + 2 * P), 0, 'page 2: the zero page');
  const pfn0 = pfnAt(parent, BASE);
  const child = parent.fork();
  assert.notEqual(child.pid, parent.pid);
  assert.equal(kernel.counts().processes, 2);
  // Shared read-only, no longer exclusive; the zero page copied as it is.
  assert.equal(pfnAt(child, BASE), pfn0);
  assert.equal(parent.mm.pt.lookupPte(BASE) & PTE_WRITE, 0, 'the parent lost WRITE');
  assert.equal(child.mm.pt.lookupPte(BASE) & PTE_WRITE, 0);
  assert.equal(mem.testFlag(pfn0, PG_ANON_EXCLUSIVE), false);
  assert.equal(mem.mapcountOf(pfn0), 2);
  assert.equal(mem.refcountOf(pfn0), 2);
  assert.equal(pfnAt(child, BASE + 2 * P), ZERO_PFN);
  assert.equal(child.mm.mapCount, parent.mm.mapCount);
  assert.equal(vmaAnon(child, BASE), vmaAnon(parent, BASE), 'the child shares the anon_vma identity');
  expectPage(child, 0, 100, 'child before the writes');

  // Parent writes: it copies; the child keeps the snapshot.
  fill(parent, 0, 1000);
  assert.notEqual(pfnAt(parent, BASE), pfn0, 'the parent copied');
  expectPage(parent, 0, 1000, 'parent after its write');
  expectPage(child, 0, 100, 'child after the parent wrote');
  // Child writes page 1: the parent is unaffected.
  fill(child, 1, 2000);
  expectPage(child, 1, 2000, 'child after its write');
  expectPage(parent, 1, 200, 'parent after the child wrote');
  // Page 0 is the child's alone now (refcount 1, not exclusive): its write reuses it in place.
  assert.equal(mem.refcountOf(pfn0), 1);
  fill(child, 0, 3000);
  assert.equal(pfnAt(child, BASE), pfn0, 'wp reuse: refcount 1');
  assert.equal(mem.testFlag(pfn0, PG_ANON_EXCLUSIVE), true, 'reused pages become exclusive');
  expectPage(parent, 0, 1000, 'parent unaffected by the reuse');
  // Zero-page entries: a write on each side gets its own frame.
  parent.mm.mmu().store32(BASE + 2 * P, 7);
  assert.equal(child.mm.mmu().load32(BASE + 2 * P), 0);
  exitAll(kernel, parent, child);
});

test('basic COW with the mprotect optimisation: mprotect(R) then mprotect(RW) before the write: same outcome', () => {
  const { kernel, parent } = setup();
  parent.mm.mmap(BASE, 2 * P, RW, ANON);
  fill(parent, 0, 100);
  const child = parent.fork();
  parent.mm.mprotect(BASE, 2 * P, PROT_READ);
  parent.mm.mprotect(BASE, 2 * P, RW);
  fill(parent, 0, 500);
  expectPage(child, 0, 100, 'child after the parent wrote');
  expectPage(parent, 0, 500, 'parent');
  // The reverse, with the child doing the mprotects.
  child.mm.mprotect(BASE, 2 * P, PROT_READ);
  child.mm.mprotect(BASE, 2 * P, RW);
  fill(child, 0, 900);
  expectPage(parent, 0, 500, 'parent after the child wrote');
  expectPage(child, 0, 900, 'child');
  // Exit in the other order.
  exitAll(kernel, child, parent);
});

test('a parent whose child exited reuses its pages on the next write (refcount 1)', () => {
  const { kernel, parent } = setup();
  parent.mm.mmap(BASE, 2 * P, RW, ANON);
  fill(parent, 0, 100);
  const pfn = pfnAt(parent, BASE);
  const child = parent.fork();
  child.exit();
  rcuBarrier();
  assert.equal(kernel.mem.refcountOf(pfn), 1);
  fill(parent, 0, 400);
  assert.equal(pfnAt(parent, BASE), pfn, 'reused in place');
  expectPage(parent, 0, 400, 'parent');
  exitAll(kernel, parent);
});

test('MADV_DONTFORK: the range is absent in the child', () => {
  const { kernel, parent } = setup();
  parent.mm.mmap(BASE, 4 * P, RW, ANON);
  fill(parent, 0, 100);
  fill(parent, 2, 300);
  parent.mm.madvise(BASE + 2 * P, 2 * P, MADV_DONTFORK);
  const child = parent.fork();
  assert.equal(child.mm.mapCount, parent.mm.mapCount - 1);
  expectPage(child, 0, 100, 'child, copied part');
  assert.throws(
    () => child.mm.mmu().load32(BASE + 2 * P),
    (e: unknown) => e instanceof MemoryFault && e.code === 'SEGV_MAPERR',
  );
  // The parent's DONTFORK range kept its page, writable and exclusive.
  const e = parent.mm.pt.lookupPte(BASE + 2 * P);
  assert.notEqual(e & PTE_WRITE, 0);
  assert.equal(kernel.mem.testFlag(ptePfn(e), PG_ANON_EXCLUSIVE), true);
  expectPage(parent, 2, 300, 'parent');
  exitAll(kernel, parent, child);
});

test('MADV_WIPEONFORK: the range is zero in the child, under a new identity', () => {
  const { kernel, parent } = setup();
  parent.mm.mmap(BASE, 2 * P, RW, ANON);
  parent.mm.mmap(BASE + 2 * P, 2 * P, RW, ANON);
  fill(parent, 0, 100);
  fill(parent, 2, 300);
  parent.mm.madvise(BASE + 2 * P, 2 * P, MADV_WIPEONFORK);
  const child = parent.fork();
  assert.equal(child.mm.pt.lookupPte(BASE + 2 * P), 0, 'no entries copied');
  assert.equal(vmaAnon(child, BASE + 2 * P), 0);
  assert.equal(child.mm.mmu().load32(BASE + 2 * P), 0);
  fill(child, 2, 700);
  expectPage(child, 2, 700, 'child');
  expectPage(parent, 2, 300, 'parent keeps its data');
  expectPage(child, 0, 100, 'the rest is copied');
  exitAll(kernel, parent, child);
});

test('VM_LOCKED is not inherited: the child has no locked VMAs, locked_vm 0 and def_flags without VM_LOCKED', () => {
  const { kernel, parent } = setup();
  parent.mm.mmap(BASE, 4 * P, RW, ANON);
  parent.mm.mlockall(MCL_CURRENT | MCL_FUTURE);
  assert.equal(parent.mm.lockedPages(), 4);
  assert.notEqual(parent.mm.defFlags & VM_LOCKED, 0);
  parent.mm.brk(parent.mm.startBrk + 3 * P);
  const child = parent.fork();
  assert.equal(vmaFlags(child, BASE) & VM_LOCKED, 0);
  assert.equal(vmaFlags(parent, BASE) & VM_LOCKED, VM_LOCKED);
  assert.equal(child.mm.lockedPages(), 0);
  assert.equal(child.mm.defFlags & VM_LOCKED, 0);
  assert.equal(child.mm.curBrk, parent.mm.curBrk);
  assert.equal(child.mm.startBrk, parent.mm.startBrk);
  assert.equal(child.mm.mapCount, parent.mm.mapCount);
  // mlockall populated the pages: the child shares them.
  assert.equal(pfnAt(child, BASE), pfnAt(parent, BASE));
  exitAll(kernel, parent, child);
});

test('R/W longterm pin, then fork: the pinned page is copied at fork, so a parent write stays visible through the pin', () => {
  const { kernel, parent } = setup();
  const mem = kernel.mem;
  parent.mm.mmap(BASE, 2 * P, RW, ANON);
  fill(parent, 0, 100);
  fill(parent, 1, 200);
  const pinned = pfnAt(parent, BASE);
  assert.ok(mem.pinPage(pinned));
  const child = parent.fork();
  assert.notEqual(pfnAt(child, BASE), pinned, 'the child got a copy');
  assert.notEqual(parent.mm.pt.lookupPte(BASE) & PTE_WRITE, 0, 'the parent keeps its page writable');
  assert.equal(mem.testFlag(pinned, PG_ANON_EXCLUSIVE), true);
  assert.equal(mem.mapcountOf(pinned), 1);
  expectPage(child, 0, 100, 'child copy');
  // The parent writes through the mapping: the pin (the frame itself) sees it.
  parent.mm.mmu().store32(BASE + 8, 0xabcdef);
  assert.equal(pfnAt(parent, BASE), pinned);
  assert.equal(mem.i32[(pinned * P + 8) / 4], 0xabcdef, 'the pin sees the write');
  assert.equal(child.mm.mmu().load32(BASE + 8), 0, 'the child does not');
  // The unpinned page was shared as usual.
  assert.equal(pfnAt(child, BASE + P), pfnAt(parent, BASE + P));
  mem.unpinPage(pinned);
  exitAll(kernel, parent, child);
});

test('a pinned page under PROT_NONE or PROT_READ is copied for the child with the same protection', () => {
  const { kernel, parent } = setup();
  const mem = kernel.mem;
  parent.mm.mmap(BASE, 2 * P, RW, ANON);
  fill(parent, 0, 100);
  fill(parent, 1, 200);
  const pinned = [pfnAt(parent, BASE), pfnAt(parent, BASE + P)];
  for (const pfn of pinned) assert.ok(mem.pinPage(pfn));
  parent.mm.mprotect(BASE, P, PROT_NONE);
  parent.mm.mprotect(BASE + P, P, PROT_READ);
  const child = parent.fork();
  const cmmu = child.mm.mmu();
  assert.notEqual(pfnAt(child, BASE), pinned[0], 'the child got a copy');
  assert.throws(
    () => cmmu.load32(BASE),
    (e: unknown) => e instanceof MemoryFault && e.code === 'SEGV_ACCERR',
    'the copy of a PROT_NONE page stays inaccessible',
  );
  expectPage(child, 1, 200, 'child copy of the read-only page');
  assert.throws(
    () => cmmu.store32(BASE + P, 1),
    (e: unknown) => e instanceof MemoryFault && e.code === 'SEGV_ACCERR',
    'the copy of a read-only page stays read-only',
  );
  child.mm.mprotect(BASE, P, RW);
  expectPage(child, 0, 100, 'child copy, made accessible');
  for (const pfn of pinned) mem.unpinPage(pfn);
  exitAll(kernel, parent, child);
});

test('descriptors are copied (each takes a reference); shared and file VMAs come along without entries', () => {
  const { kernel, parent } = setup();
  const fd = parent.open({ size: 4 * P, writable: true, name: 'data.bin' });
  parent.mm.mmap(BASE, 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd);
  parent.mm.mmap(BASE + 4 * P, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  const child = parent.fork();
  assert.equal(child.fds.count, 1);
  assert.equal(child.mm.mapCount, parent.mm.mapCount);
  assert.deepEqual(
    child.mm.vmas().map((v) => [v.start, v.end, v.perms]),
    parent.mm.vmas().map((v) => [v.start, v.end, v.perms]),
  );
  parent.close(fd);
  // The child's descriptor still names the file.
  child.mm.mmap(BASE + 8 * P, P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd);
  child.close(fd);
  exitAll(kernel, parent, child);
});

test('fork fails with ENOMEM when a frame cannot be allocated, leaving nothing allocated', () => {
  const injector = new FailureInjector();
  const { kernel, parent } = setup(injector);
  const mem = kernel.mem;
  parent.mm.mmap(BASE, 4 * P, RW, ANON);
  for (let i = 0; i < 4; i++) fill(parent, i, 100 * i);
  const pins = [0, 2].map((i) => pfnAt(parent, BASE + i * P));
  for (const pfn of pins) assert.ok(mem.pinPage(pfn));
  for (const successes of [0, 1]) {
    rcuBarrier();
    mem.drainAll();
    const before = kernel.counts();
    injector.failAfter(successes);
    assert.throws(
      () => parent.fork(),
      (e: unknown) => e instanceof VmError && e.code === 'ENOMEM',
    );
    injector.disarm();
    rcuBarrier();
    mem.drainAll();
    assert.deepEqual(kernel.counts(), before, `after a failure at allocation ${successes}`);
    // The parent still works: its pages reused (refcount 1) or still exclusive.
    for (let i = 0; i < 4; i++) {
      expectPage(parent, i, 100 * i, 'parent after the failed fork');
      fill(parent, i, 100 * i);
    }
    assert.equal(pfnAt(parent, BASE), pins[0]);
  }
  const child = parent.fork();
  expectPage(child, 3, 300, 'child after a successful fork');
  for (const pfn of pins) mem.unpinPage(pfn);
  exitAll(kernel, parent, child);
});
