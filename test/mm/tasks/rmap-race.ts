/**
 * Task: a zapper against VMA commits on two CPUs (test/mm/rmap-cpus.test.ts). Two processes (a
 * parent and its fork child) map every page o of one memory file at A + o*P or at B + o*P (each
 * page at exactly one of the two, per process). Round after round:
 *
 *   mutator (CPU 0)  maps every file page in both processes (PTEs through the page-table API, as a
 *                    file fault will), says READY, then runs seeded syscalls on both processes
 *                    while the zap runs: mprotect of a random range (splits, merges), mremap of a
 *                    random piece of a VMA between A and B (the PTEs move), munmap + mmap again of
 *                    a piece (PTEs zapped, a new VMA); once the zapper says DONE it finishes its
 *                    syscall and looks: no PTE may be left under A or B in either process, and no
 *                    cached page may still be mapped
 *   zapper (CPU 1)   waits for READY, takes invalidate_lock (W) and unmaps the whole file
 *                    (unmapMappingRange, as truncate does), says DONE
 */
import { findGetPage } from '../../../src/fs/page-cache.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { rangeOut } from '../../../src/maple/api.js';
import { unmapMappingRange } from '../../../src/mm/file-rmap.js';
import { Rng } from '../../../src/rng.js';
import { mapFilePages, presentPtes } from '../rmap-fixture.js';

export const P = 4096;
export const A = 0x1000_0000;
export const B = 0x2000_0000;
export const PAGES = 128;

/** ctl words: 0 READY (round), 1 DONE (round), 2 CPUs started. */
const READY = 0;
const DONE = 1;
const STARTED = 2;
/** Most syscalls per round (the zap is over long before). */
const MAX_OPS = 400;

export interface RmapRaceArgs {
  role: 'mutator' | 'zapper';
  procs: ProcessDescriptor[];
  fd: number;
  file: number;
  rounds: number;
  seed: number;
  ctl: SharedArrayBuffer;
}

export interface RmapRaceResult {
  rounds: number;
  /** Syscalls that ran while a zap was in flight (READY seen, DONE not yet). */
  overlapped: number;
  syscalls: number;
  /** PTEs found after a zap returned (must be 0), and pages still mapped. */
  leftPtes: number;
  leftMapped: number;
  error: string;
}

export default function run(_cpu: number, args: RmapRaceArgs): RmapRaceResult {
  const procs = args.procs.map((d) => Process.attach(d));
  const ctl = new Int32Array(args.ctl);
  const res: RmapRaceResult = {
    rounds: 0,
    overlapped: 0,
    syscalls: 0,
    leftPtes: 0,
    leftMapped: 0,
    error: '',
  };
  Atomics.add(ctl, STARTED, 1);
  while (Atomics.load(ctl, STARTED) < 2) {
    // Start together.
  }
  try {
    if (args.role === 'zapper') zapper(procs[0], args, ctl, res);
    else mutator(procs, args, ctl, res);
  } catch (error) {
    res.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
  } finally {
    // Stopped early: past the last round, so the other CPU stops waiting.
    if (res.rounds < args.rounds) {
      Atomics.store(ctl, args.role === 'zapper' ? DONE : READY, 1 << 30);
      Atomics.notify(ctl, args.role === 'zapper' ? DONE : READY);
    }
    for (const p of procs) p.detach();
  }
  return res;
}

function zapper(p: Process, args: RmapRaceArgs, ctl: Int32Array, res: RmapRaceResult): void {
  const files = p.kernel.files;
  const il = files.invalidateLock(args.file);
  for (let round = 1; round <= args.rounds; round++) {
    waitFor(ctl, READY, round);
    if (Atomics.load(ctl, READY) > args.rounds) return;
    il.downWrite();
    try {
      unmapMappingRange(files, args.file, 0, PAGES - 1, true);
    } finally {
      il.upWrite();
    }
    Atomics.store(ctl, DONE, round);
    Atomics.notify(ctl, DONE);
    res.rounds = round;
  }
}

/** Where each process has each file page: 0 at A, 1 at B. */
type Places = Uint8Array[];

function mutator(procs: Process[], args: RmapRaceArgs, ctl: Int32Array, res: RmapRaceResult): void {
  const rng = new Rng(args.seed);
  const places: Places = procs.map(() => new Uint8Array(PAGES));
  for (let round = 1; round <= args.rounds; round++) {
    procs.forEach((p, k) => {
      for (let o = 0; o < PAGES; o++) {
        const at = (places[k][o] === 0 ? A : B) + o * P;
        mapFilePages(p.mm, args.file, at, at + P, o, (o & 1) === 0);
      }
    });
    Atomics.store(ctl, READY, round);
    Atomics.notify(ctl, READY);
    let ops = 0;
    while (ops < MAX_OPS) {
      const zapping = Atomics.load(ctl, DONE) < round;
      const k = rng.below(procs.length);
      mutate(procs[k], places[k], args.fd, rng);
      ops++;
      res.syscalls++;
      if (zapping) res.overlapped++;
      else break;
    }
    waitFor(ctl, DONE, round);
    if (Atomics.load(ctl, DONE) > args.rounds) return;
    for (const p of procs) {
      res.leftPtes += presentPtes(p.mm, A, A + PAGES * P) + presentPtes(p.mm, B, B + PAGES * P);
    }
    for (let o = 0; o < PAGES; o++) {
      const pfn = findGetPage(procs[0].kernel.files, args.file, o);
      if (pfn === 0) continue;
      if (procs[0].kernel.mem.mapcountOf(pfn) !== 0) res.leftMapped++;
      procs[0].kernel.mem.putPage(pfn);
    }
    if (res.leftPtes !== 0 || res.leftMapped !== 0) return;
    res.rounds = round;
  }
}

const out = rangeOut();

/** One seeded syscall on p that splits, merges, moves or replaces file VMAs; keeps `places` true. */
function mutate(p: Process, places: Uint8Array, fd: number, rng: Rng): void {
  const o = rng.below(PAGES);
  const n = 1 + rng.below(Math.min(16, PAGES - o));
  // A run of pages [o, o + n) in one place (so inside VMAs there: mremap needs one VMA, see below).
  let len = 1;
  while (len < n && places[o + len] === places[o]) len++;
  const from = (places[o] === 0 ? A : B) + o * P;
  switch (rng.below(3)) {
    case 0:
      p.mm.mprotect(from, len * P, rng.below(2) === 0 ? 1 : 3);
      break;
    case 1: {
      // The piece must lie in one VMA: shrink it to the VMA holding its first page.
      if (p.mm.index.next(from, from, out) === 0) throw new Error(`no VMA at ${from.toString(16)}`);
      const pages = Math.min(len, (p.mm.arena.end(out.value) - from) / P);
      const to = (places[o] === 0 ? B : A) + o * P;
      p.mm.mremap(from, pages * P, pages * P, 3 /* MAYMOVE | FIXED */, to);
      for (let i = o; i < o + pages; i++) places[i] ^= 1;
      break;
    }
    default:
      p.mm.munmap(from, len * P);
      p.mm.mmap(from, len * P, 3, 0x01 | 0x10 /* MAP_SHARED | MAP_FIXED */, fd, o * P);
  }
}

/** Waits (bounded) until ctl[at] >= v. */
function waitFor(ctl: Int32Array, at: number, v: number): void {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = Atomics.load(ctl, at);
    if (seen >= v) return;
    if (Date.now() > deadline) throw new Error(`waited 20 s for word ${at} to reach ${v} (it is ${seen})`);
    Atomics.wait(ctl, at, seen, 50);
  }
}
