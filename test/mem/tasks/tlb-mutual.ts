/**
 * Two online CPUs shooting down at once (test/mem/tlb-cpus.test.ts): each CPU keeps a page of its
 * own in its TLB (so it is online, as a CPU in its miss handler is since copy-on-write faults run
 * it online) and shoots down that page over and over, for `ms`. Each shootdown must see the other
 * CPU's acknowledgement while that CPU is itself waiting in a shootdown: the two must never wait
 * for each other (the watchdog's hang error otherwise).
 */
import { PhysMem, type PhysMemDescriptor } from '../../../src/mem/frames.js';
import { Mmu } from '../../../src/mem/mmu.js';
import { PageTables, type PageTablesDescriptor } from '../../../src/mem/pgtable.js';
import { PAGE_SIZE } from '../../../src/mem/pte.js';
import { FAULT_SEGV_MAPERR, TlbDomain, type TlbDomainDescriptor } from '../../../src/mem/tlb.js';

export interface MutualArgs {
  mem: PhysMemDescriptor;
  pt: PageTablesDescriptor;
  tlb: TlbDomainDescriptor;
  /** CPU c uses the page at addr + c * PAGE_SIZE. */
  addr: number;
  /** Word 0: CPUs ready. */
  sync: SharedArrayBuffer;
  ms: number;
}

export default function run(cpu: number, args: MutualArgs): number {
  const domain = TlbDomain.attach(args.tlb);
  const mmu = new Mmu(PhysMem.attach(args.mem), PageTables.attach(args.pt), domain, {
    onMiss: () => FAULT_SEGV_MAPERR,
  });
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2) {
    // Start together.
  }
  const addr = args.addr + cpu * PAGE_SIZE;
  const vpn = addr / PAGE_SIZE;
  const deadline = Date.now() + args.ms;
  let rounds = 0;
  while (Date.now() < deadline) {
    for (let k = 0; k < 64; k++) {
      mmu.load32(addr);
      domain.shootdown(vpn, vpn + 1);
      rounds++;
    }
  }
  mmu.offline();
  return rounds;
}
