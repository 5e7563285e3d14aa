/**
 * The page cache on one CPU (src/fs/page-cache.ts and its parts), over the memory backing and a
 * fake backing that can be written back, reclaimed and made to fail (fake-backing.ts): reads and
 * lookups, accounting, read errors, ENOMEM at frame and node allocation, reclaim and what it must
 * leave alone, writeback with errseq and re-dirtying, truncate and punch through the rmap seam,
 * the readahead window, release on the last put, and bad arguments.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { EFBIG, EINVAL, EIO, ENOMEM } from '../../src/errno.js';
import { FileTable } from '../../src/fs/file-table.js';
import {
  fileCheckAndAdvanceWbErr,
  fileSampleWbErr,
  findGetPage,
  findReadablePages,
  markPageDirty,
  newReadahead,
  punchCacheRange,
  READ_BATCH,
  RECLAIM_BATCH,
  readCachePage,
  reclaimCachePages,
  truncateCacheRange,
  writebackRange,
} from '../../src/fs/page-cache.js';
import { checkPageIndex } from '../../src/fs/page-index.js';
import { lockPage, pageLocked, unlockPage } from '../../src/fs/page-lock.js';
import { installRmap } from '../../src/fs/rmap-seam.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { PhysMem } from '../../src/mem/frames.js';
import {
  FIRST_PFN,
  I32_PER_PAGE,
  PAGE_SIZE,
  PG_DIRTY,
  PG_READAHEAD,
  PG_UPTODATE,
} from '../../src/mem/page.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { fakeFile, store } from './fake-backing.js';

function setup(frames = 512, injector?: FailureInjector): { mem: PhysMem; files: FileTable } {
  const mem = PhysMem.create({ frames, injector, pcpHigh: 0 });
  return { mem, files: FileTable.create({ mem, injector }) };
}

/** Frees the file and checks that every frame and node came back. */
function teardown(mem: PhysMem, files: FileTable, ids: number[]): void {
  for (const id of ids) files.put(id);
  rcuBarrier();
  mem.drainAll();
  assert.equal(mem.stats().file, 0, 'every cached page freed');
  assert.equal(files.cacheNodes.live, 0, 'every index node freed');
  assert.equal(files.live, 0);
  assert.equal(mem.check(), undefined);
}

function word0(mem: PhysMem, pfn: number): number {
  return mem.i32[pfn * I32_PER_PAGE];
}

afterEach(() => {
  installRmap(null);
  store.failReads = 0;
  store.failWrites = 0;
  store.pages.clear();
});

test('memory file: a read creates a zero page, counted as a file frame; lookups find it; dirty stays dirty', () => {
  const { mem, files } = setup();
  const id = files.add({ size: 10 * PAGE_SIZE, writable: true, name: 'memfd' });
  assert.equal(findGetPage(files, id, 3), 0);
  const pfn = readCachePage(files, id, 3);
  assert.ok(pfn >= FIRST_PFN);
  assert.equal(mem.stats().file, 1);
  assert.equal(mem.refcountOf(pfn), 2, 'the cache and the reader');
  assert.ok(mem.testFlag(pfn, PG_UPTODATE) && !pageLocked(mem, pfn));
  assert.equal(word0(mem, pfn), 0);
  mem.i32[pfn * I32_PER_PAGE] = 1234;
  assert.equal(markPageDirty(files, pfn), true);
  assert.equal(markPageDirty(files, pfn), false, 'already dirty');
  assert.equal(findGetPage(files, id, 3), pfn);
  assert.equal(readCachePage(files, id, 3), pfn);
  assert.equal(mem.refcountOf(pfn), 4);
  for (let i = 0; i < 3; i++) mem.putPage(pfn);
  assert.equal(writebackRange(files, id, 0, 9), 0, 'nothing to write a memory file to');
  assert.ok(mem.testFlag(pfn, PG_DIRTY), 'its pages stay dirty');
  assert.equal(reclaimCachePages(files, 10), 0, 'memory pages are never reclaimed');
  assert.equal(word0(mem, readAndPut(files, id, 3)), 1234);
  assert.equal(checkPageIndex(files, id), undefined);
  teardown(mem, files, [id]);
});

