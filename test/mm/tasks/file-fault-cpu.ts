/**
 * Task (test/mm/file-fault-cpus.test.ts), one role per CPU:
 *   writer   stores round r into page r % pages of its shared file mapping, then publishes r
 *   reader   waits for each round and loads the word through its own process's shared mapping:
 *            it must see the value at once (no msync, no copy); counts mismatches
 *   faulter  reads fresh pages of a file mapping whose `fault` is slowed by injection, until told
 *            to stop; counts faults
 *   mapper   mmap + munmap of an anonymous page of the same mm in a loop for `durationMs`;
 *            counts iterations (a design that holds mmap_lock across the fault's I/O stalls it)
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
  /** Int32: [0] the published round, [1] stop. */
  sync: SharedArrayBuffer;
}

export interface FileFaultCpuResult {
  count: number;
  mismatches: number;
}

const P = 4096;
const WAIT_MS = 10_000;

export default function fileFaultCpu(_cpu: number, args: FileFaultCpuArgs): FileFaultCpuResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  const mmu = proc.mm.mmu();
  let count = 0;
  let mismatches = 0;
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
      for (let i = 0; i < args.pages && Atomics.load(sync, 1) === 0; i++) {
        mmu.load32(args.base + i * P);
        count++;
      }
    } else {
      const end = performance.now() + args.durationMs;
      while (performance.now() < end) {
        const at = proc.mm.mmap(0, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        proc.mm.munmap(at, P);
        count++;
      }
      Atomics.store(sync, 1, 1);
    }
  } finally {
    proc.detach();
  }
  return { count, mismatches };
}
