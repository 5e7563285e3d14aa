/**
 * GUP's contract when its fault drops the locks (src/mm/gup.ts, "Dropped locks"; Linux's `locked`
 * with FOLL_UNLOCKABLE), on one CPU, under each fault-locking design: the fault of an uncached file
 * page waits for (injected) I/O with the locks dropped (FAULT_RETRY) except under `global`, and
 * whatever happens to the range while GUP holds no lock is seen after it retakes mmap_lock. The
 * "other CPU" is a hook run right after the fault returns, in the window where GUP holds nothing:
 * munmap, MAP_FIXED of another file, mprotect, mremap away, a private mapping replaced by a shared
 * one under a longterm write pin. Every case drops what it got and ends with every count at zero.
 * (The same on two real CPUs, raced: gup-slow-cpus.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EFAULT } from '../../src/errno.js';
import { INJECT_FAULT, setInjection } from '../../src/fs/inject.js';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { KIND_ANON, KIND_FILE, PAGE_SIZE } from '../../src/mem/page.js';
import { FAULT_DESIGNS, type FaultDesign } from '../../src/mm/fault-design.js';
import { FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, type GupSpace, gupPages } from '../../src/mm/gup.js';
import {
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';

const P = PAGE_SIZE;
const BASE = 0x100000000;
const AWAY = 0x140000000;
const RW = PROT_READ | PROT_WRITE;
const PAGES = 4;

interface Fixture {
  kernel: Kernel;
  proc: Process;
  /** Descriptors of files A and B (every word of A's pages holds 0xa0 + page, B's 0xb0 + page). */
  fds: number[];
  ids: number[];
}

/** A fresh kernel and process; files A and B are host files, so none of their pages is cached. */
function setup(design: FaultDesign): Fixture {
  const kernel = Kernel.create({ frames: 512 });
  const proc = Process.create(kernel, { config: { design } });
  const fds: number[] = [];
  const ids: number[] = [];
  for (const [i, name] of ['a.bin', 'b.bin'].entries()) {
    const words = new Int32Array(PAGES * (P / 4));
    for (let p = 0; p < PAGES; p++) words[p * (P / 4)] = (i === 0 ? 0xa0 : 0xb0) + p;
    const path = join(dir, name);
    writeFileSync(path, new Uint8Array(words.buffer));
    const fd = proc.open(path, O_RDWR);
    const id = proc.fds.fget(fd);
    kernel.files.put(id);
    fds.push(fd);
    ids.push(id);
  }
  return { kernel, proc, fds, ids };
}

