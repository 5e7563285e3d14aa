/**
 * Task: the CPUs of the GUP-over-a-slow-file race (test/mm/gup-slow-race.ts), one process, two
 * host files on a slow device (injected latency on their reads and on the fault callback).
 *
 *   gupper   (CPU A)  flat out over random pages of the window: get and pin, read and write, fast
 *                     and slow entries, plus user copies out of the window (Mmu.copyIn, and
 *                     pwrite from the window into a memfd). Every page returned (or copied) is
 *                     judged against the oracle: it holds the stamp of a file page the window page
 *                     mapped, with an access that allowed it, at some instant between the call's
 *                     start and its end; a got or pinned frame is also checked to be that file page
 *                     (or, in a private mapping, an anonymous copy of it), referenced or pinned,
 *                     twice while held (a frame freed or reused under us holds poison or other
 *                     stamps). A short count or an errno needs the page it stopped at to have
 *                     been unmapped or without that access at some such instant (EFAULT), or is
 *                     EAGAIN (counted: GUP's bounded retries).
 *   mutator  (CPU B)  random munmap, mmap MAP_FIXED (another file, offset, protection, shared or
 *                     private), mprotect (RW, R, NONE), mremap away and back, mremap of a fresh
 *                     mapping over the range, MADV_DONTNEED, and page-cache reclaim and fsync so
 *                     that the next faults read the slow device again.
 *
 * The oracle (shared words, written by the mutator alone): `seq` is odd while a syscall changes the
 * window, even between; each window page has a history of (seq at which the state began, state).
 * A state is unmapped, or (file, index, protection, shared). State j of a page holds from its start
 * to the start of state j + 1 (both ends inclusive: during the odd seq of a change either may be
 * seen). A call that read seq s0 before and s1 after (waiting for an even s1) may see every state
 * that held at some seq in [s0, s1].
 */

