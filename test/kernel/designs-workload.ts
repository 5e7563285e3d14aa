/**
 * One CPU's share of the all-designs workload (issue 12's stress and its "the designs differ only
 * in locking" test): seeded random syscalls, loads, stores and file I/O on the CPU's own lane of a
 * process that other CPUs run in too, every outcome checked on the spot against an exact
 * sequential model of the lane and of the CPU's files.
 *
 *   lane         LANE_PAGES slots at laneBase(c): every CPU's lane lies in one 2 MiB region, so
 *                the CPUs share a page table, its lock and the VMA tree, never a slot
 *   scratch      SCRATCH_PAGES private pages at scratchBase(c): the I/O buffer, never unmapped
 *   files        0 the CPU's host file, 1 its memfd (both resized), 2 its region of the shared
 *                host file (REGION_PAGES pages at c * REGION_PAGES; other CPUs write theirs)
 *
 * A slot is NONE, ANON (private anonymous), SHARED (MAP_SHARED of file f at page pgoff) or PRIVATE
 * (MAP_PRIVATE of f, `cowed` once written), with a prot of RW, R or NONE. Linux's rules the model
 * follows: a shared page reads the file; a private one the file until its copy-on-write; past the
 * end of the file either is SIGBUS; truncation drops private copies past the new end (even_cows),
 * a punch keeps them; MADV_DONTNEED zeroes anonymous pages and drops private copies; mremap moves
 * the pages with the mapping; MAP_POPULATE of a private writable mapping write-faults it (a copy
 * of each page inside the file at once, as Linux's populate breaks COW). Sizes and punches are
 * whole pages.
 *
 * Ops: stores and loads (SIGSEGV/SIGBUS predicted), mmap (anonymous, shared or private file, some
 * MAP_POPULATE), munmap, mprotect and MADV_DONTNEED of mapped runs, mremap (move, DONTUNMAP-free,
 * shrink) inside one VMA, pwrite/write from the scratch or from a lane page (the user copy faults
 * under i_rwsem), pread/read checked, ftruncate, fallocate(PUNCH_HOLE), fsync, msync(MS_SYNC),
 * reclaim of clean cached pages, injected device latency switched on and off, fork (the child's
 * lane checked whole, its stores kept its own or, through a shared mapping, the file's), and a
 * whole-page check. Throws an Error naming the op, the first difference, the slot's last changes
 * and the last ops (DESIGNS_TRACE=1 adds where the value found was stored or written, and when).
 */
import { readFileSync } from 'node:fs';
import { INJECT_FAULT, INJECT_READ_PAGE, INJECT_WRITE_PAGE, setInjection } from '../../src/fs/inject.js';
import { reclaimCachePages } from '../../src/fs/reclaim.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  SEEK_SET,
  sysFallocate,
  sysFsync,
  sysFtruncate,
  sysLseek,
  sysPread,
  sysPwrite,
  sysRead,
  sysWrite,
} from '../../src/kernel/file-syscalls.js';
import type { Process } from '../../src/kernel/process.js';
import { rangeOut } from '../../src/maple/api.js';
import type { Mmu } from '../../src/mem/mmu.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  MS_SYNC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { mmapReadLock, mmapReadUnlock } from '../../src/mm/vma-lock.js';
import { Rng } from '../../src/rng.js';

export const P = 4096;
const WORDS = P >> 2;
export const LANE_PAGES = 48;
export const MAX_LANES = 4;
/** 2 MiB aligned: the lanes of all CPUs share one page table. */
export const LANE_BASE = 0x40000000;
export const SCRATCH_PAGES = 8;
const SCRATCH_BASE = 0x50000000;
export const OWN_FILE_PAGES = 16;
/** The host file's pages at the start (a pattern), the memfd's (zeros). */
export const OWN_FILE_START = 8;
const MEMFD_START = 4;
export const REGION_PAGES = 8;
export const SHARED_FILE_PAGES = REGION_PAGES * MAX_LANES;

const NONE = 0;
const ANON = 1;
const SHARED = 2;
const PRIVATE = 3;
const KIND_NAMES = ['none', 'anon', 'shared', 'private'];
const RW = PROT_READ | PROT_WRITE;
const PROTS = [RW, RW, RW, PROT_READ, PROT_NONE];

