/**
 * The copy-on-write scenarios of Linux's tools/testing/selftests/mm/cow.c (anonymous base pages;
 * /work/shared/cow-scenarios.md states each in our words), as a small runner over the public API
 * (Process, fork, the Mmu, Pipe, pinUserPages): the lab runs them under each fault-locking design
 * and shows their outcome. Each case builds its own processes in the given kernel, tells whether
 * the outcome cow.c demands held, and tears everything down (references, pins, pipe, processes).
 *
 * A case's page is filled with words derived from a seed; "old" / "new" data are two seeds.
 */
import type { Kernel } from '../kernel/kernel.js';
import { Process } from '../kernel/process.js';
import type { FaultDesign } from '../mm/fault-design.js';
import { readPage, unpinUserPages } from '../mm/gup.js';
import { Pipe } from '../mm/pipe.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/vm-flags.js';
import type { MmVmstat } from '../mm/vmstat.js';

const P = PAGE_SIZE;
const BASE = 0x100000000;
const RW = PROT_READ | PROT_WRITE;
/** Words of a page a case writes and checks (every STEP bytes). */
const STEP = 256;

export const COW_CASES = [
  '1 basic COW',
  '2 basic COW, mprotect optimisation',
  '3 vmsplice before unmap in the child',
  '4 as 3, mprotect optimisation',
  '5 vmsplice in the parent before fork',
  '6 vmsplice in the parent after fork',
  '7 R/W longterm pin, mprotect',
  '8 R/W longterm pin, fork',
  '9 R/O longterm pin, shared page',
  '10 as 9, GUP-fast',
  '11 R/O longterm pin, previously shared page',
  '12 as 11, GUP-fast',
  '13 R/O longterm pin, exclusive page',
  '14 as 13, GUP-fast',
] as const;

/** Faults of the cases' processes, summed before each exits. */
export type FaultCounts = Pick<
  MmVmstat,
  'faults' | 'faultsSpeculative' | 'faultsVmaLock' | 'faultsMmapLock' | 'fallbacks'
>;

export function emptyFaultCounts(): FaultCounts {
  return { faults: 0, faultsSpeculative: 0, faultsVmaLock: 0, faultsMmapLock: 0, fallbacks: 0 };
}

/** The kernel, design and seed of one case run, and where its processes' fault counts go. */
export interface CowRun {
  kernel: Kernel;
  design: FaultDesign;
  seed: number;
  faults: FaultCounts;
}

function fill(proc: Process, seed: number): void {
  const mmu = proc.mm.mmu();
  for (let w = 0; w < P; w += STEP) mmu.store32(BASE + w, seed + w);
}

function holds(bytes: Uint8Array, seed: number): boolean {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let w = 0; w < P; w += STEP) if (v.getUint32(w, true) !== (seed + w) >>> 0) return false;
  return true;
}

function mapped(proc: Process, seed: number): boolean {
  const mmu = proc.mm.mmu();
  for (let w = 0; w < P; w += STEP) if (mmu.load32(BASE + w) >>> 0 !== (seed + w) >>> 0) return false;
  return true;
}

function exit(run: CowRun, ...procs: Process[]): void {
  for (const p of procs) {
    if (p.exited) continue;
    const s = p.mm.vmstat();
    run.faults.faults += s.faults;
    run.faults.faultsSpeculative += s.faultsSpeculative;
    run.faults.faultsVmaLock += s.faultsVmaLock;
    run.faults.faultsMmapLock += s.faultsMmapLock;
    run.faults.fallbacks += s.fallbacks;
    p.exit();
    p.detach();
  }
}

function parentWithPage(run: CowRun): Process {
  const parent = Process.create(run.kernel, { config: { design: run.design } });
  parent.mm.mmap(BASE, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  fill(parent, run.seed);
  return parent;
}

function mprotectDance(proc: Process): void {
  proc.mm.mprotect(BASE, 2 * P, PROT_READ);
  proc.mm.mprotect(BASE, 2 * P, RW);
}

/** Cases 1-2: the child keeps its snapshot after the parent writes. */
function basic(run: CowRun, mprotectOpt: boolean): boolean {
  const parent = parentWithPage(run);
  const child = parent.fork();
  try {
    if (mprotectOpt) mprotectDance(parent);
    fill(parent, run.seed + 1);
    return mapped(child, run.seed) && mapped(parent, run.seed + 1);
  } finally {
    exit(run, child, parent);
  }
}

/** Cases 3-4: the child's pipe reference keeps the old data after the parent writes. */
function spliceInChild(run: CowRun, mprotectOpt: boolean): boolean {
  const parent = parentWithPage(run);
  const child = parent.fork();
  const pipe = new Pipe(run.kernel.mem);
  try {
    if (pipe.spliceFrom(child.mm, BASE, P) !== P) return false;
    child.mm.munmap(BASE, 2 * P);
    if (mprotectOpt) mprotectDance(parent);
    fill(parent, run.seed + 1);
    return holds(pipe.read(P), run.seed);
  } finally {
    pipe.close();
    exit(run, child, parent);
  }
}

/** Cases 5-6: the parent's pipe reference never sees the child's write. */
function spliceInParent(run: CowRun, afterFork: boolean): boolean {
  const parent = parentWithPage(run);
  const pipe = new Pipe(run.kernel.mem);
  let child: Process | null = null;
  try {
    if (afterFork) child = parent.fork();
    if (pipe.spliceFrom(parent.mm, BASE, P) !== P) return false;
    child ??= parent.fork();
    parent.mm.munmap(BASE, 2 * P);
    fill(child, run.seed + 1);
    return holds(pipe.read(P), run.seed);
  } finally {
    pipe.close();
    if (child !== null) exit(run, child);
    exit(run, parent);
  }
}

/** Cases 7-14: a longterm pin sees the write made through the mapping afterwards. */
function pinned(run: CowRun, n: number): boolean {
  const parent = parentWithPage(run);
  let child: Process | null = null;
  let pfns: number[] = [];
  try {
    const write = n === 7 || n === 8;
    if (n >= 9 && n <= 12) child = parent.fork();
    if (n === 11 || n === 12) exit(run, child as Process);
    if (n >= 13) parent.mm.mprotect(BASE, 2 * P, PROT_READ);
    const opts = { write, longterm: true };
    const fast = n % 2 === 0 && n >= 10;
    const got = fast ? parent.mm.pinUserPagesFast(BASE, 1, opts) : parent.mm.pinUserPages(BASE, 1, opts);
    if (!Array.isArray(got) || got.length !== 1) return false;
    pfns = got;
    if (n === 7) mprotectDance(parent);
    if (n >= 13) parent.mm.mprotect(BASE, 2 * P, RW);
    if (n === 8) child = parent.fork();
    fill(parent, run.seed + 1);
    return holds(readPage(run.kernel.mem, pfns[0], 0, P), run.seed + 1);
  } finally {
    unpinUserPages(run.kernel.mem, pfns);
    if (child !== null) exit(run, child);
    exit(run, parent);
  }
}

/** Runs case `index` of COW_CASES: whether the outcome cow.c demands held. */
export function runCowCase(run: CowRun, index: number): boolean {
  const n = index + 1;
  if (n <= 2) return basic(run, n === 2);
  if (n <= 4) return spliceInChild(run, n === 4);
  if (n <= 6) return spliceInParent(run, n === 6);
  return pinned(run, n);
}
