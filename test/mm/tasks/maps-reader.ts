/**
 * Task: a CPU that accesses memory, then reads its /proc/PID/maps (test/mm/mmu-offline.test.ts).
 *
 * It stores into the page at args.page (its Mmu online, the translation cached), says so in sync
 * word 0, keeps loading the page (acknowledging shootdowns as it goes) until the main thread,
 * holding mmap_lock for write, sets sync word 1, then calls Process.maps(): the views take
 * mmap_lock (R) and block. Returns the maps text.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';

export interface MapsReaderArgs {
  process: ProcessDescriptor;
  page: number;
  sync: SharedArrayBuffer;
}

export default function run(_cpu: number, args: MapsReaderArgs): string {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  try {
    const mmu = proc.mm.mmu();
    mmu.store32(args.page, 7);
    Atomics.store(sync, 0, 1);
    const deadline = Date.now() + 10_000;
    while (Atomics.load(sync, 1) === 0) {
      if (mmu.load32(args.page) !== 7) throw new Error('the page changed');
      if (Date.now() > deadline) throw new Error('the main thread did not take mmap_lock');
    }
    return proc.maps();
  } finally {
    proc.detach();
  }
}
