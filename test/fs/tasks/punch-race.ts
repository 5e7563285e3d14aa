/**
 * Task: the punch-versus-fault race (test/fs/punch-race.ts drives it). The file is cut into 1 KiB
 * blocks; every change to a block is a new **state** with a sequence number of its own, published
 * in shared memory (the oracle words):
 *
 *   STARTED[b]  the newest state the mutator began (stored before the change)
 *   DONE[b]     the newest state whose call returned (stored after it)
 *   KINDS[b][s % RING]   what state s of block b reads as:
 *     WRITE  every word is stamp(s, b)            PUNCH  zeros (a punched hole, or grown over)
 *     TAIL   past i_size in the last page: zeros to a load, not there for pread
 *     PAGE   in a page past the last one: SIGBUS to a load, not there for pread
 *
 * Roles:
 *   mutator  seeded ops over block ranges inside the file: fallocate(PUNCH_HOLE|KEEP_SIZE),
 *            pwrite of new stamps, stores of new stamps through its MAP_SHARED mapping, ftruncate
 *            to a new size (shrinking and growing), fsync and msync(MS_SYNC); for `durationMs`
 *            and at least MIN_OPS ops (a loaded machine runs fewer; at most GRACE_MS more), then STOP. With `lie` it publishes DONE before the call (the control: stale reads).
 *   reader   until STOP, seeded accesses to random blocks: a load through its process's shared
 *            mapping, a load through its private read-only mapping, or a pread of the whole block.
 *            A pread is judged word by word (a store through a mapping may be half done).
 *            Each access loads lo = DONE[b] before and hi = STARTED[b] after, and must observe a
 *            state in [lo, hi]: a state older than lo is a **stale** read (the old data of a
 *            punch, a rewrite or a truncate that had returned), anything not a state of the block
 *            in that window is **foreign**. A window wider than the ring is not judged (counted).
 */

import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from '../../../src/kernel/file-syscalls.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { MemoryFault } from '../../../src/mem/tlb.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MS_SYNC, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';
import { Rng } from '../../../src/rng.js';

export const BLOCK = 1024;
const WORDS = BLOCK >> 2;
const P = 4096;
const BLOCKS_PER_PAGE = P / BLOCK;
export const RING = 64;
export const WRITE = 1;
export const PUNCH = 2;
export const TAIL = 3;
export const PAGE = 4;
const PUNCH_MODE = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
/** The mutator's least op count, and how long past its duration it may run to make it. */
export const MIN_OPS = 400;
const GRACE_MS = 15_000;

/** Oracle layout (Int32 words) for `blocks` blocks. */
export function oracleWords(blocks: number): number {
  return CTRL_WORDS + blocks * (2 + RING);
}
const STOP = 0;
const ARRIVED = 1;
/** The file's size in blocks, as the mutator last set it (read by the driver at the end). */
export const SIZE_BLOCKS = 2;
const CTRL_WORDS = 4;
const started = (b: number) => CTRL_WORDS + 2 * b;
const done = (b: number) => CTRL_WORDS + 2 * b + 1;
export function kindAt(blocks: number, b: number, s: number): number {
  return CTRL_WORDS + 2 * blocks + b * RING + (s & (RING - 1));
}
export function startedAt(b: number): number {
  return started(b);
}

/** The word a WRITE state s of block b puts everywhere in the block: never 0. */
export function stamp(s: number, b: number): number {
  return ((s << 8) | b) >>> 0;
}

export interface PunchRaceArgs {
  role: 'mutator' | 'reader';
  process: ProcessDescriptor;
  fd: number;
  blocks: number;
  /** This process's MAP_SHARED and MAP_PRIVATE (PROT_READ) mappings of the whole file. */
  shared: number;
  private: number;
  seed: number;
  durationMs: number;
  lie: boolean;
  cpus: number;
  oracle: SharedArrayBuffer;
}

export interface PunchRaceResult {
  /** mutator: punches, pwrites, stores, shrinks, grows, fsyncs, msyncs. */
  ops: number[];
  /** reader: shared loads, private loads, preads judged. */
  reads: number[];
  stale: number;
  foreign: number;
  sigbus: number;
  short: number;
  zeros: number;
  unjudged: number;
  firstBad: string;
  error: string;
}

