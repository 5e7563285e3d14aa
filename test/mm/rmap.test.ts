/**
 * The reverse map on one CPU (docs/fs.md, "The reverse map"): i_mmap entries kept by the VMA
 * commit through mmap, mprotect splits and merges, munmap, mremap moves, fork and exit (checked
 * by check.ts after each step); ENOMEM at the entry allocation changes nothing; unmapMappingRange
 * (truncate, punch) and mkcleanPage (writeback) over the PTEs of two processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENOMEM } from '../../src/errno.js';
import { iMmapCommits, iMmapCount, iMmapWindowsOpened } from '../../src/fs/i-mmap.js';
import { punchCacheRange, truncateCacheRange } from '../../src/fs/page-cache.js';
import { rmap } from '../../src/fs/rmap-seam.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { PTE_DIRTY, PTE_WRITE } from '../../src/mem/pte.js';
import { checkMmLocked } from '../../src/mm/check.js';
import { mkcleanPage } from '../../src/mm/file-rmap.js';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { iMmapList, mapAnonPage, mapFilePages, presentPtes } from './rmap-fixture.js';

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;

/** A process with an open memory file of `pages` pages: [process, fd, file id]. */
function withFile(kernel: Kernel, pages: number): [Process, number, number] {
  const p = Process.create(kernel);
  const fd = p.open({ size: pages * P, writable: true, name: 'rmap-file' });
  const id = p.fds.fget(fd);
  kernel.files.put(id); // the descriptor keeps it
  return [p, fd, id];
}

function finish(kernel: Kernel, ...ps: Process[]): void {
  for (const p of ps) if (!p.exited) p.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  assert.equal(kernel.files.iMmapEntries.live, 0, 'every i_mmap entry freed');
}

