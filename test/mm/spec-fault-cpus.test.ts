/**
 * The speculative design's must-hold (src/mm/spec-fault.ts), on two real worker CPUs of one
 * process: CPU 1 faults the pages of a window with no VMA lock while CPU 0 munmaps, mprotects,
 * replaces (MAP_FIXED) and mremaps the VMA under it; after each of CPU 0's calls an oracle checks
 * every page of the window against the VMA now covering it (tasks/spec-race.ts): a speculative
 * fault never leaves an entry in a VMA that changed after its snapshot. The run repeats (bounded)
 * until some speculative fault was aborted by a change, so the race was really run. Then the page
 * tables match the VMAs and the frames' map counts, and everything comes back.
 *
 * Also, on one CPU: what the speculative path takes and what it leaves to the vma-lock path.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { rangeOut } from '../../src/maple/api.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import { checkPtesLocked } from '../../src/mm/check-ptes.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { raceSpeculative } from './spec-race-fixture.js';
import type { AnonPublishArgs, AnonPublishResult } from './tasks/anon-publish-race.js';
import { ANCHOR_PAGES, BASE, MIN_CALLS, P, RW, RWX, SPAN_PAGES } from './tasks/spec-race.js';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
/** Rounds of the race at most (each ROUND_MS), until a speculative fault was aborted. */
const MAX_ROUNDS = 4;
const ROUND_MS = 700;
/** Fresh VMAs the anon_vma publication race maps, each written once by the other CPU. */
const PUBLISH_ROUNDS = 400;

let machine: Machine;
before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

