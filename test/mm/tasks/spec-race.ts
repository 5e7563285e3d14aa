/**
 * Task: the two CPUs of test/mm/spec-fault-cpus.test.ts on ONE process of the speculative design.
 *
 *   faulter (CPU 1)   reads and writes random pages of the window [WIN, WIN + 2 * SPAN) through its
 *                     Mmu (a fault that meets no VMA or no access is caught, as a signal would be),
 *                     and now and then discards a page (MADV_DONTNEED) so that it faults again:
 *                     most faults are speculative, on entries left empty by the mutator
 *   mutator (CPU 0)   changes the VMA under those faults: munmap then mmap again, mprotect to
 *                     read-only and back, mmap MAP_FIXED over it, mremap to the window's other half
 *                     and back; after each call, the oracle
 *
 * The oracle, after each call of the mutator (its calls are the only VMA changes): every page of
 * the window agrees with the VMA now covering it: no VMA, no entry; a VMA without write access, no
 * writable entry; a present entry other than the zero page maps a frame of this VMA's anon_vma at
 * this VMA's page index. A speculative fault that installed its entry after the VMA changed (its
 * snapshot's VMA unmapped, protected, replaced or moved) breaks one of these. An anchor VMA at the
 * start of the 2 MiB region keeps its PTE table alive across the munmaps (so faults stay
 * speculative), and the mutator's own first write after each new mapping gives it an anon_vma.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { rangeOut } from '../../../src/maple/api.js';
import { ZERO_PFN } from '../../../src/mem/page.js';
import { PTE_WRITE, pteIndex, ptePfn } from '../../../src/mem/pte.js';
import { MemoryFault } from '../../../src/mem/tlb.js';
import type { AddressSpace } from '../../../src/mm/address-space.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_WRITE,
} from '../../../src/mm/vm-flags.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import { Rng } from './vma-race.js';

export const P = 4096;
/** 2 MiB aligned: the anchor and the window share one PTE table. */
export const BASE = 0x4_0000_0000;
export const ANCHOR_PAGES = 4;
/** Pages of the mutator's VMA; the window is twice that (the mremap target is its second half). */
export const SPAN_PAGES = 48;
export const WIN = BASE + ANCHOR_PAGES * P;
const SPAN = SPAN_PAGES * P;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
export const RW = PROT_READ | PROT_WRITE;
/** The mutator's calls at least, past its duration if need be. */
export const MIN_CALLS = 40;
/** The anchor's protection differs, so the mutator's VMA never merges with it. */
export const RWX = RW | PROT_EXEC;

/** sync words: 0 CPUs ready, 1 mutator done, 2 the half of the window the VMA is in (a hint). */
export interface SpecRaceArgs {
  role: 'faulter' | 'mutator';
  process: ProcessDescriptor;
  sync: SharedArrayBuffer;
  seed: number;
  durationMs: number;
  /**
   * The oracle spins this long (µs) between reading a page's entry and reading its frame, widening
   * the window in which the faulter's MADV_DONTNEED could free and reuse that frame (0: no spin).
   */
  oracleSpinUs?: number;
}

export interface SpecRaceResult {
  /** Faulter: accesses, of which caught as signals. Mutator: calls, oracle checks of pages. */
  ops: number;
  signals: number;
  checks: number;
  error: string;
}

export default function run(_cpu: number, args: SpecRaceArgs): SpecRaceResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  try {
    return args.role === 'faulter' ? faulter(proc, args, sync) : mutator(proc, args, sync);
  } finally {
    if (args.role === 'mutator') Atomics.store(sync, 1, 1);
    proc.detach();
  }
}

function faulter(proc: Process, args: SpecRaceArgs, sync: Int32Array): SpecRaceResult {
  const mm = proc.mm;
  const mmu = mm.mmu();
  const rng = new Rng(args.seed);
  let ops = 0;
  let signals = 0;
  while (Atomics.load(sync, 1) === 0) {
    for (let k = 0; k < 256; k++) {
      // Mostly the half the VMA is in (signals are slow), sometimes the other one.
      const half = rng.below(8) === 0 ? rng.below(2) : Atomics.load(sync, 2);
      const addr = WIN + (half * SPAN_PAGES + rng.below(SPAN_PAGES)) * P + 4 * rng.below(1024);
      ops++;
      try {
        if (rng.below(2) === 0) mmu.load32(addr);
        else mmu.store32(addr, ops);
      } catch (error) {
        if (!(error instanceof MemoryFault)) throw error;
        signals++;
      }
    }
    mm.sysMadvise(WIN + rng.below(2 * SPAN_PAGES) * P, 4 * P, MADV_DONTNEED);
    rcuQuiescent();
  }
  return { ops, signals, checks: 0, error: '' };
}

