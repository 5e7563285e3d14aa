/**
 * GUP on one CPU (src/mm/gup.ts): GUP-fast takes no lock for the pages it can have and leaves the
 * others to the slow path (faults, unshare, copy-on-write); fork's write_protect_seq makes a pin
 * give up its lockless walk; Linux's errnos and partial counts for every entry (no VMA, no access,
 * VM_IO / VM_PFNMAP, SIGBUS, out of memory, no stack growth, bad arguments); FOLL_LONGTERM (pins
 * only; a writable longterm pin of a shared file mapping that needs dirty tracking is refused
 * before any fault). Every case ends with every reference dropped and every count back to zero.
 * (The two-CPU races are in gup-cpus.test.ts; the cow.c cases in cow-pins.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EFAULT, EINVAL, ENOMEM } from '../../src/errno.js';
import { PLACE_SHMEM } from '../../src/fs/file-table.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import type { Process } from '../../src/kernel/process.js';
import { rangeOut } from '../../src/maple/api.js';
import { GUP_PIN_COUNTING_BIAS, KIND_ANON, PG_ANON_EXCLUSIVE, ZERO_PFN } from '../../src/mem/page.js';
import { PTE_WRITE, pmdIndex, pteIndex, ptePfn } from '../../src/mem/pte.js';
import {
  FOLL_PIN,
  FOLL_WRITE,
  gupFast,
  longtermNeedsDirtyTracking,
  putUserPages,
  unpinUserPages,
} from '../../src/mm/gup.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  VM_IO,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_PFNMAP,
  VM_READ,
  VM_WRITE,
} from '../../src/mm/vm-flags.js';
import { vmaLockEvents } from '../../src/mm/vma-lock.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { lockStatRows } from '../../src/sync/lockstat.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { ANON, BASE, P, RW, setup } from '../support/process-fixture.js';

function finish(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

function pfns(result: number[] | number): number[] {
  assert.ok(Array.isArray(result), `GUP failed: ${String(result)}`);
  return result;
}

/** Acquisitions (read + write) of lock class `name` so far, on every CPU. */
function acquisitions(name: string): number {
  const row = lockStatRows().find((r) => r.name === name);
  return row === undefined ? 0 : row.acquisitionsRead + row.acquisitionsWrite;
}

/** Runs fn and returns how many times it took mmap_lock and a page-table lock. */
function locksTaken(fn: () => void): { mmap: number; ptl: number } {
  const mmap = acquisitions('mmap_lock');
  const ptl = acquisitions('ptl');
  fn();
  return { mmap: acquisitions('mmap_lock') - mmap, ptl: acquisitions('ptl') - ptl };
}

function write(proc: Process, addr: number, pages: number, seed: number): void {
  const mmu = proc.mm.mmu();
  for (let i = 0; i < pages; i++) mmu.store32(addr + i * P, seed + i);
}

test('GUP-fast: populated pages are got and pinned without mmap_lock or a page-table lock; the slow path takes both', () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const mem = kernel.mem;
  mm.mmap(BASE, 4 * P, RW, ANON);
  write(proc, BASE, 4, 10);
  const mapped = [0, 1, 2, 3].map((i) => ptePfn(mm.pt.lookupPte(BASE + i * P)));
  let got: number[] = [];
  for (const opts of [{}, { write: true }, { write: false, longterm: true }]) {
    assert.deepEqual(
      locksTaken(() => {
        got = pfns(mm.pinUserPagesFast(BASE, 4, opts));
      }),
      { mmap: 0, ptl: 0 },
    );
    assert.deepEqual(got, mapped);
    for (const pfn of got) assert.equal(mem.refcountOf(pfn), 1 + GUP_PIN_COUNTING_BIAS);
    unpinUserPages(mem, got);
    assert.deepEqual(
      locksTaken(() =>
        putUserPages(mem, pfns(mm.getUserPagesFast(BASE, 4, opts.write ? { write: true } : {}))),
      ),
      {
        mmap: 0,
        ptl: 0,
      },
    );
  }
  // The slow path: mmap_lock (R) once, a PTL per page.
  const taken = locksTaken(() => {
    got = pfns(mm.pinUserPages(BASE, 4));
  });
  assert.deepEqual(got, mapped);
  assert.deepEqual(taken, { mmap: 1, ptl: 4 });
  unpinUserPages(mem, got);
  for (const pfn of mapped) assert.equal(mem.refcountOf(pfn), 1);
  finish(kernel, proc);
});

