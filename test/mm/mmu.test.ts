/**
 * Loads and stores through a process's Mmu (AddressSpace.mmu): the miss handler is the page-fault
 * path (zero page on a read, a frame on a write, SEGV_MAPERR / SEGV_ACCERR / SIGBUS past EOF), and
 * munmap, mprotect, mremap and MADV_DONTNEED shoot the old translations down, so the next access
 * sees the new state. Exit returns every frame.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kernel } from '../../src/kernel/kernel.js';
import type { Process } from '../../src/kernel/process.js';
import { ZERO_PFN } from '../../src/mem/page.js';
import { PTE_DIRTY, PTE_WRITE, ptePfn } from '../../src/mem/pte.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
} from '../../src/mm/vm-flags.js';
import { resetVmaLockEvents, vmaLockEvents } from '../../src/mm/vma-lock.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { ANON, BASE, P, RW, setup } from '../support/process-fixture.js';

function finish(kernel: Kernel, proc: Process): void {
  proc.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.equal(proc.mm.pt.live, 0, 'page tables left');
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

function fault(fn: () => unknown, code: string, address: number, access?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MemoryFault, String(e));
    assert.equal(e.code, code);
    assert.equal(e.address, address);
    if (access !== undefined) assert.equal(e.access, access);
    return true;
  });
}

test('a read of fresh anonymous memory is the zero page; a store allocates and reads back', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  assert.equal(proc.mm.mmu(), mmu, 'one Mmu per facade');
  proc.mm.mmap(BASE, 4 * P, RW, ANON);
  assert.equal(mmu.load32(BASE + 8), 0);
  assert.equal(ptePfn(proc.mm.pt.lookupPte(BASE)), ZERO_PFN);
  mmu.store32(BASE + 8, 0x12345678);
  const e = proc.mm.pt.lookupPte(BASE);
  assert.notEqual(ptePfn(e), ZERO_PFN, 'the store replaced the zero page');
  assert.equal(e & (PTE_WRITE | PTE_DIRTY), PTE_WRITE | PTE_DIRTY, 'a write fault leaves WRITE and DIRTY');
  assert.equal(mmu.load32(BASE + 8), 0x12345678);
  assert.equal(mmu.load32(BASE + 12), 0);
  mmu.store8(BASE + 3 * P + 5, 7);
  assert.equal(mmu.load8(BASE + 3 * P + 5), 7);
  mmu.storeF64(BASE + P, 1.5);
  assert.equal(mmu.loadF64(BASE + P), 1.5);
  // A page-crossing store faults both pages in.
  mmu.store32(BASE + 2 * P - 2, -1);
  assert.equal(mmu.load32(BASE + 2 * P - 2), -1);
  finish(kernel, proc);
});

test('faults: read-only store SEGV_ACCERR, unmapped SEGV_MAPERR, past EOF SIGBUS, shared memory faults in; the process stays usable', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  proc.mm.mmap(BASE, P, PROT_READ, ANON);
  proc.mm.mmap(BASE + 2 * P, P, RW, ANON);
  assert.equal(mmu.load32(BASE), 0);
  fault(() => mmu.store32(BASE + 4, 1), 'SEGV_ACCERR', BASE + 4, 'write');
  fault(() => mmu.load8(BASE + P + 1), 'SEGV_MAPERR', BASE + P + 1, 'read');
  // No NX bit: a fetch from a present readable page is not checked; a fetch that faults is.
  fault(() => mmu.fetch32(BASE + P), 'SEGV_MAPERR', BASE + P, 'exec');
  mmu.store32(BASE + 2 * P, 5);
  assert.equal(mmu.load32(BASE + 2 * P), 5);

  // Shared anonymous memory is a shmem file: it faults in (file-fault.ts).
  proc.mm.mmap(BASE + 4 * P, P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  assert.equal(mmu.load32(BASE + 4 * P), 0);
  mmu.store32(BASE + 4 * P, 3);
  assert.equal(mmu.load32(BASE + 4 * P), 3);
  // A file mapping past the end of the file: SIGBUS (BUS_ADRERR) from the first page past it.
  const fd = proc.open({ size: P + 1, writable: false, name: 'data.bin' });
  proc.mm.mmap(BASE + 5 * P, 3 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd);
  assert.equal(mmu.load32(BASE + 6 * P), 0, 'the partial last page is inside the file');
  fault(() => mmu.load32(BASE + 7 * P), 'BUS_ADRERR', BASE + 7 * P);
  proc.close(fd);
  // A PROT_EXEC-only private mapping: fetches fault the page in.
  proc.mm.mmap(BASE + 8 * P, P, PROT_EXEC, ANON);
  assert.equal(mmu.fetch32(BASE + 8 * P), 0);

  mmu.store32(BASE + 2 * P + 4, 6);
  assert.equal(mmu.load32(BASE + 2 * P + 4), 6);
  assert.equal(mmu.copyOut(BASE + 2 * P + P - 4, new Uint8Array(8)), 4, 'copyOut stops at the unmapped page');
  finish(kernel, proc);
});

test('munmap, mprotect, MADV_DONTNEED and mremap shoot the old translations down', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  proc.mm.mmap(BASE, 8 * P, RW, ANON);
  for (let i = 0; i < 8; i++) mmu.store32(BASE + i * P, 100 + i);

  proc.mm.munmap(BASE + 7 * P, P);
  fault(() => mmu.load32(BASE + 7 * P), 'SEGV_MAPERR', BASE + 7 * P);

  proc.mm.mprotect(BASE, 2 * P, PROT_READ);
  assert.equal(mmu.load32(BASE), 100, 'read-only keeps the data readable');
  fault(() => mmu.store32(BASE + P, 1), 'SEGV_ACCERR', BASE + P);
  proc.mm.mprotect(BASE, 2 * P, PROT_NONE);
  fault(() => mmu.load32(BASE), 'SEGV_ACCERR', BASE);
  proc.mm.mprotect(BASE, 2 * P, RW);
  assert.equal(mmu.load32(BASE + P), 101, 'the data survived the protection changes');
  mmu.store32(BASE + P, 201);
  assert.equal(mmu.load32(BASE + P), 201);

  proc.mm.madvise(BASE + 2 * P, P, MADV_DONTNEED);
  assert.equal(mmu.load32(BASE + 2 * P), 0, 'MADV_DONTNEED: the next read is the zero page');

  const to = BASE + 64 * P;
  assert.equal(proc.mm.mremap(BASE + 3 * P, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, to), to);
  fault(() => mmu.load32(BASE + 3 * P), 'SEGV_MAPERR', BASE + 3 * P);
  for (let i = 0; i < 4; i++) assert.equal(mmu.load32(to + i * P), 103 + i, 'the data moved with its page');
  mmu.store32(to, 7);
  assert.equal(mmu.load32(to), 7);
  assert.ok(proc.mm.tlb.stats().shootdowns > 0);
  finish(kernel, proc);
});

test('a store below a VM_GROWSDOWN stack grows it; exit after detach', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  const top = BASE + 64 * P;
  proc.mm.mmap(top - 4 * P, 4 * P, RW, ANON | MAP_GROWSDOWN);
  mmu.store32(top - 5 * P, 9);
  assert.equal(mmu.load32(top - 5 * P), 9);
  assert.equal(Number(proc.mm.vmas()[0].start), top - 5 * P);
  fault(() => mmu.load32(top), 'SEGV_MAPERR', top);
  // Growth refused (within stack_guard_gap of an accessible VMA below): SEGV_MAPERR.
  proc.mm.mmap(top - 40 * P, P, RW, ANON);
  fault(() => mmu.store32(top - 38 * P, 1), 'SEGV_MAPERR', top - 38 * P);
  assert.equal(Number(proc.mm.vmas()[1].start), top - 5 * P, 'the stack did not grow');
  proc.detach();
  finish(kernel, proc);
});

test('faults in a VMA with its anon_vma take the per-VMA-lock fast path, without mmap_lock', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  proc.mm.mmap(BASE, 8 * P, RW, ANON);
  mmu.store32(BASE, 1); // the first write fault gives the VMA its anon_vma (mmap_lock path)
  resetVmaLockEvents(proc.mm.locks);
  mmu.store32(BASE + P, 2);
  assert.equal(mmu.load32(BASE + 2 * P), 0);
  mmu.store32(BASE + 2 * P, 3); // copy-on-write of the zero page, then its shootdown
  const ev = vmaLockEvents(proc.mm.locks);
  assert.equal(ev.mmapFallbacks, 0, 'no mmap_lock');
  assert.equal(ev.success, 3);
  const e = proc.mm.pt.lookupPte(BASE + 2 * P);
  assert.equal(e & (PTE_WRITE | PTE_DIRTY), PTE_WRITE | PTE_DIRTY);
  assert.deepEqual([mmu.load32(BASE), mmu.load32(BASE + P), mmu.load32(BASE + 2 * P)], [1, 2, 3]);
  proc.mm.mprotect(BASE + 4 * P, P, PROT_READ);
  fault(() => mmu.store8(BASE + 4 * P, 1), 'SEGV_ACCERR', BASE + 4 * P);
  assert.equal(
    vmaLockEvents(proc.mm.locks).mmapFallbacks,
    0,
    'the access error is answered on the fast path',
  );
  finish(kernel, proc);
});
