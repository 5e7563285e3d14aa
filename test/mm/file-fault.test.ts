/**
 * File and shared faults on one CPU (src/mm/file-fault.ts): a private mapping sees the file until
 * it writes; shared mappings see each other at once; past EOF and I/O errors are SIGBUS
 * (BUS_ADRERR); page_mkwrite dirties the page and a shared entry is writable only then; shmem is
 * shared across fork; GUP, populate, mincore and msync (MS_SYNC to a host file) work on file
 * pages; check-ptes accepts what faults build and reports a clean page mapped writable; the
 * 'global' design does the fault's I/O under mmap_lock (the validator's site count says where),
 * 'retry' and 'vma-lock' never do; nothing leaks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EFAULT, ENOMEM } from '../../src/errno.js';
import { getInjection, INJECT_FAULT, INJECT_MKWRITE, setInjection } from '../../src/fs/inject.js';
import { O_RDWR } from '../../src/fs/open-file.js';
import { findGetPage } from '../../src/fs/page-cache.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts, lockdepSiteCounts } from '../../src/lockdep/index.js';
import { KIND_FILE, PG_DIRTY } from '../../src/mem/page.js';
import { makePte, PTE_DIRTY, PTE_PRESENT, PTE_USER, PTE_WRITE, pteIndex, ptePfn } from '../../src/mem/pte.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import { checkFrameMaps, checkPtesLocked } from '../../src/mm/check-ptes.js';
import { FAULT_DESIGNS, type FaultDesign } from '../../src/mm/fault-design.js';
import { putUserPages } from '../../src/mm/gup.js';
import {
  MADV_DONTNEED,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MS_ASYNC,
  MS_SYNC,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';

const P = 4096;
const BASE = 0x200000000;
const RW = PROT_READ | PROT_WRITE;
const SHARED = MAP_SHARED | MAP_FIXED;
const PRIVATE = MAP_PRIVATE | MAP_FIXED;

function setup(design: FaultDesign = 'vma-lock'): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames: 4096 });
  return { kernel, proc: Process.create(kernel, { config: { privileged: true, design } }) };
}

function finish(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  for (const p of procs) p.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

/** The file id behind descriptor fd (its reference put again at once: the descriptor holds one). */
function fileOf(proc: Process, fd: number): number {
  const id = proc.mm.fds.fget(fd);
  proc.kernel.files.put(id);
  return id;
}

function sigbus(fn: () => unknown, address: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MemoryFault, String(e));
    assert.equal(e.signal, 'SIGBUS');
    assert.equal(e.code, 'BUS_ADRERR');
    assert.equal(e.address, address);
    return true;
  });
}

function checkPtes(kernel: Kernel, ...procs: Process[]): void {
  const mapped = new Int32Array(kernel.mem.frames);
  for (const p of procs) checkPtesLocked(p.mm, mapped);
  checkFrameMaps(kernel.mem, mapped, new Int32Array(kernel.mem.frames));
}