function readAndPut(files: FileTable, id: number, index: number): number {
  const pfn = readCachePage(files, id, index);
  assert.ok(pfn > 0, `read of page ${index}: ${pfn}`);
  files.mem?.putPage(pfn);
  return pfn;
}

test('a read error caches nothing and returns -EIO; the next read succeeds', () => {
  const { mem, files } = setup();
  const id = fakeFile(files, 4);
  store.fill(id, 1, 77);
  store.failReads = 1;
  assert.equal(readCachePage(files, id, 1), -EIO);
  assert.equal(files.nrpages(id), 0);
  assert.equal(mem.stats().file, 0, 'the frame went back');
  assert.equal(findGetPage(files, id, 1), 0);
  const pfn = readAndPut(files, id, 1);
  assert.equal(word0(mem, pfn), 77);
  teardown(mem, files, [id]);
});

test('ENOMEM at the frame and at every node allocation: -ENOMEM and nothing changed', () => {
  const injector = new FailureInjector();
  const { mem, files } = setup(512, injector);
  const id = files.add({ size: 2 ** 40, writable: true, name: 'sparse memfd' });
  readAndPut(files, id, 5);
  const snapshot = () =>
    JSON.stringify({
      nr: files.nrpages(id),
      nodes: files.cacheNodes.live,
      file: mem.stats().file,
      p5: findAndPut(files, id, 5),
    });
  const before = snapshot();
  let failures = 0;
  for (let successes = 0; ; successes++) {
    injector.failAfter(successes);
    const r = readCachePage(files, id, 2 ** 31 + 99);
    injector.disarm();
    if (r > 0) {
      mem.putPage(r);
      break;
    }
    assert.equal(r, -ENOMEM, `failing after ${successes} allocations`);
    failures++;
    assert.equal(snapshot(), before, `failing after ${successes} allocations changed the cache`);
    assert.equal(checkPageIndex(files, id), undefined);
  }
  assert.ok(failures >= 2, `the frame and the nodes could fail (${failures})`);
  assert.equal(files.nrpages(id), 2);
  teardown(mem, files, [id]);
});

function findAndPut(files: FileTable, id: number, index: number): number {
  const pfn = findGetPage(files, id, index);
  if (pfn !== 0) files.mem?.putPage(pfn);
  return pfn;
}

test('a frame allocation failure reclaims clean unused cached pages and retries once', () => {
  const injector = new FailureInjector();
  const { mem, files } = setup(512, injector);
  const id = fakeFile(files, 8);
  for (let i = 0; i < 8; i++) readAndPut(files, id, i);
  injector.failAfter(0);
  const pfn = readCachePage(files, id, 7);
  assert.ok(pfn > 0 && injector.injected === 0, 'a cached page needs no allocation');
  injector.disarm();
  mem.putPage(pfn);
  const other = files.add({ size: PAGE_SIZE, writable: true, name: 'memfd' });
  injector.failAfter(0);
  const fresh = readCachePage(files, other, 0);
  injector.disarm();
  assert.ok(fresh > 0, `the retry after reclaim got a frame (${fresh})`);
  assert.equal(files.nrpages(id), Math.max(0, 8 - RECLAIM_BATCH), 'the clean pages were reclaimed');
  mem.putPage(fresh);
  teardown(mem, files, [id, other]);
});