test('GUP-fast leaves to the slow path: no entry (fault), zero page (unshare or a write fault), a shared page (unshare copy), a read-only entry for a write', () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const mem = kernel.mem;
  mm.mmap(BASE, 6 * P, RW, ANON);
  write(proc, BASE, 1, 7); // page 0 present; pages 1-5 not
  assert.equal(mm.mmu().load32(BASE + P), 0); // page 1: the zero page
  // [present, zero page, none]: the first lockless, the rest slow (one mmap_lock round at least).
  let got: number[] = [];
  const taken = locksTaken(() => {
    got = pfns(mm.pinUserPagesFast(BASE, 3));
  });
  assert.ok(taken.mmap >= 1, 'the slow path ran');
  assert.equal(got[0], ptePfn(mm.pt.lookupPte(BASE)));
  for (const pfn of got) {
    assert.notEqual(pfn, ZERO_PFN, 'a read-only pin never pins the zero page');
    assert.equal(mem.kind[pfn], KIND_ANON);
    assert.equal(mem.testFlag(pfn, PG_ANON_EXCLUSIVE), true);
  }
  assert.equal(ptePfn(mm.pt.lookupPte(BASE + P)), got[1], 'the zero page was unshared into a new page');
  unpinUserPages(mem, got);
  // A plain get of a zero-page entry takes the zero page (slow path), and keeps it mapped.
  assert.equal(mm.mmu().load32(BASE + 3 * P), 0);
  const zero = pfns(mm.getUserPagesFast(BASE + 3 * P, 1));
  assert.deepEqual(zero, [ZERO_PFN]);
  putUserPages(mem, zero);
  // After fork: a read-only pin copies (unshare) instead of pinning the shared page; a write pin
  // copies (copy-on-write); a get shares.
  const child = proc.fork();
  const shared = ptePfn(mm.pt.lookupPte(BASE));
  assert.equal(mm.pt.lookupPte(BASE) & PTE_WRITE, 0);
  const [g] = pfns(mm.getUserPagesFast(BASE, 1));
  assert.equal(g, shared, 'a get takes the shared page as it is');
  putUserPages(mem, [g]);
  const [ro] = pfns(mm.pinUserPagesFast(BASE, 1));
  assert.notEqual(ro, shared);
  assert.equal(mem.testFlag(ro, PG_ANON_EXCLUSIVE), true);
  assert.equal(mm.pt.lookupPte(BASE) & PTE_WRITE, 0, 'unshare leaves the entry read-only');
  assert.equal(mm.mmu().load32(BASE), 7);
  assert.equal(child.mm.mmu().load32(BASE), 7);
  unpinUserPages(mem, [ro]);
  const [rw] = pfns(child.mm.pinUserPagesFast(BASE + P, 1, { write: true }));
  assert.equal(ptePfn(child.mm.pt.lookupPte(BASE + P)), rw);
  assert.notEqual(rw, ZERO_PFN);
  unpinUserPages(mem, [rw]);
  finish(kernel, proc, child);
});

test("GUP-fast pins give up while fork's write_protect_seq is odd; gets do not look at it", () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const mem = kernel.mem;
  mm.mmap(BASE, 2 * P, RW, ANON);
  write(proc, BASE, 2, 1);
  const out: number[] = [];
  mm.state.writeProtectSeq.writeBegin();
  try {
    assert.equal(gupFast(mm, BASE, 2, FOLL_PIN, out), 0);
    assert.equal(out.length, 0);
    assert.equal(gupFast(mm, BASE, 2, 0, out), 2, 'a get is not a pin: fork may share it');
    putUserPages(mem, out);
    out.length = 0;
  } finally {
    mm.state.writeProtectSeq.writeEnd();
  }
  assert.equal(gupFast(mm, BASE, 2, FOLL_PIN, out), 2);
  unpinUserPages(mem, out);
  finish(kernel, proc);
});

