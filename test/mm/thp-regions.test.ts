/**
 * The per-2 MiB THP state lives in the page tables (docs/mem.md, "THP regions"): a fault that maps
 * a transparent huge page marks its region's PTE table (PMD_THP_TABLE), and what Linux does to a
 * huge PMD the syscalls do to the mark: MADV_DONTNEED and munmap of the whole region empty its PMD
 * entry, of a part split it (the mark goes, the table stays), as does a VMA edge inside it
 * (mprotect, madvise); mremap moves it whole to an aligned place, else splits it; MREMAP_DONTUNMAP
 * leaves the source empty; fork copies it. The debug check (checkMmLocked) holds the VMAs against
 * the PMD entries and catches a violation; ENOMEM at every table allocation of a THP mremap, fork
 * and fault changes nothing. On two worker CPUs, MADV_DONTNEED of whole THP regions races
 * per-VMA-lock faults in them without losing a page or a table.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { VmError } from '../../src/errno.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { PMD_SIZE, PMD_THP_TABLE, PTE_HUGE, USER_ADDR_LIMIT } from '../../src/mem/pte.js';
import { checkMmLocked } from '../../src/mm/check.js';
import {
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { vmaLockEvents } from '../../src/mm/vma-lock.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { REGIONS, type ThpRaceArgs, type ThpRaceResult, WINDOW } from './tasks/thp-race.js';

const P = 4096;
const M = PMD_SIZE;
const BASE = 0x200000000;
const FAR = 0x7f0000000000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

function setup(injector?: FailureInjector): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames: 4096, injector });
  const config = { privileged: true, thpEnabled: 'madvise' };
  return { kernel, proc: Process.create(kernel, { config, rcuFree: false }) };
}

/** The state of addr's region: none, table, thp (a marked table) or huge. */
function region(proc: Process, addr: number): string {
  const x = proc.mm.pt.pmdEntry(addr);
  if (x === 0) return 'none';
  return (x & PTE_HUGE) !== 0 ? 'huge' : (x & PMD_THP_TABLE) !== 0 ? 'thp' : 'table';
}

/** Every region with a PMD entry and its state (region start in MiB from 0). */
function picture(proc: Process): string[] {
  const out: string[] = [];
  proc.mm.pt.forEachPmd(0, USER_ADDR_LIMIT, (r) => {
    out.push(`${r.toString(16)}:${region(proc, r)}`);
  });
  return out;
}

/** A VMA of n 2 MiB regions at addr with MADV_HUGEPAGE. */
function hugeVma(proc: Process, addr: number, n: number): void {
  proc.mm.mmap(addr, n * M, RW, ANON);
  proc.mm.madvise(addr, n * M, MADV_HUGEPAGE);
}

