/**
 * The software TLB on one CPU (src/mem/mmu.ts, src/mem/tlb.ts): hits and misses against a fake
 * fault path, every width and float type, little-endian layout, page-crossing accesses, partial
 * copies, fault reports, dirty tracking and a local shootdown.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmAssertionError } from '../../src/assert.js';
import { Mmu, setMissHint } from '../../src/mem/mmu.js';
import { makePte, PTE_DIRTY, PTE_USER, PTE_WRITE, pteIndex } from '../../src/mem/pte.js';
import { INVALID_TAG, MemoryFault, QUIESCE_EVERY, TLB_ENTRIES } from '../../src/mem/tlb.js';
import { PAGE, setup } from './tlb-fixture.js';

const BASE = 0x7f00_0000_0000; // above 2^32: addresses are not int32s

test('a miss goes to the handler once; later accesses to the page hit', () => {
  const { mmu, faults } = setup();
  faults.map(BASE, BASE + 16 * PAGE);
  mmu.store32(BASE + 8, 42);
  const misses = faults.misses;
  assert.equal(misses, 1);
  for (let i = 0; i < 5000; i++) assert.equal(mmu.load32(BASE + 8), 42);
  for (let i = 0; i < 5000; i++) mmu.store32(BASE + ((i * 4) % PAGE), i);
  assert.equal(faults.misses, 1, 'hits do not call the handler');
  for (let p = 1; p < 16; p++) mmu.load8(BASE + p * PAGE);
  assert.equal(faults.misses, 16, 'one miss per new page (reads install clean pages)');
  mmu.store8(BASE + PAGE, 1);
  assert.equal(faults.misses, 17, 'the first store to a clean page goes to the handler (dirty)');
  assert.notEqual(mmu.pt.lookupPte(BASE + PAGE) & PTE_DIRTY, 0);
  mmu.store8(BASE + PAGE + 1, 1);
  assert.equal(faults.misses, 17);
});

test('a page already mapped is refilled from the page tables without the handler', () => {
  const { mmu, faults, pt, mem } = setup();
  const pfn = mem.allocFrame(1, 0, 0);
  mem.i32[pfn * 1024 + 3] = 77;
  const t = pt.allocPte(BASE);
  pt.setPte(t, pteIndex(BASE), makePte(pfn, PTE_USER | PTE_WRITE | PTE_DIRTY));
  assert.equal(mmu.load32(BASE + 12), 77);
  mmu.store32(BASE + 12, 78);
  assert.equal(mem.i32[pfn * 1024 + 3], 78);
  assert.equal(faults.misses, 0);
});

test('every width and float type round-trips, little-endian as a DataView reads it', () => {
  const { mmu, faults } = setup();
  faults.map(BASE, BASE + PAGE);
  mmu.store8(BASE, 0xab);
  mmu.store16(BASE + 2, 0xbeef);
  mmu.store32(BASE + 4, 0x12345678);
  mmu.store64(BASE + 8, 0x9abcdef0 | 0, 0x12345678);
  mmu.storeF32(BASE + 16, 1.5);
  mmu.storeF64(BASE + 24, Math.PI);
  mmu.store32(BASE + 32, -2);
  mmu.store64(BASE + 40, -1, -1);
  assert.equal(mmu.load8(BASE), 0xab);
  assert.equal(mmu.load16(BASE + 2), 0xbeef);
  assert.equal(mmu.load32(BASE + 4), 0x12345678);
  assert.equal(mmu.load64(BASE + 8), 0x12345678 * 2 ** 32 + 0x9abcdef0);
  assert.equal(mmu.lo32 >>> 0, 0x9abcdef0);
  assert.equal(mmu.hi32, 0x12345678);
  assert.equal(mmu.loadF32(BASE + 16), 1.5);
  assert.equal(mmu.loadF64(BASE + 24), Math.PI);
  assert.equal(mmu.load32(BASE + 32), -2);
  assert.equal(mmu.load64(BASE + 40), -1);
  assert.equal(mmu.fetch32(BASE + 4), 0x12345678);
  const dv = new DataView(mmu.mem.bytes.buffer, mmu.pageBase(BASE, false), PAGE);
  assert.equal(dv.getUint8(0), 0xab);
  assert.equal(dv.getUint16(2, true), 0xbeef);
  assert.equal(dv.getUint8(2), 0xef, 'low byte first');
  assert.equal(dv.getUint32(4, true), 0x12345678);
  assert.equal(dv.getBigUint64(8, true), 0x123456789abcdef0n);
  assert.equal(dv.getFloat32(16, true), 1.5);
  assert.equal(dv.getFloat64(24, true), Math.PI);
  assert.equal(dv.getInt32(32, true), -2);
  // Unaligned accesses inside a page (the slow path) agree with the DataView too.
  mmu.store32(BASE + 101, 0x0a0b0c0d);
  mmu.storeF64(BASE + 203, -0.1);
  mmu.store16(BASE + 301, 0x1234);
  assert.equal(dv.getUint32(101, true), 0x0a0b0c0d);
  assert.equal(dv.getFloat64(203, true), -0.1);
  assert.equal(mmu.load32(BASE + 101), 0x0a0b0c0d);
  assert.equal(mmu.loadF64(BASE + 203), -0.1);
  assert.equal(mmu.load16(BASE + 301), 0x1234);
});

test('accesses crossing a page boundary read and write both frames', () => {
  const { mmu, faults } = setup();
  faults.map(BASE, BASE + 2 * PAGE);
  mmu.load8(BASE + PAGE); // the second page first: its frame is below the first page's
  for (const size of [2, 4, 8]) {
    for (let back = 1; back < size; back++) {
      const a = BASE + PAGE - back;
      if (size === 2) mmu.store16(a, 0xa1b2);
      if (size === 4) mmu.store32(a, 0x01020304);
      if (size === 8) mmu.storeF64(a, 12345.678);
      if (size === 2) assert.equal(mmu.load16(a), 0xa1b2);
      if (size === 4) assert.equal(mmu.load32(a), 0x01020304);
      if (size === 8) assert.equal(mmu.loadF64(a), 12345.678);
    }
  }
  mmu.store32(BASE + PAGE - 2, 0x11223344);
  const first = new DataView(mmu.mem.bytes.buffer, mmu.pageBase(BASE, false), PAGE);
  const second = new DataView(mmu.mem.bytes.buffer, mmu.pageBase(BASE + PAGE, false), PAGE);
  assert.equal(first.getUint16(PAGE - 2, true), 0x3344);
  assert.equal(second.getUint16(0, true), 0x1122);
  assert.notEqual(mmu.pageBase(BASE, false) + PAGE, mmu.pageBase(BASE + PAGE, false), 'frames not adjacent');
});

test('a crossing store whose second page faults writes nothing and reports the second page', () => {
  const { mmu, faults } = setup();
  faults.map(BASE, BASE + PAGE);
  mmu.store32(BASE + PAGE - 4, 0x55555555);
  const fault = catchFault(() => mmu.store32(BASE + PAGE - 2, 0x7777));
  assert.equal(fault.address, BASE + PAGE);
  assert.equal(fault.code, 'SEGV_MAPERR');
  assert.equal(fault.access, 'write');
  assert.equal(mmu.load32(BASE + PAGE - 4), 0x55555555, 'the first page is unchanged');
});

test('copyOut and copyIn copy page by page and return the bytes left at the first unmapped page', () => {
  const { mmu, faults } = setup();
  faults.map(BASE, BASE + 3 * PAGE);
  const src = new Uint8Array(4 * PAGE);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7 + 3) & 255;
  const at = BASE + 100;
  assert.equal(mmu.copyOut(at, src), src.length - (3 * PAGE - 100));
  const back = new Uint8Array(src.length);
  assert.equal(mmu.copyIn(at, back), src.length - (3 * PAGE - 100));
  assert.deepEqual(back.subarray(0, 3 * PAGE - 100), src.subarray(0, 3 * PAGE - 100));
  assert.equal(back[3 * PAGE - 100], 0, 'nothing past the fault');
  // Whole copies, small and large, and a copy starting in a hole.
  assert.equal(mmu.copyOut(BASE + 5, src.subarray(0, 10)), 0);
  const small = new Uint8Array(10);
  assert.equal(mmu.copyIn(BASE + 5, small), 0);
  assert.deepEqual(small, src.subarray(0, 10));
  assert.equal(mmu.copyIn(BASE + 3 * PAGE, small), 10);
  assert.equal(mmu.copyOut(BASE - 1, small), 10);
  // A read-only page stops copyOut but not copyIn.
  faults.map(BASE + 3 * PAGE, BASE + 4 * PAGE, false);
  assert.equal(mmu.copyOut(BASE + 3 * PAGE - 8, small), 2);
  assert.equal(mmu.copyIn(BASE + 3 * PAGE - 8, small), 0);
});

test('MemoryFault carries signal, code, address and access kind; the Mmu stays usable', () => {
  const { mmu, faults } = setup();
  faults.map(BASE, BASE + PAGE, false);
  faults.map(BASE + PAGE, BASE + 2 * PAGE, true, true);
  const maperr = catchFault(() => mmu.load32(BASE + 2 * PAGE + 8));
  assert.equal(maperr.signal, 'SIGSEGV');
  assert.equal(maperr.signo, 11);
  assert.equal(maperr.code, 'SEGV_MAPERR');
  assert.equal(maperr.sicode, 1);
  assert.equal(maperr.address, BASE + 2 * PAGE + 8);
  assert.equal(maperr.access, 'read');
  const accerr = catchFault(() => mmu.store8(BASE + 3, 1));
  assert.equal(accerr.code, 'SEGV_ACCERR');
  assert.equal(accerr.sicode, 2);
  assert.equal(accerr.access, 'write');
  const bus = catchFault(() => mmu.loadF64(BASE + PAGE));
  assert.equal(bus.signal, 'SIGBUS');
  assert.equal(bus.signo, 7);
  assert.equal(bus.code, 'BUS_ADRERR');
  const exec = catchFault(() => mmu.fetch32(BASE + 5 * PAGE));
  assert.equal(exec.access, 'exec');
  for (const bad of [-4, 2 ** 47, 2 ** 52, 0.5, Number.NaN]) {
    assert.equal(catchFault(() => mmu.load32(bad)).code, 'SEGV_MAPERR', `address ${bad}`);
  }
  assert.equal(mmu.load32(BASE), 0, 'still usable');
  assert.equal(mmu.fetch32(BASE), 0, 'fetch needs what a load needs');
});

test('a handler that never installs anything is reported, not looped on forever', () => {
  const { mmu } = setup();
  mmu.handler = { onMiss: () => 0 };
  assert.throws(() => mmu.load8(BASE), VmAssertionError);
});

test("the miss handler's hint is checked: a hint naming another frame, or another page, never becomes the translation", () => {
  const { mmu, faults, mem } = setup();
  faults.map(BASE, BASE + 16 * PAGE);
  const decoy = mem.allocFrame(1, 0, 0);
  mem.i32[decoy * 1024] = 99;
  const decoyPte = makePte(decoy, PTE_USER | PTE_WRITE | PTE_DIRTY);
  let lying = 0;
  const honest = faults.onMiss.bind(faults);
  // Installs the right entry, then leaves a hint naming the decoy frame (for the faulting page,
  // or for the other one).
  mmu.handler = {
    onMiss: (addr, write, exec) => {
      const r = honest(addr, write, exec);
      const page = addr - (addr % PAGE);
      setMissHint(lying++ === 0 ? page : page ^ PAGE, decoyPte);
      return r;
    },
  };
  mmu.store32(BASE, 1);
  assert.equal(faults.pfnAt(BASE) !== decoy, true);
  assert.equal(mmu.load32(BASE), 1, 'a stale hint for the page: the walk after the tag store caught it');
  mmu.store32(BASE + PAGE, 2);
  assert.equal(mmu.load32(BASE + PAGE), 2, 'a hint for another page is not used');
  assert.equal(mmu.load32(BASE), 1);
  assert.equal(mem.i32[decoy * 1024], 99, 'the decoy frame was never written');
  // An honest hint (the entry the handler installed) maps at once.
  mmu.handler = {
    onMiss: (addr, write, exec) => {
      const r = honest(addr, write, exec);
      const page = addr - (addr % PAGE);
      setMissHint(page, faults.pt.lookupPte(page));
      return r;
    },
  };
  const misses = faults.misses;
  mmu.store32(BASE + 8 * PAGE, 3);
  assert.equal(mmu.load32(BASE + 8 * PAGE), 3);
  assert.equal(faults.misses, misses + 1, 'one handler call for the fault');
  mem.putPage(decoy);
});

test('the TLB keeps a translation until a shootdown; after it the new frame is seen', () => {
  const { mmu, faults, pt, mem, domain } = setup();
  faults.map(BASE, BASE + PAGE);
  mmu.store32(BASE, 1);
  const pfn2 = mem.allocFrame(1, 0, 0);
  mem.i32[pfn2 * 1024] = 2;
  const t = pt.findPteTable(BASE);
  pt.setPte(t, pteIndex(BASE), makePte(pfn2, PTE_USER | PTE_WRITE | PTE_DIRTY));
  assert.equal(mmu.load32(BASE), 1, 'stale until the shootdown (as a hardware TLB)');
  const epoch = mmu.epoch;
  const vpn = BASE / PAGE;
  domain.shootdown(vpn + 1, vpn + 100);
  assert.equal(mmu.load32(BASE), 1, 'another range does not touch it');
  domain.shootdown(vpn, vpn + 1);
  assert.equal(mmu.load32(BASE), 2);
  assert.ok(mmu.epoch > epoch, 'the epoch moved: page views taken before are void');
  pt.clearPte(t, pteIndex(BASE));
  domain.shootdown(0, 2 ** 35);
  assert.equal(mmu.load32(BASE), 0, 'a fresh page from the handler');
  assert.equal(domain.stats().shootdowns, 3);
});

test('the fast-path countdown acknowledges shootdowns; offline CPUs are not waited for', () => {
  const { mmu, faults, domain } = setup();
  faults.map(BASE, BASE + PAGE);
  mmu.load32(BASE);
  const gen = domain.generation();
  Atomics.add(domain.control, 0, 1); // a shootdown started by "someone"
  for (let i = 0; i <= QUIESCE_EVERY; i++) mmu.load32(BASE);
  assert.equal(domain.acked(mmu.cpu), gen + 1);
  mmu.offline();
  assert.equal(domain.acked(mmu.cpu), 0);
  assert.equal(domain.stats().online, 0);
  mmu.load32(BASE);
  assert.equal(domain.acked(mmu.cpu), gen + 1, 'the next access comes back online');
});

test('a shootdown while only the caller has an Mmu clears only its row; once another CPU is marked, that row too', () => {
  const { mmu, faults, domain } = setup();
  faults.map(BASE, BASE + PAGE);
  mmu.load32(BASE);
  const vpn = BASE / PAGE;
  const slot = vpn % TLB_ENTRIES;
  const tag = Math.floor(vpn / TLB_ENTRIES);
  const other = domain.row(5);
  other[slot] = tag; // CPU 5 never had an Mmu here: a shootdown need not look at its row
  const gen = domain.generation();
  domain.shootdown(vpn, vpn + 1);
  assert.equal(domain.row(mmu.cpu)[slot], INVALID_TAG, "the caller's slot is cleared");
  assert.equal(other[slot], tag, 'the row of a CPU that never had an Mmu is left alone');
  assert.equal(domain.generation(), gen + 1, 'the generation still moves');
  const epoch = mmu.epoch;
  mmu.load32(BASE);
  assert.ok(mmu.epoch > epoch, "and the caller's Mmu moves its epoch at its next quiescent point");
  domain.markUsed(5); // its ACK is idle: it is cleared, not waited for
  domain.shootdown(vpn, vpn + 1);
  assert.equal(other[slot], INVALID_TAG, "a used CPU's row is cleared");
});

test('a second Mmu on the same domain shares the shootdown state', () => {
  const { mmu, faults, mem, pt, domain } = setup();
  faults.map(BASE, BASE + PAGE);
  mmu.store32(BASE, 9);
  const other = new Mmu(mem, pt, domain, faults);
  assert.equal(other.load32(BASE), 9);
});

function catchFault(fn: () => unknown): MemoryFault {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MemoryFault, `expected a MemoryFault, got ${error}`);
    return error;
  }
  assert.fail('no fault');
}

/** Maps the page at `addr` to `pfn`, writable and dirty unless `readOnly`, and brings it into the TLB. */
function mapFrame(s: ReturnType<typeof setup>, addr: number, pfn: number, readOnly = false): void {
  const t = s.pt.allocPte(addr);
  s.pt.setPte(t, pteIndex(addr), makePte(pfn, PTE_USER | (readOnly ? 0 : PTE_WRITE | PTE_DIRTY)));
  s.faults.map(addr, addr + PAGE, !readOnly);
  s.mmu.load8(addr);
}