/** Each entry's result for one range: getUserPages, getUserPagesFast, pinUserPages, pinUserPagesFast. */
function allFour(proc: Process, addr: number, pages: number, write: boolean): (number[] | number)[] {
  const mm = proc.mm;
  const mem = proc.kernel.mem;
  const opts = { write };
  const results = [
    mm.getUserPages(addr, pages, opts),
    mm.getUserPagesFast(addr, pages, opts),
    mm.pinUserPages(addr, pages, opts),
    mm.pinUserPagesFast(addr, pages, opts),
  ];
  for (let i = 0; i < 4; i++) {
    const r = results[i];
    if (Array.isArray(r)) (i < 2 ? putUserPages : unpinUserPages)(mem, r);
  }
  return results.map((r) => (Array.isArray(r) ? r.length : r));
}

test('errors as Linux: no VMA, PROT_NONE, no read or write permission, VM_IO/VM_PFNMAP, SIGBUS, no stack growth; partial counts', () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const ef = [-EFAULT, -EFAULT, -EFAULT, -EFAULT];
  mm.mmap(BASE, 2 * P, RW, ANON);
  write(proc, BASE, 2, 1);
  // Two mapped pages, then a hole: the two (all four entries, read and write).
  assert.deepEqual(allFour(proc, BASE, 3, false), [2, 2, 2, 2]);
  assert.deepEqual(allFour(proc, BASE, 3, true), [2, 2, 2, 2]);
  assert.deepEqual(allFour(proc, BASE + 2 * P, 1, false), ef, 'no VMA');
  // PROT_NONE, populated before (the fast walk sees entries without user access) and not.
  mm.mmap(BASE + 8 * P, 2 * P, RW, ANON);
  write(proc, BASE + 8 * P, 1, 5);
  mm.mprotect(BASE + 8 * P, 2 * P, PROT_NONE);
  assert.deepEqual(allFour(proc, BASE + 8 * P, 2, false), ef, 'PROT_NONE');
  assert.deepEqual(allFour(proc, BASE + 8 * P, 2, true), ef, 'PROT_NONE, write');
  // Read-only: reads fine, writes EFAULT (FOLL_FORCE does not exist here).
  mm.mprotect(BASE + 8 * P, 2 * P, PROT_READ);
  assert.deepEqual(allFour(proc, BASE + 8 * P, 2, false), [2, 2, 2, 2]);
  assert.deepEqual(allFour(proc, BASE + 8 * P, 2, true), ef, 'write to PROT_READ');
  // Write-only (VM_WRITE without VM_READ): check_vma_flags refuses a read, allows a write.
  mm.mmap(BASE + 16 * P, P, PROT_WRITE, ANON);
  assert.deepEqual(allFour(proc, BASE + 16 * P, 1, false), ef, 'read of PROT_WRITE');
  assert.deepEqual(allFour(proc, BASE + 16 * P, 1, true), [1, 1, 1, 1]);
  // VM_IO and VM_PFNMAP: EFAULT, although the Mmu faults such anonymous memory in.
  for (const [i, special] of [VM_IO, VM_PFNMAP].entries()) {
    const at = BASE + (24 + 4 * i) * P;
    const flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | special;
    mm.insertVma(
      { start: at, end: at + P, pgoff: at / P, flags, file: 0, anon: 0, nameKind: 0, nameId: 0 },
      true,
    );
    assert.deepEqual(allFour(proc, at, 1, false), ef, `special ${special}`);
    assert.equal(mm.mmu().load32(at), 0);
  }
  // A file mapping past the end of its file: the page inside it, then SIGBUS (EFAULT).
  const fd = proc.open({ size: P, writable: true, name: 'data.bin' });
  mm.mmap(BASE + 40 * P, 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd);
  assert.deepEqual(allFour(proc, BASE + 40 * P, 2, false), [1, 1, 1, 1], 'the page inside the file');
  assert.deepEqual(allFour(proc, BASE + 41 * P, 1, false), ef, 'SIGBUS');
  // Below a VM_GROWSDOWN VMA: EFAULT, and the stack does not grow (an Mmu store would grow it).
  const top = BASE + 128 * P;
  mm.mmap(top - 4 * P, 4 * P, RW, ANON | MAP_GROWSDOWN);
  const before = mm.vmas().map((v) => [Number(v.start), Number(v.end)]);
  assert.deepEqual(allFour(proc, top - 5 * P, 1, true), ef, 'below the stack');
  assert.deepEqual(
    mm.vmas().map((v) => [Number(v.start), Number(v.end)]),
    before,
    'GUP did not grow the stack',
  );
  proc.close(fd);
  finish(kernel, proc);
});

