/**
 * src/mm/check-ptes.ts on one CPU: a process and its fork child with pages of every kind pass, a
 * pinned page with its pin counted; each invariant, broken by hand in the page tables or a
 * descriptor, is reported.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { GUP_PIN_COUNTING_BIAS } from '../../src/mem/page.js';
import { makePte, PTE_PRESENT, PTE_USER, PTE_WRITE, pteIndex, ptePfn } from '../../src/mem/pte.js';
import { checkFrameMaps, checkPtesLocked } from '../../src/mm/check-ptes.js';
import { unpinUserPages } from '../../src/mm/gup.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';

const P = PAGE_SIZE;
const BASE = 0x100000000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/** A parent with written, read (zero page) and protected pages, and its fork child. */
function setUp(): { kernel: Kernel; parent: Process; child: Process } {
  const kernel = Kernel.create({ frames: 1024 });
  const parent = Process.create(kernel);
  parent.mm.mmap(BASE, 8 * P, RW, ANON);
  const mmu = parent.mm.mmu();
  for (let p = 0; p < 4; p++) mmu.store32(BASE + p * P, p + 1);
  mmu.load32(BASE + 5 * P);
  parent.mm.mprotect(BASE + 3 * P, P, PROT_NONE);
  const child = parent.fork();
  mmu.store32(BASE, 99); // copy-on-write: the parent's page 0 is its own again
  return { kernel, parent, child };
}

function checkAll(kernel: Kernel, spaces: Process[]): void {
  const mapped = new Int32Array(kernel.mem.frames);
  for (const s of spaces) checkPtesLocked(s.mm, mapped);
  checkFrameMaps(kernel.mem, mapped, new Int32Array(kernel.mem.frames));
}

function tearDown(kernel: Kernel, spaces: Process[]): void {
  for (const s of spaces) {
    s.detach();
    s.exit();
  }
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

test('a parent and its fork child pass; the counts cover both', () => {
  const { kernel, parent, child } = setUp();
  checkAll(kernel, [parent, child]);
  // The child alone leaves the shared pages' second mapping uncounted.
  assert.throws(() => checkAll(kernel, [child]), /map count says/);
  tearDown(kernel, [parent, child]);
});

test('an entry in a gap, one giving access to PROT_NONE, one writable on a shared page: each reported', () => {
  const { kernel, parent, child } = setUp();
  const pt = parent.mm.pt;
  const pfn = ptePfn(pt.lookupPte(BASE + P));

  // An entry where no VMA is.
  const gap = BASE + 16 * P;
  const t = pt.allocPte(gap);
  pt.setPte(t, pteIndex(gap), makePte(pfn, PTE_PRESENT | PTE_USER));
  assert.throws(() => checkPtesLocked(parent.mm), /lies in a gap between VMAs/);
  pt.clearPte(t, pteIndex(gap));
  checkPtesLocked(parent.mm);

  // User access to the PROT_NONE page.
  const none = BASE + 3 * P;
  const nt = pt.findPteTable(none);
  const old = pt.readEntry(nt, pteIndex(none));
  pt.setPte(nt, pteIndex(none), (old | PTE_USER) >>> 0);
  assert.throws(() => checkPtesLocked(parent.mm), /user access to PROT_NONE/);
  pt.setPte(nt, pteIndex(none), old);

  // The child's copy-on-write entry made writable: the page is not exclusive.
  const cpt = child.mm.pt;
  const ct = cpt.findPteTable(BASE + P);
  const shared = cpt.readEntry(ct, pteIndex(BASE + P));
  cpt.setPte(ct, pteIndex(BASE + P), (shared | PTE_WRITE) >>> 0);
  assert.throws(() => checkPtesLocked(child.mm), /writable, but pfn \d+ is not anon-exclusive/);
  cpt.setPte(ct, pteIndex(BASE + P), shared);
  checkAll(kernel, [parent, child]);
  tearDown(kernel, [parent, child]);
});

test('a map count, a reference or an owner out of step with the page tables: each reported', () => {
  const { kernel, parent, child } = setUp();
  const mem = kernel.mem;
  const pfn = ptePfn(parent.mm.pt.lookupPte(BASE));
  mem.getPage(pfn);
  assert.throws(() => checkAll(kernel, [parent, child]), /holds 2 references for 1 mappings and 0 held/);
  mem.incMapcount(pfn);
  assert.throws(() => checkAll(kernel, [parent, child]), /mapped 1 times, its map count says 2/);
  mem.decMapcount(pfn);
  mem.putPage(pfn);
  mem.incMapcount(pfn);
  assert.throws(() => checkPtesLocked(parent.mm), /map and reference counts out of order/);
  mem.decMapcount(pfn);
  const owner = mem.owner[pfn];
  mem.owner[pfn] = owner + 1;
  assert.throws(() => checkPtesLocked(parent.mm), /belongs to anon_vma/);
  mem.owner[pfn] = owner;
  checkAll(kernel, [parent, child]);
  tearDown(kernel, [parent, child]);
});

test('a pinned page: its pin counted in refs, mapped or not; a pin not counted is reported', () => {
  const { kernel, parent, child } = setUp();
  const pins = parent.mm.pinUserPages(BASE + 2 * P, 1, { write: true, longterm: true });
  assert.ok(Array.isArray(pins) && pins.length === 1);
  const refs = new Int32Array(kernel.mem.frames);
  const mapped = new Int32Array(kernel.mem.frames);
  checkPtesLocked(parent.mm, mapped);
  checkPtesLocked(child.mm, mapped);
  assert.throws(() => checkFrameMaps(kernel.mem, mapped, refs), /and 0 held \(a leak\)/);
  refs[pins[0]] = GUP_PIN_COUNTING_BIAS;
  checkFrameMaps(kernel.mem, mapped, refs);
  // Unmapped, the page lives on through its pin alone.
  parent.mm.munmap(BASE + 2 * P, P);
  mapped.fill(0);
  checkPtesLocked(parent.mm, mapped);
  checkPtesLocked(child.mm, mapped);
  assert.equal(mapped[pins[0]], 0);
  checkFrameMaps(kernel.mem, mapped, refs);
  unpinUserPages(kernel.mem, pins);
  tearDown(kernel, [parent, child]);
});