test('a private mapping sees the file until it writes a page, then its own copy; shared mappings see each other', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  const fd = proc.open({ size: 4 * P, writable: true, name: 'data.bin' });
  proc.mm.mmap(BASE, 4 * P, RW, SHARED, fd);
  proc.mm.mmap(BASE + 8 * P, 4 * P, RW, PRIVATE, fd);
  proc.mm.mmap(BASE + 16 * P, 4 * P, RW, SHARED, fd);
  assert.equal(mmu.load32(BASE + 8 * P), 0, 'a private read maps the file page');
  mmu.store32(BASE, 11);
  assert.equal(mmu.load32(BASE + 16 * P), 11, 'the other shared mapping');
  assert.equal(mmu.load32(BASE + 8 * P), 11, 'the private mapping, not yet written');
  const filePfn = ptePfn(proc.mm.pt.lookupPte(BASE + 8 * P));
  assert.equal(kernel.mem.kind[filePfn], KIND_FILE);
  assert.equal(filePfn, ptePfn(proc.mm.pt.lookupPte(BASE)), 'one page cache page behind both');
  mmu.store32(BASE + 8 * P + 4, 5);
  const copy = ptePfn(proc.mm.pt.lookupPte(BASE + 8 * P));
  assert.notEqual(copy, filePfn, 'the write copied the page');
  assert.equal(mmu.load32(BASE + 8 * P), 11, 'the copy holds the file data');
  mmu.store32(BASE, 12);
  assert.equal(mmu.load32(BASE + 8 * P), 11, 'a later change of the file is not seen there');
  assert.equal(mmu.load32(BASE + 4), 0, 'nor does the file see the private write');
  assert.equal(mmu.load32(BASE + 9 * P), 0);
  mmu.store32(BASE + 16 * P + P, 13);
  assert.equal(mmu.load32(BASE + 9 * P), 13, 'other private pages still follow the file');
  checkPtes(kernel, proc);
  const child = proc.fork();
  checkPtes(kernel, proc, child);
  assert.equal(child.mm.mmu().load32(BASE + 8 * P), 11, 'the child shares the copy');
  assert.equal(child.mm.mmu().load32(BASE + P), 13, 'and the file');
  proc.close(fd);
  finish(kernel, child, proc);
});

test('a shared entry is writable only for a dirty page: page_mkwrite on the first write after a read', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  const fd = proc.open({ size: 2 * P, writable: true, name: 'notify.bin' });
  const file = fileOf(proc, fd);
  proc.mm.mmap(BASE, 2 * P, RW, SHARED, fd);
  assert.equal(mmu.load32(BASE), 0);
  const e = proc.mm.pt.lookupPte(BASE);
  assert.equal(e & PTE_WRITE, 0, 'a read maps a shared writable page read-only (write-notify)');
  const pfn = ptePfn(e);
  assert.equal(kernel.mem.testFlag(pfn, PG_DIRTY), false);
  // page_mkwrite fails once: SIGBUS, nothing changed; then it dirties the page.
  setInjection(kernel.files, file, INJECT_MKWRITE, { failNext: 1 });
  sigbus(() => mmu.store32(BASE, 1), BASE);
  assert.equal(kernel.mem.testFlag(pfn, PG_DIRTY), false);
  mmu.store32(BASE, 1);
  assert.equal(kernel.mem.testFlag(pfn, PG_DIRTY), true);
  assert.equal(proc.mm.pt.lookupPte(BASE) & (PTE_WRITE | PTE_DIRTY), PTE_WRITE | PTE_DIRTY);
  checkPtes(kernel, proc);
  // A clean file page mapped writable is what check-ptes exists to catch.
  mmu.load32(BASE + P);
  const q = ptePfn(proc.mm.pt.lookupPte(BASE + P));
  const t = proc.mm.pt.findPteTable(BASE + P);
  proc.mm.pt.setPte(t, pteIndex(BASE + P), makePte(q, PTE_PRESENT | PTE_USER | PTE_WRITE));
  assert.throws(() => checkPtes(kernel, proc), /writable in a private VMA or while clean/);
  proc.mm.pt.setPte(t, pteIndex(BASE + P), makePte(q, PTE_PRESENT | PTE_USER));
  proc.close(fd);
  finish(kernel, proc);
});

