/**
 * Frame-reuse safety on two CPUs: the reader loads one page in a loop through its TLB (fast-path
 * load32 and, in turns, a page base scanned directly while its epoch holds); the writer moves the
 * page's PTE between two frames, shoots the old translation down and then fills the OLD frame with
 * poison (negative words). Good words are >= 0. After a shootdown that waits, the reader can never
 * see poison; `mode: 'nowait'` only clears the tags (no wait) and is expected to let it through.
 */
import { PhysMem, type PhysMemDescriptor } from '../../../src/mem/frames.js';
import { Mmu } from '../../../src/mem/mmu.js';
import { PageTables, type PageTablesDescriptor } from '../../../src/mem/pgtable.js';
import { makePte, PAGE_SIZE, PTE_DIRTY, PTE_USER, PTE_WRITE, pteIndex } from '../../../src/mem/pte.js';
import { FAULT_SEGV_MAPERR, TlbDomain, type TlbDomainDescriptor } from '../../../src/mem/tlb.js';

export interface ShootdownArgs {
  role: 'reader' | 'writer';
  mode: 'wait' | 'nowait';
  mem: PhysMemDescriptor;
  pt: PageTablesDescriptor;
  tlb: TlbDomainDescriptor;
  addr: number;
  frames: [number, number];
  /** Word 0: CPUs ready; word 1: writer done; word 2: poison seen. */
  sync: SharedArrayBuffer;
  deadlineMs: number;
}

export interface ShootdownResult {
  rounds: number;
  loads: number;
  poison: number;
}

const WORDS = PAGE_SIZE / 4;

export default function run(_cpu: number, args: ShootdownArgs): ShootdownResult {
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  try {
    return args.role === 'writer' ? write(args, sync) : read(args, sync);
  } finally {
    Atomics.store(sync, 1, 1);
  }
}

function write(args: ShootdownArgs, sync: Int32Array): ShootdownResult {
  const mem = PhysMem.attach(args.mem);
  const pt = PageTables.attach(args.pt);
  const tlb = TlbDomain.attach(args.tlb);
  const t = pt.findPteTable(args.addr);
  const i = pteIndex(args.addr);
  const vpn = args.addr / PAGE_SIZE;
  let cur = args.frames[0];
  let rounds = 0;
  while (Date.now() < args.deadlineMs && Atomics.load(sync, 2) === 0) {
    const next = cur === args.frames[0] ? args.frames[1] : args.frames[0];
    mem.i32.fill(rounds & 0x7fffffff, next * WORDS, (next + 1) * WORDS);
    pt.setPte(t, i, makePte(next, PTE_USER | PTE_WRITE | PTE_DIRTY));
    if (args.mode === 'wait') tlb.shootdown(vpn, vpn + 1);
    else tlb.invalidate(vpn, vpn + 1);
    // The old frame is free now: reuse it (here: poison it).
    mem.i32.fill(0x80000000 | rounds, cur * WORDS, (cur + 1) * WORDS);
    cur = next;
    rounds++;
  }
  return { rounds, loads: 0, poison: 0 };
}

function read(args: ShootdownArgs, sync: Int32Array): ShootdownResult {
  const mem = PhysMem.attach(args.mem);
  const pt = PageTables.attach(args.pt);
  const mmu = new Mmu(mem, pt, TlbDomain.attach(args.tlb), { onMiss: () => FAULT_SEGV_MAPERR });
  const i32 = mem.i32;
  let loads = 0;
  let poison = 0;
  let turn = 0;
  while (Atomics.load(sync, 1) === 0 && poison === 0) {
    if ((turn++ & 1) === 0) {
      for (let k = 0; k < 4 * WORDS; k++) if (mmu.load32(args.addr + (k % WORDS) * 4) < 0) poison++;
      loads += 4 * WORDS;
    } else {
      const w = mmu.pageBase(args.addr, false) / 4;
      const epoch = mmu.epoch;
      for (let k = 0; k < WORDS && mmu.epoch === epoch; k++) if (i32[w + k] < 0) poison++;
      loads += WORDS;
    }
  }
  if (poison !== 0) Atomics.store(sync, 2, 1);
  mmu.offline();
  return { rounds: 0, loads, poison };
}
