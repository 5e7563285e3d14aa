/**
 * Task: the read/write-versus-fault lock inversion (test/fs/inversion-cpus.test.ts). One process,
 * two files F0 and F1 of PAGES pages each: pages [0, SRC) of each are a constant pattern nobody
 * writes (the source region), the rest are split between the writers (their own destination pages).
 * The process maps each file MAP_SHARED twice: a stable mapping of the whole file, and a window of
 * the source region that the mapper moves and remaps.
 *
 *   writer   pwrite() or lseek()+write() of one page into one of its destination pages, of F0 or
 *            F1, from a user buffer that is itself a mapping of a file: the source region of the
 *            same file or of the other (through the stable mapping or the window, which may be
 *            gone: EFAULT or a short count), another destination page of its own (either file), or
 *            the very page being written. It keeps a model of its pages, checks each write's
 *            count and then the page's bytes by pread, and counts mismatches.
 *   faulter  loads through the stable mappings and the windows (a window may be unmapped or moved
 *            meanwhile: SIGSEGV there is expected, SIGBUS never), checking the source words.
 *   mapper   moves each window away and back (mremap MAYMOVE|FIXED), unmaps and maps it again
 *            (munmap + mmap MAP_FIXED), zaps the stable mappings (MADV_DONTNEED), and writes back
 *            (fsync, msync MS_SYNC), so the others keep faulting.
 *
 * Writers and the mapper run for `durationMs` and at least MIN_WRITES writes / MIN_MAPS changes (a
 * loaded machine runs fewer; at most GRACE_MS more); the faulter until they are all done. A
 * deadlock ends in the watchdog's bounded waits (an error here).
 */
import { EFAULT } from '../../../src/errno.js';
import { SEEK_SET, sysPwrite, sysWrite } from '../../../src/kernel/file-syscalls.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import type { Mmu } from '../../../src/mem/mmu.js';
import { MemoryFault } from '../../../src/mem/tlb.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  MS_SYNC,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/mm/vm-flags.js';
import { Rng } from '../../../src/rng.js';

const P = 4096;
const WORDS = P >> 2;
export const PAGES = 16;
export const SRC = 8;
/** Destination pages per writer in each file. */
export const OWN = 4;
export const MIN_WRITES = 200;
export const MIN_MAPS = 100;
const GRACE_MS = 15_000;
/** sync words: [0] CPUs arrived, [1] writers and mapper done. */
const ARRIVED = 0;
const DONE = 1;

/** Word w of source page k of file f (never changes). */
export function sourceWord(f: number, k: number, w: number): number {
  return (f + 1) * 1_000_000 + k * WORDS + w;
}

export interface InversionArgs {
  role: 'writer' | 'faulter' | 'mapper';
  process: ProcessDescriptor;
  /** Per file: the shared descriptor, and per writer a description of its own (for write()). */
  fds: number[];
  ownFds: number[][];
  /** Per file: the stable mapping, the window's home and its other place. */
  stable: number[];
  windowA: number[];
  windowB: number[];
  /** writer: its index (which destination pages are its own). */
  writer: number;
  seed: number;
  durationMs: number;
  cpus: number;
  sync: SharedArrayBuffer;
}

export interface InversionResult {
  /** writer: full writes, short writes, EFAULT, same-page writes, cross-file writes, bad pages. */
  writes: number[];
  bad: number;
  /** faulter: loads, SIGSEGV in a window, source mismatches. */
  loads: number[];
  /** mapper: mremaps, remaps, madvises, syncs. */
  maps: number[];
  firstBad: string;
  error: string;
}

export default function run(cpu: number, args: InversionArgs): InversionResult {
  const out: InversionResult = {
    writes: [0, 0, 0, 0, 0],
    bad: 0,
    loads: [0, 0, 0],
    maps: [0, 0, 0, 0],
    firstBad: '',
    error: '',
  };
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  try {
    Atomics.add(sync, ARRIVED, 1);
    for (let spin = 0; Atomics.load(sync, ARRIVED) < args.cpus; spin++) {
      if (spin > 1e9) throw new Error('the other CPUs never arrived');
    }
    const rng = new Rng(args.seed * 8 + cpu);
    const end = performance.now() + args.durationMs;
    if (args.role === 'writer') writer(proc, args, rng, end, out);
    else if (args.role === 'faulter') faulter(proc.mm.mmu(), args, sync, rng, end, out);
    else mapper(proc, args, rng, end, out);
  } catch (error) {
    out.error = String((error as Error).stack ?? error);
  } finally {
    if (args.role !== 'faulter') Atomics.add(sync, DONE, 1);
    proc.detach();
  }
  return out;
}

function ownPage(args: InversionArgs, k: number): number {
  return SRC + args.writer * OWN + k;
}