test('bad arguments: EINVAL (address, count, longterm get), EFAULT past the user address limit (fast), nothing taken', () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  mm.mmap(BASE, 2 * P, RW, ANON);
  write(proc, BASE, 2, 1);
  const mapped = [ptePfn(mm.pt.lookupPte(BASE)), ptePfn(mm.pt.lookupPte(BASE + P))];
  const entries = [mm.getUserPages, mm.getUserPagesFast, mm.pinUserPages, mm.pinUserPagesFast];
  for (const entry of entries) {
    const call = (addr: number, pages: number, opts = {}) => entry.call(mm, addr, pages, opts);
    for (const addr of [BASE + 1, -P, 0.5, Number.NaN, 2 ** 53 + P])
      assert.equal(call(addr, 1), -EINVAL, `addr ${addr}`);
    for (const pages of [-1, 1.5, Number.NaN, 2 ** 53])
      assert.equal(call(BASE, pages), -EINVAL, `pages ${pages}`);
    assert.deepEqual(call(BASE, 0), []);
  }
  assert.equal(mm.getUserPages(BASE, 1, { longterm: true }), -EINVAL, 'LONGTERM only with a pin');
  assert.equal(mm.getUserPagesFast(BASE, 1, { longterm: true }), -EINVAL);
  // The fast entries check the whole range against the user address limit first (access_ok).
  assert.equal(mm.pinUserPagesFast(BASE, 2 ** 40), -EFAULT);
  assert.equal(mm.getUserPagesFast(2 ** 47 - P, 2), -EFAULT);
  for (const pfn of mapped) assert.equal(kernel.mem.refcountOf(pfn), 1, 'nothing was taken');
  // `into`: emptied and filled, returned.
  const into = [99, 98, 97];
  assert.equal(mm.pinUserPagesFast(BASE, 2, {}, into), into);
  assert.deepEqual(into, mapped);
  unpinUserPages(kernel.mem, into);
  finish(kernel, proc);
});

test('out of memory: a fault that cannot allocate is ENOMEM (after the pages done: the partial count), never EFAULT', () => {
  const { kernel, proc } = setup(96);
  const mm = proc.mm;
  const mem = kernel.mem;
  const pages = 256;
  mm.mmap(BASE, pages * P, RW, ANON);
  for (const fast of [false, true]) {
    const r = pfns(
      fast
        ? mm.pinUserPagesFast(BASE, pages, { write: true })
        : mm.pinUserPages(BASE, pages, { write: true }),
    );
    assert.ok(r.length > 0 && r.length < pages, `partial: ${r.length}`);
    // Memory is exhausted now: the next page alone is ENOMEM.
    const next = BASE + r.length * P;
    assert.equal(
      fast ? mm.pinUserPagesFast(next, 1, { write: true }) : mm.pinUserPages(next, 1, { write: true }),
      -ENOMEM,
    );
    assert.equal(mm.getUserPages(next, 1, { write: true }), -ENOMEM);
    unpinUserPages(mem, r);
    mm.madvise(BASE, pages * P, MADV_DONTNEED);
  }
  finish(kernel, proc);
  // Injected: the fault's first allocation (anon_vma, table or frame) fails: ENOMEM, nothing kept,
  // and the next call succeeds.
  const injector = new FailureInjector();
  const k2 = setup(4096, injector);
  k2.proc.mm.mmap(BASE, P, RW, ANON);
  const countsBefore = k2.kernel.counts();
  injector.failAfter(0);
  assert.equal(k2.proc.mm.pinUserPagesFast(BASE, 1, { write: true }), -ENOMEM);
  assert.equal(injector.injected, 1);
  rcuBarrier();
  k2.kernel.mem.drainAll();
  assert.equal(k2.kernel.counts().frames, countsBefore.frames, 'no frame kept');
  const ok = pfns(k2.proc.mm.pinUserPagesFast(BASE, 1, { write: true }));
  unpinUserPages(k2.kernel.mem, ok);
  finish(k2.kernel, k2.proc);
});

