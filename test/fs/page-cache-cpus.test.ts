/**
 * Truncate and punch against readers on another CPU (tasks/page-cache.ts): a worker reads pages of
 * a memory file through readCachePage (creating missing pages under invalidate_lock shared) and
 * findGetPage (lock-free) and checks every word, while the main thread punches ranges, truncates
 * the tail and rewrites pages through the cache, each under the locks docs/fs.md gives. After a
 * punch or truncate returns, no reader gets the old data of its range: stale reads 0, foreign
 * (freed or reused frame) reads 0. The same run with the generation published before the punch
 * (a punch that is not finished when it says so) shows stale reads, so the check can fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileTable } from '../../src/fs/file-table.js';
import {
  markPageDirty,
  punchCacheRange,
  readCachePage,
  truncateCacheRange,
} from '../../src/fs/page-cache.js';
import { Machine } from '../../src/machine/machine.js';
import { PhysMem } from '../../src/mem/frames.js';
import { I32_PER_PAGE, PAGE_SIZE } from '../../src/mem/page.js';
import { Rng } from '../../src/rng.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import type { CacheReaderArgs, CacheReaderResult } from './tasks/page-cache.js';

const TASK = new URL('./tasks/page-cache.js', import.meta.url);
const PAGES = 48;

interface Race {
  reader: CacheReaderResult;
  punches: number;
  truncates: number;
  rewrites: number;
}

async function race(machine: Machine, ms: number, publishEarly: boolean): Promise<Race> {
  const mem = PhysMem.create({ frames: 1024 });
  const files = FileTable.create({ mem });
  const id = files.add({ size: PAGES * PAGE_SIZE, writable: true, name: 'memfd:race' });
  const done = new Int32Array(new SharedArrayBuffer(4 * PAGES));
  const sync = new Int32Array(new SharedArrayBuffer(12));
  const rng = new Rng(0xf11e);
  const out: Race = { reader: {} as CacheReaderResult, punches: 0, truncates: 0, rewrites: 0 };
  const args: CacheReaderArgs = {
    files: files.describe(),
    id,
    pages: PAGES,
    done: done.buffer as SharedArrayBuffer,
    sync: sync.buffer as SharedArrayBuffer,
    seed: 3,
  };
  const run = machine.run<CacheReaderResult>(TASK, args, [0]);
  try {
    const ready = Date.now() + 10_000;
    while (Atomics.load(sync, 0) < 1 && Date.now() < ready) {
      // Wait for the reader.
    }
    const lock = files.invalidateLock(id);
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const g = Atomics.add(sync, 2, 1) + 1;
      const op = rng.below(8);
      if (op < 5) {
        const k = rng.below(PAGES);
        const pfn = readCachePage(files, id, k);
        assert.ok(pfn > 0);
        mem.i32.fill(g, pfn * I32_PER_PAGE, (pfn + 1) * I32_PER_PAGE);
        markPageDirty(files, pfn);
        mem.putPage(pfn);
        out.rewrites++;
        continue;
      }
      const first = rng.below(PAGES);
      const last = op < 7 ? Math.min(PAGES - 1, first + rng.below(6)) : PAGES - 1;
      if (publishEarly) for (let k = first; k <= last; k++) Atomics.store(done, k, g);
      lock.downWrite();
      if (op < 7) punchCacheRange(files, id, first, last);
      else truncateCacheRange(files, id, first, last);
      lock.upWrite();
      for (let k = first; k <= last; k++) Atomics.store(done, k, g);
      if (op < 7) out.punches++;
      else out.truncates++;
    }
  } finally {
    Atomics.store(sync, 1, 1);
    [out.reader] = await run;
  }
  files.put(id);
  rcuBarrier();
  mem.drainAll();
  assert.equal(mem.stats().file, 0, 'the file put freed every cached page');
  assert.equal(files.cacheNodes.live, 0);
  return out;
}

test('after a punch or truncate returns, no reader on another CPU gets the old data', async () => {
  const machine = await Machine.start({ cpus: 1 });
  try {
    const r = await race(machine, 1500, false);
    console.log(
      `punch race: ${r.punches} punches, ${r.truncates} truncates, ${r.rewrites} rewrites; reader ${r.reader.reads} reads, ${r.reader.found} pages checked, ${r.reader.misses} misses, ${r.reader.stale} stale, ${r.reader.foreign} foreign`,
    );
    assert.equal(r.reader.stale + r.reader.foreign, 0, r.reader.firstBad);
    assert.ok(r.punches > 100 && r.truncates > 20 && r.reader.found > 10_000, 'both sides did enough');
  } finally {
    await machine.stop();
  }
});

test('control: publishing the generation before the punch lets stale reads through', async () => {
  const machine = await Machine.start({ cpus: 1 });
  try {
    const r = await race(machine, 1500, true);
    assert.ok(r.reader.stale > 0, `no stale read in ${r.reader.found} checked pages`);
    assert.equal(r.reader.foreign, 0, r.reader.firstBad);
  } finally {
    await machine.stop();
  }
});