test('reclaim frees only clean, unlocked, unmapped pages that nobody else references', () => {
  const { mem, files } = setup();
  const id = fakeFile(files, 10);
  const pfns: number[] = [];
  for (let i = 0; i < 10; i++) {
    store.fill(id, i, i + 1);
    pfns.push(readAndPut(files, id, i));
  }
  markPageDirty(files, pfns[1]);
  mem.incMapcount(pfns[2]);
  mem.getPage(pfns[3]);
  lockPage(mem, pfns[4]);
  const reads = store.reads;
  assert.equal(reclaimCachePages(files, 100), 6);
  const left = [];
  for (let i = 0; i < 10; i++) if (findAndPut(files, id, i) !== 0) left.push(i);
  assert.deepEqual(left, [1, 2, 3, 4]);
  assert.equal(checkPageIndex(files, id), undefined);
  unlockPage(mem, pfns[4]);
  assert.equal(word0(mem, readAndPut(files, id, 7)), 8, 'a reclaimed page is read again');
  assert.equal(store.reads, reads + 1);
  mem.putPage(pfns[3]);
  mem.decMapcount(pfns[2]);
  teardown(mem, files, [id]);
});

test('writeback: dirty pages written up to the size, mkclean under the page lock; a failure stays dirty and is reported once per cursor', () => {
  const { mem, files } = setup();
  const id = fakeFile(files, 3);
  const size = 2 * PAGE_SIZE + 100;
  files.iRwsemLock(id, true);
  files.setSizeLocked(id, size);
  files.iRwsemUnlock(id, true);
  const cleaned: number[] = [];
  installRmap({
    unmapMappingRange() {},
    mkcleanPage(_f, file, index, pfn) {
      assert.equal(file, id);
      assert.ok(pageLocked(mem, pfn), 'mkclean runs under the page lock');
      assert.ok(mem.testFlag(pfn, PG_DIRTY), 'before PG_DIRTY is cleared');
      cleaned.push(index);
    },
  });
  const cursors = new Int32Array(3);
  cursors[0] = fileSampleWbErr(files, id);
  const pfns = [0, 1, 2].map((i) => readAndPut(files, id, i));
  for (const pfn of pfns) {
    mem.i32[pfn * I32_PER_PAGE] = pfn;
    markPageDirty(files, pfn);
  }
  store.failWrites = 1;
  assert.equal(writebackRange(files, id, 0, 2), -EIO);
  assert.ok(mem.testFlag(pfns[0], PG_DIRTY), 'the failed page is dirty again');
  assert.ok(!mem.testFlag(pfns[1], PG_DIRTY) && !mem.testFlag(pfns[2], PG_DIRTY));
  assert.deepEqual(store.writeLens.slice(-2), [PAGE_SIZE, 100], 'the last page only up to the size');
  cursors[1] = fileSampleWbErr(files, id);
  assert.equal(fileCheckAndAdvanceWbErr(files, id, cursors, 0), -EIO);
  assert.equal(fileCheckAndAdvanceWbErr(files, id, cursors, 0), 0, 'once');
  assert.equal(
    fileCheckAndAdvanceWbErr(files, id, cursors, 1),
    -EIO,
    'opened after the error, before anyone saw it',
  );
  cursors[2] = fileSampleWbErr(files, id);
  assert.equal(fileCheckAndAdvanceWbErr(files, id, cursors, 2), 0);
  assert.equal(writebackRange(files, id, 0, 2), 0, 'a later fsync writes what failed');
  assert.equal(new Int32Array(store.pages.get(`${id}:0`)?.buffer ?? new ArrayBuffer(4))[0], pfns[0]);
  assert.deepEqual(cleaned, [0, 1, 2, 0]);
  assert.ok(pfns.every((p) => !mem.testFlag(p, PG_DIRTY)));
  assert.equal(writebackRange(files, id, 0, 2), 0);
  assert.equal(cleaned.length, 4, 'clean pages are not written');
  teardown(mem, files, [id]);
});