test('FOLL_LONGTERM: a writable longterm pin of a shared file mapping that needs dirty tracking is EFAULT before any fault; shmem and private mappings are not refused', () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const files = kernel.files;
  const disk = proc.open({ size: 4 * P, writable: true, name: 'disk.img' });
  const tmpfs = proc.open({ size: 4 * P, writable: true, name: 'memfd', placement: PLACE_SHMEM });
  const readOnly = proc.open({ size: 4 * P, writable: false, name: 'ro.img' });
  const SHARED = MAP_SHARED | MAP_FIXED;
  mm.mmap(BASE, P, RW, SHARED, disk); // shared writable, written back: needs dirty tracking
  mm.mmap(BASE + 2 * P, P, RW, SHARED, tmpfs); // shmem: never written back
  mm.mmap(BASE + 4 * P, P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED); // shared anonymous (shmem)
  mm.mmap(BASE + 6 * P, P, RW, MAP_PRIVATE | MAP_FIXED, disk); // private: copy-on-write
  mm.mmap(BASE + 8 * P, P, PROT_READ, SHARED, readOnly); // shared read-only
  mm.mmap(BASE + 10 * P, P, RW, ANON);
  const needs = mm.vmas().map((v) => {
    const rec = mm.index.load(Number(v.start), rangeOut());
    return longtermNeedsDirtyTracking(files, mm.arena.flags(rec), mm.arena.file(rec));
  });
  assert.deepEqual(needs, [true, false, false, false, false, false]);
  /** Runs a write pin and says whether it tried to fault (the fault path counts a VMA lookup). */
  const pin = (addr: number, longterm: boolean): { r: number[] | number; faulted: boolean } => {
    const e = vmaLockEvents(mm.locks);
    const before = e.success + e.noVma + e.locked + e.mmapFallbacks;
    const r = mm.pinUserPages(addr, 1, { write: true, longterm });
    const a = vmaLockEvents(mm.locks);
    return { r, faulted: a.success + a.noVma + a.locked + a.mmapFallbacks !== before };
  };
  // The disk file: refused by check_vma_flags, no fault tried; without longterm the fault runs
  // and the page cache's page is pinned.
  assert.deepEqual(pin(BASE, true), { r: -EFAULT, faulted: false });
  const plain = pin(BASE, false);
  assert.equal(plain.faulted, true);
  unpinUserPages(kernel.mem, pfns(plain.r));
  assert.equal(mm.pinUserPagesFast(BASE, 1, { write: true, longterm: true }), -EFAULT);
  // shmem, shared anonymous, private file: the longterm pin goes on to the fault.
  for (const addr of [BASE + 2 * P, BASE + 4 * P, BASE + 6 * P]) {
    const p = pin(addr, true);
    assert.equal(p.faulted, true);
    unpinUserPages(kernel.mem, pfns(p.r));
  }
  // A read-only longterm pin of the disk mapping is not refused by the check either.
  const e = vmaLockEvents(mm.locks).success + vmaLockEvents(mm.locks).mmapFallbacks;
  mm.mmap(BASE + 12 * P, P, RW, SHARED, disk);
  unpinUserPages(kernel.mem, pfns(mm.pinUserPages(BASE + 12 * P, 1, { longterm: true })));
  assert.notEqual(vmaLockEvents(mm.locks).success + vmaLockEvents(mm.locks).mmapFallbacks, e);
  // Anonymous private memory: longterm pins as any pin.
  const [pfn] = pfns(mm.pinUserPagesFast(BASE + 10 * P, 1, { write: true, longterm: true }));
  unpinUserPages(kernel.mem, [pfn]);
  for (const fd of [disk, tmpfs, readOnly]) proc.close(fd);
  finish(kernel, proc);
});

