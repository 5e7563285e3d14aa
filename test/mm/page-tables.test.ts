/**
 * The address space keeps real page tables and frames consistent with its VMAs: faults (touch,
 * populate) install entries for private anonymous memory, munmap/mremap/mprotect/MADV_DONTNEED
 * change them after the commit, data in a frame follows its page, and exit returns every frame and
 * table.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { KIND_FILE, ZERO_PFN } from '../../src/mem/page.js';
import { PTE_DIRTY, PTE_PRESENT, PTE_USER, PTE_WRITE, ptePfn } from '../../src/mem/pte.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
} from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { ANON, BASE, P, RW, setup } from '../support/process-fixture.js';

/** The frame mapped at addr (0: none) and its entry's flags. */
function pte(proc: Process, addr: number): { pfn: number; flags: number } {
  const e = proc.mm.pt.lookupPte(addr);
  return { pfn: e === 0 ? 0 : ptePfn(e), flags: e & 0xfff };
}

function usedFrames(kernel: Kernel): number {
  kernel.mem.drainAll();
  return kernel.counts().frames;
}

function finish(kernel: Kernel, proc: Process): void {
  proc.exit();
  rcuBarrier();
  assert.equal(proc.mm.pt.live, 0, 'page tables left');
  assert.deepEqual({ ...kernel.counts(), frames: usedFrames(kernel) }, KERNEL_EMPTY);
}

test('a read fault maps the zero page read-only, a write fault a private zeroed frame', () => {
  const { kernel, proc } = setup();
  proc.mm.mmap(BASE, 4 * P, RW, ANON);
  proc.mm.touch(BASE, P, false);
  assert.deepEqual(pte(proc, BASE), { pfn: ZERO_PFN, flags: PTE_PRESENT | PTE_USER });
  proc.mm.touch(BASE, 2 * P, true);
  const a = pte(proc, BASE);
  assert.ok(a.pfn > ZERO_PFN && (a.flags & PTE_WRITE) !== 0, 'the write replaced the zero page');
  assert.equal(kernel.mem.bytes[a.pfn * P], 0, 'zeroed');
  assert.notEqual(pte(proc, BASE + P).pfn, a.pfn);
  assert.equal(pte(proc, BASE + 2 * P).pfn, 0, 'untouched pages have no entry');
  assert.equal(usedFrames(kernel) >= 2, true);
  finish(kernel, proc);
});

test('munmap and MADV_DONTNEED free the frames; mprotect takes write and access away', () => {
  const { kernel, proc } = setup();
  proc.mm.mmap(BASE, 8 * P, RW, ANON | MAP_POPULATE);
  assert.ok(pte(proc, BASE + 7 * P).pfn > ZERO_PFN, 'MAP_POPULATE faulted every page in for write');
  const before = usedFrames(kernel);
  proc.mm.munmap(BASE + 6 * P, 2 * P);
  assert.equal(usedFrames(kernel), before - 2);
  proc.mm.madvise(BASE, 2 * P, MADV_DONTNEED);
  assert.equal(pte(proc, BASE).pfn, 0);
  assert.equal(usedFrames(kernel), before - 4);
  proc.mm.mprotect(BASE + 2 * P, P, PROT_READ);
  assert.equal(pte(proc, BASE + 2 * P).flags & (PTE_WRITE | PTE_USER), PTE_USER);
  proc.mm.mprotect(BASE + 3 * P, P, PROT_NONE);
  assert.equal(pte(proc, BASE + 3 * P).flags & PTE_USER, 0);
  proc.mm.mprotect(BASE + 2 * P, 2 * P, RW);
  assert.equal(
    pte(proc, BASE + 2 * P).flags & PTE_WRITE,
    0,
    'write access comes back by a fault, not mprotect',
  );
  proc.mm.touch(BASE + 2 * P, P, true);
  assert.ok((pte(proc, BASE + 2 * P).flags & PTE_WRITE) !== 0, 'the exclusive page is reused writable');
  finish(kernel, proc);
});

test('mremap moves the entries: the data stays with its page, the old range has none', () => {
  const { kernel, proc } = setup();
  proc.mm.mmap(BASE, 4 * P, RW, ANON);
  proc.mm.touch(BASE, 4 * P, true);
  const pfns = [0, 1, 2, 3].map((i) => pte(proc, BASE + i * P).pfn);
  pfns.forEach((pfn, i) => {
    kernel.mem.bytes[pfn * P + 100] = 7 + i;
  });
  const to = BASE + 64 * P;
  assert.equal(proc.mm.mremap(BASE, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, to), to);
  for (let i = 0; i < 4; i++) {
    assert.equal(pte(proc, BASE + i * P).pfn, 0);
    assert.equal(pte(proc, to + i * P).pfn, pfns[i]);
    assert.equal(kernel.mem.bytes[pfns[i] * P + 100], 7 + i);
  }
  // MAP_FIXED over the moved pages frees them; shared anonymous memory maps its shmem pages,
  // writable and dirty after a write.
  proc.mm.mmap(to, 4 * P, RW, ANON);
  assert.equal(pte(proc, to).pfn, 0);
  proc.mm.mmap(BASE + 128 * P, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  proc.mm.touch(BASE + 128 * P, 2 * P, true);
  const shm = pte(proc, BASE + 128 * P);
  assert.ok(shm.pfn > ZERO_PFN);
  assert.equal(kernel.mem.kind[shm.pfn], KIND_FILE);
  assert.equal(shm.flags & (PTE_WRITE | PTE_DIRTY), PTE_WRITE | PTE_DIRTY);
  finish(kernel, proc);
});

test('a fault that finds no frame fails with ENOMEM and leaves the pages it could fault in', () => {
  const kernel = Kernel.create({ frames: 64 });
  const proc = Process.create(kernel, { config: { privileged: true }, rcuFree: false });
  proc.mm.mmap(BASE, 128 * P, RW, ANON);
  assert.throws(() => proc.mm.touch(BASE, 128 * P, true), { code: 'ENOMEM' });
  assert.ok(pte(proc, BASE).pfn > ZERO_PFN);
  proc.mm.munmap(BASE, 128 * P);
  assert.equal(usedFrames(kernel), 0);
  finish(kernel, proc);
});

test('mincore, smaps Rss/Anonymous and status VmRSS follow the page tables', () => {
  const { kernel, proc } = setup();
  proc.mm.mmap(BASE, 8 * P, RW, ANON);
  proc.mm.touch(BASE, 2 * P, true);
  proc.mm.touch(BASE + 4 * P, P, false);
  assert.deepEqual(
    [...proc.mm.mincore(BASE, 8 * P)],
    [1, 1, 0, 0, 1, 0, 0, 0],
    'the zero page counts as resident',
  );
  assert.throws(() => proc.mm.mincore(BASE + 1, P), { code: 'EINVAL' });
  assert.throws(() => proc.mm.mincore(BASE, 16 * P), { code: 'ENOMEM' }, 'a hole');
  const smaps = proc.smaps();
  assert.match(smaps, /Rss: +8 kB\nAnonymous: +8 kB/, 'two written pages; the zero page is not counted');
  assert.match(proc.status(), /VmRSS: +8 kB\nRssAnon: +8 kB/);
  finish(kernel, proc);
});