function mutator(proc: Process, args: SpecRaceArgs, sync: Int32Array): SpecRaceResult {
  const mm = proc.mm;
  const rng = new Rng(args.seed * 31 + 7);
  const deadline = Date.now() + args.durationMs;
  const oracle = new Oracle(mm, args.oracleSpinUs ?? 0);
  let ops = 0;
  let at = WIN;
  // At least MIN_CALLS calls however slow the host is (the watchdog bounds the run).
  while ((Date.now() < deadline || ops < MIN_CALLS) && oracle.error === '') {
    const op = rng.below(4);
    if (op === 0) {
      call(mm.sysMunmap(at, SPAN), 'munmap');
      oracle.check();
      newMapping(proc, at);
    } else if (op === 1) {
      call(mm.sysMprotect(at, SPAN, PROT_READ), 'mprotect(READ)');
      oracle.check();
      call(mm.sysMprotect(at, SPAN, RW), 'mprotect(RW)');
    } else if (op === 2) {
      newMapping(proc, at);
    } else {
      const to = at === WIN ? WIN + SPAN : WIN;
      if (mm.sysMremap(at, SPAN, SPAN, MREMAP_MAYMOVE | MREMAP_FIXED, to) !== to)
        throw new Error('mremap failed');
      at = to;
      Atomics.store(sync, 2, at === WIN ? 0 : 1);
    }
    oracle.check();
    ops++;
    rcuQuiescent();
  }
  // The next round starts with the VMA at WIN.
  if (at !== WIN && mm.sysMremap(at, SPAN, SPAN, MREMAP_MAYMOVE | MREMAP_FIXED, WIN) !== WIN) {
    throw new Error('mremap back failed');
  }
  return { ops, signals: 0, checks: oracle.checks, error: oracle.error };
}

/** mmap MAP_FIXED over [at, +SPAN), then a write of its first page (the anon_vma, the table). */
function newMapping(proc: Process, at: number): void {
  if (proc.mm.sysMmap(at, SPAN, RW, ANON, -1, 0) !== at) throw new Error('mmap failed');
  proc.mm.mmu().store32(at, 1);
}

function call(r: number, what: string): void {
  if (r !== 0) throw new Error(`${what} failed: ${r}`);
}

/** The page tables of the window against its VMAs (see the file comment). */
class Oracle {
  error = '';
  checks = 0;
  private readonly out = rangeOut();

  constructor(
    private readonly mm: AddressSpace,
    private readonly spinUs: number,
  ) {}

  check(): void {
    const pt = this.mm.pt;
    for (let page = WIN; page < WIN + 2 * SPAN && this.error === ''; page += P) {
      this.checks++;
      // The anchor keeps the window's PTE table (and only this CPU's munmap could free it).
      const t = pt.findPteTable(page);
      if (t === 0) {
        this.error = `page ${hex(page)}: no PTE table under the anchor`;
        continue;
      }
      // Under the PTL the entry, and so the reference its frame holds, stays: a zap (the
      // faulter's MADV_DONTNEED) clears it under this lock and frees the frame only afterwards.
      // Read unlocked, the frame could be freed and faulted in at another page before its
      // anon_vma and index are read: a false report.
      pt.lockTable(t);
      try {
        this.checkEntry(page, pt.readEntry(t, pteIndex(page)));
      } finally {
        pt.unlockTable(t);
      }
    }
  }

  /** One entry of the window against the VMA covering its page. Preconditions: its PTL held. */
  private checkEntry(page: number, pte: number): void {
    const mm = this.mm;
    if (pte === 0) return;
    const h = mm.index.load(page, this.out);
    if (h <= 0) {
      this.error = `page ${hex(page)}: entry ${hex(pte)} where no VMA is`;
      return;
    }
    const a = mm.arena;
    if ((pte & PTE_WRITE) !== 0 && (a.flags(h) & VM_WRITE) === 0) {
      this.error = `page ${hex(page)}: writable entry ${hex(pte)} in a read-only VMA`;
      return;
    }
    const pfn = ptePfn(pte);
    if (pfn === ZERO_PFN) return;
    spin(this.spinUs);
    const index = a.pgoff(h) + (page - a.start(h)) / P;
    const owner = mm.mem.owner[pfn];
    if (owner !== a.anon(h) || mm.mem.index[pfn] !== index) {
      this.error =
        `page ${hex(page)}: frame ${pfn} of anon_vma ${owner} index ${mm.mem.index[pfn]} in a VMA ` +
        `of anon_vma ${a.anon(h)} (page index ${index})`;
    }
  }
}

/** Busy-waits `us` microseconds (bounded: the oracle's widened window). */
function spin(us: number): void {
  if (us <= 0) return;
  const until = performance.now() + us / 1000;
  while (performance.now() < until) {
    // Widening the window.
  }
}

const hex = (n: number): string => `0x${n.toString(16)}`;