test("a GUP-fast pin landing between fork's maybeDmaPinned check and its write-protect gives up (write_protect_seq), so it is never lost to copy-on-write", () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const mem = kernel.mem;
  mm.mmap(BASE, 4 * P, RW, ANON);
  write(proc, BASE, 4, 40);
  const addrOf = new Map<number, number>();
  for (let i = 0; i < 4; i++) addrOf.set(ptePfn(mm.pt.lookupPte(BASE + i * P)), BASE + i * P);
  // The interleaving, made on one CPU: fork's check runs, then (before fork shares the page) a
  // GUP-fast pin of that page, for read and for write.
  const original = mem.maybeDmaPinned;
  const had: number[] = [];
  mem.maybeDmaPinned = (pfn: number): boolean => {
    const pinned = original.call(mem, pfn);
    const addr = addrOf.get(pfn);
    if (addr !== undefined) {
      for (const foll of [FOLL_PIN, FOLL_PIN | FOLL_WRITE]) {
        const out: number[] = [];
        had.push(gupFast(mm, addr, 1, foll, out));
        unpinUserPages(mem, out);
      }
    }
    return pinned;
  };
  let child: Process;
  try {
    child = proc.fork();
  } finally {
    mem.maybeDmaPinned = original;
  }
  assert.deepEqual(had, [0, 0, 0, 0, 0, 0, 0, 0], 'every pin inside fork gave up');
  // After fork: the pages are shared read-only, and a pin now unshares (a copy) through the slow path.
  const [pfn] = pfns(mm.pinUserPagesFast(BASE, 1, { write: true }));
  assert.equal(addrOf.has(pfn), false, 'a new exclusive copy');
  assert.equal(mem.testFlag(pfn, PG_ANON_EXCLUSIVE), true);
  unpinUserPages(mem, [pfn]);
  finish(kernel, proc, child);
});

test('GUP-fast re-checks the PTE and the PMD entry after its speculative reference: a change drops it (nothing kept)', () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const mem = kernel.mem;
  const pt = mm.pt;
  mm.mmap(BASE, 2 * P, RW, ANON);
  write(proc, BASE, 1, 3);
  const pfn = ptePfn(pt.lookupPte(BASE));
  const pte = pt.findPteTable(BASE);
  const pmdSlot = (pt.findPmdTable(BASE) << 9) | pmdIndex(BASE);
  // Between the reference and the re-check (made on one CPU by hooking both speculative grabs),
  // another CPU's work: the PTE cleared (a zap), or the PMD entry changed (mremap moving the table).
  const changes: [string, () => () => void][] = [
    [
      'PTE',
      () => {
        const old = pt.clearPte(pte, pteIndex(BASE));
        return () => pt.setPte(pte, pteIndex(BASE), old);
      },
    ],
    [
      'PMD',
      () => {
        const old = Atomics.load(pt.entries, pmdSlot);
        Atomics.store(pt.entries, pmdSlot, 0);
        return () => Atomics.store(pt.entries, pmdSlot, old);
      },
    ],
  ];
  const { tryPinPage, getPageUnlessZero } = mem;
  for (const [what, change] of changes) {
    for (const foll of [0, FOLL_PIN, FOLL_PIN | FOLL_WRITE]) {
      let undo: (() => void) | null = null;
      const hook = (grab: (pfn: number) => boolean) => (p: number) => {
        const ok = grab.call(mem, p);
        undo ??= change();
        return ok;
      };
      mem.tryPinPage = hook(tryPinPage);
      mem.getPageUnlessZero = hook(getPageUnlessZero);
      const out: number[] = [];
      let had: number;
      try {
        had = gupFast(mm, BASE, 1, foll, out);
      } finally {
        mem.tryPinPage = tryPinPage;
        mem.getPageUnlessZero = getPageUnlessZero;
        (undo as (() => void) | null)?.();
      }
      assert.equal(had, 0, `${what} changed, foll ${foll}`);
      assert.deepEqual(out, []);
      assert.equal(mem.refcountOf(pfn), 1, `${what}, foll ${foll}: the reference was dropped`);
    }
  }
  // Unchanged, the same walk has the page.
  const out: number[] = [];
  assert.equal(gupFast(mm, BASE, 1, FOLL_PIN | FOLL_WRITE, out), 1);
  unpinUserPages(mem, out);
  finish(kernel, proc);
});