function finish(kernel: Kernel, proc: Process): void {
  proc.exit();
  proc.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

test('speculative faults against munmap / mprotect / MAP_FIXED / mremap on another CPU: never an entry in a VMA that changed', async () => {
  const seed = Number(process.env.VMSPACE_SEED ?? 4242);
  const r = await raceSpeculative(machine, { seed, roundMs: ROUND_MS, minRounds: 1, maxRounds: MAX_ROUNDS });
  if (process.env.SPEC_VERBOSE) console.log(r);
  const s = r.vmstat;
  assert.ok(r.mutator.checks >= MIN_CALLS * 2 * SPAN_PAGES, `only ${r.mutator.checks} pages checked`);
  assert.ok(
    r.faulter.signals > 0 && r.faulter.signals < r.faulter.ops,
    `${r.faulter.signals} of ${r.faulter.ops} signals`,
  );
  assert.ok(s.faultsSpeculative > 100, `only ${s.faultsSpeculative} speculative faults`);
  assert.ok(s.speculativeAborts > 0, `no speculative fault was aborted in ${r.rounds} rounds`);
  assert.equal(s.faults, s.faultsSpeculative + s.faultsVmaLock + s.faultsMmapLock);
});

test('the oracle with a widened window: a frame the faulter frees (MADV_DONTNEED) and reuses meanwhile is no false report', async () => {
  // The oracle reads an entry, then its frame's anon_vma and index: unless it holds the entry's
  // PTL, the faulter can zap the entry, free the frame and fault it in at a neighbouring page in
  // between (a report of a frame "off by a page or two", seen once under heavy load). The spin
  // between the two reads makes that window wide enough to be met in every round.
  const seed = Number(process.env.VMSPACE_SEED ?? 4243);
  const r = await raceSpeculative(machine, {
    seed,
    roundMs: 500,
    minRounds: 1,
    maxRounds: 2,
    oracleSpinUs: 100,
  });
  assert.ok(r.mutator.checks >= MIN_CALLS * 2 * SPAN_PAGES, `only ${r.mutator.checks} pages checked`);
  assert.ok(r.vmstat.faultsSpeculative > 100, `only ${r.vmstat.faultsSpeculative} speculative faults`);
});

test('speculative on one CPU: private anonymous faults on empty or zero-page entries; the rest goes to the vma-lock path', () => {
  const kernel = Kernel.create({ frames: 1024 });
  const proc = Process.create(kernel, { config: { design: 'speculative' } });
  const mm = proc.mm;
  const mmu = mm.mmu();
  assert.equal(mm.sysMmap(BASE, 8 * P, RW, ANON, -1, 0), BASE);
  mmu.store32(BASE, 7); // no anon_vma, no table: skipped, then mmap_lock
  mmu.load32(BASE + P); // zero page, speculative
  mmu.store32(BASE + P, 8); // the zero page written: speculative
  mmu.store32(BASE + 2 * P, 9); // a new page: speculative
  let s = mm.vmstat();
  assert.deepEqual(
    [
      s.faults,
      s.faultsSpeculative,
      s.faultsVmaLock,
      s.faultsMmapLock,
      s.speculativeSkips,
      s.speculativeAborts,
    ],
    [4, 3, 0, 1, 1, 0],
  );
  assert.deepEqual([mmu.load32(BASE), mmu.load32(BASE + P), mmu.load32(BASE + 2 * P)], [7, 8, 9]);
  // Copy-on-write after fork: a present read-only entry is the vma-lock path's.
  const child = proc.fork();
  mmu.store32(BASE + 2 * P, 10);
  s = mm.vmstat();
  assert.deepEqual([s.faultsSpeculative, s.faultsVmaLock, s.speculativeSkips], [3, 1, 2]);
  assert.equal(child.mm.mmu().load32(BASE + 2 * P), 9, 'the child keeps its copy');
  // An access error is answered from the snapshot; shared memory is the vma-lock path's.
  assert.equal(mm.sysMprotect(BASE + 4 * P, P, PROT_READ), 0);
  assert.throws(() => mmu.store32(BASE + 4 * P, 1), MemoryFault);
  assert.equal(mm.vmstat().faultsSpeculative, 4);
  const shared = BASE + 16 * P;
  assert.equal(mm.sysMmap(shared, P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0), shared);
  mmu.store32(shared, 3);
  // (Shared memory is a shmem file: its first write may retry after the page is read in.)
  s = mm.vmstat();
  assert.deepEqual([s.faultsSpeculative, s.speculativeAborts], [4, 0]);
  assert.ok(s.speculativeSkips >= 3, `${s.speculativeSkips} skipped`);
  assert.equal(mmu.load32(shared), 3);
  // A read maps the zero page without the anon_vma (in a region that has its table already).
  const fresh = BASE + 32 * P;
  assert.equal(mm.sysMmap(fresh, 4 * P, RW, ANON, -1, 0), fresh);
  assert.equal(mmu.load32(fresh + P), 0);
  s = mm.vmstat();
  assert.deepEqual([s.faultsSpeculative, s.speculativeAborts], [5, 0]);
  assert.equal(mm.arena.anon(mm.index.load(fresh, rangeOut())), 0, 'still no anon_vma');
  checkPtesLocked(mm);
  child.exit();
  child.detach();
  finish(kernel, proc);
});

test('a fault that gives a fresh VMA its anon_vma publishes it before it maps a page of it (another CPU reading under the PTL)', async () => {
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel, { config: { design: 'speculative' } });
  const mm = proc.mm;
  assert.equal(mm.sysMmap(BASE, ANCHOR_PAGES * P, RWX, ANON, -1, 0), BASE);
  mm.mmu().store32(BASE, 1);
  mm.mmuOffline();
  const task = new URL('./tasks/anon-publish-race.js', import.meta.url);
  const base = { process: proc.describe(), sync: new SharedArrayBuffer(12), rounds: PUBLISH_ROUNDS };
  const [[w], [f]] = await Promise.all([
    machine.run<AnonPublishResult>(task, { ...base, role: 'watcher' } satisfies AnonPublishArgs, [0]),
    machine.run<AnonPublishResult>(task, { ...base, role: 'faulter' } satisfies AnonPublishArgs, [1]),
  ]);
  assert.equal(f.error, '');
  assert.equal(w.error, '');
  // The watcher did see the faulter's pages while their faults were in flight.
  assert.ok(w.seen > 0, 'the watcher never saw a mapped page');
  checkPtesLocked(mm);
  finish(kernel, proc);
});