test('truncate and punch: unmap the range through the seam first, remove its pages, keep the rest dirty', () => {
  const { mem, files } = setup();
  const id = files.add({ size: 16 * PAGE_SIZE, writable: true, name: 'memfd' });
  const pfns = Array.from({ length: 16 }, (_, i) => readAndPut(files, id, i));
  for (const pfn of pfns) markPageDirty(files, pfn);
  mem.incMapcount(pfns[12]);
  const calls: string[] = [];
  installRmap({
    unmapMappingRange(_f, file, first, last, evenCows) {
      calls.push(`${file}:${first}-${last}:${evenCows}:${files.nrpages(file)}`);
      if (first === 12 && last === 12) mem.decMapcount(pfns[12]);
    },
    mkcleanPage() {},
  });
  const lock = files.invalidateLock(id);
  assert.throws(() => truncateCacheRange(files, id, 10, 15), /invalidate_lock is not held for write/);
  lock.downWrite();
  try {
    assert.equal(punchCacheRange(files, id, 2, 4), 3);
    assert.equal(truncateCacheRange(files, id, 10, 2 ** 32 + 5), 6);
    assert.equal(truncateCacheRange(files, id, 3, 1), -EINVAL);
  } finally {
    lock.upWrite();
  }
  assert.deepEqual(calls, [
    `${id}:2-4:false:16`,
    `${id}:10-4294967295:true:13`,
    `${id}:12-12:true:${13 - 2}`,
  ]);
  const left = [];
  for (let i = 0; i < 16; i++) if (findAndPut(files, id, i) !== 0) left.push(i);
  assert.deepEqual(left, [0, 1, 5, 6, 7, 8, 9]);
  for (const i of left) assert.ok(mem.testFlag(pfns[i], PG_DIRTY), `page ${i} keeps its dirty data`);
  assert.equal(word0(mem, readAndPut(files, id, 3)), 0, 'a punched page reads as zeros');
  assert.equal(checkPageIndex(files, id), undefined);
  teardown(mem, files, [id]);
});

test('readahead: windows of 4, 8, 16, 32 pages on sequential reads, reset by a random read, clamped at EOF', () => {
  const { mem, files } = setup(1024);
  const id = fakeFile(files, 200);
  const ra = newReadahead();
  const reads = store.reads;
  const cachedAfter: number[] = [];
  for (let i = 0; i < 100; i++) {
    const pfn = readCachePage(files, id, i, ra, 0);
    assert.ok(pfn > 0);
    mem.putPage(pfn);
    cachedAfter.push(files.nrpages(id));
  }
  // Window w reads the next one when the reader crosses its middle page.
  assert.deepEqual(
    [
      cachedAfter[0],
      cachedAfter[1],
      cachedAfter[2],
      cachedAfter[7],
      cachedAfter[8],
      cachedAfter[19],
      cachedAfter[20],
    ],
    [4, 4, 12, 12, 28, 28, 60],
  );
  assert.equal(cachedAfter[44], 92, 'then 32 pages at a time');
  assert.equal(store.reads - reads, files.nrpages(id), 'every page read once');
  const before = files.nrpages(id);
  readAndPutRa(files, id, 150, ra);
  assert.equal(files.nrpages(id) - before, 4, 'a random read: back to 4');
  readAndPutRa(files, id, 198, ra);
  assert.equal(files.nrpages(id) - before, 6, 'pages past the end of the file are not read');
  teardown(mem, files, [id]);
});

function readAndPutRa(files: FileTable, id: number, index: number, ra: Float64Array): void {
  const pfn = readCachePage(files, id, index, ra, 0);
  assert.ok(pfn > 0);
  files.mem?.putPage(pfn);
}