/** `pages` consecutive frames (their first pfn), each filled with bytes of seed `seed`. */
function filledFrames(s: ReturnType<typeof setup>, pages: number, seed: number): number {
  const first = s.mem.allocFrame(1, 0, 0);
  for (let i = 1; i < pages; i++) assert.equal(s.mem.allocFrame(1, 0, 0), first + i, 'consecutive frames');
  for (let i = 0; i < pages * PAGE; i++)
    s.mem.bytes[first * PAGE + i] = (i * 7 + (i >> 12) * 13 + seed) & 0xff;
  return first;
}

test('copyOutFrom: runs of user pages in consecutive frames move as one copy into the right frames; it stops at the first page it may not write', () => {
  const s = setup();
  const src = filledFrames(s, 7, 3);
  const dst = filledFrames(s, 9, 0);
  s.mem.bytes.fill(0, dst * PAGE, (dst + 9) * PAGE);
  // Pages 0-3 in consecutive frames, then a gap (4-5 in dst + 6, dst + 7), then a read-only page.
  for (let p = 0; p < 4; p++) mapFrame(s, BASE + p * PAGE, dst + p);
  mapFrame(s, BASE + 4 * PAGE, dst + 6);
  mapFrame(s, BASE + 5 * PAGE, dst + 7);
  mapFrame(s, BASE + 6 * PAGE, dst + 8, true);
  const misses = s.faults.misses;
  const len = 6 * PAGE + 50;
  assert.equal(
    s.mmu.copyOutFrom(BASE + 100, src * PAGE + 100, len),
    150,
    'the bytes of the read-only page are left',
  );
  assert.equal(s.faults.misses, misses + 1, 'one fault: the read-only page');
  const copied = s.mem.bytes.subarray(src * PAGE + 100, src * PAGE + 6 * PAGE);
  const frameOf = [dst, dst + 1, dst + 2, dst + 3, dst + 6, dst + 7];
  for (let p = 0; p < 6; p++) {
    const from = p === 0 ? 100 : 0;
    const got = s.mem.bytes.subarray(
      (frameOf[p] as number) * PAGE + from,
      ((frameOf[p] as number) + 1) * PAGE,
    );
    assert.deepEqual(got, copied.subarray(p * PAGE + from - 100, (p + 1) * PAGE - 100), `page ${p}`);
  }
  for (const untouched of [dst + 4, dst + 5, dst + 8]) {
    const frame = s.mem.bytes.subarray(untouched * PAGE, (untouched + 1) * PAGE);
    assert.ok(
      frame.every((b) => b === 0),
      `frame ${untouched} is not written`,
    );
  }
});