const dir = mkdtempSync(join(tmpdir(), 'vmspace-gup-unlocked-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function finish(f: Fixture): void {
  for (const fd of f.fds) f.proc.close(fd);
  f.proc.exit();
  rcuBarrier();
  f.kernel.mem.drainAll();
  assert.deepEqual(f.kernel.counts(), KERNEL_EMPTY);
}

/**
 * The address space seen by GUP, with `hook` run once right after the first fault GUP makes (GUP
 * holds no lock then: the window another CPU's munmap or mremap would use).
 */
function withHook(f: Fixture, hook: () => void): { space: GupSpace; faults: () => number } {
  const mm = f.proc.mm;
  let faults = 0;
  const space: GupSpace = Object.create(mm);
  space.faultForGup = (addr: number, write: boolean, unshare: boolean): number => {
    const r = mm.faultForGup(addr, write, unshare);
    if (faults++ === 0) hook();
    return r;
  };
  return { space, faults: () => faults };
}

/** The word at the start of frame pfn. */
const word0 = (f: Fixture, pfn: number): number => f.kernel.mem.i32[pfn * (P / 4)];

for (const design of FAULT_DESIGNS) {
  test(`${design}: a fault that needs I/O runs it ${design === 'global' ? 'holding mmap_lock' : 'with the locks dropped'} and GUP finds the page after retaking them`, () => {
    const f = setup(design);
    const mm = f.proc.mm;
    mm.mmap(BASE, PAGES * P, PROT_READ, MAP_SHARED | MAP_FIXED, f.fds[0]);
    setInjection(f.kernel.files, f.ids[0], INJECT_FAULT, { latencyUs: 200 });
    const io = lockdepCounts().mmap_io;
    const retries = mm.vmstat().faultRetries;
    const out: number[] = [];
    assert.equal(gupPages(mm, BASE, PAGES, 0, out), PAGES);
    assert.deepEqual(
      out.map((pfn) => word0(f, pfn)),
      [0xa0, 0xa1, 0xa2, 0xa3],
    );
    for (const pfn of out) f.kernel.mem.putPage(pfn);
    // global holds mmap_lock across the whole fault, I/O included (no retry); the others retry.
    if (design === 'global') assert.equal(mm.vmstat().faultRetries, retries, 'global: no fault retried');
    else assert.ok(mm.vmstat().faultRetries > retries, 'the fault waited for its read and was retried');
    if (lockHooks.on) {
      const moved = lockdepCounts().mmap_io - io;
      if (design === 'global') assert.ok(moved > 0, 'global waits for the read under mmap_lock');
      else assert.equal(moved, 0, `${design}: no I/O under mmap_lock`);
    }
    setInjection(f.kernel.files, f.ids[0], INJECT_FAULT, { latencyUs: 0 });
    finish(f);
  });

  test(`${design}: what the range became while GUP held no lock is what GUP returns (munmap, another file, mprotect, mremap, longterm rule)`, () => {
    const cases: {
      name: string;
      foll: number;
      hook: (f: Fixture) => void;
      want: (f: Fixture, r: number, out: number[]) => void;
    }[] = [
      {
        name: 'munmap: EFAULT',
        foll: 0,
        hook: (f) => f.proc.mm.munmap(BASE, PAGES * P),
        want: (_f, r) => assert.equal(r, -EFAULT),
      },
      {
        name: 'munmap of the rest after the first page: the first page alone',
        foll: 0,
        hook: (f) => f.proc.mm.munmap(BASE + P, (PAGES - 1) * P),
        want: (f, r, out) => {
          assert.equal(r, 1);
          assert.equal(word0(f, out[0]), 0xa0);
        },
      },
      {
        name: 'MAP_FIXED of file B: B pages',
        foll: FOLL_WRITE,
        hook: (f) => f.proc.mm.mmap(BASE, PAGES * P, RW, MAP_SHARED | MAP_FIXED, f.fds[1]),
        want: (f, r, out) => {
          assert.equal(r, PAGES);
          assert.deepEqual(
            out.map((pfn) => word0(f, pfn)),
            [0xb0, 0xb1, 0xb2, 0xb3],
          );
          for (const [p, pfn] of out.entries()) {
            assert.equal(f.kernel.mem.kind[pfn], KIND_FILE);
            assert.equal(f.kernel.mem.owner[pfn], f.ids[1]);
            assert.equal(f.kernel.mem.index[pfn], p);
          }
        },
      },
      {
        name: 'mprotect(PROT_READ) under a write GUP: EFAULT',
        foll: FOLL_WRITE,
        hook: (f) => f.proc.mm.mprotect(BASE, PAGES * P, PROT_READ),
        want: (_f, r) => assert.equal(r, -EFAULT),
      },
      {
        name: 'mprotect(PROT_NONE): EFAULT',
        foll: 0,
        hook: (f) => f.proc.mm.mprotect(BASE, PAGES * P, PROT_NONE),
        want: (_f, r) => assert.equal(r, -EFAULT),
      },
      {
        name: 'mremap away: EFAULT (the pages now live elsewhere)',
        foll: 0,
        hook: (f) => f.proc.mm.mremap(BASE, PAGES * P, PAGES * P, MREMAP_MAYMOVE | MREMAP_FIXED, AWAY),
        want: (_f, r) => assert.equal(r, -EFAULT),
      },
      {
        name: 'a private mapping replaced by a shared writable one under a longterm write pin: EFAULT',
        foll: FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM,
        hook: (f) => f.proc.mm.mmap(BASE, PAGES * P, RW, MAP_SHARED | MAP_FIXED, f.fds[1]),
        want: (_f, r) => assert.equal(r, -EFAULT),
      },
      {
        name: 'a private mapping kept: private copies of A under the longterm write pin',
        foll: FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM,
        hook: () => {},
        want: (f, r, out) => {
          assert.equal(r, PAGES);
          for (const [p, pfn] of out.entries()) {
            assert.equal(f.kernel.mem.kind[pfn], KIND_ANON);
            assert.equal(word0(f, pfn), 0xa0 + p);
          }
        },
      },
    ];
    for (const c of cases) {
      const f = setup(design);
      const mm = f.proc.mm;
      const longterm = (c.foll & FOLL_LONGTERM) !== 0;
      mm.mmap(BASE, PAGES * P, RW, (longterm ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, f.fds[0]);
      setInjection(f.kernel.files, f.ids[0], INJECT_FAULT, { latencyUs: 50 });
      const h = withHook(f, () => c.hook(f));
      const out: number[] = [];
      const r = gupPages(h.space, BASE, PAGES, c.foll, out);
      assert.ok(h.faults() > 0, `${c.name}: GUP faulted`);
      try {
        c.want(f, r, out);
      } catch (error) {
        throw new Error(`${design}, ${c.name}: ${(error as Error).message}`);
      }
      for (let i = 0; i < Math.max(r, 0); i++) {
        if ((c.foll & FOLL_PIN) !== 0) f.kernel.mem.unpinPage(out[i]);
        else f.kernel.mem.putPage(out[i]);
      }
      finish(f);
    }
  });
}