/** Expected outcomes of an access. */
const OK = 0;
const MAPERR = 1;
const ACCERR = 2;
const BUS = 3;
const OUTCOMES = ['no fault', 'SEGV_MAPERR', 'SEGV_ACCERR', 'SIGBUS'];

export function laneBase(c: number): number {
  return LANE_BASE + c * LANE_PAGES * P;
}

export function scratchBase(c: number): number {
  return SCRATCH_BASE + c * SCRATCH_PAGES * P;
}

/** Word w of page `page` of a host file as created (never 0). */
export function initialWord(file: number, page: number, w: number): number {
  return (((file + 1) << 24) ^ (page << 12) ^ w ^ 0x5a000000) >>> 0;
}

/** The initial bytes of host file `file` (`pages` pages of initialWord). */
export function initialBytes(file: number, pages: number): Uint8Array {
  const words = new Uint32Array(pages * WORDS);
  for (let i = 0; i < words.length; i++) words[i] = initialWord(file, i >>> 10, i & (WORDS - 1));
  return new Uint8Array(words.buffer);
}

/** What one CPU's workload is given: its lane, its descriptors and files. */
export interface WorkloadFiles {
  /** Descriptors in the process: own host file, memfd, shared host file. */
  fds: number[];
  /** File ids (for injection), same order. */
  ids: number[];
  /** Host paths (own, shared): the final check reads them with node:fs. */
  ownPath: string;
  sharedPath: string;
  /** The host file numbers initialWord was given for own and shared files. */
  ownTag: number;
  sharedTag: number;
}

class FileModel {
  readonly words: Uint32Array;
  constructor(
    readonly fd: number,
    readonly id: number,
    /** The CPU's pages of the file: [first, first + span). */
    readonly first: number,
    readonly span: number,
    public pages: number,
    readonly resizable: boolean,
    totalPages: number,
  ) {
    this.words = new Uint32Array(totalPages * WORDS);
  }
}

export interface WorkloadCounts {
  ops: Record<string, number>;
  loads: number;
  stores: number;
  /** Faults predicted and taken (SIGSEGV, SIGBUS). */
  faults: number;
  pagesChecked: number;
  forks: number;
  errnos: number;
}

export class Workload {
  readonly counts: WorkloadCounts = {
    ops: {},
    loads: 0,
    stores: 0,
    faults: 0,
    pagesChecked: 0,
    forks: 0,
    errnos: 0,
  };
  private readonly rng: Rng;
  private readonly base: number;
  private readonly scratch: number;
  private readonly kind = new Int8Array(LANE_PAGES);
  private readonly file = new Int8Array(LANE_PAGES);
  private readonly pgoff = new Int32Array(LANE_PAGES);
  private readonly prot = new Int8Array(LANE_PAGES);
  private readonly cowed = new Uint8Array(LANE_PAGES);
  /** Anonymous pages and private copies, by slot. */
  private readonly anon = new Uint32Array(LANE_PAGES * WORDS);
  private readonly files: FileModel[];
  private readonly page = new Uint32Array(SCRATCH_PAGES * WORDS);
  private readonly page8 = new Uint8Array(this.page.buffer);
  private readonly out = rangeOut();
  private op = '';
  /** Where the op being run is published (its selector 0..99, -1 between ops) for a hang report. */
  doing: { words: Int32Array; at: number } | null = null;
  /** The last ops (for the failure message): op, slot, count. */
  private readonly trail: string[] = [];
  private steps = 0;
  /** With DESIGNS_TRACE=1: where each value stored or written came from (for failure messages). */
  private readonly origin = process.env.DESIGNS_TRACE ? new Map<number, string>() : null;
  /** Per slot, its last changes (for the failure message). */
  private readonly history: string[][] = Array.from({ length: LANE_PAGES }, () => []);

  constructor(
    private readonly proc: Process,
    private readonly lane: number,
    seed: number,
    private readonly f: WorkloadFiles,
  ) {
    this.rng = new Rng(seed * 7919 + lane * 104729 + 1);
    this.base = laneBase(lane);
    this.scratch = scratchBase(lane);
    const [own, memfd, shared] = f.fds;
    this.files = [
      new FileModel(own, f.ids[0], 0, OWN_FILE_PAGES, OWN_FILE_START, true, OWN_FILE_PAGES),
      new FileModel(memfd, f.ids[1], 0, OWN_FILE_PAGES, 0, true, OWN_FILE_PAGES),
      new FileModel(
        shared,
        f.ids[2],
        lane * REGION_PAGES,
        REGION_PAGES,
        SHARED_FILE_PAGES,
        false,
        SHARED_FILE_PAGES,
      ),
    ];
    fillInitial(this.files[0].words, f.ownTag, OWN_FILE_START);
    fillInitial(this.files[2].words, f.sharedTag, SHARED_FILE_PAGES);
  }

