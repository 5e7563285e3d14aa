/**
 * A fake fault path for the TLB tests: "VMAs" of [start, end) with read/write permission, and a
 * SIGBUS range; a miss inside a VMA installs a PTE (a fresh zeroed frame, dirty when written).
 */
import { PhysMem } from '../../src/mem/frames.js';
import { type MissHandler, Mmu } from '../../src/mem/mmu.js';
import { KIND_ANON } from '../../src/mem/page.js';
import { PageTables } from '../../src/mem/pgtable.js';
import { makePte, PAGE_SIZE, PTE_DIRTY, PTE_USER, PTE_WRITE, pteIndex } from '../../src/mem/pte.js';
import { FAULT_SEGV_ACCERR, FAULT_SEGV_MAPERR, FAULT_SIGBUS, TlbDomain } from '../../src/mem/tlb.js';

export interface FakeVma {
  start: number;
  end: number;
  write: boolean;
  bus?: boolean;
}

export class FakeFaults implements MissHandler {
  misses = 0;
  readonly vmas: FakeVma[] = [];

  constructor(
    readonly mem: PhysMem,
    readonly pt: PageTables,
  ) {}

  map(start: number, end: number, write = true, bus = false): void {
    this.vmas.push({ start, end, write, bus });
  }

  onMiss(addr: number, write: boolean, _exec: boolean): number {
    this.misses++;
    const vma = this.vmas.find((v) => addr >= v.start && addr < v.end);
    if (vma === undefined) return FAULT_SEGV_MAPERR;
    if (vma.bus) return FAULT_SIGBUS;
    if (write && !vma.write) return FAULT_SEGV_ACCERR;
    const t = this.pt.allocPte(addr);
    if (t <= 0) throw new Error('allocPte failed');
    const i = pteIndex(addr);
    const old = this.pt.readEntry(t, i);
    if (old === 0) {
      const pfn = this.mem.allocFrame(KIND_ANON, 0, 0);
      const flags = PTE_USER | (vma.write ? PTE_WRITE : 0) | (write ? PTE_DIRTY : 0);
      this.pt.setPte(t, i, makePte(pfn, flags));
    } else if (write) {
      this.pt.setPte(t, i, old | PTE_DIRTY);
    }
    return 0;
  }

  /** The frame mapped at addr (0 if none). */
  pfnAt(addr: number): number {
    return this.pt.lookupPte(addr) >>> 12;
  }
}

export function setup(): { mem: PhysMem; pt: PageTables; domain: TlbDomain; faults: FakeFaults; mmu: Mmu } {
  const mem = PhysMem.create({ frames: 2048 });
  const pt = PageTables.create({ capacity: 256, name: 'test.tlb' });
  const domain = TlbDomain.create();
  const faults = new FakeFaults(mem, pt);
  const mmu = new Mmu(mem, pt, domain, faults);
  return { mem, pt, domain, faults, mmu };
}

export const PAGE = PAGE_SIZE;
