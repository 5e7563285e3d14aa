/**
 * The speculative design against vma-lock on one CPU (issue 12's stretch figure), run by the mm
 * suite (bench/suites/mm.ts):
 *
 *   lab.speculative_vs_vma_lock.ratio       single-CPU fault throughput, speculative / vma-lock:
 *                                           will-it-scale page_fault1 (map 32 MiB anonymous, store
 *                                           one byte per page, munmap) under each design, rounds
 *                                           interleaved, median round of each in CPU time (higher:
 *                                           speculative faster)
 *   lab.speculative_vs_vma_lock.read_ratio  the same with loads after one store (zero-page read
 *                                           faults in a VMA with its anon_vma: no frame to allocate
 *                                           and zero, so the locking is a larger part; without the
 *                                           anon_vma vma-lock would take mmap_lock for every read)
 *   fault.speculative_write.ns / fault.vma_lock_write.ns   the medians behind the first (ns/page)
 *
 * Both address spaces share this thread's PhysMem, so they allocate from the same warm frames.
 */
import { MapleTree } from '../../src/maple/tree.js';
import { AddressSpace } from '../../src/mm/address-space.js';
import type { FaultDesign } from '../../src/mm/fault-design.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuQuiescent } from '../../src/sync/rcu.js';
import type { BenchOptions, Report } from '../harness.js';

const P = 4096;
const PAGES = (32 << 20) / P;

function space(design: FaultDesign): AddressSpace {
  return new AddressSpace({
    index: MapleTree.create({ name: `bench.${design}`, externalLock: 'mmap_lock' }),
    config: { design },
  });
}

/**
 * One page_fault1 round in `mm` (write: stores, else loads): CPU-time ns per page. CPU time (this
 * process's user + system; no other thread runs meanwhile), not wall time: on a host shared with
 * other jobs the wall time of a round mostly measures when this thread was descheduled.
 */
function round(mm: AddressSpace, write: boolean): number {
  const mmu = mm.mmu();
  const t0 = process.cpuUsage();
  const addr = mm.sysMmap(0, PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr < 0) throw new Error(`mmap failed: ${addr}`);
  if (write) for (let i = 0; i < PAGES; i++) mmu.store8(addr + i * P, 1);
  else {
    // The first page written: the VMA gets its anon_vma, so both designs' fast paths take the reads.
    mmu.store8(addr, 1);
    for (let i = 1; i < PAGES; i++) mmu.load8(addr + i * P);
  }
  if (mm.sysMunmap(addr, PAGES * P) !== 0) throw new Error('munmap failed');
  rcuQuiescent();
  const t = process.cpuUsage(t0);
  return ((t.user + t.system) * 1e3) / PAGES;
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1];

/** Medians (ns per page) of vma-lock and speculative rounds, interleaved. */
function compare(spaces: AddressSpace[], write: boolean, options: BenchOptions): [number, number] {
  for (let i = 0; i < (options.quick ? 2 : 4); i++) for (const mm of spaces) round(mm, write);
  const times: number[][] = spaces.map(() => []);
  for (let i = 0; i < (options.quick ? 5 : 15); i++) {
    for (let k = 0; k < spaces.length; k++) times[k].push(round(spaces[k], write));
  }
  return [median(times[0]), median(times[1])];
}

/** Preconditions: the main thread is RCU-online (the mm suite's run). */
export function measureSpeculative(report: Report, options: BenchOptions): void {
  const spaces = [space('vma-lock'), space('speculative')];
  try {
    const [vmaWrite, specWrite] = compare(spaces, true, options);
    const [vmaRead, specRead] = compare(spaces, false, options);
    const s = spaces[1].vmstat();
    if (s.faultsSpeculative === 0 || s.speculativeAborts !== 0) {
      throw new Error(`bench: the speculative rounds did not fault speculatively: ${JSON.stringify(s)}`);
    }
    report.add('fault.vma_lock_write.ns', vmaWrite, 'ns');
    report.add('fault.speculative_write.ns', specWrite, 'ns');
    report.add('lab.speculative_vs_vma_lock.ratio', vmaWrite / specWrite, 'ratio');
    report.add('lab.speculative_vs_vma_lock.read_ratio', vmaRead / specRead, 'ratio');
  } finally {
    for (const mm of spaces) {
      mm.destroy();
      mm.detach();
    }
  }
}