  private get mm() {
    return this.proc.mm;
  }

  private mmu(): Mmu {
    return this.proc.mm.mmu();
  }

  /** The scratch buffer mapped, the memfd sized, half the lane mapped: before the first step. */
  start(): void {
    const mm = this.mm;
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    this.expect('mmap scratch', mm.sysMmap(this.scratch, SCRATCH_PAGES * P, RW, flags, -1, 0), this.scratch);
    this.expect('ftruncate memfd', sysFtruncate(mm, this.files[1].fd, MEMFD_START * P), 0);
    this.files[1].pages = MEMFD_START;
    for (let s = 0; s < LANE_PAGES / 2; s += 4) this.mmapFile(s, 4, s % 8 === 0 ? SHARED : PRIVATE);
    for (let s = LANE_PAGES / 2; s < LANE_PAGES; s += 8) this.mmapAnon(s, 4, RW, false);
  }

  /** One random op, checked. */
  step(): void {
    const rng = this.rng;
    const r = rng.below(100);
    const s = rng.below(LANE_PAGES);
    const n = 1 + rng.below(Math.min(6, LANE_PAGES - s));
    this.steps++;
    if (this.doing !== null) Atomics.store(this.doing.words, this.doing.at, r);
    this.trail.push(`${r}:${s}+${n}`);
    if (this.trail.length > 40) this.trail.shift();
    if (r < 26) this.store(s, rng.below(WORDS));
    else if (r < 44) this.load(s, rng.below(WORDS));
    else if (r < 49) this.mmapAnon(s, n, PROTS[rng.below(PROTS.length)], rng.below(4) === 0);
    else if (r < 55) this.mmapFile(s, n, rng.below(2) === 0 ? SHARED : PRIVATE);
    else if (r < 58) this.munmap(s, n);
    else if (r < 62) this.mprotect(s, n, PROTS[rng.below(PROTS.length)]);
    else if (r < 65) this.dontneed(s, n);
    else if (r < 68) this.mremap(s, n);
    else if (r < 74) this.writeFile(rng.below(3), s);
    else if (r < 79) this.readFile(rng.below(3));
    else if (r < 81) this.truncate(rng.below(2));
    else if (r < 84) this.punch(rng.below(3));
    else if (r < 86) this.sync(s, n);
    else if (r < 87) this.reclaim();
    else if (r < 88) this.inject();
    else if (r < 90) this.fork();
    else this.checkPage(s);
  }

  // ---- accesses ------------------------------------------------------------------------------

  /** The outcome an access to slot s must have now (the model unchanged). */
  private outcome(s: number, write: boolean): number {
    const k = this.kind[s];
    if (k === NONE) return MAPERR;
    const prot = this.prot[s];
    if (prot === PROT_NONE || (write && (prot & PROT_WRITE) === 0)) return ACCERR;
    if (k === ANON || (k === PRIVATE && this.cowed[s] === 1)) return OK;
    return this.pgoff[s] < this.files[this.file[s]].pages ? OK : BUS;
  }

  /** Where word w of slot s lives in the model: [array, index]. Preconditions: outcome OK. */
  private cell(s: number, w: number): [Uint32Array, number] {
    const k = this.kind[s];
    if (k === ANON || (k === PRIVATE && this.cowed[s] === 1)) return [this.anon, s * WORDS + w];
    return [this.files[this.file[s]].words, this.pgoff[s] * WORDS + w];
  }

  private store(s: number, w: number): void {
    this.op = 'store';
    const want = this.outcome(s, true);
    if (want === OK && this.kind[s] === PRIVATE) this.cow(s);
    const v = this.value();
    this.origin?.set(v, `step ${this.steps} store slot ${s} word ${w} ${this.describeSlot(s)}`);
    const got = this.access(this.mmu(), this.base + s * P + w * 4, true, v);
    this.counts.stores++;
    this.checkOutcome(s, w, want, got);
    if (want === OK) {
      const [a, i] = this.cell(s, w);
      a[i] = v;
    }
  }

