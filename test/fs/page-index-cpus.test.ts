/**
 * The page index on two CPUs (tasks/page-index.ts): a worker looks keys up and runs gang lookups
 * without a lock (RCU) while the main thread inserts and erases under i_pages, growing and
 * shrinking the tree so that nodes are unlinked, freed after their grace period (poisoned: the
 * suite runs in debug mode) and reused. The reader never sees a torn value or a freed node.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileTable } from '../../src/fs/file-table.js';
import { checkPageIndex } from '../../src/fs/page-index.js';
import { Machine } from '../../src/machine/machine.js';
import { Rng } from '../../src/rng.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { erase, insert } from './index-util.js';
import type { IndexReaderArgs, IndexReaderResult } from './tasks/page-index.js';

const TASK = new URL('./tasks/page-index.js', import.meta.url);

test('a reader CPU looks up while the main thread inserts and erases: never a torn or freed node', async () => {
  const files = FileTable.create();
  const id = files.add({ size: 0, writable: true, name: 'racing' });
  const rng = new Rng(0xca5e);
  const keys = new Float64Array(new SharedArrayBuffer(8 * 1024));
  const used = new Set<number>();
  for (let p = 0; p < keys.length; p++) {
    let k: number;
    do k = p % 4 === 0 ? rng.next() : p % 4 === 1 ? rng.below(1 << 16) : rng.below(4096);
    while (used.has(k));
    used.add(k);
    keys[p] = k;
  }
  const present = new Uint8Array(keys.length);
  const sync = new Int32Array(new SharedArrayBuffer(8));
  const machine = await Machine.start({ cpus: 1 });
  let writes = 0;
  let flushes = 0;
  try {
    const args: IndexReaderArgs = {
      files: files.describe(),
      id,
      keys: keys.buffer as SharedArrayBuffer,
      sync: sync.buffer as SharedArrayBuffer,
      seed: 7,
    };
    const run = machine.run<IndexReaderResult>(TASK, args);
    const ready = Date.now() + 10_000;
    while (Atomics.load(sync, 0) < 1 && Date.now() < ready) {
      // Wait for the reader.
    }
    const until = Date.now() + 1500;
    for (let gen = 0; Date.now() < until; gen++) {
      for (let i = 0; i < 64; i++) {
        const p = rng.below(keys.length);
        if (present[p]) erase(files, id, keys[p]);
        else assert.equal(insert(files, id, keys[p], (p + 1) * 256 + (gen % 256)), 0);
        present[p] ^= 1;
        writes++;
      }
      if (gen % 50 === 49) {
        // Empty the whole index now and then: every node unlinked, the root back to nothing.
        for (let p = 0; p < keys.length; p++) if (present[p]) erase(files, id, keys[p]);
        present.fill(0);
        flushes++;
      }
    }
    Atomics.store(sync, 1, 1);
    const [r] = await run;
    console.log(
      `page index race: ${writes} writes, ${flushes} flushes, reader ${r.lookups} lookups (${r.hits} hits), ${r.gangs} gang lookups, ${r.bad} bad`,
    );
    assert.equal(r.bad, 0, r.firstBad);
    assert.ok(r.hits > 1000 && r.gangs > 1000, 'the reader saw the index populated');
    assert.ok(files.cacheNodes.stats().frees > 100, 'nodes were freed (and reused) during the run');
  } finally {
    Atomics.store(sync, 1, 1);
    await machine.stop();
  }
  assert.equal(checkPageIndex(files, id), undefined);
  for (let p = 0; p < keys.length; p++) if (present[p]) erase(files, id, keys[p]);
  rcuBarrier();
  assert.equal(files.cacheNodes.live, 0);
  files.put(id);
});
