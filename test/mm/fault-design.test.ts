/**
 * The fault-locking designs (src/mm/fault-design.ts) and the per-address-space fault counters
 * (src/mm/vmstat.ts): the design is chosen at creation, carried in the descriptor and inherited by
 * fork; vma-lock faults take the per-VMA-lock fast path, speculative ones the lockless one first,
 * global and retry neither; the counters count each fault once, by the path that finished it; the
 * designs differ only in locking (same memory, same VMAs); a bad design changes nothing. On the
 * main thread and on two worker CPUs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts, lockdepSiteCounts } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { Machine } from '../../src/machine/machine.js';
import { AddressSpace } from '../../src/mm/address-space.js';
import {
  DESIGN_GLOBAL,
  DESIGN_RETRY,
  DESIGN_SPECULATIVE,
  DESIGN_VMA_LOCK,
  FAULT_DESIGNS,
  type FaultDesign,
  faultDesignCode,
  faultMayDropLockForIo,
  faultTriesSpeculative,
  faultTriesVmaLock,
} from '../../src/mm/fault-design.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { Rng } from '../../src/rng.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { FaultPagesArgs, FaultPagesResult } from './tasks/fault-pages.js';

const P = 4096;
/** 2 MiB aligned: every page of the tests' VMAs lies in one page-table region. */
const BASE = 0x200000000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const PAGES = 64;

function finish(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  for (const p of procs) p.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

/** Writes seeded words into PAGES pages, forks, writes again (copy-on-write), reads everything. */
function workload(design: FaultDesign): { maps: string; words: number[]; child: string } {
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel, { config: { design } });
  const mmu = proc.mm.mmu();
  proc.mm.mmap(BASE, PAGES * P, RW, ANON);
  const rng = new Rng(7);
  for (let i = 0; i < PAGES; i++) mmu.store32(BASE + i * P, rng.below(1 << 30));
  const child = proc.fork();
  for (let i = 0; i < PAGES; i += 2) mmu.store32(BASE + i * P + 8, rng.below(1 << 30));
  proc.mm.mprotect(BASE + 8 * P, 4 * P, PROT_READ);
  const words: number[] = [];
  for (let i = 0; i < PAGES; i++) words.push(mmu.load32(BASE + i * P), mmu.load32(BASE + i * P + 8));
  const childMmu = child.mm.mmu();
  for (let i = 0; i < PAGES; i++) words.push(childMmu.load32(BASE + i * P + 8));
  const result = { maps: proc.maps(), words, child: child.maps() };
  finish(kernel, child, proc);
  return result;
}

test('the design knob: default vma-lock, carried in the descriptor, inherited by fork; the branch points per design', () => {
  assert.deepEqual(FAULT_DESIGNS, ['global', 'retry', 'vma-lock', 'speculative']);
  assert.deepEqual(
    FAULT_DESIGNS.map((d) => faultDesignCode(d)),
    [DESIGN_GLOBAL, DESIGN_RETRY, DESIGN_VMA_LOCK, DESIGN_SPECULATIVE],
  );
  assert.deepEqual(
    [DESIGN_GLOBAL, DESIGN_RETRY, DESIGN_VMA_LOCK, DESIGN_SPECULATIVE].map((c) => [
      faultTriesSpeculative(c),
      faultTriesVmaLock(c),
      faultMayDropLockForIo(c),
    ]),
    [
      [false, false, false],
      [false, false, true],
      [false, true, true],
      [true, true, true],
    ],
  );
  const kernel = Kernel.create({ frames: 1024 });
  const plain = Process.create(kernel);
  assert.equal(plain.mm.config.design, 'vma-lock');
  assert.equal(plain.mm.faultDesign, DESIGN_VMA_LOCK);
  const proc = Process.create(kernel, { config: { design: 'global' } });
  assert.equal(proc.describe().mm.config.design, 'global');
  const again = AddressSpace.attach(proc.mm.describe());
  assert.equal(again.faultDesign, DESIGN_GLOBAL);
  again.detach();
  proc.mm.mmap(BASE, 4 * P, RW, ANON);
  proc.mm.mmu().store32(BASE, 1);
  const child = proc.fork();
  assert.equal(child.mm.config.design, 'global');
  child.mm.mmu().store32(BASE + P, 2);
  assert.deepEqual(
    [child.mm.vmstat().faults, child.mm.vmstat().faultsVmaLock, proc.mm.vmstat().faults],
    [1, 0, 1],
    'the child counts its own faults, by its own design',
  );
  finish(kernel, child, proc, plain);
});

test('a bad design is a RangeError and creates nothing', () => {
  const kernel = Kernel.create({ frames: 256 });
  for (const bad of ['spf', '', 'GLOBAL', 'Speculative', 3, null]) {
    assert.throws(
      () => Process.create(kernel, { config: { design: bad as unknown as FaultDesign } }),
      RangeError,
      String(bad),
    );
  }
  assert.throws(() => faultDesignCode('vma_lock'), RangeError);
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});

