/**
 * Adversarial, trace-like sequences for cases the sample traces do not cover, each asserting
 * what Linux 6.18 does (reasoned from mm/mmap.c, mm/vma.c, mm/mremap.c, mm/mprotect.c,
 * mm/madvise.c, mm/mlock.c, mm/msync.c).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EACCES, EAGAIN, EBUSY, EEXIST, EFAULT, EINVAL, ENOMEM } from '../../src/errno.js';
import { PLACE_THP } from '../../src/fs/file-table.js';
import { smapsText } from '../../src/mm/proc-maps.js';
import {
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_NORMAL,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MCL_CURRENT,
  MCL_FUTURE,
  MLOCK_ONFAULT,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  MS_ASYNC,
  MS_INVALIDATE,
  MS_SYNC,
  PMD_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { BASE, layout, maps, newSpace, openFile, P } from '../support/mm-fixture.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

function at(p: number): number {
  return BASE + p * P;
}

function flagsOf(mm: ReturnType<typeof newSpace>, p: number): string {
  const v = mm.vmas().find((x) => Number(x.start) <= at(p) && at(p) < Number(x.end));
  return v ? v.vmflags : 'unmapped';
}

test('mremap shrink unmaps past the end of the VMA without checking it', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.mmap(at(4), 4 * P, PROT_READ, ANON);
  assert.equal(mm.sysMremap(at(0), 8 * P, 2 * P, 0, 0), at(0));
  assert.deepEqual(layout(mm), ['0-2 rw-p']);
});

test('mremap grows in place and merges with a compatible next VMA; blocked growth moves or fails', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.mmap(at(6), 4 * P, RW, ANON);
  assert.equal(mm.sysMremap(at(0), 4 * P, 6 * P, 0, 0), at(0));
  assert.deepEqual(layout(mm), ['0-10 rw-p'], 'untouched pgoffs are contiguous: one VMA');
  mm.mmap(at(12), 2 * P, PROT_READ, ANON);
  assert.equal(mm.sysMremap(at(0), 10 * P, 13 * P, 0, 0), -ENOMEM, 'no room, no MREMAP_MAYMOVE');
  const moved = mm.sysMremap(at(0), 10 * P, 13 * P, MREMAP_MAYMOVE, 0);
  assert.ok(moved > at(14));
  assert.deepEqual(layout(mm)[0], '12-14 r--p');
});

test('a touched private VMA keeps its pgoff when moved and no longer merges with its old neighbour', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.touch(at(0), 4 * P, true);
  mm.mremap(at(0), 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(20));
  mm.mmap(at(24), 4 * P, RW, ANON);
  assert.deepEqual(layout(mm), ['20-24 rw-p', '24-28 rw-p']);
  const fresh = newSpace();
  fresh.mmap(at(0), 4 * P, RW, ANON);
  fresh.mremap(at(0), 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(20));
  fresh.mmap(at(24), 4 * P, RW, ANON);
  assert.deepEqual(
    layout(fresh),
    ['20-28 rw-p'],
    'an untouched VMA takes the new address as pgoff and merges',
  );
});

test('MREMAP_FIXED with equal lengths moves several VMAs and keeps the holes between them', () => {
  const mm = newSpace();
  mm.mmap(at(0), 2 * P, RW, ANON);
  mm.mmap(at(3), 2 * P, PROT_READ, ANON);
  mm.mmap(at(30), 1 * P, PROT_READ, ANON);
  assert.equal(mm.sysMremap(at(0), 5 * P, 5 * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(28)), at(28));
  // Each piece's own target is unmapped before it moves: the VMA at 30 sits in the hole between
  // the pieces, stays, and merges with the untouched piece that lands right after it.
  assert.deepEqual(layout(mm), ['28-30 rw-p', '30-33 r--p']);
  assert.equal(
    mm.sysMremap(at(27), 3 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(50)),
    -EFAULT,
    'hole at start',
  );
});

test('MREMAP_DONTUNMAP leaves the source, clears its lock and its anon_vma when moved whole', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.mlock(at(0), 4 * P);
  assert.equal(flagsOf(mm, 0), 'rd wr mr mw me lo ac');
  assert.equal(
    mm.sysMremap(at(0), 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, at(10)),
    at(10),
  );
  assert.deepEqual(layout(mm), ['0-4 rw-p', '10-14 rw-p']);
  assert.equal(flagsOf(mm, 0), 'rd wr mr mw me ac');
  assert.equal(flagsOf(mm, 10), 'rd wr mr mw me lo ac');
  // The source lost its anon_vma: an untouched neighbour with a different anon_vma-less history merges.
  mm.mmap(at(4), 4 * P, RW, ANON);
  mm.touch(at(4), 4 * P, true);
  assert.deepEqual(layout(mm), ['0-8 rw-p', '10-14 rw-p']);
  assert.equal(
    mm.sysMremap(at(0), 2 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, at(20)),
    -EINVAL,
    'DONTUNMAP cannot resize',
  );
});

test('mremap with old_len 0 duplicates a shared mapping and refuses a private one', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  const dup = mm.sysMremap(at(0), 0, 2 * P, MREMAP_MAYMOVE, 0);
  assert.ok(dup > 0);
  const views = mm.vmas();
  assert.equal(views.filter((v) => v.name === 'anon_shared:0').length, 2);
  mm.mmap(at(10), 4 * P, RW, ANON);
  assert.equal(mm.sysMremap(at(10), 0, 2 * P, MREMAP_MAYMOVE, 0), -EINVAL);
});

test('mprotect over a hole changes the part before it and fails with ENOMEM; EACCES for shared read-only files', () => {
  const mm = newSpace();
  const ro = openFile(mm, { size: 16 * P, writable: false, name: 'ro' });
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.mmap(at(5), 4 * P, RW, ANON);
  assert.equal(mm.sysMprotect(at(2), 6 * P, PROT_READ), -ENOMEM);
  assert.deepEqual(layout(mm), ['0-2 rw-p', '2-4 r--p', '5-9 rw-p']);
  mm.mmap(at(20), 2 * P, PROT_READ, MAP_SHARED | MAP_FIXED, ro, 0);
  assert.equal(mm.sysMprotect(at(20), 2 * P, RW), -EACCES);
  assert.equal(mm.sysMmap(at(30), 2 * P, RW, MAP_SHARED | MAP_FIXED, ro, 0), -EACCES);
  assert.equal(mm.sysMprotect(at(0), 0, 0x10), 0, 'len 0 succeeds before prot is checked');
  assert.equal(mm.sysMprotect(at(0), P, 0x10), -EINVAL);
});

test('VM_ACCOUNT: dropped when an untouched anonymous VMA becomes read-only, kept once it has an anon_vma', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.mmap(at(4), 4 * P, RW | 4, ANON);
  mm.touch(at(4), P, true);
  mm.mprotect(at(0), 8 * P, PROT_READ);
  assert.equal(flagsOf(mm, 0), 'rd mr mw me');
  assert.equal(flagsOf(mm, 4), 'rd mr mw me ac');
  assert.deepEqual(layout(mm), ['0-4 r--p', '4-8 r--p'], 'neighbours that differ only in ac stay apart');
  mm.mprotect(at(0), 8 * P, RW);
  assert.deepEqual(layout(mm), ['0-8 rw-p'], 'writable again: both accounted, anon_vma compatible, merged');
});

test('a write fault reuses the anon_vma of a compatible neighbour, so the two re-merge after mprotect', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.touch(at(0), P, true);
  mm.mmap(at(4), 4 * P, RW | 4, ANON);
  mm.touch(at(4), P, true);
  mm.mprotect(at(4), 4 * P, RW);
  assert.deepEqual(layout(mm), ['0-8 rw-p']);
  const other = newSpace();
  other.mmap(at(0), 4 * P, RW, ANON);
  other.touch(at(0), P, true);
  other.mmap(at(5), 4 * P, RW | 4, ANON);
  other.touch(at(5), P, true);
  other.mmap(at(4), P, RW | 4, ANON);
  other.mprotect(at(4), 5 * P, RW);
  assert.deepEqual(
    layout(other),
    ['0-4 rw-p', '4-9 rw-p'],
    'the second got its own anon_vma: never merges with the first',
  );
});

test('mlock: partial effects over a hole, PROT_NONE locked but ENOMEM, MLOCK_ONFAULT, munlock', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.mmap(at(6), 2 * P, RW, ANON);
  assert.equal(mm.sysMlock2(at(1) + 5, 8 * P, 0), -ENOMEM);
  assert.deepEqual(layout(mm), ['0-1 rw-p', '1-4 rw-p', '6-8 rw-p']);
  assert.equal(flagsOf(mm, 1), 'rd wr mr mw me lo ac');
  mm.mmap(at(10), 2 * P, PROT_NONE, ANON);
  assert.equal(mm.sysMlock2(at(10), 2 * P, 0), -ENOMEM, 'populating PROT_NONE fails');
  assert.equal(flagsOf(mm, 10), 'mr mw me lo');
  assert.equal(mm.sysMlock2(at(6), 2 * P, MLOCK_ONFAULT), 0);
  assert.equal(flagsOf(mm, 6), 'rd wr mr mw me lo lf ac');
  assert.equal(mm.sysMlock2(at(6), P, 0x8), -EINVAL);
  assert.equal(mm.sysMunlock(at(0), 12 * P), -ENOMEM);
  assert.deepEqual(layout(mm), ['0-4 rw-p', '6-8 rw-p', '10-12 ---p'], 'unlocked VMAs re-merge');
});

test('madvise: flag advice splits and re-merges, page advice checks the VMA, holes give ENOMEM', () => {
  const mm = newSpace();
  const f = openFile(mm, { size: 64 * P, writable: true, name: 'f' });
  mm.mmap(at(0), 8 * P, RW, ANON);
  assert.equal(mm.sysMadvise(at(2), 2 * P, MADV_RANDOM), 0);
  assert.deepEqual(layout(mm), ['0-2 rw-p', '2-4 rw-p', '4-8 rw-p']);
  assert.equal(flagsOf(mm, 2), 'rd wr mr mw me rr ac');
  assert.equal(mm.sysMadvise(at(0), 8 * P, MADV_NORMAL), 0);
  assert.deepEqual(layout(mm), ['0-8 rw-p']);
  assert.equal(mm.sysMadvise(at(0), 10 * P, MADV_HUGEPAGE), -ENOMEM, 'applied, then the hole');
  assert.equal(flagsOf(mm, 0), 'rd wr mr mw me ac hg');
  mm.mlock(at(0), P);
  assert.equal(mm.sysMadvise(at(0), P, MADV_DONTNEED), -EINVAL);
  mm.mmap(at(20), 4 * P, RW, MAP_PRIVATE | MAP_FIXED, f, 0);
  assert.equal(mm.sysMadvise(at(20), P, MADV_FREE), -EINVAL, 'MADV_FREE is for anonymous memory');
  assert.equal(mm.sysMadvise(at(20), P, 5), -EINVAL);
  assert.equal(mm.sysMadvise(at(20) + 1, P, MADV_NORMAL), -EINVAL);
  assert.equal(mm.sysMadvise(at(20), 0, MADV_NORMAL), 0);
  assert.equal(mm.sysMadvise(at(40), P, MADV_NORMAL), -ENOMEM);
  assert.equal(mm.sysMadvise(at(20), 8 * P, MADV_POPULATE_WRITE), -ENOMEM, 'populate stops at the hole');
});

test('brk: the heap starts at start_brk, never merges with the VMA below, needs a page of room', () => {
  const startBrk = at(100);
  const mm = newSpace({ startBrk });
  mm.mmap(at(90), 10 * P, RW, ANON);
  assert.equal(mm.brk(0), startBrk);
  assert.equal(mm.brk(startBrk + 3 * P + 5), startBrk + 3 * P + 5);
  assert.deepEqual(layout(mm), ['90-100 rw-p', '100-104 rw-p [heap]']);
  assert.equal(mm.brk(startBrk + 6 * P), startBrk + 6 * P, 'growth expands the heap VMA');
  assert.deepEqual(layout(mm), ['90-100 rw-p', '100-106 rw-p [heap]']);
  mm.mmap(at(110), P, PROT_READ, ANON);
  assert.equal(mm.brk(startBrk + 10 * P), startBrk + 6 * P, 'no free page before the next VMA');
  assert.equal(mm.brk(startBrk + 9 * P), startBrk + 9 * P);
  assert.equal(mm.brk(startBrk + P), startBrk + P);
  assert.deepEqual(layout(mm), ['90-100 rw-p', '100-101 rw-p [heap]', '110-111 r--p']);
  assert.equal(mm.brk(startBrk - P), startBrk + P, 'below start_brk is refused');
});

test('MAP_FIXED replaces many VMAs; MAP_FIXED_NOREPLACE refuses with EEXIST; THP alignment of 2 MiB anonymous maps', () => {
  const mm = newSpace();
  for (let p = 0; p < 20; p += 2) mm.mmap(at(p), P, p % 4 === 0 ? PROT_READ : RW, ANON);
  mm.mmap(at(1), 16 * P, RW, ANON);
  assert.deepEqual(layout(mm), ['0-1 r--p', '1-17 rw-p', '18-19 rw-p']);
  assert.equal(
    mm.sysMmap(at(17), 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
    -EEXIST,
  );
  const a = mm.mmap(0, PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.equal(a % PMD_SIZE, 0);
  assert.ok(a + PMD_SIZE < mm.config.mmapBase, 'the padding leaves a hole above the first');
  const b = mm.mmap(0, PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.equal(b, a - PMD_SIZE, 'an aligned search result r gives r + 2 MiB: right below the first');
  assert.equal(mm.vmas().filter((v) => Number(v.start) === b && Number(v.end) === a + PMD_SIZE).length, 1);
});

test('ext4-style files are placed THP-aligned to their offset', () => {
  const mm = newSpace();
  const f = openFile(mm, { size: 8 * PMD_SIZE, writable: true, name: 'big', placement: PLACE_THP });
  const addr = mm.mmap(0, 3 * PMD_SIZE, PROT_READ, MAP_PRIVATE, f, PMD_SIZE + 3 * P);
  assert.equal((addr - (PMD_SIZE + 3 * P)) % PMD_SIZE, 0);
});

test('msync checks flags, alignment, holes and MS_INVALIDATE on locked memory', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  assert.equal(mm.sysMsync(at(0), 4 * P, MS_SYNC), 0);
  assert.equal(mm.sysMsync(at(0), 4 * P, MS_SYNC | MS_ASYNC), -EINVAL);
  assert.equal(mm.sysMsync(at(0) + 1, P, MS_SYNC), -EINVAL);
  assert.equal(mm.sysMsync(at(0), 4 * P, 8), -EINVAL);
  assert.equal(mm.sysMsync(at(0), 6 * P, MS_SYNC), -ENOMEM);
  assert.equal(mm.sysMsync(at(0), 0, MS_SYNC), 0);
  mm.mlock(at(0), P);
  assert.equal(mm.sysMsync(at(0), P, MS_INVALIDATE), -EBUSY);
});

test('mlockall(MCL_CURRENT|MCL_FUTURE) locks every VMA and new ones; munlockall undoes both', () => {
  const mm = newSpace();
  mm.mmap(at(0), 4 * P, RW, ANON);
  mm.mlockall(MCL_CURRENT | MCL_FUTURE);
  assert.equal(flagsOf(mm, 0), 'rd wr mr mw me lo ac');
  mm.mmap(at(4), 4 * P, RW, ANON);
  assert.deepEqual(layout(mm), ['0-8 rw-p']);
  mm.munlockall();
  assert.equal(flagsOf(mm, 0), 'rd wr mr mw me ac');
  mm.mmap(at(8), P, RW, ANON);
  assert.equal(flagsOf(mm, 8), 'rd wr mr mw me ac');
  assert.equal(mm.sysMlockall(0), -EINVAL);
  assert.equal(mm.sysMlockall(4), -EINVAL);
});

test('unprivileged: RLIMIT_MEMLOCK and mmap_min_addr are enforced', () => {
  const mm = newSpace({ privileged: false, rlimitMemlock: 4 * P });
  mm.mmap(at(0), 8 * P, RW, ANON);
  assert.equal(mm.sysMlock2(at(0), 6 * P, 0), -ENOMEM);
  assert.equal(mm.sysMlock2(at(0), 4 * P, 0), 0);
  assert.equal(mm.sysMmap(at(8), 2 * P, RW, ANON | 0x2000, -1, 0), -EAGAIN, 'MAP_LOCKED over the limit');
  assert.equal(mm.sysMmap(0, P, RW, ANON, -1, 0), -1, 'MAP_FIXED below mmap_min_addr: EPERM');
});

test('THP read faults: an anon_vma only when the 2 MiB region had no page table (checked on Linux 6.18)', () => {
  const M4 = 2 * PMD_SIZE;
  const base = 0x7f0000000000;
  const cases: Array<[string, (mm: ReturnType<typeof newSpace>, a: number) => void, boolean]> = [
    [
      'hg, read',
      (mm, a) => {
        mm.madvise(a, M4, MADV_HUGEPAGE);
        mm.touch(a, P, false);
      },
      true,
    ],
    [
      'read, hg, read same region',
      (mm, a) => {
        mm.touch(a, P, false);
        mm.madvise(a, M4, MADV_HUGEPAGE);
        mm.touch(a + P, P, false);
      },
      false,
    ],
    ['read without hg', (mm, a) => mm.touch(a, P, false), false],
    [
      'read, hg, read other region',
      (mm, a) => {
        mm.touch(a, P, false);
        mm.madvise(a, M4, MADV_HUGEPAGE);
        mm.touch(a + PMD_SIZE + P, P, false);
      },
      true,
    ],
    [
      'hg, MADV_POPULATE_READ',
      (mm, a) => {
        mm.madvise(a, M4, MADV_HUGEPAGE);
        mm.madvise(a, M4, 22);
      },
      true,
    ],
    [
      'read, DONTNEED, hg, read',
      (mm, a) => {
        mm.touch(a, P, false);
        mm.madvise(a, P, MADV_DONTNEED);
        mm.madvise(a, M4, MADV_HUGEPAGE);
        mm.touch(a + 2 * P, P, false);
      },
      false,
    ],
    [
      'read, munmap, map again, hg, read',
      (mm, a) => {
        mm.touch(a, P, false);
        mm.munmap(a, M4);
        mm.mmap(a, M4, RW, ANON);
        mm.madvise(a, M4, MADV_HUGEPAGE);
        mm.touch(a, P, false);
      },
      true,
    ],
    [
      'read, MAP_FIXED over, hg, read',
      (mm, a) => {
        mm.touch(a, P, false);
        mm.mmap(a, M4, RW, ANON);
        mm.madvise(a, M4, MADV_HUGEPAGE);
        mm.touch(a, P, false);
      },
      true,
    ],
  ];
  for (const [name, steps, anon] of cases) {
    const mm = newSpace();
    mm.mmap(base, M4, RW, ANON);
    steps(mm, base);
    mm.mprotect(base, M4, PROT_READ);
    const flags = mm.vmas().find((v) => Number(v.start) === base)?.vmflags ?? '';
    assert.equal(flags.includes(' ac'), anon, `${name}: ${flags}`);
  }
});

test('max_map_count: mmap checks map_count > max, splits check >= max (ENOMEM; EAGAIN for madvise)', () => {
  const mm = newSpace({ maxMapCount: 4 });
  for (let i = 0; i < 5; i++) assert.equal(mm.sysMmap(at(3 * i), P * 2, RW, ANON, -1, 0), at(3 * i));
  assert.equal(mm.mapCount, 5, 'the fifth VMA is allowed: the check is map_count > max');
  assert.equal(mm.sysMmap(at(30), P, RW, ANON, -1, 0), -ENOMEM);
  assert.equal(mm.sysMprotect(at(0), P, PROT_READ), -ENOMEM);
  assert.equal(mm.sysMadvise(at(0), P, MADV_RANDOM), -EAGAIN);
  assert.equal(mm.sysMlock2(at(0), P, 0), -ENOMEM);
  assert.equal(mm.sysMremap(at(0), P, P, MREMAP_MAYMOVE | MREMAP_FIXED, at(40)), -ENOMEM);
  assert.equal(mm.sysMunmap(at(0), P), 0, 'unmapping an edge needs no new VMA');
  assert.equal(mm.sysMunmap(at(3), P), 0);
  assert.deepEqual(layout(mm), ['1-2 rw-p', '4-5 rw-p', '6-8 rw-p', '9-11 rw-p', '12-14 rw-p']);
});

test('maps and smaps text use the kernel formats', () => {
  const mm = newSpace();
  mm.mmap(at(0), 2 * P, RW, ANON);
  mm.mmap(at(4), P, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  const text = maps(mm).split('\n');
  assert.equal(text[0], '7f0000000000-7f0000002000 rw-p 00000000 00:00 0 ');
  assert.equal(
    text[1],
    `${'7f0000004000-7f0000005000 r--s 00000000 00:01 1'.padEnd(73, ' ')}/dev/zero (deleted)`,
  );
  assert.equal(mm.vmas()[1].name, 'anon_shared:0', 'the view keeps the identity the traces use');
  assert.match(smapsText(mm), /Size: +8 kB\nRss: +0 kB\nAnonymous: +0 kB\nVmFlags: rd wr mr mw me ac\n/);
});