test('findReadablePages: cached up-to-date pages from an index on, across a leaf, each referenced; it stops at a hole, a page not up to date, a readahead marker and at max', () => {
  const { mem, files } = setup(1024);
  const id = fakeFile(files, 200);
  for (let i = 60; i < 100; i++) if (i !== 90) mem.putPage(readCachePage(files, id, i)); // no readahead
  const cached = (i: number): number => {
    const pfn = findGetPage(files, id, i);
    if (pfn !== 0) mem.putPage(pfn);
    return pfn;
  };
  assert.equal(cached(90), 0, 'page 90 is a hole');
  assert.ok(cached(89) > 0 && cached(91) > 0);
  const out = new Int32Array(READ_BATCH);
  /** The run from `index` (max `max`): its pfns, checked to hold one more reference each, then put. */
  const run = (index: number, max: number, ra: Float64Array | null = null): number[] => {
    const n = findReadablePages(files, id, index, max, out, ra, 0);
    const pfns = Array.from(out.subarray(0, n));
    pfns.forEach((pfn, k) => {
      assert.equal(pfn, cached(index + k), `page ${index + k}`);
      assert.equal(mem.refcount[pfn], 2, 'the cache and the run hold it');
      mem.putPage(pfn);
      assert.equal(mem.refcount[pfn], 1);
    });
    return pfns;
  };
  const ra = newReadahead();
  assert.equal(run(60, READ_BATCH, ra).length, 30, 'pages 60-89, over the leaf boundary at 64; 90 is a hole');
  assert.equal(ra[0], 89, 'the readahead state saw the hits up to the last page of the run');
  assert.equal(run(90, READ_BATCH).length, 0, 'a hole first: nothing');
  assert.equal(run(91, 4).length, 4, 'max');
  assert.equal(run(120, 1).length, 0, 'past every cached page');
  mem.clearFlag(cached(70), PG_UPTODATE);
  assert.equal(run(60, READ_BATCH).length, 10, 'a page not up to date ends the run');
  assert.equal(run(70, 1).length, 0);
  mem.setFlag(cached(70), PG_UPTODATE);
  mem.setFlag(cached(66), PG_READAHEAD);
  assert.equal(run(60, READ_BATCH).length, 6, 'so does a readahead marker: readCachePage handles it');
  mem.clearFlag(cached(66), PG_READAHEAD);
  assert.equal(run(60, READ_BATCH).length, 30);
  assert.throws(
    () => findReadablePages(files, id, 60, READ_BATCH + 1, new Int32Array(64), null, 0),
    /bad batch/,
  );
  teardown(mem, files, [id]);
});

test('the last put of a file writes its dirty pages back and frees its cache; the kernel counts return to zero', () => {
  const kernel = Kernel.create({ frames: 512 });
  const files = kernel.files;
  const id = fakeFile(files, 6, 'host-like');
  const shm = files.add({ size: 6 * PAGE_SIZE, writable: true, name: 'memfd' });
  for (let i = 0; i < 6; i++) {
    for (const f of [id, shm]) {
      const pfn = readCachePage(files, f, i);
      kernel.mem.i32[pfn * I32_PER_PAGE] = 1000 + i;
      markPageDirty(files, pfn);
      kernel.mem.putPage(pfn);
    }
  }
  assert.equal(kernel.counts().frames, 12);
  files.put(id);
  files.put(shm);
  for (let i = 0; i < 6; i++) {
    assert.equal(new Int32Array(store.pages.get(`${id}:${i}`)?.buffer ?? new ArrayBuffer(4))[0], 1000 + i);
  }
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  assert.equal(files.cacheNodes.live, 0);
});

test('bad arguments: errno, nothing changed', () => {
  const { mem, files } = setup();
  const id = files.add({ size: PAGE_SIZE, writable: true, name: 'memfd' });
  for (const [index, err] of [
    [-1, -EINVAL],
    [1.5, -EINVAL],
    [Number.NaN, -EINVAL],
    [2 ** 32, -EFBIG],
    [2 ** 60, -EFBIG],
  ]) {
    assert.equal(readCachePage(files, id, index), err, `readCachePage(${index})`);
  }
  assert.equal(writebackRange(files, id, 4, 3), -EINVAL);
  assert.equal(writebackRange(files, id, -1, 3), -EINVAL);
  assert.equal(files.nrpages(id), 0);
  assert.equal(mem.stats().file, 0);
  teardown(mem, files, [id]);
});