for (const design of FAULT_DESIGNS) {
  test(`${design}: every fault counted once, by the path that finished it; mmap_lock allocation only off the fast paths`, () => {
    const kernel = Kernel.create({ frames: 1024 });
    const proc = Process.create(kernel, { config: { design } });
    const mmu = proc.mm.mmu();
    proc.mm.mmap(BASE, PAGES * P, RW, ANON);
    // The first fault gives the VMA its anon_vma and the region its page table: mmap_lock path.
    mmu.store32(BASE, 1);
    const first = proc.mm.vmstat();
    assert.deepEqual([first.faults, first.faultsMmapLock], [1, 1]);
    const allocBefore = lockdepCounts().mmap_alloc;
    for (let i = 1; i < PAGES; i++) mmu.store32(BASE + i * P, i);
    const allocUnderMmapLock = lockdepCounts().mmap_alloc - allocBefore;
    for (let i = 0; i < PAGES; i++) mmu.load32(BASE + i * P); // TLB hits: no fault
    const s = proc.mm.vmstat();
    assert.equal(s.design, design);
    assert.equal(s.faults, PAGES, 'faults counted = pages touched');
    assert.equal(s.faults, s.faultsSpeculative + s.faultsVmaLock + s.faultsMmapLock);
    assert.equal(s.faultRetries, 0, 'anonymous faults never wait for I/O');
    const fast = design === 'vma-lock' || design === 'speculative';
    if (design === 'vma-lock') {
      assert.deepEqual([s.faultsVmaLock, s.faultsMmapLock, s.fallbacks], [PAGES - 1, 1, 1]);
    } else if (design === 'speculative') {
      // The first fault (no anon_vma, no PTE table yet) skips to vma-lock, which falls back too.
      assert.deepEqual(
        [s.faultsSpeculative, s.faultsVmaLock, s.faultsMmapLock, s.fallbacks],
        [PAGES - 1, 0, 1, 1],
      );
      assert.deepEqual([s.speculativeSkips, s.speculativeAborts, s.vmaLockContention], [1, 0, 0]);
    } else {
      assert.deepEqual(
        [s.faultsSpeculative, s.faultsVmaLock, s.fallbacks, s.vmaLockContention],
        [0, 0, 0, 0],
      );
    }
    if (design !== 'speculative') assert.deepEqual([s.speculativeSkips, s.speculativeAborts], [0, 0]);
    if (lockHooks.on) {
      // global/retry allocate every frame under mmap_lock (R); the fast paths never do.
      if (fast) assert.equal(allocUnderMmapLock, 0);
      else {
        assert.ok(allocUnderMmapLock >= PAGES - 1, `${allocUnderMmapLock} allocations under mmap_lock`);
        assert.ok(lockdepSiteCounts().some((site) => site.site === 'frame' && site.alloc > 0));
      }
    }
    proc.detach();
    finish(kernel, proc);
  });
}

test('the designs differ only in locking: the same workload gives the same memory and the same VMAs', () => {
  const [global, retry, vmaLock, speculative] = FAULT_DESIGNS.map((d) => workload(d));
  assert.deepEqual(retry, global);
  assert.deepEqual(vmaLock, global);
  assert.deepEqual(speculative, global);
  assert.ok(global.words.some((w) => w !== 0));
});

let machine: Machine;
before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

for (const design of FAULT_DESIGNS) {
  test(`${design} on two worker CPUs faulting their own VMAs: counters add up, each fast path only under its design`, async () => {
    const kernel = Kernel.create({ frames: 4096 });
    const proc = Process.create(kernel, { config: { design } });
    const task = new URL('./tasks/fault-pages.js', import.meta.url);
    const pages = 600;
    const args = (cpu: number): FaultPagesArgs => ({
      process: proc.describe(),
      base: BASE + cpu * 0x1000000,
      pages,
      seed: 11 + cpu,
    });
    const [[a], [b]] = await Promise.all([
      machine.run<FaultPagesResult>(task, args(0), [0]),
      machine.run<FaultPagesResult>(task, args(1), [1]),
    ]);
    for (const [cpu, r] of [a, b].entries()) {
      const rng = new Rng(11 + cpu);
      let sum = 0;
      for (let i = 0; i < pages; i++) sum += rng.below(1 << 30);
      assert.equal(r.sum, sum, `cpu ${cpu} read back what it wrote`);
    }
    const s = proc.mm.vmstat();
    assert.equal(s.faults, a.touched + b.touched, 'faults counted = pages touched');
    assert.equal(s.faults, s.faultsSpeculative + s.faultsVmaLock + s.faultsMmapLock);
    if (design === 'vma-lock') assert.ok(s.faultsVmaLock > 0, 'the fast path ran');
    else if (design === 'speculative') assert.ok(s.faultsSpeculative > 0, 'the speculative path ran');
    else assert.deepEqual([s.faultsSpeculative, s.faultsVmaLock, s.fallbacks], [0, 0, 0]);
    if (design !== 'speculative') assert.equal(s.faultsSpeculative, 0);
    finish(kernel, proc);
  });
}