test('copyOutFrom over pages in consecutive frames counts every page against the countdown: a pending shootdown is acknowledged', () => {
  const s = setup();
  const src = filledFrames(s, 16, 5);
  const dst = filledFrames(s, 16, 9);
  for (let p = 0; p < 16; p++) mapFrame(s, BASE + p * PAGE, dst + p);
  const gen = s.domain.generation();
  Atomics.add(s.domain.control, 0, 1); // a shootdown started by "someone"
  for (let i = 0; i <= QUIESCE_EVERY / 16; i++)
    assert.equal(s.mmu.copyOutFrom(BASE, src * PAGE, 16 * PAGE), 0);
  assert.equal(s.domain.acked(s.mmu.cpu), gen + 1);
  assert.deepEqual(
    s.mem.bytes.subarray(dst * PAGE, (dst + 16) * PAGE),
    s.mem.bytes.subarray(src * PAGE, (src + 16) * PAGE),
  );
});

test('copyOutFrom whose destination frames overlap its source moves the bytes in page order, as a copy page by page', () => {
  const s = setup();
  const f = filledFrames(s, 4, 11);
  const first = s.mem.bytes.slice(f * PAGE, (f + 1) * PAGE);
  // User pages 0-2 map frames f + 1 .. f + 3; the source is frames f .. f + 2.
  for (let p = 0; p < 3; p++) mapFrame(s, BASE + p * PAGE, f + 1 + p);
  assert.equal(s.mmu.copyOutFrom(BASE, f * PAGE, 3 * PAGE), 0);
  for (let p = 1; p <= 3; p++)
    assert.deepEqual(
      s.mem.bytes.subarray((f + p) * PAGE, (f + p + 1) * PAGE),
      first,
      `frame ${p}: frame 0's bytes`,
    );
});
