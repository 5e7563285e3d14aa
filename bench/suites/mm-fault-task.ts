/**
 * The CPU task of `fault.scaling_2cpu` (bench/suites/mm.ts): attaches the process, waits for the
 * start signal, then maps its own anonymous VMA, stores one byte per page through its Mmu and
 * unmaps it, `rounds` times (will-it-scale page_fault1 per CPU, each CPU on disjoint VMAs).
 * Returns the milliseconds it took.
 *
 * Each CPU maps at its own hint, 4 GiB apart: left to the placement, the two CPUs' mappings were
 * adjacent and merged into one VMA (as Linux merges them), so both CPUs faulted through one VMA
 * lock (an atomic add and sub on one cache line per fault) and each munmap split the VMA both
 * were faulting in (waiting for the other CPU's readers, and sending its faults to mmap_lock).
 * That is two CPUs faulting one VMA, not disjoint ones.
 */
import { Process, type ProcessDescriptor } from '../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuQuiescent } from '../../src/sync/rcu.js';

export interface FaultTaskArgs {
  process: ProcessDescriptor;
  pages: number;
  rounds: number;
  /** Int32 [0]: the start signal (1 = go). */
  start: SharedArrayBuffer;
}

const P = 4096;

/** Each CPU's mapping hint: CPU c maps at (c + 1) * 4 GiB (a PUD entry, and a PMD table, of its own). */
const HINT_STRIDE = 2 ** 32;

export default function faultTask(cpu: number, args: FaultTaskArgs): number {
  const proc = Process.attach(args.process);
  const mmu = proc.mm.mmu();
  const start = new Int32Array(args.start);
  const giveUp = Date.now() + 30_000;
  while (Atomics.load(start, 0) === 0) {
    if (Date.now() > giveUp) throw new Error('no start signal');
    Atomics.wait(start, 0, 0, 10);
  }
  const hint = (cpu + 1) * HINT_STRIDE;
  const t0 = performance.now();
  for (let r = 0; r < args.rounds; r++) {
    const addr = proc.mm.sysMmap(
      hint,
      args.pages * P,
      PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS,
      -1,
      0,
    );
    if (addr !== hint) throw new Error(`mmap at ${hint.toString(16)} gave ${addr}`);
    for (let i = 0; i < args.pages; i++) mmu.store8(addr + i * P, 1);
    if (proc.mm.sysMunmap(addr, args.pages * P) !== 0) throw new Error('munmap failed');
    rcuQuiescent();
  }
  const ms = performance.now() - t0;
  proc.detach();
  return ms;
}
