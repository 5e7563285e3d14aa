/**
 * A reader CPU over one memory file's page cache (test/fs/page-cache-cpus.test.ts) while the main
 * thread punches, truncates and rewrites it. Before each lookup the reader loads `done[p]`, the
 * generation of the last punch or truncate of page p that has returned; every word of the page it
 * then gets must be 0 (punched, or never written) or at least that generation (written after),
 * and at most the newest generation (`gen`, loaded after the scan): anything else is a stale read
 * (old data after the punch returned) or a foreign one (a freed or reused frame).
 */
import { FileTable, type FileTableDescriptor } from '../../../src/fs/file-table.js';
import { findGetPage, readCachePage } from '../../../src/fs/page-cache.js';
import { I32_PER_PAGE } from '../../../src/mem/page.js';
import { Rng } from '../../../src/rng.js';

export interface CacheReaderArgs {
  files: FileTableDescriptor;
  id: number;
  pages: number;
  /** Int32 [pages]: done generation per page. */
  done: SharedArrayBuffer;
  /** Int32: word 0 ready, word 1 stop, word 2 newest generation. */
  sync: SharedArrayBuffer;
  seed: number;
}

export interface CacheReaderResult {
  reads: number;
  found: number;
  misses: number;
  stale: number;
  foreign: number;
  firstBad: string;
}

export default function read(cpu: number, args: CacheReaderArgs): CacheReaderResult {
  const files = FileTable.attach(args.files);
  const mem = files.mem;
  if (mem === null) throw new Error('no PhysMem');
  const done = new Int32Array(args.done);
  const sync = new Int32Array(args.sync);
  const rng = new Rng(args.seed + cpu);
  const out: CacheReaderResult = { reads: 0, found: 0, misses: 0, stale: 0, foreign: 0, firstBad: '' };
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 1) === 0) {
    const p = rng.below(args.pages);
    const floor = Atomics.load(done, p);
    const create = rng.below(2) === 0;
    const pfn = create ? readCachePage(files, args.id, p) : findGetPage(files, args.id, p);
    out.reads++;
    if (pfn < 0) throw new Error(`readCachePage(${p}): ${pfn}`);
    if (pfn === 0) {
      out.misses++;
      continue;
    }
    out.found++;
    let low = 0x7fffffff;
    let high = 0;
    const at = pfn * I32_PER_PAGE;
    for (let w = at; w < at + I32_PER_PAGE; w++) {
      const v = mem.i32[w];
      if (v === 0) continue;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    const newest = Atomics.load(sync, 2);
    mem.putPage(pfn);
    if (high > newest) {
      if (out.foreign++ === 0 && out.stale === 0)
        out.firstBad = `page ${p}: word ${high} > newest generation ${newest}`;
    } else if (high !== 0 && low < floor) {
      if (out.stale++ === 0 && out.foreign === 0)
        out.firstBad = `page ${p}: word ${low} < generation ${floor} of its last punch`;
    }
  }
  return out;
}