function writer(proc: Process, args: InversionArgs, rng: Rng, end: number, out: InversionResult): void {
  const mmu = proc.mm.mmu();
  const buf = proc.mm.mmap(0, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const page = new Int32Array(WORDS);
  const bytes = new Uint8Array(page.buffer);
  // The model of this writer's pages: [file][k] -> words (what the main thread wrote: zeros).
  const model = [0, 1].map(() => Array.from({ length: OWN }, () => new Int32Array(WORDS)));
  const source = new Int32Array(WORDS);
  for (let i = 0; i < 1e7 && goOn(end, i, MIN_WRITES); i++) {
    const y = rng.below(2);
    const k = rng.below(OWN);
    const x = rng.below(2);
    const how = rng.below(5);
    let addr: number;
    if (how < 3) {
      // The source region, through the stable mapping or either place of the window.
      const s = rng.below(SRC);
      addr = (how === 0 ? args.stable[x] : how === 1 ? args.windowA[x] : args.windowB[x]) + s * P;
      for (let w = 0; w < WORDS; w++) source[w] = sourceWord(x, s, w);
    } else {
      // A destination page of its own (how 3: any of either file; how 4: the page being written).
      const [sx, sk] = how === 4 ? [y, k] : [x, rng.below(OWN)];
      addr = args.stable[sx] + ownPage(args, sk) * P;
      source.set(model[sx][sk]);
      if (how === 4) out.writes[3]++;
    }
    if (x !== y) out.writes[4]++;
    const at = ownPage(args, k) * P;
    let n: number;
    if (rng.below(2) === 0) n = sysPwrite(proc.mm, args.fds[y], addr, P, at);
    else {
      const fd = args.ownFds[y][args.writer];
      proc.lseek(fd, at, SEEK_SET);
      n = sysWrite(proc.mm, fd, addr, P);
    }
    if (n === -EFAULT) out.writes[2]++;
    else if (n < 0 || n > P) throw new Error(`write of page ${k} of file ${y}: ${n}`);
    else {
      out.writes[n === P ? 0 : 1]++;
      model[y][k].set(source.subarray(0, n >> 2));
      if ((n & 3) !== 0) throw new Error(`a short write of ${n} bytes (not a word boundary)`);
    }
    if (proc.pread(args.fds[y], buf, P, at) !== P) throw new Error('short pread');
    mmu.copyIn(buf, bytes);
    for (let w = 0; w < WORDS; w++) {
      if (page[w] !== model[y][k][w]) {
        out.bad++;
        if (out.firstBad === '')
          out.firstBad = `file ${y} page ${ownPage(args, k)} word ${w}: ${page[w]}, not ${model[y][k][w]}`;
        model[y][k].set(page);
        break;
      }
    }
  }
  proc.mm.munmap(buf, P);
}

/** Past the duration only until `least` rounds were made, and GRACE_MS at most. */
function goOn(end: number, round: number, least: number): boolean {
  const now = performance.now();
  return now < end || (round < least && now < end + GRACE_MS);
}

function faulter(
  mmu: Mmu,
  args: InversionArgs,
  sync: Int32Array,
  rng: Rng,
  end: number,
  out: InversionResult,
): void {
  // Until the writers and the mapper are done (they stop by GRACE_MS past the end at the latest).
  for (let i = 0; i < 1e9; i++) {
    if ((i & 255) === 0 && Atomics.load(sync, DONE) === args.cpus - 1) break;
    if ((i & 255) === 0 && performance.now() >= end + 2 * GRACE_MS) break;
    const f = rng.below(2);
    const where = rng.below(3);
    const base = where === 0 ? args.stable[f] : where === 1 ? args.windowA[f] : args.windowB[f];
    const s = rng.below(SRC);
    const w = rng.below(WORDS);
    try {
      const v = mmu.load32(base + s * P + w * 4);
      out.loads[0]++;
      if (v !== sourceWord(f, s, w)) {
        out.loads[2]++;
        if (out.firstBad === '') out.firstBad = `file ${f} source page ${s} word ${w}: ${v}`;
      }
      // The destination pages too (anything a writer put there: no check but the fault itself).
      if (where === 0) mmu.load32(base + (SRC + rng.below(PAGES - SRC)) * P + w * 4);
    } catch (error) {
      if (!(error instanceof MemoryFault) || error.signal !== 'SIGSEGV' || where === 0) throw error;
      out.loads[1]++;
    }
  }
}

function mapper(proc: Process, args: InversionArgs, rng: Rng, end: number, out: InversionResult): void {
  const RW = PROT_READ | PROT_WRITE;
  const len = SRC * P;
  for (let i = 0; i < 1e7 && goOn(end, i, MIN_MAPS); i++) {
    const f = rng.below(2);
    const op = rng.below(10);
    if (op < 4) {
      // Away and back: the window is at B meanwhile.
      proc.mm.mremap(args.windowA[f], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, args.windowB[f]);
      proc.mm.mremap(args.windowB[f], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, args.windowA[f]);
      out.maps[0]++;
    } else if (op < 7) {
      proc.mm.munmap(args.windowA[f], len);
      proc.mm.mmap(args.windowA[f], len, RW, MAP_SHARED | MAP_FIXED, args.fds[f], 0);
      out.maps[1]++;
    } else if (op < 9) {
      proc.mm.madvise(args.stable[f], PAGES * P, MADV_DONTNEED);
      out.maps[2]++;
    } else {
      if (rng.below(2) === 0) proc.fsync(args.fds[f]);
      else proc.mm.msync(args.stable[f], PAGES * P, MS_SYNC);
      out.maps[3]++;
    }
  }
}
