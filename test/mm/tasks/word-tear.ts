/**
 * Task of test/mm/mmu-word-cpus.test.ts: one process on two CPUs, one page mapped shared.
 *
 *   storer  stores A and B in turn into word WORD of the page, each store after flushing its own
 *           TLB (flushLocal), so every store takes the Mmu's slow path (a miss, then the store)
 *   loader  loads the word the same way (every other load after a flush: the slow path, then the
 *           fast one) and counts any value that is neither A nor B: a torn word
 * Both run for `durationMs`. Returns { loads, torn, first }.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';

export const A = 0x00000000;
export const B = 0x7f3e5d2c;
export const WORD = 100;

export interface WordTearArgs {
  role: 'storer' | 'loader';
  process: ProcessDescriptor;
  addr: number;
  durationMs: number;
}

export interface WordTearResult {
  loads: number;
  torn: number;
  first: number;
}

export default function run(_cpu: number, args: WordTearArgs): WordTearResult {
  const proc = Process.attach(args.process);
  const mmu = proc.mm.mmu();
  const at = args.addr + WORD * 4;
  const out: WordTearResult = { loads: 0, torn: 0, first: 0 };
  const end = performance.now() + args.durationMs;
  // Bounded by time; the clock is read every 256 accesses.
  for (let k = 0; ; k++) {
    if ((k & 255) === 0 && performance.now() >= end) break;
    if (args.role === 'storer') {
      mmu.flushLocal();
      mmu.store32(at, (k & 1) === 0 ? A : B);
      continue;
    }
    if ((k & 1) === 0) mmu.flushLocal();
    const v = mmu.load32(at);
    out.loads++;
    if (v !== A && v !== B) {
      if (out.torn === 0) out.first = v;
      out.torn++;
    }
  }
  proc.detach();
  return out;
}