for (const design of FAULT_DESIGNS) {
  test(`${design}: page_mkwrite runs on every shared write fault, to a dirty page too (absent or read-only entry, populate), once per fault`, () => {
    const { kernel, proc } = setup(design);
    const mm = proc.mm;
    const mmu = mm.mmu();
    const fd = proc.open({ size: 2 * P, writable: true, name: 'mkwrite-dirty.bin' });
    const file = fileOf(proc, fd);
    mm.mmap(BASE, 2 * P, RW, SHARED, fd);
    mmu.store32(BASE, 1);
    const pfn = ptePfn(mm.pt.lookupPte(BASE));
    assert.equal(kernel.mem.testFlag(pfn, PG_DIRTY), true);
    const failOnce = (): void => setInjection(kernel.files, file, INJECT_MKWRITE, { failNext: 1 });
    const consumed = (): boolean => getInjection(kernel.files, file, INJECT_MKWRITE).failNext === 0;
    // No entry (zapped), the page still dirty in the cache: the write fault calls page_mkwrite.
    mm.madvise(BASE, P, MADV_DONTNEED);
    failOnce();
    sigbus(() => mmu.store32(BASE, 2), BASE);
    assert.ok(consumed(), 'page_mkwrite was called for the dirty page');
    // A read-only entry of the dirty page: the write-protect fault calls it too.
    assert.equal(mmu.load32(BASE), 1);
    assert.equal(mm.pt.lookupPte(BASE) & PTE_WRITE, 0);
    failOnce();
    sigbus(() => mmu.store32(BASE, 2), BASE);
    assert.ok(consumed());
    assert.equal(mmu.load32(BASE), 1, 'a failed page_mkwrite changed nothing');
    // Populate: MADV_POPULATE_WRITE is a write fault of each page.
    failOnce();
    assert.equal(mm.sysMadvise(BASE, P, MADV_POPULATE_WRITE), -EFAULT);
    assert.ok(consumed());
    // Armed for good (a latency): each fault calls it once, and the fault's retry maps the dirty
    // page without calling it again (calling it on every retry would never end).
    setInjection(kernel.files, file, INJECT_MKWRITE, { latencyUs: 1 });
    mmu.store32(BASE, 3);
    mm.madvise(BASE, P, MADV_DONTNEED);
    assert.equal(mm.sysMadvise(BASE, P, MADV_POPULATE_WRITE), 0);
    setInjection(kernel.files, file, INJECT_MKWRITE, { latencyUs: 0 });
    assert.equal(mmu.load32(BASE), 3);
    assert.equal(mm.pt.lookupPte(BASE) & (PTE_WRITE | PTE_DIRTY), PTE_WRITE | PTE_DIRTY);
    assert.equal(kernel.mem.testFlag(pfn, PG_DIRTY), true);
    checkPtes(kernel, proc);
    proc.close(fd);
    finish(kernel, proc);
  });
}

test('each entry of a file page holds one reference and one map count, the fault none of its own; munmap gives them back', () => {
  const { kernel, proc } = setup();
  const mem = kernel.mem;
  const mmu = proc.mm.mmu();
  const fd = proc.open({ size: 2 * P, writable: true, name: 'refs.bin' });
  const file = fileOf(proc, fd);
  proc.mm.mmap(BASE, 2 * P, RW, SHARED, fd);
  proc.mm.mmap(BASE + 8 * P, 2 * P, RW, SHARED, fd);
  proc.mm.mmap(BASE + 16 * P, 2 * P, RW, PRIVATE, fd);
  // Page 1 of each mapping first: the PTE tables exist, so the faults below take the per-VMA-lock path.
  for (const at of [BASE, BASE + 8 * P, BASE + 16 * P]) mmu.load32(at + P);
  const vmaFaults = proc.mm.vmstat().faultsVmaLock;
  mmu.load32(BASE);
  const pfn = ptePfn(proc.mm.pt.lookupPte(BASE));
  const counts = (): number[] => [mem.refcountOf(pfn), mem.mapcountOf(pfn)];
  assert.deepEqual(counts(), [2, 1], 'the cache and one read-only entry');
  mmu.store32(BASE, 1);
  assert.equal(ptePfn(proc.mm.pt.lookupPte(BASE)), pfn, 'page_mkwrite made the same entry writable');
  assert.deepEqual(counts(), [2, 1], 'the entry upgraded in place takes nothing more');
  mmu.store32(BASE + 8 * P, 2);
  assert.deepEqual(counts(), [3, 2], 'a second shared entry');
  assert.equal(mmu.load32(BASE + 16 * P), 2, 'the private mapping reads the file page');
  assert.deepEqual(counts(), [4, 3]);
  mmu.store32(BASE + 16 * P, 3);
  assert.notEqual(ptePfn(proc.mm.pt.lookupPte(BASE + 16 * P)), pfn, 'the private write copied');
  assert.deepEqual(counts(), [3, 2], 'the replaced entry gave its reference and map count back');
  // The private write falls back to mmap_lock: its VMA has no anon_vma yet.
  assert.equal(
    proc.mm.vmstat().faultsVmaLock - vmaFaults,
    4,
    'the other faults ran on the per-VMA-lock path',
  );
  checkPtes(kernel, proc);
  proc.mm.munmap(BASE, 24 * P);
  assert.deepEqual(counts(), [1, 0], "the cache's reference alone");
  assert.equal(findGetPage(kernel.files, file, 0), pfn);
  mem.putPage(pfn);
  proc.close(fd);
  finish(kernel, proc);
});