  private load(s: number, w: number): void {
    this.op = 'load';
    const want = this.outcome(s, false);
    this.counts.loads++;
    const got = this.access(this.mmu(), this.base + s * P + w * 4, false, 0);
    this.checkOutcome(s, w, want, got);
    if (want !== OK) return;
    const [a, i] = this.cell(s, w);
    if (this.loaded !== a[i])
      this.fail(`slot ${s} word ${w}: loaded ${hex(this.loaded)}, the model holds ${hex(a[i])}`);
  }

  private loaded = 0;

  /** A load or store through `mmu`: the outcome taken (OK, MAPERR, ACCERR, BUS); a load's value in `loaded`. */
  private access(mmu: Mmu, addr: number, write: boolean, v: number): number {
    try {
      if (write) mmu.store32(addr, v);
      else this.loaded = mmu.load32(addr) >>> 0;
      return OK;
    } catch (error) {
      if (!(error instanceof MemoryFault)) throw error;
      this.counts.faults++;
      if (error.signal === 'SIGBUS') return BUS;
      return error.code === 'SEGV_MAPERR' ? MAPERR : ACCERR;
    }
  }

  private checkOutcome(s: number, w: number, want: number, got: number): void {
    if (got !== want)
      this.fail(
        `slot ${s} word ${w} (${this.describeSlot(s)}): ${OUTCOMES[got]}, the model predicts ${OUTCOMES[want]}`,
      );
  }

  /** Slot s's page, through `mmu`, against the model (or against the fault predicted). */
  private comparePage(mmu: Mmu, s: number, who: string): void {
    const want = this.outcome(s, false);
    const buf = this.page8.subarray(0, P);
    const left = mmu.copyIn(this.base + s * P, buf);
    this.counts.pagesChecked++;
    if (want !== OK) {
      if (left !== P)
        this.fail(
          `${who}: slot ${s} (${this.describeSlot(s)}) read ${P - left} bytes, predicted ${OUTCOMES[want]}`,
        );
      const got = this.access(mmu, this.base + s * P, false, 0);
      if (got !== want)
        this.fail(
          `${who}: slot ${s} (${this.describeSlot(s)}) ${OUTCOMES[got]}, predicted ${OUTCOMES[want]}`,
        );
      return;
    }
    if (left !== 0) this.fail(`${who}: slot ${s} (${this.describeSlot(s)}): ${left} bytes not readable`);
    const [a, i] = this.cell(s, 0);
    for (let w = 0; w < WORDS; w++) {
      if (this.page[w] !== a[i + w])
        this.fail(
          `${who}: slot ${s} (${this.describeSlot(s)}) word ${w}: ${hex(this.page[w])}, model ${hex(a[i + w])}${this.fileWord(s, w)}`,
        );
    }
  }

  /** For a failure message: what pread finds at word w of slot s's file page. */
  private fileWord(s: number, w: number): string {
    if (this.kind[s] !== SHARED && this.kind[s] !== PRIVATE) return '';
    const f = this.files[this.file[s]];
    const got = sysPread(this.mm, f.fd, this.scratch, P, this.pgoff[s] * P);
    const one = new Uint32Array(1);
    this.mmu().copyIn(this.scratch + w * 4, new Uint8Array(one.buffer));
    const found: string[] = [];
    for (const [k, g] of this.files.entries())
      for (let p = 0; p < g.words.length >> 10; p++)
        if (g.words[p * WORDS + w] === this.page[w]) found.push(`file ${k} page ${p}`);
    for (let t = 0; t < LANE_PAGES; t++)
      if (this.anon[t * WORDS + w] === this.page[w]) found.push(`anon of slot ${t}`);
    const origin =
      this.origin === null ? '' : `; origin ${this.origin.get(this.page[w])} (now step ${this.steps})`;
    return `; pread of the file page: ${got} bytes, word ${hex(one[0])}; the value is in the model at ${found.join(', ') || 'no place'}${origin}`;
  }

  private checkPage(s: number): void {
    this.op = 'check page';
    this.comparePage(this.mmu(), s, 'page check');
    this.count('check page');
  }

  // ---- mappings ------------------------------------------------------------------------------