test('i_mmap bookkeeping: one entry per file VMA through mmap, splits, merges, munmap, mremap, fork and exit', () => {
  const kernel = Kernel.create({ frames: 4096 });
  const [p, fd, id] = withFile(kernel, 64);
  const me = p.mm.state.mmId;
  const step = (what: string, entries: number): void => {
    checkMmLocked(p.mm);
    assert.equal(iMmapCount(kernel.files, id), entries, what);
    assert.equal(iMmapList(p, id).length, entries, `${what}: the list`);
    assert.equal(iMmapCommits(kernel.files, id), 0, `${what}: no window left open`);
  };
  const a = p.mm.mmap(0, 16 * P, RW, MAP_SHARED, fd, 0);
  step('mmap', 1);
  assert.deepEqual(
    iMmapList(p, id).map(([mm]) => mm),
    [me],
  );
  p.mm.mprotect(a + 4 * P, 4 * P, PROT_READ);
  step('mprotect splits in three', 3);
  p.mm.mprotect(a + 4 * P, 4 * P, RW);
  step('mprotect merges back', 1);
  p.mm.munmap(a + 6 * P, 2 * P);
  step('munmap of the middle', 2);
  const to = p.mm.mmap(0, 8 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
  p.mm.mremap(a + 8 * P, 8 * P, 8 * P, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  step('mremap moves the upper part over an anonymous mapping', 2);
  const moved = iMmapList(p, id).map(([, h]) => p.mm.arena.start(h));
  assert.ok(moved.includes(to), 'an entry names the moved record at its new address');
  const priv = p.mm.mmap(0, 4 * P, PROT_READ, MAP_PRIVATE, fd, 8 * P);
  step('a private mapping of the file', 3);
  const child = p.fork();
  checkMmLocked(child.mm);
  step('fork', 6);
  const order = iMmapList(p, id).map(([mm]) => mm);
  assert.deepEqual(order.slice(0, 3), [me, me, me], "the parent's entries first");
  assert.ok(
    order.slice(3).every((mm) => mm === child.mm.state.mmId),
    "the child's after them (a walker meets the parent first)",
  );
  child.exit();
  step('the child exits', 3);
  p.mm.munmap(priv, 4 * P);
  p.mm.munmap(a, 6 * P);
  step('munmap', 1);
  p.mm.munmap(to, 8 * P);
  step('all gone', 0);
  finish(kernel, p);
});

/** How many injected allocation failures in a row `call` reports as ENOMEM, each changing nothing. */
function failuresUntilSuccess(injector: FailureInjector, p: Process, id: number, call: () => number): number {
  for (let k = 0; ; k++) {
    const maps = p.maps();
    const live = p.kernel.files.iMmapEntries.live;
    const entries = id === 0 ? 0 : iMmapCount(p.kernel.files, id);
    injector.failAfter(k);
    const r = call();
    const hit = injector.injected > 0;
    injector.disarm();
    if (!hit) {
      assert.ok(r >= 0, `succeeds once nothing fails (${r})`);
      return k;
    }
    assert.equal(r, -ENOMEM, `failure ${k}`);
    assert.equal(p.maps(), maps, `failure ${k}: the mappings are unchanged`);
    assert.equal(p.kernel.files.iMmapEntries.live, live, `failure ${k}: no entry allocated`);
    if (id !== 0)
      assert.equal(iMmapCount(p.kernel.files, id), entries, `failure ${k}: the list is unchanged`);
    checkMmLocked(p.mm);
  }
}

test('a commit opens a window on a file only when a record stays linked while it changes, or page tables change', () => {
  const kernel = Kernel.create({ frames: 4096 });
  const [p, fd, id] = withFile(kernel, 64);
  const windows = (what: string, expected: number, call: () => void): void => {
    const before = iMmapWindowsOpened();
    call();
    assert.equal(iMmapWindowsOpened() - before, expected, `${what}: windows opened`);
    assert.equal(iMmapCommits(kernel.files, id), 0, `${what}: no window left open`);
    checkMmLocked(p.mm);
  };
  assert.equal(p.mm.pt.live, 1, 'no page table but the root yet');
  let a = 0;
  windows('mmap into a gap, no page table', 0, () => {
    a = p.mm.mmap(0, 16 * P, RW, MAP_SHARED, fd, 0);
  });
  // The record was written before it was linked (an assertion in the commit checks it too).
  const [[, h]] = iMmapList(p, id);
  assert.deepEqual([p.mm.arena.start(h), p.mm.arena.end(h), p.mm.arena.file(h)], [a, a + 16 * P, id]);
  windows('munmap, no page table', 0, () => p.mm.munmap(a, 16 * P));
  assert.equal(iMmapCount(kernel.files, id), 0);
  a = p.mm.mmap(0, 16 * P, RW, MAP_SHARED, fd, 0);
  p.mm.touch(a, P, true);
  windows('munmap of a mapping with a page mapped (zap, free_pgtables)', 1, () => p.mm.munmap(a, 16 * P));
  // Page tables elsewhere: an anonymous page stays mapped from here on.
  const anon = p.mm.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  p.mm.touch(anon, P, true);
  windows('mmap into a gap beside page tables (no page-table work)', 0, () => {
    a = p.mm.mmap(0, 16 * P, RW, MAP_SHARED, fd, 0);
  });
  windows('mprotect splits the file VMA (a linked record shrinks)', 1, () =>
    p.mm.mprotect(a + 4 * P, 4 * P, PROT_READ),
  );
  windows('mprotect merges it back', 1, () => p.mm.mprotect(a + 4 * P, 4 * P, RW));
  windows('munmap while page tables exist (its zap may meet PTEs)', 1, () => p.mm.munmap(a, 16 * P));
  a = p.mm.mmap(0, 16 * P, RW, MAP_SHARED, fd, 0);
  p.mm.touch(a, 4 * P, true);
  const before = iMmapWindowsOpened();
  const child = p.fork();
  assert.ok(iMmapWindowsOpened() > before, 'fork copies page tables inside its windows');
  assert.equal(iMmapCommits(kernel.files, id), 0);
  finish(kernel, p, child);
});

test('ENOMEM at the i_mmap entry allocation: the syscall fails with nothing changed', () => {
  const injector = new FailureInjector();
  const kernel = Kernel.create({ frames: 4096, injector });
  const [p, fd, id] = withFile(kernel, 64);
  const base = 0x7000_0000_0000 - 256 * P;
  // An anonymous mmap and a file mmap of the same shape: the file one allocates one thing more, its entry.
  const anonFails = failuresUntilSuccess(injector, p, 0, () =>
    p.mm.sysMmap(base, 8 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | 0x10, -1, 0),
  );
  const fileFails = failuresUntilSuccess(injector, p, id, () =>
    p.mm.sysMmap(base + 64 * P, 8 * P, RW, MAP_SHARED | 0x10, fd, 0),
  );
  assert.equal(fileFails, anonFails + 1, 'the entry allocation is reached, and its failure is clean');
  // A split of a file VMA allocates its new half's entry.
  const splitFails = failuresUntilSuccess(injector, p, id, () =>
    p.mm.sysMprotect(base + 66 * P, P, PROT_READ),
  );
  assert.ok(splitFails >= 3, `a split fails cleanly at each of its allocations (${splitFails})`);
  assert.equal(iMmapCount(kernel.files, id), 3);
  finish(kernel, p);
});

test('truncate and punch zap the file pages of every process; punch keeps private copies, truncate does not', () => {
  const kernel = Kernel.create({ frames: 4096 });
  const [p, fd, id] = withFile(kernel, 8);
  const files = kernel.files;
  const shared = p.mm.mmap(0, 8 * P, RW, MAP_SHARED, fd, 0);
  const priv = p.mm.mmap(0, 8 * P, PROT_READ, MAP_PRIVATE, fd, 0);
  const q = p.fork();
  mapFilePages(p.mm, id, shared, shared + 8 * P, 0, true);
  mapFilePages(q.mm, id, shared, shared + 4 * P, 0, true);
  mapFilePages(p.mm, id, priv, priv + 2 * P, 0);
  mapFilePages(p.mm, id, priv + 3 * P, priv + 8 * P, 3);
  const cow = mapAnonPage(p.mm, priv + 2 * P, 1, 2);
  assert.equal(rmap.ops.unmapMappingRange.name, 'unmapMappingRange', "the seam holds mm's operations");
  const lock = files.invalidateLock(id);
  lock.downWrite();
  try {
    assert.equal(punchCacheRange(files, id, 1, 3), 3);
    assert.equal(presentPtes(p.mm, shared + P, shared + 4 * P), 0, 'punched: gone from the first process');
    assert.equal(presentPtes(q.mm, shared + P, shared + 4 * P), 0, 'and from the second');
    assert.equal(
      presentPtes(p.mm, shared, shared + P) + presentPtes(q.mm, shared, shared + P),
      2,
      'page 0 stays',
    );
    assert.equal(presentPtes(p.mm, shared + 4 * P, shared + 8 * P), 4, 'pages 4-7 stay');
    assert.equal(presentPtes(p.mm, priv + P, priv + 4 * P), 1, 'the private copy stays, its file pages go');
    assert.equal(p.mm.pt.lookupPte(priv + 2 * P) >>> 12, cow);
    assert.equal(truncateCacheRange(files, id, 2, 7), 4);
    assert.equal(presentPtes(p.mm, priv + 2 * P, priv + 8 * P), 0, 'truncate takes the private copy too');
    assert.equal(presentPtes(p.mm, shared + 2 * P, shared + 8 * P), 0);
    assert.equal(presentPtes(p.mm, shared, shared + 2 * P), 1);
    assert.equal(presentPtes(p.mm, priv, priv + 2 * P), 1, 'file page 0 stays mapped privately');
  } finally {
    lock.upWrite();
  }
  assert.equal(kernel.mem.mapcountOf(cow), 0);
  q.exit();
  p.mm.munmap(shared, 8 * P);
  p.mm.munmap(priv, 8 * P);
  finish(kernel, p);
});

test('mkcleanPage write-protects and cleans the page in every process (shot down), and nothing else', () => {
  const kernel = Kernel.create({ frames: 4096 });
  const [p, fd, id] = withFile(kernel, 4);
  const shared = p.mm.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
  const q = p.fork();
  const pfns = mapFilePages(p.mm, id, shared, shared + 4 * P, 0, true);
  mapFilePages(q.mm, id, shared, shared + 4 * P, 0, true);
  p.mm.mmu(); // this CPU uses p's TLB: its changes need shootdowns
  const before = p.mm.tlb.stats().shootdowns;
  mkcleanPage(kernel.files, id, 2, pfns[2]);
  for (const mm of [p.mm, q.mm]) {
    for (let i = 0; i < 4; i++) {
      const pte = mm.pt.lookupPte(shared + i * P);
      assert.equal(pte >>> 12, pfns[i], 'still mapped');
      const clean = (pte & (PTE_WRITE | PTE_DIRTY)) === 0;
      assert.equal(clean, i === 2, `page ${i}: ${clean ? 'clean' : 'writable'}`);
    }
  }
  assert.equal(p.mm.tlb.stats().shootdowns, before + 1, "p's CPUs lost their translation");
  mkcleanPage(kernel.files, id, 2, pfns[3]);
  assert.notEqual(
    q.mm.pt.lookupPte(shared + 2 * P) & PTE_WRITE,
    PTE_WRITE,
    'another pfn at the index: nothing',
  );
  assert.equal(q.mm.pt.lookupPte(shared + 3 * P) & PTE_WRITE, PTE_WRITE);
  q.exit();
  p.mm.mmuOffline();
  finish(kernel, p);
});