test('i_size is read again once the page is locked: a cached page past a shrunk size is SIGBUS on the per-VMA-lock path', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  const fd = proc.open({ size: 4 * P, writable: true, name: 'shrink.bin' });
  const file = fileOf(proc, fd);
  proc.mm.mmap(BASE, 4 * P, RW, SHARED, fd);
  mmu.store32(BASE, 7); // the PTE table exists from here on
  // Pages 2 and 3 cached (read through a second mapping, then unmapped): not mapped at BASE.
  proc.mm.mmap(BASE + 8 * P, 4 * P, PROT_READ, SHARED, fd);
  mmu.load32(BASE + 10 * P);
  mmu.load32(BASE + 11 * P);
  proc.mm.munmap(BASE + 8 * P, 4 * P);
  // i_size shrinks to two pages while the cache still holds pages 2 and 3 (as in the window of a
  // truncate before it removes them).
  kernel.files.iRwsemLock(file, true);
  kernel.files.setSizeLocked(file, 2 * P);
  kernel.files.iRwsemUnlock(file, true);
  const cached = findGetPage(kernel.files, file, 2);
  assert.notEqual(cached, 0, 'page 2 is still cached');
  sigbus(() => mmu.load32(BASE + 2 * P), BASE + 2 * P);
  sigbus(() => mmu.store32(BASE + 3 * P, 1), BASE + 3 * P);
  assert.equal(proc.mm.pt.lookupPte(BASE + 2 * P), 0, 'nothing mapped past i_size');
  assert.equal(kernel.mem.refcountOf(cached), 2, 'the faults kept no reference (the cache and ours)');
  kernel.mem.putPage(cached);
  assert.equal(mmu.load32(BASE), 7, 'inside i_size all is as before');
  mmu.store32(BASE + P, 8);
  kernel.files.iRwsemLock(file, true);
  kernel.files.setSizeLocked(file, 4 * P);
  kernel.files.iRwsemUnlock(file, true);
  assert.equal(mmu.load32(BASE + 2 * P), 0, 'grown back: the cached page maps');
  proc.close(fd);
  finish(kernel, proc);
});