export default function run(cpu: number, args: PunchRaceArgs): PunchRaceResult {
  const out: PunchRaceResult = {
    ops: [0, 0, 0, 0, 0, 0, 0],
    reads: [0, 0, 0],
    stale: 0,
    foreign: 0,
    sigbus: 0,
    short: 0,
    zeros: 0,
    unjudged: 0,
    firstBad: '',
    error: '',
  };
  const proc = Process.attach(args.process);
  const o = new Int32Array(args.oracle);
  try {
    Atomics.add(o, ARRIVED, 1);
    for (let spin = 0; Atomics.load(o, ARRIVED) < args.cpus; spin++) {
      if (spin > 1e9) throw new Error('the other CPUs never arrived');
    }
    if (args.role === 'mutator') mutate(proc, args, o, out);
    else read(proc, args, o, new Rng(args.seed + 1 + cpu), out);
  } catch (error) {
    out.error = String((error as Error).stack ?? error);
  } finally {
    // A failing mutator stops the readers too.
    if (args.role === 'mutator') Atomics.store(o, STOP, 1);
    proc.detach();
  }
  return out;
}

// ---- the mutator ---------------------------------------------------------------------------------

/** State s of block b begins: its kind, then STARTED (a reader loading STARTED sees the kind). */
function begin(args: PunchRaceArgs, o: Int32Array, b: number, kind: number): number {
  const s = Atomics.load(o, started(b)) + 1;
  Atomics.store(o, kindAt(args.blocks, b, s), kind);
  Atomics.store(o, started(b), s);
  if (args.lie) Atomics.store(o, done(b), s);
  return s;
}

function finishRange(o: Int32Array, a: number, n: number): void {
  for (let b = a; b < a + n; b++) Atomics.store(o, done(b), Atomics.load(o, started(b)));
}

