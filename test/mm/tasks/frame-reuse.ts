/**
 * Task: no data crosses between processes through a reused frame (test/mm/cow-cpus.test.ts).
 *
 *   writer (CPU 0)  a process writes a secret into every word of PAGES pages, records their pfns
 *                   in `pfns`, and exits (its frames are freed)
 *   reader (CPU 1)  later, a new process maps PAGES + EXTRA pages and takes a frame for each, half
 *                   by a store through its Mmu, half by a GUP write reference, and checks every
 *                   word it can see: zero, but for the one word it stored; its pfns go to `pfns`
 *                   after the writer's, then it exits
 */
import assert from 'node:assert/strict';
import { Kernel, type KernelDescriptor } from '../../../src/kernel/kernel.js';
import { Process } from '../../../src/kernel/process.js';
import { ptePfn } from '../../../src/mem/pte.js';
import { putUserPages, readPage } from '../../../src/mm/gup.js';
import { ANON, BASE, fillPage, P, RW } from '../cow-fixture.js';

export const PAGES = 64;
export const EXTRA = 16;
/** The seed of the writer's secret (cow-fixture's wordOf). */
export const SECRET = 0x5ec7e7;
/** The word the reader stores at the start of each page it touches. */
export const MARK = 0x3a3a3a3a;

export interface FrameReuseArgs {
  role: 'writer' | 'reader';
  kernel: KernelDescriptor;
  /** Int32: the writer's PAGES pfns, then the reader's PAGES + EXTRA. */
  pfns: SharedArrayBuffer;
}

export default function run(_cpu: number, args: FrameReuseArgs): number {
  const kernel = Kernel.attach(args.kernel);
  const pfns = new Int32Array(args.pfns);
  const proc = Process.create(kernel);
  try {
    return args.role === 'writer' ? writer(proc, pfns) : reader(proc, kernel, pfns);
  } finally {
    proc.detach();
    proc.exit();
  }
}

function writer(proc: Process, pfns: Int32Array): number {
  proc.mm.mmap(BASE, PAGES * P, RW, ANON);
  const mmu = proc.mm.mmu();
  for (let i = 0; i < PAGES; i++) {
    fillPage(mmu, BASE + i * P, SECRET);
    pfns[i] = ptePfn(proc.mm.pt.lookupPte(BASE + i * P));
  }
  return PAGES;
}

function reader(proc: Process, kernel: Kernel, pfns: Int32Array): number {
  const n = PAGES + EXTRA;
  proc.mm.mmap(BASE, n * P, RW, ANON);
  const mmu = proc.mm.mmu();
  const mem = kernel.mem;
  for (let i = 0; i < n; i++) {
    const addr = BASE + i * P;
    if (i % 2 === 0) {
      // A write fault: a fresh frame behind the Mmu.
      mmu.store32(addr, MARK);
      assert.equal(mmu.load32(addr), MARK);
      for (let w = 4; w < P; w += 4)
        assert.equal(mmu.load32(addr + w), 0, `page ${i} word ${w} through the Mmu`);
    } else {
      // A device's view: GUP faults the page in for writing and the frame is read directly.
      const got = proc.mm.getUserPages(addr, 1, { write: true });
      assert.ok(Array.isArray(got), `getUserPages: ${String(got)}`);
      const bytes = readPage(mem, got[0], 0, P);
      const bad = bytes.findIndex((b) => b !== 0);
      assert.equal(bad, -1, `page ${i} through GUP: byte ${bad} is not zero`);
      putUserPages(mem, got);
    }
    pfns[PAGES + i] = ptePfn(proc.mm.pt.lookupPte(addr));
  }
  return n;
}