test('past the end of the file SIGBUS; a failing fault I/O SIGBUS and nothing cached; then it works', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  const fd = proc.open({ size: 2 * P + 10, writable: true, name: 'short.bin' });
  const file = fileOf(proc, fd);
  proc.mm.mmap(BASE, 8 * P, RW, SHARED, fd);
  assert.equal(mmu.load8(BASE + 2 * P + 100), 0, 'the partial last page');
  sigbus(() => mmu.load8(BASE + 3 * P), BASE + 3 * P);
  sigbus(() => mmu.store32(BASE + 7 * P + 8, 1), BASE + 7 * P + 8);
  setInjection(kernel.files, file, INJECT_FAULT, { failNext: 1 });
  sigbus(() => mmu.load32(BASE), BASE);
  assert.equal(findGetPage(kernel.files, file, 0), 0, 'nothing cached');
  assert.equal(proc.mm.pt.lookupPte(BASE), 0, 'nothing mapped');
  mmu.store32(BASE, 9);
  assert.equal(mmu.load32(BASE), 9);
  // GUP: the page inside the file, then EFAULT; populate: EFAULT for MADV_POPULATE past it.
  const got = proc.mm.getUserPages(BASE + P, 3);
  assert.ok(Array.isArray(got) && got.length === 2, String(got));
  const cached = findGetPage(kernel.files, file, 1);
  assert.equal(got[0], cached, 'GUP returns the page cache page');
  kernel.mem.putPage(cached);
  putUserPages(kernel.mem, got);
  assert.throws(() => proc.mm.madvise(BASE, 4 * P, MADV_POPULATE_READ), { code: 'EFAULT' });
  proc.close(fd);
  finish(kernel, proc);
});

test('shared anonymous memory (shmem) is shared across fork, both ways; populate and mincore see the cache', () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  const shm = proc.mm.mmap(0, 4 * P, RW, MAP_SHARED | MAP_ANONYMOUS);
  mmu.store32(shm, 1);
  const child = proc.fork();
  const cm = child.mm.mmu();
  assert.equal(cm.load32(shm), 1);
  cm.store32(shm + P, 2);
  assert.equal(mmu.load32(shm + P), 2);
  mmu.store32(shm + P, 3);
  assert.equal(cm.load32(shm + P), 3);
  checkPtes(kernel, proc, child);
  // MAP_POPULATE of a file mapping maps its pages; mincore reports cached pages even unmapped.
  const fd = proc.open({ size: 8 * P, writable: true, name: 'pop.bin' });
  proc.mm.mmap(BASE, 4 * P, PROT_READ, SHARED | MAP_POPULATE, fd);
  for (let i = 0; i < 4; i++) assert.notEqual(proc.mm.pt.lookupPte(BASE + i * P), 0, `page ${i} populated`);
  proc.mm.mmap(BASE + 16 * P, 8 * P, PROT_READ, SHARED, fd, 0);
  const file = fileOf(proc, fd);
  const inCache = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => {
    const pfn = findGetPage(kernel.files, file, i);
    if (pfn !== 0) kernel.mem.putPage(pfn);
    return pfn !== 0 ? 1 : 0;
  });
  assert.deepEqual(inCache.slice(0, 4), [1, 1, 1, 1]);
  for (let i = 0; i < 8; i++) assert.equal(proc.mm.pt.lookupPte(BASE + 16 * P + i * P), 0, 'unmapped');
  assert.deepEqual([...proc.mm.mincore(BASE + 16 * P, 8 * P)], inCache, 'mincore = the page cache');
  proc.close(fd);
  finish(kernel, child, proc);
});

