/**
 * Task (test/mm/file-fault-cpus.test.ts), one role per CPU:
 *   writer   stores round r into page r % pages of its shared file mapping, then publishes r
 *   reader   waits for each round and loads the word through its own process's shared mapping:
 *            it must see the value at once (no msync, no copy); counts mismatches
 *   faulter  one read fault of an uncached page of a file whose `fault` callback is slowed by
 *            injection; sets the done word when it returns. With `mkwrite`: it first reads pages
 *            1 and 0 (cached, mapped read-only, the PTE table made), then stores to page 0: a
 *            per-VMA-lock write fault whose page_mkwrite is the slowed callback
 *   mapper   waits until the faulter is in its fault, then runs mmap + munmap of an anonymous page
 *            of the same mm until the fault is done: counts the iterations that completed beside
 *            the fault's I/O (none when the fault holds mmap_lock across it, as under 'global'),
 *            and its longest iteration. With `touch` it stores to the page before the munmap, so
 *            each munmap shoots down and waits for every CPU whose Mmu is online
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';

export interface FileFaultCpuArgs {
  role: 'writer' | 'reader' | 'faulter' | 'mapper';
  process: ProcessDescriptor;
  base: number;
  pages: number;
  rounds: number;
  durationMs: number;
  /** Int32: [0] the published round, [1] the fault is done, [2] the reader's round, [3] faulting. */
  sync: SharedArrayBuffer;
  /** mapper: how long it lets the faulter enter its fault before it starts (ms). */
  stallMs: number;
  /** faulter: a shared write fault to a cached page (page_mkwrite) instead of a read fault. */
  mkwrite?: boolean;
  /** mapper: store to the page before unmapping it (a shootdown per munmap). */
  touch?: boolean;
}

export interface FileFaultCpuResult {
  count: number;
  mismatches: number;
  /** mapper: its longest mmap + munmap iteration (ms). */
  longestMs: number;
}

const P = 4096;
const WAIT_MS = 10_000;

export default function fileFaultCpu(_cpu: number, args: FileFaultCpuArgs): FileFaultCpuResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  const mmu = proc.mm.mmu();
  let count = 0;
  let mismatches = 0;
  let longestMs = 0;
  try {
    if (args.role === 'writer') {
      for (let r = 1; r <= args.rounds; r++) {
        mmu.store32(args.base + (r % args.pages) * P + 8, r);
        Atomics.store(sync, 0, r);
        Atomics.notify(sync, 0);
        // Wait for the reader's acknowledgement (slot 2) before the next round.
        for (let spin = 0; Atomics.load(sync, 2) !== r && spin < 1000; spin++)
          Atomics.wait(sync, 2, r - 1, WAIT_MS / 1000);
        count++;
      }
    } else if (args.role === 'reader') {
      for (let r = 1; r <= args.rounds; r++) {
        for (let spin = 0; Atomics.load(sync, 0) < r && spin < 1000; spin++)
          Atomics.wait(sync, 0, r - 1, WAIT_MS / 1000);
        if (mmu.load32(args.base + (r % args.pages) * P + 8) !== r) mismatches++;
        Atomics.store(sync, 2, r);
        Atomics.notify(sync, 2);
        count++;
      }
    } else if (args.role === 'faulter') {
      // One fault on a page that is not cached: its `fault` callback is slowed down by injection;
      // or (mkwrite) a write to a cached page mapped read-only: its page_mkwrite is.
      if (args.mkwrite === true) {
        mmu.load32(args.base + P);
        mmu.load32(args.base);
      }
      Atomics.store(sync, 3, 1);
      Atomics.notify(sync, 3);
      if (args.mkwrite === true) mmu.store32(args.base, 1);
      else mmu.load32(args.base);
      Atomics.store(sync, 1, 1);
      count = 1;
    } else {
      // Once the faulter is inside its fault, mmap + munmap until it is done: the iterations that
      // ran beside the fault's I/O.
      for (let spin = 0; Atomics.load(sync, 3) === 0 && spin < 1000; spin++)
        Atomics.wait(sync, 3, 0, WAIT_MS / 1000);
      Atomics.wait(sync, 1, 0, args.stallMs);
      const end = performance.now() + args.durationMs;
      for (let t = performance.now(); Atomics.load(sync, 1) === 0 && t < end; ) {
        const at = proc.mm.mmap(0, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        if (args.touch === true) mmu.store8(at, 1);
        proc.mm.munmap(at, P);
        if (Atomics.load(sync, 1) === 0) count++;
        const now = performance.now();
        longestMs = Math.max(longestMs, now - t);
        t = now;
      }
    }
  } finally {
    proc.detach();
  }
  return { count, mismatches, longestMs };
}
