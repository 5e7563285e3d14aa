/**
 * Task (test/mm/fault-design.test.ts): attaches the process, maps its own anonymous VMA of `pages`
 * pages at `base`, stores a seeded word in each page through its Mmu (one write fault per page),
 * reads every word back, unmaps. Returns the pages it touched and the sum of the words it read.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';
import { Rng } from '../../../src/rng.js';

export interface FaultPagesArgs {
  process: ProcessDescriptor;
  base: number;
  pages: number;
  seed: number;
}

export interface FaultPagesResult {
  touched: number;
  sum: number;
}

const P = 4096;

export default function faultPages(_cpu: number, args: FaultPagesArgs): FaultPagesResult {
  const proc = Process.attach(args.process);
  const mm = proc.mm;
  const mmu = mm.mmu();
  mm.mmap(args.base, args.pages * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  const rng = new Rng(args.seed);
  for (let i = 0; i < args.pages; i++) mmu.store32(args.base + i * P, rng.below(1 << 30));
  let sum = 0;
  for (let i = 0; i < args.pages; i++) sum += mmu.load32(args.base + i * P);
  mm.munmap(args.base, args.pages * P);
  proc.detach();
  return { touched: args.pages, sum };
}
