/**
 * Task: read() into a buffer another CPU keeps remapping (test/fs/read-remap-cpus.test.ts), one
 * process on two CPUs.
 *
 *   reader   pread()s the whole file (PAGES pages, page k's bytes fileByte(k, i)) into the window
 *            flat out: each read is whole, short or EFAULT. A whole read during which no window
 *            page's generation moved (gen, a seqlock as in test/mm/tasks/mmu-race.ts: odd while
 *            the remapper's call runs) must have put the file's bytes in every page: checked
 *            through the reader's Mmu, a word per 64 bytes.
 *   remapper munmaps or remaps (MAP_FIXED, fresh anonymous pages, touched in order) a random run
 *            of window pages, then maps its scratch range, fills every word with SENTINEL, and
 *            checks them all after the next call: a frame freed from the window and reused there
 *            that changes under it was written by a read through a stale translation (a copy run
 *            that went past the point where its CPU acknowledged the shootdown).
 *
 * Returns { reads: [whole, short, efault], checked, calls, error }.
 */
import { VmError } from '../../../src/errno.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import type { Mmu } from '../../../src/mem/mmu.js';
import { MemoryFault } from '../../../src/mem/tlb.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';

export const P = 4096;
export const PAGES = 48;
export const WINDOW = 0x200000000;
const SCRATCH = 0x300000000;
const SCRATCH_PAGES = 64;
const SENTINEL = 0x5aa5c33c;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const RW = PROT_READ | PROT_WRITE;

export interface ReadRemapArgs {
  role: 'reader' | 'remapper';
  process: ProcessDescriptor;
  fd: number;
  /** Word 0: CPUs ready; 1: remapper done; then one generation word per window page. */
  sync: SharedArrayBuffer;
  seed: number;
  durationMs: number;
}

export interface ReadRemapResult {
  reads: number[];
  checked: number;
  calls: number;
  error: string;
}

/** Byte i of the file's page k. */
export function fileByte(k: number, i: number): number {
  return (k * 29 + i * 7 + (i >> 8)) & 0xff;
}

const GEN = 2;

export default function run(_cpu: number, args: ReadRemapArgs): ReadRemapResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  const out: ReadRemapResult = { reads: [0, 0, 0], checked: 0, calls: 0, error: '' };
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  try {
    if (args.role === 'reader') read(proc, args.fd, sync, out);
    else remap(proc, args, sync, out);
  } catch (error) {
    out.error = String((error as Error).stack ?? error);
  } finally {
    if (args.role === 'remapper') Atomics.store(sync, 1, 1);
    proc.detach();
  }
  return out;
}

function read(proc: Process, fd: number, sync: Int32Array, out: ReadRemapResult): void {
  const mmu = proc.mm.mmu();
  const before = new Int32Array(PAGES);
  // Bounded: the remapper's deadline ends it (and the watchdog a hang).
  while (Atomics.load(sync, 1) === 0 && out.error === '') {
    for (let p = 0; p < PAGES; p++) before[p] = Atomics.load(sync, GEN + p);
    let n: number;
    try {
      n = proc.pread(fd, WINDOW, PAGES * P, 0);
    } catch (e) {
      if (!(e instanceof VmError) || e.code !== 'EFAULT') throw e;
      out.reads[2]++;
      continue;
    }
    if (n !== PAGES * P) {
      if (out.reads[1]++ === 0 && n === 0) out.error = 'pread read nothing';
      continue;
    }
    out.reads[0]++;
    // What the window holds counts only if no remap began or ran from before the read until
    // after the check (a seqlock's reader: validate at the end).
    let found: string;
    try {
      found = checkWindow(mmu);
    } catch (e) {
      if (!(e instanceof MemoryFault)) throw e;
      found = `window: ${e.message}`;
    }
    let stable = true;
    for (let p = 0; p < PAGES && stable; p++) {
      const g = Atomics.load(sync, GEN + p);
      stable = (g & 1) === 0 && g === before[p];
    }
    if (!stable) continue;
    out.checked++;
    out.error = found;
  }
}

/** The file's bytes in every window page (a word per 64 bytes): '' or what differs. */
function checkWindow(mmu: Mmu): string {
  for (let p = 0; p < PAGES; p++) {
    for (let i = 0; i < P; i += 64) {
      const want =
        fileByte(p, i) | (fileByte(p, i + 1) << 8) | (fileByte(p, i + 2) << 16) | (fileByte(p, i + 3) << 24);
      const got = mmu.load32(WINDOW + p * P + i);
      if (got !== want)
        return `window page ${p} byte ${i}: 0x${(got >>> 0).toString(16)}, the file has 0x${(want >>> 0).toString(16)}`;
    }
  }
  return '';
}

function remap(proc: Process, args: ReadRemapArgs, sync: Int32Array, out: ReadRemapResult): void {
  const mm = proc.mm;
  const mmu = mm.mmu();
  let seed = args.seed | 0 || 1;
  const below = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const deadline = Date.now() + args.durationMs;
  const scratchWords = new Int32Array((SCRATCH_PAGES * P) / 4);
  const scratch = new Uint8Array(scratchWords.buffer);
  let filled = false;
  // Bounded: the deadline.
  while (Date.now() < deadline) {
    const first = below(PAGES);
    const n = 1 + below(Math.min(16, PAGES - first));
    for (let p = first; p < first + n; p++) Atomics.add(sync, GEN + p, 1);
    if (below(3) === 0) mm.munmap(WINDOW + first * P, n * P);
    mm.mmap(WINDOW + first * P, n * P, RW, ANON);
    for (let p = first; p < first + n; p++) mmu.store8(WINDOW + p * P, 0);
    for (let p = first; p < first + n; p++) Atomics.add(sync, GEN + p, 1);
    out.calls++;
    if (filled) {
      if (mmu.copyIn(SCRATCH, scratch) !== 0) throw new Error('scratch faulted');
      const w = scratchWords.findIndex((v) => v !== SENTINEL);
      if (w >= 0) {
        out.error = `scratch word ${w} (a frame once in the window?) changed to 0x${(scratchWords[w] >>> 0).toString(16)}`;
        return;
      }
      mm.munmap(SCRATCH, SCRATCH_PAGES * P);
    }
    // Fresh frames for the scratch: the window's freed ones among them.
    mm.mmap(SCRATCH, SCRATCH_PAGES * P, RW, ANON);
    scratchWords.fill(SENTINEL);
    if (mmu.copyOut(SCRATCH, scratch) !== 0) throw new Error('scratch faulted');
    filled = true;
  }
}
