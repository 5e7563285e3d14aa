/**
 * The anonymous base-page cases of Linux's tools/testing/selftests/mm/cow.c as scripts of steps
 * (/work/shared/cow-scenarios.md numbers them 1-14), each step played by one role: the parent
 * (worker CPU 0), the child after fork or, in the cases without a child (7, 13, 14), the device
 * that reads and writes the pinned frame as io_uring's worker does for a fixed buffer (CPU 1).
 * GUP, pins and pipes are taken by the process cow.c takes them in; a pin's reads in 8-12 are the
 * parent's (cow.c's gup_test ioctl). tasks/cow-cpus.ts plays a script on two CPUs;
 * cow-cpus.test.ts runs every case. Each check is cow.c's (the child's page against its backup,
 * the pipe against the page as spliced, the pin against the mapping) plus the page-level facts
 * behind it (which frame is mapped, exclusive, writable).
 *
 *   sync (Int32, shared by the two CPUs): STEP (the next step) | ABORT | READY (CPUs started) |
 *   PIN (the pinned pfn, for the device)
 */
import assert from 'node:assert/strict';
import type { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { GUP_PIN_COUNTING_BIAS, PG_ANON_EXCLUSIVE } from '../../src/mem/page.js';
import { PTE_WRITE, ptePfn } from '../../src/mem/pte.js';
import { readPage, unpinUserPages, writePage } from '../../src/mm/gup.js';
import { Pipe } from '../../src/mm/pipe.js';
import { PROT_READ } from '../../src/mm/vm-flags.js';
import { ANON, BASE, expectBytes, expectPage, fillPage, P, RW } from './cow-fixture.js';

export const STEP = 0;
export const ABORT = 1;
export const READY = 2;
export const PIN = 3;
export const SYNC_WORDS = 4;

/** Seeds of the page's contents: before fork, the parent's later write, the child's write. */
const OLD = 1;
const NEW = 0xff;
const CHILD = 0x77;

/** The parent runs on CPU 0; the child or the device on CPU 1. */
export type Role = 'parent' | 'child' | 'device';

export function cpuOf(role: Role): number {
  return role === 'parent' ? 0 : 1;
}

/** What a CPU holds while it plays its role: its own objects, never the other CPU's. */
export interface Side {
  kernel: Kernel;
  sync: Int32Array;
  parent: Process | null;
  child: Process | null;
  pipe: Pipe | null;
  /** The parent's pinned pfns (the device reads the pfn from sync[PIN]). */
  pins: number[];
}

export interface Step {
  by: Role;
  what: string;
  /** The fork: the child's CPU attaches the child once the step is done. */
  fork?: true;
  run(s: Side): void;
}

export interface CowCase {
  /** cow.c's description of the case. */
  name: string;
  /** Its number in cow-scenarios.md. */
  scenario: number;
  steps: readonly Step[];
}

// ---- the steps ------------------------------------------------------------------------------

function parentOf(s: Side): Process {
  assert.ok(s.parent, 'no parent on this CPU');
  return s.parent;
}

export function childOf(s: Side): Process {
  assert.ok(s.child, 'no child on this CPU');
  return s.child;
}

function pfnAt(p: Process): number {
  return ptePfn(p.mm.pt.lookupPte(BASE));
}

function writable(p: Process): boolean {
  return (p.mm.pt.lookupPte(BASE) & PTE_WRITE) !== 0;
}

/** cow.c's base page: one private anonymous page, populated (memset(mem, 1)). */
const setup: Step = {
  by: 'parent',
  what: 'map and fill a page',
  run(s) {
    const p = Process.create(s.kernel);
    s.parent = p;
    p.mm.mmap(BASE, P, RW, ANON);
    fillPage(p.mm.mmu(), BASE, OLD);
  },
};

const fork: Step = {
  by: 'parent',
  what: 'fork',
  fork: true,
  run(s) {
    s.child = parentOf(s).fork();
  },
};

/** The child takes its backup of the page (cow.c's memcpy(old, mem)) through CPU 1's TLB. */
const childReady: Step = {
  by: 'child',
  what: 'the child reads its page',
  run(s) {
    expectPage(childOf(s).mm.mmu(), BASE, OLD, 'the child after fork');
  },
};

function parentWrites(mprotect: boolean): Step {
  return {
    by: 'parent',
    what: mprotect ? 'mprotect(R), mprotect(RW), the parent writes' : 'the parent writes',
    run(s) {
      const p = parentOf(s);
      if (mprotect) {
        // mprotect() optimisations might map the page writable again without a write fault.
        p.mm.mprotect(BASE, P, PROT_READ);
        p.mm.mprotect(BASE, P, RW);
      }
      fillPage(p.mm.mmu(), BASE, NEW);
      expectPage(p.mm.mmu(), BASE, NEW, 'the parent after its write');
    },
  };
}

const childCompares: Step = {
  by: 'child',
  what: 'the child compares with its backup',
  run(s) {
    expectPage(childOf(s).mm.mmu(), BASE, OLD, 'the child after the parent wrote (leak parent -> child)');
  },
};

const childWrites: Step = {
  by: 'child',
  what: 'the child writes',
  run(s) {
    const mmu = childOf(s).mm.mmu();
    fillPage(mmu, BASE, CHILD);
    expectPage(mmu, BASE, CHILD, 'the child after its write');
  },
};

const parentKeeps: Step = {
  by: 'parent',
  what: 'the parent still sees its data',
  run(s) {
    expectPage(parentOf(s).mm.mmu(), BASE, NEW, 'the parent after the child wrote (leak child -> parent)');
  },
};

function splice(by: 'parent' | 'child'): Step {
  return {
    by,
    what: `vmsplice in the ${by}`,
    run(s) {
      const p = by === 'parent' ? parentOf(s) : childOf(s);
      s.pipe = new Pipe(s.kernel.mem);
      assert.equal(s.pipe.spliceFrom(p.mm, BASE, P), P, 'vmsplice');
    },
  };
}

function unmap(by: 'parent' | 'child'): Step {
  return {
    by,
    what: `munmap in the ${by}`,
    run(s) {
      (by === 'parent' ? parentOf(s) : childOf(s)).mm.munmap(BASE, P);
    },
  };
}

/** Reads the pipe out: it must deliver the page as it was when spliced. */
function pipeDelivers(by: 'parent' | 'child', leak: string): Step {
  return {
    by,
    what: `the ${by} reads the pipe`,
    run(s) {
      assert.ok(s.pipe);
      expectBytes(s.pipe.read(P), OLD, `the pipe (leak ${leak})`);
      assert.equal(s.pipe.size, 0);
      s.pipe.close();
      s.pipe = null;
    },
  };
}

function exit(by: 'parent' | 'child'): Step {
  return {
    by,
    what: `the ${by} exits`,
    run(s) {
      const p = by === 'parent' ? parentOf(s) : childOf(s);
      p.detach();
      p.exit();
      if (by === 'parent') s.parent = null;
      else s.child = null;
    },
  };
}

/** io_uring_register_buffers: a R/W longterm pin of the page. */
const pinWritable: Step = {
  by: 'parent',
  what: 'R/W longterm pin',
  run(s) {
    const mem = s.kernel.mem;
    const got = parentOf(s).mm.pinUserPages(BASE, 1, { write: true, longterm: true });
    assert.ok(Array.isArray(got), `pinUserPages: ${String(got)}`);
    s.pins = got;
    assert.equal(mem.refcountOf(got[0]), 1 + GUP_PIN_COUNTING_BIAS);
    assert.equal(mem.testFlag(got[0], PG_ANON_EXCLUSIVE), true);
    Atomics.store(s.sync, PIN, got[0]);
  },
};

/** Linux's gup_test PIN_LONGTERM_TEST_START: a R/O longterm pin (GUP or GUP-fast). */
function pinReadOnly(fast: boolean, expect: 'copy' | 'same'): Step {
  return {
    by: 'parent',
    what: `R/O longterm pin (${fast ? 'GUP-fast' : 'GUP'})`,
    run(s) {
      const p = parentOf(s);
      const before = pfnAt(p);
      assert.equal(writable(p), false, 'the page is R/O-mapped when pinned');
      const opts = { longterm: true };
      const got = fast ? p.mm.pinUserPagesFast(BASE, 1, opts) : p.mm.pinUserPages(BASE, 1, opts);
      assert.ok(Array.isArray(got), `pin: ${String(got)}`);
      s.pins = got;
      const pfn = got[0];
      // Unshared: a page still shared with the child is copied; one that is ours alone is kept.
      if (expect === 'copy') assert.notEqual(pfn, before, 'the shared page was copied for the pin');
      else assert.equal(pfn, before, 'the page, ours alone, was pinned in place');
      assert.equal(pfnAt(p), pfn);
      assert.equal(s.kernel.mem.testFlag(pfn, PG_ANON_EXCLUSIVE), true, 'a pinned page is exclusive');
      assert.equal(writable(p), false, 'unsharing leaves the entry R/O');
      Atomics.store(s.sync, PIN, pfn);
    },
  };
}

/** memset(mem, 0xff) through the mapping: a write fault on the R/O entry must reuse the pinned page. */
const parentWritesPinned: Step = {
  by: 'parent',
  what: 'the parent writes through its mapping',
  run(s) {
    const p = parentOf(s);
    fillPage(p.mm.mmu(), BASE, NEW);
    assert.equal(pfnAt(p), s.pins[0], 'the write fault reused the pinned page');
  },
};

/** PIN_LONGTERM_TEST_READ / io_uring write_fixed: the pin shows what the mapping shows. */
function pinSees(by: 'parent' | 'device'): Step {
  return {
    by,
    what: `the ${by} reads through the pin`,
    run(s) {
      const pfn = by === 'parent' ? s.pins[0] : Atomics.load(s.sync, PIN);
      expectBytes(readPage(s.kernel.mem, pfn, 0, P), NEW, 'the pin (longterm pin not reliable)');
      if (by === 'parent') expectPage(parentOf(s).mm.mmu(), BASE, NEW, 'the mapping');
    },
  };
}

/** The device writes into the R/W-pinned frame (a read from a file into a fixed buffer). */
const deviceWrites: Step = {
  by: 'device',
  what: 'the device writes through the pin',
  run(s) {
    writePage(s.kernel.mem, Atomics.load(s.sync, PIN), 8, new Uint8Array([1, 2, 3, 4]));
  },
};

const parentSeesDevice: Step = {
  by: 'parent',
  what: "the parent sees the device's write",
  run(s) {
    assert.equal(
      parentOf(s)
        .mm.mmu()
        .load32(BASE + 8),
      0x04030201,
    );
  },
};

const unpin: Step = {
  by: 'parent',
  what: 'unpin',
  run(s) {
    unpinUserPages(s.kernel.mem, s.pins);
    s.pins = [];
  },
};

/** cow.c's child that stays alive: its page keeps the data of the fork. */
const childKeeps: Step = {
  by: 'child',
  what: 'the child still sees the data of the fork',
  run(s) {
    expectPage(childOf(s).mm.mmu(), BASE, OLD, 'the child');
  },
};

/**
 * cow.c's mprotect(R), clear_softdirty(), mprotect(RW): the page ends R/O-mapped, so the next
 * write faults. vmspace has no soft-dirty and no mprotect optimisation: the entry stays R/O.
 */
const mprotectRoRw: Step = {
  by: 'parent',
  what: 'mprotect(R), mprotect(RW)',
  run(s) {
    const p = parentOf(s);
    p.mm.mprotect(BASE, P, PROT_READ);
    p.mm.mprotect(BASE, P, RW);
    assert.equal(writable(p), false, 'mprotect(RW) left the entry R/O');
  },
};

function mprotect(prot: number): Step {
  return {
    by: 'parent',
    what: `mprotect(${prot === PROT_READ ? 'R' : 'RW'})`,
    run(s) {
      parentOf(s).mm.mprotect(BASE, P, prot);
    },
  };
}

/** The parent's pinned page stayed its own across fork: exclusive, writable, mapped once. */
const pinnedStaysParents: Step = {
  by: 'parent',
  what: 'the pinned page was not shared with the child',
  run(s) {
    const p = parentOf(s);
    assert.equal(pfnAt(p), s.pins[0]);
    assert.equal(writable(p), true, 'the parent keeps its pinned page writable');
    assert.equal(s.kernel.mem.mapcountOf(s.pins[0]), 1);
  },
};

// ---- the cases, in cow.c's order --------------------------------------------------------------

function basicCow(mprotect: boolean): Step[] {
  return [
    setup,
    fork,
    childReady,
    parentWrites(mprotect),
    childCompares,
    childWrites,
    parentKeeps,
    exit('child'),
    exit('parent'),
  ];
}

function vmspliceInChild(mprotect: boolean): Step[] {
  return [
    setup,
    fork,
    childReady,
    splice('child'),
    unmap('child'),
    parentWrites(mprotect),
    pipeDelivers('child', 'parent -> child'),
    exit('child'),
    exit('parent'),
  ];
}

function vmspliceInParent(beforeFork: boolean): Step[] {
  return [
    setup,
    ...(beforeFork ? [splice('parent'), fork] : [fork, splice('parent')]),
    childReady,
    unmap('parent'),
    childWrites,
    exit('child'),
    pipeDelivers('parent', 'child -> parent'),
    exit('parent'),
  ];
}

function roPinShared(fast: boolean, previouslyShared: boolean): Step[] {
  const pin = pinReadOnly(fast, previouslyShared ? 'same' : 'copy');
  const tail = [pin, parentWritesPinned, pinSees('parent'), unpin];
  return previouslyShared
    ? [setup, fork, childReady, exit('child'), ...tail, exit('parent')]
    : [setup, fork, childReady, ...tail, childKeeps, exit('child'), exit('parent')];
}

/** cow-scenarios.md's order: pinned while mprotect(R) holds, so R/O-mapped without soft-dirty. */
function roPinExclusive(fast: boolean): Step[] {
  return [
    setup,
    mprotect(PROT_READ),
    pinReadOnly(fast, 'same'),
    mprotect(RW),
    parentWritesPinned,
    pinSees('device'),
    unpin,
    exit('parent'),
  ];
}

export const COW_CASES: readonly CowCase[] = [
  { scenario: 1, name: 'Basic COW after fork()', steps: basicCow(false) },
  { scenario: 2, name: 'Basic COW after fork() with mprotect() optimization', steps: basicCow(true) },
  { scenario: 3, name: 'vmsplice() + unmap in child', steps: vmspliceInChild(false) },
  {
    scenario: 4,
    name: 'vmsplice() + unmap in child with mprotect() optimization',
    steps: vmspliceInChild(true),
  },
  {
    scenario: 5,
    name: 'vmsplice() before fork(), unmap in parent after fork()',
    steps: vmspliceInParent(true),
  },
  { scenario: 6, name: 'vmsplice() + unmap in parent after fork()', steps: vmspliceInParent(false) },
  {
    scenario: 7,
    name: 'R/O-mapping a page registered as iouring fixed buffer',
    steps: [
      setup,
      pinWritable,
      mprotectRoRw,
      parentWritesPinned,
      pinSees('device'),
      deviceWrites,
      parentSeesDevice,
      unpin,
      exit('parent'),
    ],
  },
  {
    scenario: 8,
    name: 'fork() with an iouring fixed buffer',
    steps: [
      setup,
      pinWritable,
      fork,
      childReady,
      pinnedStaysParents,
      parentWritesPinned,
      pinSees('parent'),
      childKeeps,
      unpin,
      exit('child'),
      exit('parent'),
    ],
  },
  { scenario: 9, name: 'R/O GUP pin on R/O-mapped shared page', steps: roPinShared(false, false) },
  { scenario: 10, name: 'R/O GUP-fast pin on R/O-mapped shared page', steps: roPinShared(true, false) },
  {
    scenario: 11,
    name: 'R/O GUP pin on R/O-mapped previously-shared page',
    steps: roPinShared(false, true),
  },
  {
    scenario: 12,
    name: 'R/O GUP-fast pin on R/O-mapped previously-shared page',
    steps: roPinShared(true, true),
  },
  { scenario: 13, name: 'R/O GUP pin on R/O-mapped exclusive page', steps: roPinExclusive(false) },
  { scenario: 14, name: 'R/O GUP-fast pin on R/O-mapped exclusive page', steps: roPinExclusive(true) },
];

/** Steps of `c` that CPU `cpu` runs. */
export function stepsOn(c: CowCase, cpu: number): number {
  return c.steps.filter((step) => cpuOf(step.by) === cpu).length;
}
