/**
 * Task of test/fs/truncate-putback-cpus.test.ts, one process on two CPUs:
 *
 *   reclaimer  does what reclaim does to a page it finds referenced after it took the page out of
 *              the index (reclaim.ts tryReclaimPage): under i_pages, clears page PAGE's slot, then
 *              (a reference having come meanwhile) puts the page back, HOLD_MS later, busy (a
 *              spinlock holder does not sleep); it tells the puncher once the slot is empty
 *   puncher    waits for that, then punches the file's first PAGES pages while the slot is empty:
 *              its lockless scan passes the page, which comes back behind it
 */

import {
  lockIPages,
  pageIndexClearLocked,
  pageIndexRestoreLocked,
  unlockIPages,
} from '../../../src/fs/page-index.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from '../../../src/kernel/file-syscalls.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';

export const P = 4096;
export const PAGES = 4;
export const PAGE = 2;
const HOLD_MS = 100;

export interface PutbackArgs {
  role: 'reclaimer' | 'puncher';
  process: ProcessDescriptor;
  fd: number;
  file: number;
  /** Word 0: 1 once the reclaimer emptied the slot. */
  sync: SharedArrayBuffer;
}

export default function run(_cpu: number, args: PutbackArgs): string {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  try {
    if (args.role === 'puncher') {
      if (Atomics.wait(sync, 0, 0, 10_000) === 'timed-out') return 'the reclaimer never emptied the slot';
      proc.fallocate(args.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGES * P);
      return '';
    }
    const files = proc.mm.files;
    lockIPages(files, args.file);
    const pfn = pageIndexClearLocked(files, args.file, PAGE);
    Atomics.store(sync, 0, 1);
    Atomics.notify(sync, 0);
    const until = performance.now() + HOLD_MS;
    while (performance.now() < until) {
      // i_pages is a spinlock: its holder does not sleep.
    }
    if (pfn !== 0) pageIndexRestoreLocked(files, args.file, PAGE, pfn);
    unlockIPages(files, args.file);
    return pfn === 0 ? 'page PAGE was not cached' : '';
  } finally {
    proc.detach();
  }
}