test('msync(MS_SYNC) across a hole writes back both mappings, then says ENOMEM (as Linux)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-msync-'));
  try {
    const { kernel, proc } = setup();
    const mmu = proc.mm.mmu();
    const path = join(dir, 'f.bin');
    writeFileSync(path, new Uint8Array(4 * P));
    const fd = proc.open(path, O_RDWR);
    proc.mm.mmap(BASE, 2 * P, RW, SHARED, fd);
    proc.mm.mmap(BASE + 4 * P, 2 * P, RW, SHARED, fd, 2 * P);
    mmu.store8(BASE + 1, 1);
    mmu.store8(BASE + 5 * P + 1, 2);
    assert.equal(proc.mm.sysMsync(BASE, 6 * P, MS_SYNC), -ENOMEM);
    const bytes = readFileSync(path);
    assert.deepEqual([bytes[1], bytes[3 * P + 1]], [1, 2]);
    assert.equal(proc.mm.sysMsync(BASE, 6 * P, MS_ASYNC), -ENOMEM, 'MS_ASYNC: ENOMEM at the hole');
    proc.close(fd);
    finish(kernel, proc);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('msync(MS_SYNC) over the shared mapping: the bytes are in the host file; private writes are not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-msync-'));
  try {
    const { kernel, proc } = setup();
    const mmu = proc.mm.mmu();
    const path = join(dir, 'f.bin');
    writeFileSync(path, new Uint8Array(2 * P).fill(0x11));
    const fd = proc.open(path, O_RDWR);
    proc.mm.mmap(BASE, 2 * P, RW, SHARED, fd);
    proc.mm.mmap(BASE + 2 * P, 2 * P, RW, PRIVATE, fd);
    assert.equal(mmu.load8(BASE + 5), 0x11, 'read from the host file');
    mmu.store8(BASE + P + 7, 0x22);
    mmu.store8(BASE + 2 * P, 0x33);
    proc.mm.msync(BASE, 2 * P, MS_ASYNC);
    assert.equal(readFileSync(path)[P + 7], 0x11, 'MS_ASYNC writes nothing itself');
    const before = lockdepCounts().mmap_io;
    proc.mm.msync(BASE, 4 * P, MS_SYNC);
    const bytes = readFileSync(path);
    assert.equal(bytes[P + 7], 0x22, 'MS_SYNC wrote the page');
    assert.equal(bytes[0], 0x11, "the private write is not the file's");
    assert.equal(lockdepCounts().mmap_io, before, 'the write-back ran without mmap_lock');
    // Writeback write-protected the entry (the rmap seam's mkcleanPage): a later store faults
    // again, page_mkwrite dirties the page, and the next msync writes it.
    mmu.store8(BASE + P + 8, 0x44);
    proc.mm.msync(BASE, 2 * P, MS_SYNC);
    assert.equal(readFileSync(path)[P + 8], 0x44, 'a store after the write-back reached the file');
    proc.close(fd);
    finish(kernel, proc);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const design of ['global', 'retry', 'vma-lock'] as const) {
  test(`design ${design}: the fault's I/O ${design === 'global' ? 'runs under mmap_lock (reported at its site)' : 'never runs under mmap_lock'}`, () => {
    const { kernel, proc } = setup(design);
    const mmu = proc.mm.mmu();
    const fd = proc.open({ size: 64 * P, writable: true, name: 'slow.bin' });
    const file = fileOf(proc, fd);
    setInjection(kernel.files, file, INJECT_FAULT, { latencyUs: 200 });
    setInjection(kernel.files, file, INJECT_MKWRITE, { latencyUs: 200 });
    proc.mm.mmap(BASE, 64 * P, RW, SHARED, fd);
    const site = (): number => lockdepSiteCounts().find((s) => s.site === 'fs.inject.fault')?.io ?? 0;
    const before = lockdepCounts().mmap_io;
    const siteBefore = site();
    for (let i = 0; i < 64; i += 8) mmu.store32(BASE + i * P, i);
    proc.mm.madvise(BASE + P, 4 * P, MADV_POPULATE_READ);
    for (let i = 0; i < 64; i += 8) assert.equal(mmu.load32(BASE + i * P), i);
    const reported = lockdepCounts().mmap_io - before;
    if (design === 'global') {
      assert.ok(reported > 0, 'I/O under mmap_lock counted');
      assert.ok(site() > siteBefore, 'at the fault callback');
    } else {
      assert.equal(reported, 0, 'no I/O under mmap_lock');
      assert.equal(site(), siteBefore);
    }
    // global waits for the read holding mmap_lock and maps the page under that hold (Linux
    // before 5.1): no fault retries; the others drop their locks for the read and retry.
    if (design === 'global') assert.equal(proc.mm.vmstat().faultRetries, 0, 'one mmap_lock hold per fault');
    else assert.ok(proc.mm.vmstat().faultRetries > 0);
    proc.close(fd);
    finish(kernel, proc);
  });
}