function finish(kernel: Kernel, proc: Process): void {
  checkMmLocked(proc.mm);
  proc.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.equal(proc.mm.pt.live, 0, 'page tables left');
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

test('a fault that maps a THP marks the PTE table; later faults fill it; without MADV_HUGEPAGE it is a plain table', () => {
  const { kernel, proc } = setup();
  hugeVma(proc, BASE, 2);
  proc.mm.mmap(BASE + 2 * M, 2 * M, RW, ANON);
  assert.equal(region(proc, BASE), 'none');
  proc.mm.touch(BASE + 5 * P, P, false);
  assert.equal(region(proc, BASE), 'thp', 'the read fault mapped a THP');
  assert.equal(proc.mm.pt.stats().thp, 1);
  proc.mm.mmu().store32(BASE + 7 * P, 42);
  assert.equal(proc.mm.mmu().load32(BASE + 7 * P), 42);
  assert.equal(region(proc, BASE), 'thp', 'a write in the region keeps its mark');
  assert.equal(region(proc, BASE + M), 'none', 'the other region is untouched');
  proc.mm.touch(BASE + 2 * M, P, true);
  assert.equal(region(proc, BASE + 2 * M), 'table', 'no MADV_HUGEPAGE: a plain table');
  assert.equal(proc.mm.pt.thpRegions, 1);
  finish(kernel, proc);
});

test('MADV_DONTNEED of a whole THP region empties its PMD entry (the next fault maps a THP again); of a part, splits it', () => {
  const { kernel, proc } = setup();
  hugeVma(proc, BASE, 2);
  proc.mm.mmu().store32(BASE, 1);
  proc.mm.mmu().store32(BASE + M + 9 * P, 2);
  const tables = proc.mm.pt.stats().pte;
  proc.mm.madvise(BASE, M, MADV_DONTNEED);
  assert.equal(region(proc, BASE), 'none', 'zapped whole: the table left with its PMD entry');
  assert.equal(proc.mm.pt.stats().pte, tables - 1);
  assert.equal(proc.mm.mmu().load32(BASE), 0);
  assert.equal(region(proc, BASE), 'thp', 'the read after it maps a THP again');
  proc.mm.madvise(BASE + M, 8 * P, MADV_DONTNEED);
  assert.equal(region(proc, BASE + M), 'table', 'zapped in part: split');
  assert.equal(proc.mm.mmu().load32(BASE + M + 9 * P), 2, 'the pages outside the zap stay');
  finish(kernel, proc);
});

test('a VMA edge inside a THP region splits it (mprotect, MADV_NOHUGEPAGE of half); mprotect of the whole region keeps it', () => {
  const { kernel, proc } = setup();
  hugeVma(proc, BASE, 3);
  for (let r = 0; r < 3; r++) proc.mm.touch(BASE + r * M, P, true);
  assert.deepEqual(
    [0, 1, 2].map((r) => region(proc, BASE + r * M)),
    ['thp', 'thp', 'thp'],
  );
  proc.mm.mprotect(BASE, M, PROT_READ);
  assert.equal(region(proc, BASE), 'thp', 'an aligned edge: the region stays whole');
  proc.mm.mprotect(BASE + M + 16 * P, P, PROT_READ);
  assert.equal(region(proc, BASE + M), 'table', 'edges inside: split');
  proc.mm.madvise(BASE + 2 * M, M / 2, MADV_NOHUGEPAGE);
  assert.equal(region(proc, BASE + 2 * M), 'table', 'a flag split inside: split');
  finish(kernel, proc);
});

test('munmap of part of a THP region splits it, of all of it frees it', () => {
  const { kernel, proc } = setup();
  hugeVma(proc, BASE, 2);
  proc.mm.touch(BASE, 2 * M, true);
  proc.mm.munmap(BASE + M - 4 * P, 4 * P);
  assert.equal(region(proc, BASE), 'table');
  proc.mm.munmap(BASE + M, M);
  assert.equal(region(proc, BASE + M), 'none');
  finish(kernel, proc);
});

test('mremap: a THP region moved whole to an aligned place keeps its mark; unaligned it splits; DONTUNMAP leaves the source empty', () => {
  const { kernel, proc } = setup();
  hugeVma(proc, BASE, 2);
  proc.mm.touch(BASE, 2 * M, false);
  proc.mm.mmu().store32(BASE + M + 3 * P, 7);
  proc.mm.mremap(BASE, 2 * M, 2 * M, MREMAP_MAYMOVE | MREMAP_FIXED, FAR);
  assert.deepEqual(picture(proc), [`${FAR.toString(16)}:thp`, `${(FAR + M).toString(16)}:thp`]);
  assert.equal(proc.mm.mmu().load32(FAR + M + 3 * P), 7);
  proc.mm.mremap(FAR + M, M, M, MREMAP_MAYMOVE | MREMAP_FIXED, BASE + 5 * P);
  assert.equal(region(proc, BASE), 'table', 'unaligned destination: plain tables');
  assert.equal(region(proc, BASE + M), 'table');
  assert.equal(proc.mm.mmu().load32(BASE + 8 * P), 7);
  proc.mm.mremap(FAR, M, M, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, FAR + 4 * M);
  assert.equal(region(proc, FAR), 'none', 'DONTUNMAP moved the PMD entry out');
  assert.equal(region(proc, FAR + 4 * M), 'thp');
  proc.mm.touch(FAR, P, false);
  assert.equal(region(proc, FAR), 'thp', 'the source VMA maps a THP again');
  finish(kernel, proc);
});

test('fork: the child gets the parent PMD entries of the copied VMAs, THP marks included', () => {
  const { kernel, proc } = setup();
  hugeVma(proc, BASE, 2);
  proc.mm.touch(BASE, P, true);
  proc.mm.mmap(FAR, 4 * P, RW, ANON);
  proc.mm.touch(FAR, P, true);
  const child = proc.fork();
  assert.deepEqual(picture(child), picture(proc));
  child.mm.touch(BASE + M, P, false);
  assert.equal(region(child, BASE + M), 'thp', 'the child decides from its own tables');
  assert.equal(region(proc, BASE + M), 'none');
  child.exit();
  finish(kernel, proc);
});

test('the debug check catches a THP region across VMA edges and page tables without a VMA', () => {
  const { kernel, proc } = setup();
  proc.mm.mmap(BASE, M / 2, RW, ANON);
  proc.mm.mmap(BASE + M / 2, M / 2, PROT_READ, ANON);
  checkMmLocked(proc.mm);
  assert.ok(proc.mm.pt.allocThpPte(BASE) > 0);
  assert.throws(() => checkMmLocked(proc.mm), /maps a THP across VMA edges/);
  assert.equal(proc.mm.pt.splitHugePmd(BASE), true);
  checkMmLocked(proc.mm);
  assert.ok(proc.mm.pt.allocPte(FAR) > 0);
  assert.throws(() => checkMmLocked(proc.mm), /meets no VMA/);
  proc.mm.pt.freePgtables(FAR, FAR + M, 0, 0);
  finish(kernel, proc);
});

/**
 * Runs `op` with the k-th allocation failing, for k = 0, 1, ... until it succeeds: the PMD entries
 * and the tables stay as they were, and (`sameCounts`) the Kernel's counts.
 */
function everyFailure(
  name: string,
  prepare: (proc: Process) => void,
  op: (proc: Process) => void,
  sameCounts = true,
): void {
  let failures = 0;
  for (let k = 0; k < 64; k++) {
    const injector = new FailureInjector();
    const { kernel, proc } = setup(injector);
    prepare(proc);
    const before = picture(proc);
    const counts = kernel.counts();
    const tables = proc.mm.pt.live;
    injector.failAfter(k);
    let failed = false;
    try {
      op(proc);
    } catch (e) {
      if (!(e instanceof VmError)) throw e;
      failed = true;
    }
    injector.disarm();
    if (!failed) {
      assert.ok(failures > 0, `${name}: no allocation to fail`);
      finish(kernel, proc);
      return;
    }
    failures++;
    rcuBarrier();
    assert.deepEqual(picture(proc), before, `${name}, failure ${k}: the PMD entries changed`);
    assert.equal(proc.mm.pt.live, tables, `${name}, failure ${k}: tables leaked`);
    if (sameCounts) assert.deepEqual(kernel.counts(), counts, `${name}, failure ${k}: counts changed`);
    finish(kernel, proc);
  }
  assert.fail(`${name}: still failing after 64 allocations`);
}

test('ENOMEM at every allocation of a THP mremap, fork and fault: nothing changed (a fault may keep its anon_vma), nothing leaked', () => {
  const populated = (proc: Process) => {
    hugeVma(proc, BASE, 3);
    proc.mm.touch(BASE, P, false);
    proc.mm.touch(BASE + M + 9 * P, P, true);
    proc.mm.madvise(BASE + 2 * M, 4 * P, MADV_DONTNEED);
  };
  everyFailure('mremap aligned', populated, (proc) => {
    proc.mm.mremap(BASE, 3 * M, 3 * M, MREMAP_MAYMOVE | MREMAP_FIXED, FAR);
  });
  everyFailure('mremap unaligned', populated, (proc) => {
    proc.mm.mremap(BASE, 3 * M, 3 * M, MREMAP_MAYMOVE | MREMAP_FIXED, FAR + 3 * P);
  });
  everyFailure('fork', populated, (proc) => {
    proc.fork().exit();
  });
  // A THP fault: the anon_vma first (kept when the table fails, as Linux keeps it), then the table.
  everyFailure(
    'touch',
    (proc) => hugeVma(proc, FAR, 1),
    (proc) => proc.mm.touch(FAR, P, false),
    false,
  );
});

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test('two CPUs: MADV_DONTNEED of whole THP regions races per-VMA-lock faults in them; no page or table lost', async () => {
  const kernel = Kernel.create({ frames: 8192 });
  const proc = Process.create(kernel, { config: { privileged: true, thpEnabled: 'madvise' } });
  hugeVma(proc, WINDOW, REGIONS);
  const base = {
    process: proc.describe(),
    sync: new SharedArrayBuffer(8),
    seed: Number(process.env.VMSPACE_SEED ?? 2024),
    durationMs: 1000,
  };
  const task = new URL('./tasks/thp-race.js', import.meta.url);
  const [[a], [b]] = await Promise.all([
    machine.run<ThpRaceResult>(task, { ...base, role: 'accessor' } satisfies ThpRaceArgs, [0]),
    machine.run<ThpRaceResult>(task, { ...base, role: 'mutator' } satisfies ThpRaceArgs, [1]),
  ]);
  const events = vmaLockEvents(proc.mm.locks);
  if (process.env.THP_VERBOSE) console.log(a, b, events);
  assert.equal(a.error, '', a.error);
  assert.ok(a.pairs > 1000, `only ${a.pairs} store-load pairs`);
  assert.ok(b.calls > 40, `only ${b.calls} DONTNEEDs`);
  assert.ok(b.marked >= 40, `only ${b.marked} DONTNEEDs found a THP region`);
  assert.ok(events.success > 0 && events.mmapFallbacks > 0, 'faults took both paths');
  assert.equal(proc.mm.pt.validate(), undefined);
  checkMmLocked(proc.mm);
  proc.exit();
  proc.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});