  private mmapAnon(s: number, n: number, prot: number, populate: boolean): void {
    this.op = 'mmap anon';
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (populate ? MAP_POPULATE : 0);
    const addr = this.base + s * P;
    this.expect('mmap anon', this.mm.sysMmap(addr, n * P, prot, flags, -1, 0), addr);
    for (let i = s; i < s + n; i++) this.setSlot(i, ANON, 0, 0, prot);
    this.anon.fill(0, s * WORDS, (s + n) * WORDS);
  }

  private mmapFile(s: number, n: number, kind: number): void {
    this.op = kind === SHARED ? 'mmap shared' : 'mmap private';
    const fi = this.rng.below(3);
    const f = this.files[fi];
    const span = Math.max(1, f.span - n + 1);
    const pgoff = f.first + this.rng.below(span);
    const prot = PROTS[this.rng.below(PROTS.length)];
    const populate = this.rng.below(5) === 0;
    const flags = (kind === SHARED ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED | (populate ? MAP_POPULATE : 0);
    const addr = this.base + s * P;
    this.expect(this.op, this.mm.sysMmap(addr, n * P, prot, flags, f.fd, pgoff * P), addr);
    for (let i = 0; i < n; i++) this.setSlot(s + i, kind, fi, pgoff + i, prot);
    // Populating a private writable mapping write-faults it (breaks COW, as Linux's populate does).
    if (populate && kind === PRIVATE && (prot & PROT_WRITE) !== 0)
      for (let i = s; i < s + n; i++) this.cow(i);
  }

  /** Slot s (private, inside the file) gets its own copy of the file page now. */
  private cow(s: number): void {
    if (this.cowed[s] === 1 || this.pgoff[s] >= this.files[this.file[s]].pages) return;
    const f = this.files[this.file[s]];
    this.anon.set(f.words.subarray(this.pgoff[s] * WORDS, (this.pgoff[s] + 1) * WORDS), s * WORDS);
    this.cowed[s] = 1;
    this.note(s, 'cow');
  }

  private note(s: number, what: string): void {
    const h = this.history[s];
    h.push(`${this.steps} ${this.op}: ${what}`);
    if (h.length > 12) h.shift();
  }

  private setSlot(s: number, kind: number, file: number, pgoff: number, prot: number): void {
    this.note(s, `${KIND_NAMES[kind]} f${file} pg${pgoff} prot ${prot}`);
    this.kind[s] = kind;
    this.file[s] = file;
    this.pgoff[s] = pgoff;
    this.prot[s] = prot;
    this.cowed[s] = 0;
  }

  private munmap(s: number, n: number): void {
    this.op = 'munmap';
    this.expect('munmap', this.mm.sysMunmap(this.base + s * P, n * P), 0);
    for (let i = s; i < s + n; i++) this.setSlot(i, NONE, 0, 0, 0);
  }

  /** The slots [s, s + n) all mapped. */
  private mapped(s: number, n: number): boolean {
    for (let i = s; i < s + n; i++) if (this.kind[i] === NONE) return false;
    return true;
  }

  private mprotect(s: number, n: number, prot: number): void {
    this.op = 'mprotect';
    if (!this.mapped(s, n)) return;
    this.expect('mprotect', this.mm.sysMprotect(this.base + s * P, n * P, prot), 0);
    for (let i = s; i < s + n; i++) {
      this.prot[i] = prot;
      this.note(i, `prot ${prot}`);
    }
  }

  private dontneed(s: number, n: number): void {
    this.op = 'madvise DONTNEED';
    if (!this.mapped(s, n)) return;
    this.expect(this.op, this.mm.sysMadvise(this.base + s * P, n * P, MADV_DONTNEED), 0);
    for (let i = s; i < s + n; i++) {
      if (this.kind[i] === ANON) this.anon.fill(0, i * WORDS, (i + 1) * WORDS);
      else if (this.kind[i] === PRIVATE) this.cowed[i] = 0;
      this.note(i, 'dontneed');
    }
  }

  /** mremap inside one VMA: a move to free or mapped slots elsewhere in the lane, or a shrink. */
  private mremap(s: number, n: number): void {
    if (this.kind[s] === NONE || this.vmaEnd(this.base + s * P) < this.base + (s + n) * P) return;
    const mm = this.mm;
    if (n > 1 && this.rng.below(3) === 0) {
      this.op = 'mremap shrink';
      const keep = 1 + this.rng.below(n - 1);
      this.expect(this.op, mm.sysMremap(this.base + s * P, n * P, keep * P, 0, 0), this.base + s * P);
      for (let i = s + keep; i < s + n; i++) this.setSlot(i, NONE, 0, 0, 0);
      return;
    }
    const q = this.rng.below(LANE_PAGES - n + 1);
    if (q < s + n && q + n > s) return;
    this.op = 'mremap move';
    const to = this.base + q * P;
    this.expect(
      this.op,
      mm.sysMremap(this.base + s * P, n * P, n * P, MREMAP_MAYMOVE | MREMAP_FIXED, to),
      to,
    );
    for (let i = 0; i < n; i++) {
      this.setSlot(q + i, this.kind[s + i], this.file[s + i], this.pgoff[s + i], this.prot[s + i]);
      this.cowed[q + i] = this.cowed[s + i];
      this.note(q + i, `from slot ${s + i}${this.cowed[s + i] ? ' cowed' : ''}`);
      this.anon.copyWithin((q + i) * WORDS, (s + i) * WORDS, (s + i + 1) * WORDS);
      this.setSlot(s + i, NONE, 0, 0, 0);
    }
  }

  /** The end of the VMA containing addr (0 if none), read under mmap_lock. */
  private vmaEnd(addr: number): number {
    const mm = this.mm;
    mm.mmuOffline();
    mmapReadLock(mm.locks);
    try {
      const h = mm.index.load(addr, this.out);
      return h === 0 ? 0 : mm.arena.end(h);
    } finally {
      mmapReadUnlock(mm.locks);
    }
  }

  // ---- files ---------------------------------------------------------------------------------

  /** pwrite (or lseek + write on an own file) of 1..n pages, from the scratch or a lane page. */
  private writeFile(fi: number, s: number): void {
    const f = this.files[fi];
    const rng = this.rng;
    const fromLane = this.outcome(s, false) === OK && rng.below(3) === 0;
    const n = fromLane ? 1 : 1 + rng.below(Math.min(4, f.span));
    const page = f.first + rng.below(f.span - n + 1);
    let src = this.scratch;
    if (fromLane) {
      const [a, i] = this.cell(s, 0);
      this.page.set(a.subarray(i, i + WORDS));
      src = this.base + s * P;
    } else {
      for (let w = 0; w < n * WORDS; w++) this.page[w] = this.value();
      this.expect('scratch fill', this.mmu().copyOut(this.scratch, this.page8.subarray(0, n * P)), 0);
    }
    const positioned = f.resizable && rng.below(2) === 0;
    this.op = positioned ? 'write' : 'pwrite';
    if (positioned) {
      this.expect('lseek', sysLseek(this.mm, f.fd, page * P, SEEK_SET), page * P);
      this.expect(this.op, sysWrite(this.mm, f.fd, src, n * P), n * P);
    } else this.expect(this.op, sysPwrite(this.mm, f.fd, src, n * P, page * P), n * P);
    f.words.set(this.page.subarray(0, n * WORDS), page * WORDS);
    for (let k = 0; k < n; k++)
      this.origin?.set(
        this.page[k * WORDS],
        `step ${this.steps} ${this.op} file ${fi} page ${page + k} from ${fromLane ? `slot ${s}` : 'scratch'}`,
      );
    if (page + n > f.pages) f.pages = page + n;
  }

  /** pread (or lseek + read) of 1..SCRATCH_PAGES pages into the scratch, against the model. */
  private readFile(fi: number): void {
    const f = this.files[fi];
    const n = 1 + this.rng.below(Math.min(SCRATCH_PAGES, f.span));
    this.readCheck(f, f.first + this.rng.below(f.span - n + 1), n, f.resizable && this.rng.below(2) === 0);
  }

  private readCheck(f: FileModel, page: number, n: number, positioned: boolean): void {
    const mm = this.mm;
    this.op = positioned ? 'read' : 'pread';
    const want = Math.max(0, Math.min(n, f.pages - page)) * P;
    let got: number;
    if (positioned) {
      this.expect('lseek', sysLseek(mm, f.fd, page * P, SEEK_SET), page * P);
      got = sysRead(mm, f.fd, this.scratch, n * P);
    } else got = sysPread(mm, f.fd, this.scratch, n * P, page * P);
    this.expect(this.op, got, want);
    const buf = this.page8.subarray(0, want);
    this.expect('scratch read', this.mmu().copyIn(this.scratch, buf), 0);
    for (let w = 0; w < want >> 2; w++) {
      const m = f.words[page * WORDS + w];
      if (this.page[w] !== m)
        this.fail(
          `${this.op} of file ${f.id} page ${page + (w >> 10)} word ${w & 1023}: ${hex(this.page[w])}, model ${hex(m)}`,
        );
    }
  }

  /** ftruncate of an own file to 0..OWN_FILE_PAGES pages. */
  private truncate(fi: number): void {
    this.op = 'ftruncate';
    const f = this.files[fi];
    const pages = this.rng.below(OWN_FILE_PAGES + 1);
    this.expect(this.op, sysFtruncate(this.mm, f.fd, pages * P), 0);
    if (pages < f.pages) {
      f.words.fill(0, pages * WORDS);
      for (let s = 0; s < LANE_PAGES; s++) {
        if (this.kind[s] === PRIVATE && this.file[s] === fi && this.pgoff[s] >= pages) {
          this.cowed[s] = 0;
          this.note(s, `truncated to ${pages}`);
        }
      }
    }
    f.pages = pages;
  }

  /** fallocate(PUNCH_HOLE | KEEP_SIZE) of whole pages of the CPU's part of a file. */
  private punch(fi: number): void {
    this.op = 'punch';
    const f = this.files[fi];
    const n = 1 + this.rng.below(4);
    const page = f.first + this.rng.below(f.span - n + 1);
    const mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    this.expect(this.op, sysFallocate(this.mm, f.fd, mode, page * P, n * P), 0);
    const end = Math.min(page + n, f.pages);
    if (end > page) f.words.fill(0, page * WORDS, end * WORDS);
  }

  /** fsync of a file, or msync(MS_SYNC) of a mapped run. */
  private sync(s: number, n: number): void {
    if (this.rng.below(2) === 0) {
      this.op = 'fsync';
      this.expect(this.op, sysFsync(this.mm, this.files[this.rng.below(3)].fd, false), 0);
    } else if (this.mapped(s, n)) {
      this.op = 'msync';
      this.expect(this.op, this.mm.sysMsync(this.base + s * P, n * P, MS_SYNC), 0);
    }
  }

  private reclaim(): void {
    this.op = 'reclaim';
    this.mm.mmuOffline();
    reclaimCachePages(this.proc.kernel.files, 4 + this.rng.below(16));
    this.count(this.op);
  }

  /** The slow device switched on (a few hundred microseconds per read, write-back and fault) or off. */
  private inject(): void {
    this.op = 'inject';
    const latencyUs = this.rng.below(2) === 0 ? 0 : 100 + this.rng.below(900);
    for (const op of [INJECT_READ_PAGE, INJECT_WRITE_PAGE, INJECT_FAULT])
      setInjection(this.proc.kernel.files, this.files[0].id, op, { latencyUs });
    this.count(latencyUs === 0 ? 'device fast' : 'device slow');
  }

  // ---- fork ----------------------------------------------------------------------------------

  /**
   * fork: the child's copy of the lane checked whole against the model, then a few stores of the
   * child's own (into its private pages, or through a shared mapping into the file, which the
   * model then holds), each read back; the child exits.
   */
  private fork(): void {
    this.op = 'fork';
    this.mm.mmuOffline();
    const child = this.proc.fork();
    this.count('fork');
    this.counts.forks++;
    try {
      const mmu = child.mm.mmu();
      for (let s = 0; s < LANE_PAGES; s++) this.comparePage(mmu, s, 'fork child');
      for (let k = 0; k < 8; k++) this.childStore(mmu, this.rng.below(LANE_PAGES), this.rng.below(WORDS));
      mmu.offline();
    } finally {
      child.detach();
      child.exit();
    }
  }

  private childStore(mmu: Mmu, s: number, w: number): void {
    const want = this.outcome(s, true);
    if (want !== OK) return;
    const v = this.value();
    this.expect('child store', this.access(mmu, this.base + s * P + w * 4, true, v), OK);
    this.expect('child load', this.access(mmu, this.base + s * P + w * 4, false, 0), OK);
    if (this.loaded !== v)
      this.fail(`child slot ${s} word ${w}: stored ${hex(v)}, loaded ${hex(this.loaded)}`);
    if (this.kind[s] === SHARED) {
      const [a, i] = this.cell(s, w);
      a[i] = v;
    }
  }

  // ---- whole checks --------------------------------------------------------------------------

  /** Every slot and every file page against the model (checkpoints, the end). */
  checkAll(): void {
    this.op = 'check all';
    const mmu = this.mmu();
    for (let s = 0; s < LANE_PAGES; s++) this.comparePage(mmu, s, 'checkpoint');
    for (const f of this.files) {
      for (let p = f.first; p < f.first + f.span; p += SCRATCH_PAGES) {
        this.readCheck(f, p, Math.min(SCRATCH_PAGES, f.first + f.span - p), false);
      }
      if (f.resizable) this.expect('fstat', sizeOf(this.proc, f.fd), f.pages * P);
    }
    this.mm.mmuOffline();
  }

  /** After fsync: the host files hold the model (the own file whole, this CPU's region of the shared one). */
  checkHostFiles(): void {
    this.op = 'host files';
    const own = this.files[0];
    const shared = this.files[2];
    this.expect('fsync own', sysFsync(this.mm, own.fd, false), 0);
    this.expect('fsync shared', sysFsync(this.mm, shared.fd, false), 0);
    this.compareHost(this.f.ownPath, own, own.pages * P);
    this.compareHost(this.f.sharedPath, shared, SHARED_FILE_PAGES * P);
  }

  private compareHost(path: string, f: FileModel, size: number): void {
    const bytes = readFileSync(path);
    this.expect(`size of ${path}`, bytes.length, size);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
    for (let w = f.first * WORDS; w < Math.min(f.pages, f.first + f.span) * WORDS; w++) {
      if (words[w] !== f.words[w])
        this.fail(`${path} page ${w >> 10} word ${w & 1023}: ${hex(words[w])}, model ${hex(f.words[w])}`);
    }
  }

  /** A digest of the model (lane and files), for comparing runs. */
  modelDigest(): number {
    let h = 0x811c9dc5;
    const mix = (x: number) => {
      h = Math.imul(h ^ x, 0x01000193) >>> 0;
    };
    for (let s = 0; s < LANE_PAGES; s++) {
      mix(this.kind[s]);
      mix(this.outcome(s, false));
      if (this.outcome(s, false) !== OK) continue;
      const [a, i] = this.cell(s, 0);
      for (let w = 0; w < WORDS; w++) mix(a[i + w]);
    }
    return h;
  }

  // ---- helpers -------------------------------------------------------------------------------

  private value(): number {
    return (this.rng.next() | 1) >>> 0;
  }

  private count(name: string): void {
    this.counts.ops[name] = (this.counts.ops[name] ?? 0) + 1;
  }

  private expect(what: string, got: number, want: number): void {
    if (want < 0) this.counts.errnos++;
    if (got !== want) this.fail(`${what}: ${got}, the model predicts ${want}`);
    if (what === this.op) this.count(what);
  }

  private describeSlot(s: number): string {
    const k = this.kind[s];
    const file =
      k === SHARED || k === PRIVATE
        ? ` file ${this.file[s]} page ${this.pgoff[s]} of ${this.files[this.file[s]].pages}`
        : '';
    return `${KIND_NAMES[k]}${file} prot ${this.prot[s]}${this.cowed[s] ? ' cowed' : ''}`;
  }

  private fail(message: string): never {
    const slots = /slot (\d+)/.exec(message);
    const h =
      slots === null ? '' : `\nslot ${slots[1]}'s history: ${this.history[Number(slots[1])].join('; ')}`;
    throw new Error(
      `lane ${this.lane}, ${this.op}: ${message}${h}\n(last ops, kind:slot+n: ${this.trail.join(' ')})`,
    );
  }
}

function fillInitial(words: Uint32Array, tag: number, pages: number): void {
  for (let i = 0; i < pages * WORDS; i++) words[i] = initialWord(tag, i >>> 10, i & (WORDS - 1));
}

function sizeOf(proc: Process, fd: number): number {
  return proc.fstat(fd).size;
}

function hex(x: number): string {
  return `0x${(x >>> 0).toString(16)}`;
}