import { EAGAIN, EFAULT } from '../../../src/errno.js';
import { reclaimCachePages } from '../../../src/fs/reclaim.js';
import { sysPread, sysPwrite } from '../../../src/kernel/file-syscalls.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import type { PhysMem } from '../../../src/mem/frames.js';
import { GUP_PIN_COUNTING_BIAS, KIND_ANON, KIND_FILE } from '../../../src/mem/page.js';
import {
  MADV_DONTNEED,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/mm/vm-flags.js';
import { Rng } from '../../../src/rng.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';

export const P = 4096;
/** The window: WINDOW_PAGES pages at WINDOW, each mapping a page of one of the two files. */
export const WINDOW = 0x200000000;
export const WINDOW_PAGES = 8;
/** Pages of each file. */
export const FILE_PAGES = 48;
/** Where the mutator moves window pages to (and back from), and builds replacements. */
const ALT = 0x240000000;
const ALT2 = 0x280000000;
/** The gupper's anonymous buffer (pwrite's check reads the memfd back into it). */
export const BUF = 0x300000000;
/** Most pages one call asks for. */
export const MAX_CALL_PAGES = 3;
/** Words sampled per page (every SAMPLE-th). */
const SAMPLE = 32;

/** The value of byte offset w (a multiple of 4) of page k of file f: never 0, poison or negative. */
export const stamp = (f: number, k: number, w: number): number => 0x20000000 | (f << 24) | (k << 12) | w;

// ---- the oracle's words ---------------------------------------------------------------------

export const READY = 0;
export const STOP = 1;
export const ERRORS = 2;
export const SEQ = 3;
/** The gupper's calls so far (the mutator runs on past its time until there are enough). */
export const CALLS = 4;
const HIST = 8;
/** States kept per page (a call sees at most the last RING - SLACK of them judged). */
const RING = 256;
const SLACK = 16;
const PAGE_WORDS = 1 + 2 * RING;
export const ORACLE_WORDS = HIST + WINDOW_PAGES * PAGE_WORDS;

export const UNMAPPED = -1;
const S_READ = 1;
const S_WRITE = 2;
const S_SHARED = 4;

/** A mapped state: page k of file f with protection `prot`, shared or private. */
export function mappedState(f: number, k: number, prot: number, shared: boolean): number {
  const access = ((prot & PROT_READ) !== 0 ? S_READ : 0) | ((prot & PROT_WRITE) !== 0 ? S_WRITE : 0);
  return (f << 20) | (k << 4) | access | (shared ? S_SHARED : 0);
}

const NEED_ANY = 0;
const NEED_SHARED = 1;
const NEED_PRIVATE = 2;

const stateFile = (s: number): number => s >> 20;
const stateIndex = (s: number): number => (s >> 4) & 0xffff;

/** A state for messages. */
function showState(s: number): string {
  if (s === UNMAPPED) return 'unmapped';
  const rw = `${s & S_READ ? 'r' : '-'}${s & S_WRITE ? 'w' : '-'}${s & S_SHARED ? 's' : 'p'}`;
  return `f${stateFile(s)}:${stateIndex(s)}:${rw}`;
}

/** Appends state `s` of window page p, begun at seq `at`. Preconditions: the mutator's CPU. */
export function record(o: Int32Array, p: number, at: number, s: number): void {
  const base = HIST + p * PAGE_WORDS;
  const n = o[base];
  const slot = base + 1 + 2 * (n % RING);
  Atomics.store(o, slot, at);
  Atomics.store(o, slot + 1, s);
  Atomics.store(o, base, n + 1);
}

/**
 * The states window page p may have shown to a call that read seq s0 before and s1 after (s1 even,
 * so every state begun at or before s1 is recorded), written to `into`; their count, or -1 when the
 * history no longer reaches back to s0 (unjudged).
 */
function statesBetween(o: Int32Array, p: number, s0: number, s1: number, into: number[]): number {
  const base = HIST + p * PAGE_WORDS;
  const n = Atomics.load(o, base);
  const oldest = Math.max(0, n - RING + SLACK);
  let k = 0;
  let reachedS0 = false;
  for (let j = n - 1; j >= oldest; j--) {
    const slot = base + 1 + 2 * (j % RING);
    const start = Atomics.load(o, slot);
    if (start > s1) continue;
    into[k++] = Atomics.load(o, slot + 1);
    // The state before this one held at s0 too if this one began during s0 (odd: a change).
    if (start < s0 || (start === s0 && (s0 & 1) === 0)) {
      reachedS0 = true;
      break;
    }
  }
  // The ring kept only later states (every one it holds may even have begun after s1): unjudged.
  if (!reachedS0 && oldest !== 0) return -1;
  if (Atomics.load(o, base) - n > SLACK) return -1; // overwritten while read
  return k;
}

// ---- the task ---------------------------------------------------------------------------------

export interface GupSlowArgs {
  role: 'gupper' | 'mutator';
  process: ProcessDescriptor;
  /** The two files' descriptors (O_RDWR) and ids, and the memfd's descriptor. */
  fds: number[];
  files: number[];
  scratchFd: number;
  oracle: SharedArrayBuffer;
  seed: number;
  durationMs: number;
  /**
   * The mutator runs durationMs, then on (up to 8 times as long, for a loaded machine) until it has
   * made minOps operations and the gupper minCalls calls.
   */
  minOps: number;
  minCalls: number;
  /** Control: the mutator announces a new mapping (and lets 1 ms pass) before it makes it. */
  lie: boolean;
}

export interface GupSlowResult {
  /** gupper: calls by kind [get, pin, get fast, pin fast, copyIn, pwrite]. */
  calls: number[];
  /** Longest call (gupper, by kind) or operation (mutator, by op), in ms. */
  slowestMs: number[];
  /** Pages judged (returned or copied), of them anonymous copies (private writes). */
  pages: number;
  anonPages: number;
  /** Short counts and errnos, all justified by an unmapped or inaccessible state. */
  short: number;
  efaults: number;
  eagains: number;
  /** Calls the history no longer covered (not judged). */
  unjudged: number;
  /** mutator: syscalls that changed the window, reclaimed pages, fsyncs. */
  ops: number;
  reclaimed: number;
  fsyncs: number;
  error: string;
}

function result(): GupSlowResult {
  return {
    calls: [0, 0, 0, 0, 0, 0],
    slowestMs: [0, 0, 0, 0, 0, 0, 0, 0, 0],
    pages: 0,
    anonPages: 0,
    short: 0,
    efaults: 0,
    eagains: 0,
    unjudged: 0,
    ops: 0,
    reclaimed: 0,
    fsyncs: 0,
    error: '',
  };
}

export default function run(_cpu: number, args: GupSlowArgs): GupSlowResult {
  const proc = Process.attach(args.process);
  const o = new Int32Array(args.oracle);
  Atomics.add(o, READY, 1);
  // Start together (bounded: the other CPU is started at the same time).
  for (let spin = 0; Atomics.load(o, READY) < 2 && spin < 10_000; spin++) Atomics.wait(o, READY, 1, 1);
  try {
    return args.role === 'gupper' ? gupper(proc, args, o) : mutator(proc, args, o);
  } finally {
    if (args.role === 'mutator') Atomics.store(o, STOP, 1);
    proc.detach();
  }
}

// ---- the gupper -------------------------------------------------------------------------------

const GET = 0;
const PIN = 1;
const GET_FAST = 2;
const PIN_FAST = 3;
const COPY_IN = 4;
const PWRITE = 5;
const KINDS = 6;

/** Per-call scratch (no allocation per call). */
const states: number[] = [];
const out: number[] = [];

interface Gupper {
  proc: Process;
  mem: PhysMem;
  files: number[];
  o: Int32Array;
  res: GupSlowResult;
  bytes: Uint8Array;
  words: Int32Array;
}

function gupper(proc: Process, args: GupSlowArgs, o: Int32Array): GupSlowResult {
  const rng = new Rng(args.seed);
  const res = result();
  const buf = new Int32Array((MAX_CALL_PAGES * P) / 4);
  const g: Gupper = {
    proc,
    mem: proc.kernel.mem,
    files: args.files,
    o,
    res,
    bytes: new Uint8Array(buf.buffer),
    words: buf,
  };
  // Bounded by the mutator's run: it sets STOP when its time is up (or an error was seen).
  while (Atomics.load(o, STOP) === 0 && res.error === '') {
    const p = rng.below(WINDOW_PAGES);
    const n = 1 + rng.below(Math.min(MAX_CALL_PAGES, WINDOW_PAGES - p));
    const kind = rng.below(KINDS);
    const write = kind < COPY_IN && rng.below(2) === 0;
    const s0 = Atomics.load(o, SEQ);
    const t0 = performance.now();
    const r = call(g, args, kind, p, n, write);
    res.slowestMs[kind] = Math.max(res.slowestMs[kind], performance.now() - t0);
    g.proc.mm.mmuOffline(); // it may wait for the mutator, which may be shooting down TLBs
    const s1 = settledSeq(o);
    res.calls[kind]++;
    Atomics.add(o, CALLS, 1);
    const why =
      kind < COPY_IN ? judgeGup(g, kind, p, n, write, r, s0, s1) : judgeCopy(g, args, kind, p, n, r, s0, s1);
    if (why !== '') {
      res.error = why;
      Atomics.add(o, ERRORS, 1);
    }
    rcuQuiescent();
  }
  return res;
}

/** seq once even (a change in progress finishes within one syscall of the mutator). */
function settledSeq(o: Int32Array): number {
  let s = Atomics.load(o, SEQ);
  for (let spin = 0; (s & 1) !== 0 && spin < 10_000 && Atomics.load(o, STOP) === 0; spin++) {
    Atomics.wait(o, SEQ, s, 1);
    s = Atomics.load(o, SEQ);
  }
  return s & 1 ? s + 1 : s;
}

/** One call: GUP kinds leave their pfns in `out` and return the count or -errno; copies the bytes done. */
function call(g: Gupper, args: GupSlowArgs, kind: number, p: number, n: number, write: boolean): number {
  const mm = g.proc.mm;
  const addr = WINDOW + p * P;
  const opts = write ? { write: true } : { write: false };
  let r: number[] | number;
  if (kind === GET) r = mm.getUserPages(addr, n, opts, out);
  else if (kind === PIN) r = mm.pinUserPages(addr, n, opts, out);
  else if (kind === GET_FAST) r = mm.getUserPagesFast(addr, n, opts, out);
  else if (kind === PIN_FAST) r = mm.pinUserPagesFast(addr, n, opts, out);
  else if (kind === COPY_IN) return n * P - mm.mmu().copyIn(addr, g.bytes.subarray(0, n * P));
  else return sysPwrite(mm, args.scratchFd, addr, n * P, 0);
  return typeof r === 'number' ? r : r.length;
}

/** '' or what is wrong with a GUP call's answer r over pages [p, p + n); drops what it holds. */
function judgeGup(
  g: Gupper,
  kind: number,
  p: number,
  n: number,
  write: boolean,
  r: number,
  s0: number,
  s1: number,
): string {
  const pin = kind === PIN || kind === PIN_FAST;
  let why = '';
  const got = Math.max(r, 0);
  for (let round = 0; round < 2 && why === ''; round++) {
    for (let i = 0; i < got && why === ''; i++) why = judgeFrame(g, p + i, out[i], pin, write, s0, s1);
  }
  for (let i = 0; i < got; i++) {
    if (pin) g.mem.unpinPage(out[i]);
    else g.mem.putPage(out[i]);
  }
  if (why !== '') return why;
  g.res.pages += got;
  return judgeStop(g, r === -EAGAIN ? -EAGAIN : got, n, p, write, r, s0, s1);
}

/**
 * '' or what is wrong with a call that stopped after `got` of n pages (got = -EAGAIN: gave up) with
 * answer r: the page it stopped at must have been unmapped or without the access at some instant.
 */
function judgeStop(
  g: Gupper,
  got: number,
  n: number,
  p: number,
  write: boolean,
  r: number,
  s0: number,
  s1: number,
): string {
  if (got === -EAGAIN) {
    g.res.eagains++;
    return '';
  }
  if (got === n) return '';
  if (r < 0 && r !== -EFAULT) return `pages ${p}..${p + n - 1}: errno ${-r}`;
  if (r === -EFAULT) g.res.efaults++;
  else g.res.short++;
  const k = statesBetween(g.o, p + got, s0, s1, states);
  if (k < 0) {
    g.res.unjudged++;
    return '';
  }
  const need = write ? S_WRITE : S_READ;
  for (let j = 0; j < k; j++) if (states[j] === UNMAPPED || (states[j] & need) === 0) return '';
  return `page ${p + got}: the call stopped there (answer ${r}) but it was mapped with ${write ? 'write' : 'read'} access all along (seq ${s0}..${s1}, states ${states.slice(0, k).map(showState)})`;
}

/**
 * '' or what is wrong with frame pfn returned for window page q: its stamp must be that of a state
 * of q in [s0, s1] allowing the access; a file frame must be that file page; an anonymous frame
 * must come from a private state; the reference or pin must be there.
 */
function judgeFrame(
  g: Gupper,
  q: number,
  pfn: number,
  pin: boolean,
  write: boolean,
  s0: number,
  s1: number,
): string {
  const mem = g.mem;
  const ref = mem.refcountOf(pfn);
  if (pin ? ref < GUP_PIN_COUNTING_BIAS : ref < 1) return `page ${q}: pfn ${pfn} refcount ${ref}`;
  const kind = mem.kind[pfn];
  // A file frame written through must be a shared mapping's; an anonymous one a private copy's.
  const need = kind === KIND_ANON ? NEED_PRIVATE : kind === KIND_FILE && write ? NEED_SHARED : NEED_ANY;
  if (kind !== KIND_ANON && kind !== KIND_FILE) return `page ${q}: pfn ${pfn} is ${mem.describeFrame(pfn)}`;
  const s = matchStamp(g, q, mem.i32, pfn * (P / 4), write, need, s0, s1);
  if (typeof s === 'string') return `page ${q}: pfn ${pfn} (${mem.describeFrame(pfn)}): ${s}`;
  if (s === -1) return '';
  if (kind === KIND_ANON) g.res.anonPages++;
  else if (mem.owner[pfn] !== g.files[stateFile(s)] || mem.index[pfn] !== stateIndex(s))
    return `page ${q}: pfn ${pfn} holds file ${stateFile(s)} page ${stateIndex(s)}'s stamp but is ${mem.describeFrame(pfn)}`;
  return '';
}

/**
 * The state of window page q whose stamp the page at word `base` of `words` holds (sampled), among
 * q's states in [s0, s1] that allow the access; -1 when the history does not reach back (unjudged,
 * counted); or what is wrong.
 */
function matchStamp(
  g: Gupper,
  q: number,
  words: Int32Array,
  base: number,
  write: boolean,
  need: number,
  s0: number,
  s1: number,
): number | string {
  const v0 = Atomics.load(words, base);
  const f = (v0 >> 24) & 0xf;
  const k = (v0 >> 12) & 0xfff;
  if ((v0 & 0xe0000fff) !== 0x20000000 || f > 1 || k >= FILE_PAGES)
    return `word 0 holds 0x${(v0 >>> 0).toString(16)}, no stamp`;
  for (let w = 0; w < P; w += 4 * SAMPLE) {
    const v = Atomics.load(words, base + (w >> 2));
    if (v !== stamp(f, k, w)) return `word ${w} holds 0x${(v >>> 0).toString(16)}, not file ${f} page ${k}'s`;
  }
  const n = statesBetween(g.o, q, s0, s1, states);
  if (n < 0) {
    g.res.unjudged++;
    return -1;
  }
  const access = write ? S_WRITE : S_READ;
  for (let j = 0; j < n; j++) {
    const s = states[j];
    if (s === UNMAPPED || stateFile(s) !== f || stateIndex(s) !== k || (s & access) === 0) continue;
    if (need === NEED_ANY || (need === NEED_SHARED) === ((s & S_SHARED) !== 0)) return s;
  }
  return `file ${f} page ${k} was not mapped there${['', ' shared', ' private'][need]} with ${write ? 'write' : 'read'} access at any instant of the call (seq ${s0}..${s1}, states ${states.slice(0, n).map(showState)})`;
}

/** '' or what is wrong with a user copy out of pages [p, p + n): `r` bytes copied, or -errno. */
function judgeCopy(
  g: Gupper,
  args: GupSlowArgs,
  kind: number,
  p: number,
  n: number,
  r: number,
  s0: number,
  s1: number,
): string {
  const done = Math.max(r, 0);
  if (kind === PWRITE && done > 0) {
    // What pwrite put into the memfd, read back through the gupper's buffer.
    const proc = g.proc;
    if (sysPread(proc.mm, args.scratchFd, BUF, done, 0) !== done) return 'pread of the memfd came short';
    if (proc.mm.mmu().copyIn(BUF, g.bytes.subarray(0, done)) !== 0) return 'the buffer faulted';
  }
  const full = Math.floor(done / P);
  for (let i = 0; i < full; i++) {
    const s = matchStamp(g, p + i, g.words, i * (P / 4), false, NEED_ANY, s0, s1);
    if (typeof s === 'string') return `${kind === COPY_IN ? 'copyIn' : 'pwrite'} page ${p + i}: ${s}`;
  }
  g.res.pages += full;
  if (r < 0 && r !== -EFAULT) return `${kind === COPY_IN ? 'copyIn' : 'pwrite'} of pages ${p}..: errno ${-r}`;
  if (done % P !== 0) return `a copy stopped inside a page (${done} bytes)`;
  return judgeStop(g, full, n, p, false, r, s0, s1);
}

// ---- the mutator --------------------------------------------------------------------------------

const PROTS = [PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE];

function mutator(proc: Process, args: GupSlowArgs, o: Int32Array): GupSlowResult {
  const mm = proc.mm;
  const files = proc.kernel.files;
  const rng = new Rng(args.seed * 31 + 7);
  const res = result();
  // The mutator's own copy of each window page's state (the oracle's last entry).
  const cur: number[] = [];
  for (let p = 0; p < WINDOW_PAGES; p++) {
    const base = HIST + p * PAGE_WORDS;
    cur.push(o[base + 2 + 2 * ((o[base] - 1) % RING)]);
  }
  let seq = Atomics.load(o, SEQ);
  const begin = (): void => {
    seq++;
    Atomics.store(o, SEQ, seq);
  };
  const end = (): void => {
    seq++;
    Atomics.store(o, SEQ, seq);
    Atomics.notify(o, SEQ);
  };
  const set = (p: number, s: number): void => {
    cur[p] = s;
    record(o, p, seq, s);
  };
  const start = Date.now();
  const enough = (): boolean =>
    Date.now() - start >= args.durationMs &&
    ((res.ops >= args.minOps && Atomics.load(o, CALLS) >= args.minCalls) ||
      Date.now() - start >= 8 * args.durationMs);
  while (!enough() && Atomics.load(o, ERRORS) === 0) {
    const p = rng.below(WINDOW_PAGES);
    const n = 1 + rng.below(WINDOW_PAGES - p);
    const addr = WINDOW + p * P;
    const op = rng.below(9);
    const t0 = performance.now();
    if (op === 0) {
      begin();
      if (mm.sysMunmap(addr, n * P) === 0) for (let q = p; q < p + n; q++) set(q, UNMAPPED);
      end();
    } else if (op <= 2) {
      // A new mapping of either file over the range (MAP_FIXED replaces at once).
      const f = rng.below(2);
      const pgoff = rng.below(FILE_PAGES - n + 1);
      const prot = PROTS[rng.below(2)];
      const shared = rng.below(2) === 0;
      const flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
      begin();
      if (args.lie) {
        // The control's lie: the new states are published, and time passes, before the mmap.
        for (let q = p; q < p + n; q++) set(q, mappedState(f, pgoff + q - p, prot, shared));
        end();
        Atomics.wait(o, READY, Atomics.load(o, READY), 1);
        mm.sysMmap(addr, n * P, prot, flags, args.fds[f], pgoff * P);
      } else {
        if (mm.sysMmap(addr, n * P, prot, flags, args.fds[f], pgoff * P) === addr)
          for (let q = p; q < p + n; q++) set(q, mappedState(f, pgoff + q - p, prot, shared));
        end();
      }
    } else if (op === 3) {
      if (!allMapped(cur, p, n)) continue;
      const prot = PROTS[rng.below(PROTS.length)];
      begin();
      if (mm.sysMprotect(addr, n * P, prot) === 0)
        for (let q = p; q < p + n; q++) set(q, reprotect(cur[q], prot));
      end();
    } else if (op === 4) {
      // mremap away and back (EFAULT unless the range is one VMA: nothing moves then).
      if (!allMapped(cur, p, n)) continue;
      const saved = cur.slice(p, p + n);
      begin();
      const away = mm.sysMremap(addr, n * P, n * P, MREMAP_MAYMOVE | MREMAP_FIXED, ALT) === ALT;
      if (away) for (let q = p; q < p + n; q++) set(q, UNMAPPED);
      end();
      if (!away) continue;
      begin();
      if (mm.sysMremap(ALT, n * P, n * P, MREMAP_MAYMOVE | MREMAP_FIXED, addr) === addr)
        for (let q = p; q < p + n; q++) set(q, saved[q - p]);
      end();
      mm.sysMunmap(ALT, n * P);
    } else if (op === 5) {
      // A fresh mapping moved over the range by mremap.
      const f = rng.below(2);
      const pgoff = rng.below(FILE_PAGES - n + 1);
      const shared = rng.below(2) === 0;
      const flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
      if (mm.sysMmap(ALT2, n * P, PROT_READ | PROT_WRITE, flags, args.fds[f], pgoff * P) !== ALT2) continue;
      begin();
      if (mm.sysMremap(ALT2, n * P, n * P, MREMAP_MAYMOVE | MREMAP_FIXED, addr) === addr)
        for (let q = p; q < p + n; q++) set(q, mappedState(f, pgoff + q - p, PROT_READ | PROT_WRITE, shared));
      end();
      mm.sysMunmap(ALT2, n * P);
    } else if (op === 6) {
      // The pages go (a private copy goes back to the file's page): the next GUP faults again.
      mm.sysMadvise(addr, n * P, MADV_DONTNEED);
    } else if (op === 7) {
      res.reclaimed += reclaimCachePages(files, 2 * FILE_PAGES);
    } else {
      // Written-back pages can be reclaimed (a write pin dirtied them).
      proc.fsync(args.fds[rng.below(2)]);
      res.fsyncs++;
    }
    res.slowestMs[op] = Math.max(res.slowestMs[op], performance.now() - t0);
    res.ops++;
    rcuQuiescent();
  }
  return res;
}

function allMapped(cur: number[], p: number, n: number): boolean {
  for (let q = p; q < p + n; q++) if (cur[q] === UNMAPPED) return false;
  return true;
}

/** State s with protection prot. */
function reprotect(s: number, prot: number): number {
  return mappedState(stateFile(s), stateIndex(s), prot, (s & S_SHARED) !== 0);
}

/** The initial mapping's states (the window maps file 0 from page 0, shared, RW). */
export function initialStates(o: Int32Array): void {
  for (let p = 0; p < WINDOW_PAGES; p++) record(o, p, 0, mappedState(0, p, PROT_READ | PROT_WRITE, true));
}
