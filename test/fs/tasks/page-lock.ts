/**
 * Page-lock tasks (test/fs/page-lock.test.ts).
 *
 * `count`: lockPage, a non-atomic increment of word 0 of the page (with a pause between the load
 * and the store, so that two holders at once would lose increments), unlockPage; `rounds` times.
 * `writeback`: waitOnPageWriteback on a page the main thread ends writeback of later; returns ms waited.
 * `lock`: lockPage on a page the main thread holds (the watchdog test), then unlock.
 */
import { lockPage, unlockPage, waitOnPageWriteback } from '../../../src/fs/page-lock.js';
import { PhysMem, type PhysMemDescriptor } from '../../../src/mem/frames.js';
import { I32_PER_PAGE } from '../../../src/mem/page.js';

export interface PageLockArgs {
  op: 'count' | 'writeback' | 'lock';
  mem: PhysMemDescriptor;
  pfn: number;
  rounds: number;
  /** Int32: word 0 CPUs started. */
  sync: SharedArrayBuffer;
}

export default function run(_cpu: number, args: PageLockArgs): number {
  const mem = PhysMem.attach(args.mem);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  const pfn = args.pfn;
  if (args.op === 'writeback') {
    const start = performance.now();
    waitOnPageWriteback(mem, pfn);
    return performance.now() - start;
  }
  if (args.op === 'lock') {
    lockPage(mem, pfn);
    unlockPage(mem, pfn);
    return 0;
  }
  const deadline = Date.now() + 5000;
  while (Atomics.load(sync, 0) < 2 && Date.now() < deadline) {
    // Start together, so that the CPUs contend.
  }
  const at = pfn * I32_PER_PAGE;
  let sink = 0;
  for (let i = 0; i < args.rounds; i++) {
    lockPage(mem, pfn);
    const v = mem.i32[at];
    for (let k = 0; k < 50; k++) sink += k;
    mem.i32[at] = v + 1;
    unlockPage(mem, pfn);
  }
  return sink === -1 ? -1 : args.rounds;
}
