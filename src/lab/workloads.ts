/**
 * The lab's workloads: what one CPU does until its deadline, measured through its CpuProbe. Each
 * loop allocates nothing per operation (the cow cases aside: they build processes).
 *
 *   page_fault1    will-it-scale page_fault1: map REGION anonymous private, store one byte per
 *                  page (each store a write fault: one operation), unmap; again
 *   page_fault2/3  the same on the CPU's own file of REGION pages, MAP_PRIVATE (each write copies
 *                  the cached page) / MAP_SHARED (each write calls page_mkwrite and dirties it)
 *                  (file-workloads.ts opens the file)
 *   mmap1          will-it-scale mmap1: mmap + munmap of 128 MiB anonymous private (one operation)
 *   mmap2          will-it-scale mmap2 on a file (file-workloads.ts, with the other file workloads:
 *                  io-fault, io-idle, cached-fault, inversion-fault, inversion-write)
 *   thread-launch  a thread start: map a stack (MAP_GROWSDOWN | MAP_STACK), touch its top pages
 *                  as the new thread would, unmap it (one operation)
 *   cow            the cow.c scenarios (cow-cases.ts), in whole rounds; each case run is one operation
 *
 * A workload returns what it could not do as a failure text (an errno where a call failed, a case
 * whose outcome was wrong); the first failure stops a loop.
 */