function mutate(proc: Process, args: PunchRaceArgs, o: Int32Array, out: PunchRaceResult): void {
  const rng = new Rng(args.seed);
  const mmu = proc.mm.mmu();
  const buf = proc.mm.mmap(0, 8 * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  let size = args.blocks;
  Atomics.store(o, SIZE_BLOCKS, size);
  const end = performance.now() + args.durationMs;
  // Bounded by time (GRACE_MS past the duration at most), and by a count.
  for (let op = 0; op < 1e7; op++) {
    const now = performance.now();
    if (now >= end && (op >= MIN_OPS || now >= end + GRACE_MS)) break;
    const pick = rng.below(100);
    const a = rng.below(size);
    const n = Math.min(1 + rng.below(8), size - a);
    if (pick < 38) {
      for (let b = a; b < a + n; b++) begin(args, o, b, PUNCH);
      proc.fallocate(args.fd, PUNCH_MODE, a * BLOCK, n * BLOCK);
      out.ops[0]++;
    } else if (pick < 73) {
      for (let b = a; b < a + n; b++) {
        const v = stamp(begin(args, o, b, WRITE), b);
        for (let w = 0; w < WORDS; w++) mmu.store32(buf + (b - a) * BLOCK + w * 4, v);
      }
      const wrote = proc.pwrite(args.fd, buf, n * BLOCK, a * BLOCK);
      if (wrote !== n * BLOCK) throw new Error(`pwrite: ${wrote} of ${n * BLOCK}`);
      out.ops[1]++;
    } else if (pick < 85) {
      for (let b = a; b < a + n; b++) {
        const v = stamp(begin(args, o, b, WRITE), b);
        for (let w = 0; w < WORDS; w++) mmu.store32(args.shared + b * BLOCK + w * 4, v);
      }
      out.ops[2]++;
    } else if (pick < 95) {
      const next = (args.blocks >> 1) + rng.below((args.blocks >> 1) + 1);
      resize(proc, args, o, size, next);
      out.ops[next < size ? 3 : 4]++;
      size = next;
      Atomics.store(o, SIZE_BLOCKS, size);
      finishRange(o, 0, args.blocks);
      continue;
    } else if (pick < 98) {
      proc.fsync(args.fd);
      out.ops[5]++;
    } else {
      proc.mm.msync(args.shared, args.blocks * BLOCK, MS_SYNC);
      out.ops[6]++;
    }
    finishRange(o, a, n);
  }
  proc.mm.munmap(buf, 8 * BLOCK);
}

/** ftruncate to `next` blocks: every block from the lower of the two sizes on gets a new state. */
function resize(proc: Process, args: PunchRaceArgs, o: Int32Array, size: number, next: number): void {
  const lastPage = Math.ceil(next / BLOCKS_PER_PAGE);
  for (let b = Math.min(size, next); b < args.blocks; b++) {
    const kind = b < next ? PUNCH : Math.floor(b / BLOCKS_PER_PAGE) < lastPage ? TAIL : PAGE;
    begin(args, o, b, kind);
  }
  proc.ftruncate(args.fd, next * BLOCK);
}

// ---- the readers ---------------------------------------------------------------------------------

const OBS_ZERO = 0;
const OBS_SIGBUS = -1;
const OBS_SHORT = -2;

function read(proc: Process, args: PunchRaceArgs, o: Int32Array, rng: Rng, out: PunchRaceResult): void {
  const mmu = proc.mm.mmu();
  const buf = proc.mm.mmap(0, BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const words = new Int32Array(WORDS);
  const bytes = new Uint8Array(words.buffer);
  // Bounded: the mutator stops after its duration (or fails, which stops us too).
  for (let i = 0; i < 1e8 && Atomics.load(o, STOP) === 0; i++) {
    const b = rng.below(args.blocks);
    const how = rng.below(3);
    const lo = Atomics.load(o, done(b));
    if (how < 2) {
      const addr = (how === 0 ? args.shared : args.private) + b * BLOCK + rng.below(WORDS) * 4;
      let seen: number;
      try {
        seen = mmu.load32(addr) >>> 0;
      } catch (error) {
        if (!(error instanceof MemoryFault) || error.signal !== 'SIGBUS') throw error;
        seen = OBS_SIGBUS;
      }
      judge(args, o, b, lo, seen, out);
    } else {
      const n = proc.pread(args.fd, buf, BLOCK, b * BLOCK);
      if (n === BLOCK) {
        mmu.copyIn(buf, bytes);
        // pread and pwrite exclude each other (i_rwsem), but stores through a mapping do not:
        // every word on its own must be a state of the window; judge each run of equal words.
        judge(args, o, b, lo, words[0] >>> 0, out);
        for (let w = 1; w < WORDS; w++)
          if (words[w] !== words[w - 1]) judge(args, o, b, lo, words[w] >>> 0, out);
      } else if (n === 0) judge(args, o, b, lo, OBS_SHORT, out);
      else throw new Error(`pread of block ${b}: ${n} bytes`);
    }
    out.reads[how]++;
  }
  proc.mm.munmap(buf, BLOCK);
}

function recordBad(out: PunchRaceResult, what: 'stale' | 'foreign', detail: string): void {
  out[what]++;
  if (out.firstBad === '') out.firstBad = `${what}: ${detail}`;
}

/** Is the observation one that state s (of kind k) of block b gives? */
function gives(k: number, s: number, b: number, seen: number): boolean {
  if (seen === OBS_SIGBUS) return k === PAGE;
  if (seen === OBS_SHORT) return k === TAIL || k === PAGE;
  if (seen === OBS_ZERO) return k === PUNCH || k === TAIL;
  return k === WRITE && seen === stamp(s, b);
}

function judge(
  args: PunchRaceArgs,
  o: Int32Array,
  b: number,
  lo: number,
  seen: number,
  out: PunchRaceResult,
): void {
  const hi = Atomics.load(o, started(b));
  if (seen === OBS_SIGBUS) out.sigbus++;
  else if (seen === OBS_SHORT) out.short++;
  else if (seen === OBS_ZERO) out.zeros++;
  if (hi - lo >= RING) {
    out.unjudged++;
    return;
  }
  let ok = false;
  for (let s = lo; s <= hi && !ok; s++) ok = gives(Atomics.load(o, kindAt(args.blocks, b, s)), s, b, seen);
  // The ring may have moved on while we judged: then the verdict is void.
  if (Atomics.load(o, started(b)) - lo >= RING) {
    out.unjudged++;
    return;
  }
  if (ok) return;
  const what =
    seen > 0 && (seen & 0xff) === b && seen >>> 8 < lo ? 'stale' : staleOther(args, o, b, lo, seen);
  recordBad(out, what, `block ${b}: saw ${seen} with states ${lo}..${hi}`);
}

/** A zero, SIGBUS or short read that an older state (still in the ring) explains is stale too. */
function staleOther(
  args: PunchRaceArgs,
  o: Int32Array,
  b: number,
  lo: number,
  seen: number,
): 'stale' | 'foreign' {
  if (seen > 0) return 'foreign';
  const oldest = Math.max(1, Atomics.load(o, started(b)) - RING + 1);
  for (let s = lo - 1; s >= oldest; s--)
    if (gives(Atomics.load(o, kindAt(args.blocks, b, s)), s, b, seen)) return 'stale';
  return 'foreign';
}
