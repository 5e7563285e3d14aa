/**
 * VM_GROWSDOWN, the stack guard gap, MAP_HUGETLB and the zero-page knob: what the grows traces
 * exercise (FORMAT.md 8.3 and 8.6), each asserting what Linux 6.18 does (mm/mmap.c
 * expand_downwards and acct_stack_growth, arch/x86/mm/fault.c access_error, mm/mprotect.c,
 * ksys_mmap_pgoff and fs/hugetlbfs; the growth and hugetlb cases were also run on this machine's
 * 6.18.44). The zero-page, growth, MAP_HUGETLB and shmem_enabled tests failed before the grows
 * work; the placement, MAP_GROWSDOWN/MAP_STACK and PROT_GROWSDOWN ones pin down rules vmspace
 * already followed, and the private-file read is the zero-page test's control.
 */
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EBADF, EEXIST, EFAULT, EINVAL, ENOMEM, EOPNOTSUPP } from '../../src/errno.js';
import { defaultConfig } from '../../src/mm/config.js';
import { readTrace } from '../../src/mm/trace/format.js';
import {
  MADV_POPULATE_READ,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_STACK,
  MAP_SYNC,
  PMD_SIZE,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { BASE, layout, newSpace, openFile, P } from '../support/mm-fixture.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const STACK = ANON | MAP_GROWSDOWN;
const HUGE = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
/** The default stack_guard_gap, in pages. */
const GAP = 256;

function at(p: number): number {
  return BASE + p * P;
}

type Space = ReturnType<typeof newSpace>;

function flagsOf(mm: Space, p: number): string {
  const v = mm.vmas().find((x) => Number(x.start) <= at(p) && at(p) < Number(x.end));
  return v ? v.vmflags : 'unmapped';
}

// ---- the zero page -----------------------------------------------------------------------------

test('zeroPage is on by default (Linux), and the trace header sets it (a missing key means true)', () => {
  assert.equal(defaultConfig().zeroPage, true);
  const linux = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/mm/fixtures/linux');
  assert.equal(readTrace(join(linux, 'grows-s600.jsonl.gz')).header.zeroPage, false);
  assert.equal(readTrace(join(linux, 'basic-s100.jsonl.gz')).header.zeroPage, true);
});

test('without the zero page a read touch gives a private anonymous VMA an anon_vma that blocks a three-way merge', () => {
  const build = (zeroPage: boolean): string[] => {
    const mm = newSpace({ zeroPage });
    mm.mmap(at(0), 4 * P, RW, ANON);
    mm.touch(at(0), P, false);
    mm.mmap(at(5), 4 * P, RW, ANON);
    mm.touch(at(5), P, false);
    mm.mmap(at(4), P, RW, ANON);
    return layout(mm);
  };
  assert.deepEqual(build(true), ['0-9 rw-p'], 'zero page: reads leave no anon_vma, all three merge');
  assert.deepEqual(build(false), ['0-5 rw-p', '5-9 rw-p'], 'two different anon_vmas: merge with prev only');
});

test('without the zero page a read touch keeps VM_ACCOUNT through mprotect(PROT_READ)', () => {
  for (const zeroPage of [true, false]) {
    const mm = newSpace({ zeroPage });
    mm.mmap(at(0), 4 * P, RW, ANON);
    mm.touch(at(0), 4 * P, false);
    mm.mprotect(at(0), 4 * P, PROT_READ);
    assert.equal(flagsOf(mm, 0), zeroPage ? 'rd mr mw me' : 'rd mr mw me ac', `zeroPage ${zeroPage}`);
  }
});

test('without the zero page read-only population allocates too (MADV_POPULATE_READ, MAP_LOCKED of r--p)', () => {
  const split = (zeroPage: boolean, populate: (mm: Space, p: number, n: number) => void): number => {
    const mm = newSpace({ zeroPage });
    mm.mmap(at(0), 4 * P, PROT_READ, ANON);
    populate(mm, 0, 4);
    mm.mmap(at(5), 4 * P, PROT_READ, ANON);
    populate(mm, 5, 4);
    mm.mmap(at(4), P, PROT_READ, ANON);
    populate(mm, 4, 1);
    return layout(mm).length;
  };
  const advise = (mm: Space, p: number, n: number) => mm.madvise(at(p), n * P, MADV_POPULATE_READ);
  const lock = (mm: Space, p: number, n: number) => mm.mlock(at(p), n * P);
  for (const populate of [advise, lock]) {
    assert.equal(split(true, populate), 1);
    assert.equal(split(false, populate), 2);
  }
  const mapped = (zeroPage: boolean): number => {
    const mm = newSpace({ zeroPage });
    mm.mmap(at(0), 4 * P, PROT_READ, ANON | MAP_LOCKED);
    mm.mmap(at(5), 4 * P, PROT_READ, ANON | MAP_LOCKED);
    mm.mmap(at(4), P, PROT_READ, ANON | MAP_LOCKED);
    return layout(mm).length;
  };
  assert.equal(mapped(true), 1);
  assert.equal(mapped(false), 2);
});

test('without the zero page read faults on private file mappings still create no anon_vma', () => {
  const build = (write: boolean): string[] => {
    const mm = newSpace({ zeroPage: false });
    const f = openFile(mm, { size: 16 * P, writable: true, name: 'f' });
    mm.mmap(at(0), 4 * P, RW, MAP_PRIVATE | MAP_FIXED, f, 0);
    mm.touch(at(0), P, write);
    mm.mmap(at(5), 4 * P, RW, MAP_PRIVATE | MAP_FIXED, f, 5 * P);
    mm.touch(at(5), P, write);
    mm.mmap(at(4), P, RW, MAP_PRIVATE | MAP_FIXED, f, 4 * P);
    return layout(mm).map((l) => l.split(' ')[0]);
  };
  assert.deepEqual(build(false), ['0-9'], 'page-cache reads: no anon_vma, the three merge');
  assert.deepEqual(build(true), ['0-5', '5-9'], 'copy-on-write: two anon_vmas');
});

// ---- stack growth ------------------------------------------------------------------------------

test('a touch below a VM_GROWSDOWN VMA grows it; vm_pgoff shrinks with it (it re-merges after mprotect)', () => {
  const RX = PROT_READ | PROT_EXEC;
  const mm = newSpace();
  mm.mmap(at(1000), 4 * P, RX, STACK);
  mm.mmap(at(0), 4 * P, RX, STACK);
  assert.equal(mm.sysTouch(at(4), 2 * P, false), 0, 'the VMA below is VM_GROWSDOWN too: no guard gap');
  assert.deepEqual(layout(mm), ['0-4 r-xp', '4-1004 r-xp'], 'grown right up to it, not merged');
  assert.equal(flagsOf(mm, 4), 'rd ex mr mw me gd');
  // The lower VMA has no anon_vma and the pgoffs are contiguous: once changed again, they merge.
  mm.mprotect(at(0), 1004 * P, PROT_READ);
  assert.deepEqual(layout(mm), ['0-1004 r--p']);
});

test('stack growth keeps stack_guard_gap from an accessible VMA below, unless it is PROT_NONE', () => {
  const mm = newSpace();
  mm.mmap(at(0), P, PROT_READ, ANON);
  mm.mmap(at(1 + GAP + 10), 4 * P, RW, STACK);
  assert.equal(mm.sysTouch(at(GAP), P, true), -EFAULT, 'within the gap: refused');
  assert.deepEqual(layout(mm), ['0-1 r--p', `${GAP + 11}-${GAP + 15} rw-p`]);
  mm.mprotect(at(GAP + 11), 4 * P, PROT_READ);
  assert.equal(flagsOf(mm, GAP + 11), 'rd mr mw me gd', 'a refused growth leaves no anon_vma');
  mm.mprotect(at(GAP + 11), 4 * P, RW);
  assert.equal(mm.sysTouch(at(1 + GAP), P, true), 0, 'exactly stack_guard_gap above it: allowed');
  assert.deepEqual(layout(mm), ['0-1 r--p', `${GAP + 1}-${GAP + 15} rw-p`]);
  mm.mprotect(at(0), P, PROT_NONE);
  assert.equal(mm.sysTouch(at(1), P, false), 0, 'an inaccessible VMA below needs no gap');
  assert.deepEqual(layout(mm), ['0-1 ---p', `1-${GAP + 15} rw-p`]);
});

test('stack growth stops at RLIMIT_STACK; the refused growth still leaves the anon_vma', () => {
  const mm = newSpace({ rlimitStack: 16 * P });
  mm.mmap(at(100), 4 * P, RW, STACK);
  assert.equal(mm.sysTouch(at(87), P, true), -EFAULT, '17 pages: over the limit');
  assert.deepEqual(layout(mm), ['100-104 rw-p']);
  mm.mprotect(at(100), 4 * P, PROT_READ);
  assert.equal(flagsOf(mm, 100), 'rd mr mw me gd ac', 'anon_vma_prepare ran before acct_stack_growth');
  assert.equal(mm.sysTouch(at(88), P, false), 0, 'exactly the limit');
  assert.deepEqual(layout(mm), ['88-104 r--p']);
});

test('the stack grows before the access is checked: EFAULT for a read of PROT_NONE or a write of r--', () => {
  const mm = newSpace();
  mm.mmap(at(1000), 4 * P, PROT_NONE, STACK);
  assert.equal(mm.sysTouch(at(998), 2 * P, false), -EFAULT);
  assert.deepEqual(layout(mm), ['998-1004 ---p']);
  mm.mmap(at(2000), 4 * P, PROT_READ, STACK);
  assert.equal(mm.sysTouch(at(1990), 12 * P, true), -EFAULT);
  assert.deepEqual(layout(mm), ['998-1004 ---p', '1990-2004 r--p']);
  mm.mmap(at(3000), 4 * P, PROT_WRITE, STACK);
  assert.equal(mm.sysTouch(at(2996), 5 * P, false), 0, 'x86 reads a write-only page');
  assert.deepEqual(layout(mm).at(-1), '2996-3004 -w-p');
  mm.mmap(at(4000), 4 * P, RW, ANON);
  assert.equal(mm.sysTouch(at(3996), 5 * P, true), 0, 'below a VMA without VM_GROWSDOWN nothing grows');
  assert.deepEqual(layout(mm).at(-1), '4000-4004 rw-p');
});

// ---- placement ---------------------------------------------------------------------------------

test('the guard gap below a VM_GROWSDOWN VMA bounds the top-down search and hints, only directly below it', () => {
  const top = at(2000);
  const mm = newSpace({ mmapBase: top });
  mm.mmap(at(1996), 4 * P, RW, STACK);
  assert.equal(mm.mmap(0, 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS), at(1996 - GAP - 4));
  const plain = newSpace({ mmapBase: top });
  plain.mmap(at(1996), 4 * P, RW, ANON);
  assert.equal(plain.mmap(0, 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS), at(1992), 'no gd: right below');

  const hints = newSpace();
  hints.mmap(at(1000), 4 * P, RW, STACK);
  hints.mmap(at(900), P, PROT_READ, ANON);
  hints.mmap(at(3000), 4 * P, RW, STACK);
  const hinted = (p: number) => hints.mmap(at(p), 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.notEqual(hinted(990), at(990), 'ends inside the guard gap: not honoured');
  assert.equal(hinted(890), at(890), 'below another VMA: that gap is not guarded');
  assert.notEqual(hinted(3000 - GAP - 3), at(3000 - GAP - 3), 'one page into the gap');
  assert.equal(hinted(3000 - GAP - 4), at(3000 - GAP - 4), 'ends at the edge of the gap');
  assert.equal(
    hints.mmap(at(996), 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE),
    at(996),
    'MAP_FIXED_NOREPLACE ignores the gap',
  );
});

test('MAP_GROWSDOWN only for private anonymous memory; MAP_STACK gives nh on any mapping', () => {
  const mm = newSpace();
  const f = openFile(mm, { size: 16 * P, writable: true, name: 'f' });
  assert.equal(mm.sysMmap(at(0), P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0), -EINVAL);
  assert.equal(mm.sysMmap(at(0), P, RW, MAP_PRIVATE | MAP_GROWSDOWN, f, 0), -EINVAL);
  assert.equal(mm.sysMmap(at(0), P, RW, STACK | MAP_STACK, -1, 0), at(0));
  assert.equal(flagsOf(mm, 0), 'rd wr mr mw me gd ac nh');
  mm.mmap(at(4), P, RW, MAP_SHARED | MAP_FIXED | MAP_STACK, f, 0);
  assert.equal(flagsOf(mm, 4), 'rd wr sh mr mw me ms nh');
});

// ---- mprotect ----------------------------------------------------------------------------------

test('mprotect(PROT_GROWSDOWN) starts at the first VMA of the range and needs VM_GROWSDOWN; PROT_GROWSUP is EINVAL', () => {
  const mm = newSpace();
  mm.mmap(at(10), 8 * P, RW, STACK);
  mm.mmap(at(30), 4 * P, RW, ANON);
  assert.equal(mm.sysMprotect(at(5), 7 * P, PROT_READ | PROT_GROWSDOWN), 0, 'from the gap below it');
  assert.deepEqual(layout(mm), ['10-12 r--p', '12-18 rw-p', '30-34 rw-p']);
  assert.equal(mm.sysMprotect(at(5), 7 * P, PROT_READ), -ENOMEM, 'without it the hole fails');
  assert.equal(mm.sysMprotect(at(30), P, PROT_READ | PROT_GROWSDOWN), -EINVAL);
  assert.equal(mm.sysMprotect(at(10), P, PROT_READ | PROT_GROWSUP), -EINVAL);
  assert.equal(mm.sysMprotect(at(10), P, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP), -EINVAL);
  assert.equal(mm.sysMprotect(at(40), P, PROT_READ | PROT_GROWSUP), -ENOMEM, 'nothing mapped: ENOMEM first');
  assert.deepEqual(layout(mm), ['10-12 r--p', '12-18 rw-p', '30-34 rw-p']);
});

// ---- MAP_HUGETLB (no huge pages reserved) ------------------------------------------------------

test('MAP_HUGETLB checks in ksys_mmap_pgoff/do_mmap order; every mapping finally fails the reservation', () => {
  const mm = newSpace();
  const f = openFile(mm, { size: 16 * P, writable: true, name: 'f' });
  const region = Math.ceil(at(0) / PMD_SIZE) * PMD_SIZE + 8 * PMD_SIZE;
  mm.mmap(region + PMD_SIZE - 4 * P, 8 * P, RW, ANON);
  const before = layout(mm);
  const size25 = 25 * 2 ** 26;
  assert.equal(mm.sysMmap(0, P, RW, HUGE | size25, -1, 0), -EINVAL, 'no 32 MiB pages on x86');
  assert.equal(mm.sysMmap(0, P, RW, MAP_SHARED | MAP_HUGETLB, -1, 0), -EBADF, 'a bad fd first');
  assert.equal(mm.sysMmap(0, P, RW, MAP_SHARED | MAP_HUGETLB, f, 0), -EINVAL, 'not a hugetlbfs file');
  assert.equal(mm.sysMmap(0, 0, RW, HUGE, -1, 0), -EINVAL, 'len 0');
  assert.equal(mm.sysMmap(0, 2 ** 64 - P, RW, HUGE, -1, 0), -EINVAL, 'len rounds up to 0');
  assert.equal(mm.sysMmap(region + P, P, RW, HUGE | MAP_FIXED, -1, 0), -EINVAL, 'unaligned MAP_FIXED');
  const gb = 30 * 2 ** 26;
  assert.equal(
    mm.sysMmap(region, P, RW, HUGE | MAP_FIXED | gb, -1, 0),
    -EINVAL,
    'aligned to 2 MiB, not 1 GiB',
  );
  assert.equal(
    mm.sysMmap(region, P, RW, HUGE | MAP_FIXED_NOREPLACE, -1, 0),
    -EEXIST,
    'the rounded 2 MiB length meets the mapping',
  );
  assert.equal(mm.sysMmap(0, P, RW, HUGE | MAP_GROWSDOWN, -1, 0), -EINVAL);
  assert.equal(
    mm.sysMmap(0, P, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_SYNC, -1, 0),
    -EOPNOTSUPP,
  );
  assert.equal(mm.sysMmap(0, P, RW, MAP_ANONYMOUS | MAP_HUGETLB, -1, 0), -EINVAL, 'no mapping type');
  assert.equal(mm.sysMmap(0, P, RW, HUGE, -1, 0), -ENOMEM);
  assert.equal(mm.sysMmap(region + 4 * PMD_SIZE, P, RW, HUGE | MAP_FIXED_NOREPLACE, -1, 0), -ENOMEM);
  assert.deepEqual(layout(mm), before, 'nothing changed so far');
});

test('a 2 MiB-aligned MAP_HUGETLB|MAP_FIXED unmaps its rounded range before failing with ENOMEM', () => {
  const mm = newSpace();
  const region = Math.ceil(at(0) / PMD_SIZE) * PMD_SIZE + 8 * PMD_SIZE;
  const page = (a: number) => (a - BASE) / P;
  const r = page(region);
  mm.mmap(region - 4 * P, 8 * P, RW, ANON);
  mm.mmap(region + PMD_SIZE - 2 * P, 4 * P, PROT_READ, ANON);
  assert.equal(mm.sysMmap(region, 3 * P, RW | PROT_EXEC, HUGE | MAP_FIXED, -1, 0), -ENOMEM);
  assert.deepEqual(layout(mm), [`${r - 4}-${r} rw-p`, `${r + 512}-${r + 514} r--p`]);
  mm.mmap(region + PMD_SIZE, 4 * P, RW, ANON);
  assert.equal(
    mm.sysMmap(region + PMD_SIZE, P, RW, HUGE | MAP_FIXED, -1, P),
    -EINVAL,
    'an offset that is not huge-page aligned fails after the unmap (hugetlbfs_file_mmap)',
  );
  assert.deepEqual(layout(mm), [`${r - 4}-${r} rw-p`]);
});

// ---- shmem_enabled -----------------------------------------------------------------------------

test('thpShmemEnabled: shared anonymous mappings of 2 MiB and more are 2 MiB aligned unless never/deny', () => {
  for (const mode of ['never', 'deny', 'always', 'advise', 'within_size', 'force']) {
    const mm = newSpace({ thpShmemEnabled: mode });
    const a = mm.mmap(0, 2 * PMD_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
    const aligned = mode !== 'never' && mode !== 'deny';
    assert.equal(a % PMD_SIZE === 0, aligned, `${mode}: ${a.toString(16)}`);
    const fresh = newSpace({ thpShmemEnabled: mode });
    const small = fresh.mmap(0, PMD_SIZE - P, RW, MAP_SHARED | MAP_ANONYMOUS);
    assert.equal(small, fresh.config.mmapBase - PMD_SIZE + P, `${mode}: below 2 MiB, the plain search`);
  }
  assert.throws(() => newSpace({ thpShmemEnabled: 'sometimes' }), /thpShmemEnabled/);
});