import type { Kernel } from '../kernel/kernel.js';
import type { AddressSpace } from '../mm/address-space.js';
import type { FaultDesign } from '../mm/fault-design.js';
import {
  MAP_ANONYMOUS,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_STACK,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../mm/vm-flags.js';
import { COW_CASES, type CowRun, emptyFaultCounts, runCowCase } from './cow-cases.js';
import { type CpuProbe, KIND_CASE, KIND_FAULT, KIND_LAUNCH, KIND_MMAP, KIND_MUNMAP } from './cpu-probe.js';

export const WORKLOADS = [
  'page_fault1',
  'page_fault2',
  'page_fault3',
  'mmap1',
  'mmap2',
  'thread-launch',
  'cow',
  'io-fault',
  'io-idle',
  'cached-fault',
  'inversion-fault',
  'inversion-write',
] as const;
export type Workload = (typeof WORKLOADS)[number];

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
/** will-it-scale's MEMSIZE for mmap1/mmap2. */
export const MMAP_BYTES = 128 << 20;
/** A launched thread's stack mapping, and the pages at its top the thread touches. */
export const STACK_BYTES = 256 << 10;
export const STACK_TOUCHED = 8;

/** What a workload did besides its operations (merged into the CPU's result). */
export interface WorkloadOutcome {
  failure: string;
  /** cow: passes and failures per case (index of COW_CASES). */
  cowPass: number[];
  cowFail: number[];
  /** cow: the faults of the processes the cases built (they exit before the phase ends). */
  cowFaults: ReturnType<typeof emptyFaultCounts>;
}

export function emptyOutcome(): WorkloadOutcome {
  return { failure: '', cowPass: [], cowFail: [], cowFaults: emptyFaultCounts() };
}

/** Between two CPUs' region hints (regionHint): 4 GiB, a PUD entry (and PMD table) per CPU. */
const REGION_HINT_STRIDE = 2 ** 32;

/**
 * Where CPU `cpu` maps its page_fault1/2/3 regions (an mmap hint). Left to the placement, the CPUs'
 * anonymous regions lay side by side and merged into one VMA (as Linux merges them): every CPU
 * then faulted through one VMA lock (an atomic add and sub on one cache line per fault), and each
 * munmap split the VMA the others were faulting in. The experiments are CPUs on disjoint VMAs.
 */
export function regionHint(cpu: number): number {
  return (cpu + 1) * REGION_HINT_STRIDE;
}

/** page_fault1 with regions of `pages` pages, mapped at `hint`. */
export function pageFault1(
  mm: AddressSpace,
  probe: CpuProbe,
  pages: number,
  hint: number,
  out: WorkloadOutcome,
): void {
  writeFaultLoop(mm, probe, pages, hint, -1, ANON, 'page_fault1', out);
}

/**
 * page_fault1/2/3's loop: map `pages` pages at `hint` (of file `fd` at offset 0, or anonymous:
 * fd -1) with `flags`, read-write; store one byte per page (each store a write fault: one
 * operation); unmap.
 */
export function writeFaultLoop(
  mm: AddressSpace,
  probe: CpuProbe,
  pages: number,
  hint: number,
  fd: number,
  flags: number,
  name: Workload,
  out: WorkloadOutcome,
): void {
  const mmu = mm.mmu();
  const len = pages * P;
  while (!probe.over) {
    let t0 = probe.now();
    const addr = mm.sysMmap(hint, len, RW, flags, fd, 0);
    probe.event(t0, KIND_MMAP);
    if (addr < 0) {
      out.failure = `${name}: mmap returned ${addr}`;
      return;
    }
    for (let i = 0; i < pages && !probe.over; i++) {
      t0 = probe.now();
      mmu.store8(addr + i * P, 1);
      probe.op(t0, KIND_FAULT);
      probe.pages++;
    }
    t0 = probe.now();
    const r = mm.sysMunmap(addr, len);
    probe.event(t0, KIND_MUNMAP);
    if (r !== 0) {
      out.failure = `${name}: munmap returned ${r}`;
      return;
    }
  }
}

/** mmap1: mmap + munmap of MMAP_BYTES anonymous private, untouched. */
export function mmapLoop(mm: AddressSpace, probe: CpuProbe, out: WorkloadOutcome): void {
  while (!probe.over) {
    const t0 = probe.now();
    const addr = mm.sysMmap(0, MMAP_BYTES, RW, ANON, -1, 0);
    const r = addr < 0 ? addr : mm.sysMunmap(addr, MMAP_BYTES);
    probe.op(t0, KIND_MMAP);
    if (r !== 0) {
      out.failure = `mmap1: ${addr < 0 ? 'mmap' : 'munmap'} returned ${r}`;
      return;
    }
  }
}

/** thread-launch's launcher: map a stack, touch its top pages, unmap it. */
export function threadLaunch(mm: AddressSpace, probe: CpuProbe, out: WorkloadOutcome): void {
  const mmu = mm.mmu();
  const flags = ANON | MAP_GROWSDOWN | MAP_STACK;
  while (!probe.over) {
    const t0 = probe.now();
    const addr = mm.sysMmap(0, STACK_BYTES, RW, flags, -1, 0);
    if (addr < 0) {
      out.failure = `thread-launch: mmap returned ${addr}`;
      return;
    }
    const top = addr + STACK_BYTES;
    for (let i = 1; i <= STACK_TOUCHED; i++) mmu.store8(top - i * P, i);
    probe.pages += STACK_TOUCHED;
    const r = mm.sysMunmap(addr, STACK_BYTES);
    probe.op(t0, KIND_LAUNCH);
    if (r !== 0) {
      out.failure = `thread-launch: munmap returned ${r}`;
      return;
    }
  }
}

/** The cow.c cases in turn, each in new processes of `kernel` under `design`. */
export function cowCases(
  kernel: Kernel,
  design: FaultDesign,
  seed: number,
  probe: CpuProbe,
  out: WorkloadOutcome,
): void {
  out.cowPass = new Array<number>(COW_CASES.length).fill(0);
  out.cowFail = new Array<number>(COW_CASES.length).fill(0);
  const run: CowRun = { kernel, design, seed, faults: out.cowFaults };
  // Whole rounds: every case runs at least once, however short the phase.
  while (!probe.over) {
    for (let i = 0; i < COW_CASES.length; i++) {
      run.seed = (seed + probe.ops * 0x10000) | 0;
      const t0 = probe.now();
      const ok = runCowCase(run, i);
      probe.op(t0, KIND_CASE);
      if (ok) out.cowPass[i]++;
      else out.cowFail[i]++;
    }
  }
}
