/**
 * Bad arguments to every syscall: seeded random unaligned, zero, negative, huge, non-integer, NaN
 * and unknown-flag arguments give the errno Linux gives first, throw nothing but VmError, and
 * change nothing. A chaos phase mixes valid and invalid calls (raw syscalls take arguments as
 * `ulong` normalises them) and checks the space's invariants
 * after each (tree and records agree, no overlaps, map_count right), and that failed calls without
 * documented partial effects left the maps untouched.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errnoName, VmError } from '../../src/errno.js';
import type { AddressSpace } from '../../src/mm/address-space.js';
import { mapsText } from '../../src/mm/proc-maps.js';
import { ulong } from '../../src/mm/syscalls/args.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { VMA_ATTACHED } from '../../src/mm/vma-record.js';
import { BASE, newSpace, openFile, P } from '../support/mm-fixture.js';

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const SEED = Number(process.env.VMSPACE_SEED ?? 20261125);

function setup(): { mm: AddressSpace; file: number } {
  const mm = newSpace();
  const file = openFile(mm, { size: 32 * P, writable: true, name: 'f' });
  mm.mmap(BASE, 8 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  mm.mmap(BASE + 10 * P, 4 * P, PROT_READ, MAP_SHARED | MAP_FIXED, file, 0);
  mm.touch(BASE, 2 * P, true);
  return { mm, file };
}

/** Runs a public call; returns the errno name it threw, or 'ok'. Anything but VmError fails. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof VmError)) throw e;
    return e.code;
  }
}

const NON_INTEGERS = [
  0.5,
  -1.25,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 64,
  -(2 ** 64),
];

test('non-integer and out-of-range values are EINVAL for every syscall and change nothing', () => {
  const { mm } = setup();
  const before = mapsText(mm);
  const calls: Array<(x: number) => unknown> = [
    (x) => mm.mmap(x, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS),
    (x) => mm.mmap(0, x, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS),
    (x) => mm.munmap(x, P),
    (x) => mm.munmap(BASE, x),
    (x) => mm.mprotect(BASE, x, PROT_READ),
    (x) => mm.mprotect(BASE, P, x),
    (x) => mm.mremap(BASE, x, P, 0),
    (x) => mm.mremap(BASE, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, x),
    (x) => mm.madvise(BASE, P, x),
    (x) => mm.mlock(x, P),
    (x) => mm.munlock(BASE, x),
    (x) => mm.msync(BASE, P, x),
    (x) => mm.mlockall(x),
  ];
  for (const call of calls) {
    for (const x of NON_INTEGERS)
      assert.equal(
        outcome(() => call(x)),
        'EINVAL',
        `${call} with ${x}`,
      );
  }
  assert.equal(mapsText(mm), before);
});

/** Invalid argument combinations and the errno Linux checks for first. */
function invalidCalls(mm: AddressSpace, file: number, r: () => number): Array<[string, () => unknown]> {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const aligned = () => BASE + Math.floor(r() * 20) * P;
  const unaligned = () => aligned() + 1 + Math.floor(r() * (P - 1));
  const anyLen = () => pick([P, 3 * P, 5, 64 * P]);
  const huge = () => pick([2 ** 47, 2 ** 53, 2 ** 62, -4096 * 4, -(2 ** 40)]);
  const badBits = () => pick([0x10, 0x40, 0x100, 0x8000, 2 ** 31, 2 ** 40]);
  return [
    ['EINVAL', () => mm.mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)],
    [
      'EINVAL',
      () => mm.mmap(0, anyLen(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, pick([1, 4095, P + 7])),
    ],
    ['EINVAL', () => mm.mmap(aligned(), anyLen(), PROT_READ, MAP_ANONYMOUS | MAP_FIXED)],
    ['EBADF', () => mm.mmap(0, anyLen(), PROT_READ, MAP_PRIVATE, pick([-1, 99, 1234]))],
    ['ENOMEM', () => mm.mmap(0, huge(), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)],
    ['EINVAL', () => mm.mmap(0, P, PROT_READ, MAP_PRIVATE | 0x100 /* GROWSDOWN */, file)],
    ['EINVAL', () => mm.munmap(unaligned(), anyLen())],
    ['EINVAL', () => mm.munmap(aligned(), 0)],
    ['EINVAL', () => mm.munmap(aligned(), huge())],
    ['EINVAL', () => mm.munmap(huge(), P)],
    ['EINVAL', () => mm.mprotect(unaligned(), anyLen(), PROT_READ)],
    ['EINVAL', () => mm.mprotect(aligned(), anyLen(), PROT_READ + badBits())],
    ['EINVAL', () => mm.mprotect(aligned(), anyLen(), PROT_READ | 0x03000000)],
    ['ENOMEM', () => mm.mprotect(aligned(), -1, PROT_READ)],
    ['EINVAL', () => mm.mremap(unaligned(), P, P, MREMAP_MAYMOVE)],
    ['EINVAL', () => mm.mremap(aligned(), P, 0, MREMAP_MAYMOVE)],
    ['EINVAL', () => mm.mremap(aligned(), P, P, MREMAP_MAYMOVE + pick([8, 16, 2 ** 33]))],
    ['EINVAL', () => mm.mremap(aligned(), P, P, MREMAP_FIXED, BASE + 100 * P)],
    ['EINVAL', () => mm.mremap(aligned(), P, huge(), MREMAP_MAYMOVE)],
    // A shrink unmaps [addr + new_len, addr + old_len): do_vmi_munmap refuses a tail past TASK_SIZE.
    ['EINVAL', () => mm.mremap(BASE, pick([2 ** 47, 2 ** 52, 2 ** 62, -4096]), P, pick([0, MREMAP_MAYMOVE]))],
    ['EINVAL', () => mm.mremap(aligned(), 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, BASE + 100 * P + 1)],
    ['EINVAL', () => mm.madvise(aligned(), anyLen(), pick([5, 6, 7, 26, 99, 104, 12345, -1]))],
    ['EINVAL', () => mm.madvise(unaligned(), anyLen(), 0)],
    ['EINVAL', () => mm.mlock(aligned(), anyLen(), pick([2, 4, 8, -1]))],
    ['EINVAL', () => mm.msync(unaligned(), anyLen(), 4)],
    ['EINVAL', () => mm.msync(aligned(), anyLen(), pick([5, 7, 8, 16]))],
    ['EINVAL', () => mm.mlockall(pick([0, 4, 8, 16]))],
  ];
}

test('random invalid arguments give Linux errnos and leave the maps unchanged', () => {
  const r = rng(SEED);
  const { mm, file } = setup();
  const before = mapsText(mm);
  for (let round = 0; round < 60; round++) {
    for (const [expected, call] of invalidCalls(mm, file, r)) {
      assert.equal(outcome(call), expected, `seed ${SEED}: ${call}`);
    }
  }
  assert.equal(mapsText(mm), before);
  assert.equal(mm.brk(1), mm.startBrk, 'brk below start_brk is refused, never an error');
  // Breaks whose page rounding wraps past 2^64, or beyond TASK_SIZE: refused (checked on 6.18).
  for (const huge of [-1, -3 * P, 2 ** 64 - 1, 2 ** 63, 2 ** 47 + 5, 2 ** 62]) {
    assert.equal(mm.brk(huge), mm.startBrk, `brk(${huge}) is refused`);
  }
  assert.equal(mapsText(mm), before);
  assert.equal(mm.brk(mm.startBrk + 3 * P), mm.startBrk + 3 * P, 'the space is still usable');
});

/** Tree and records agree: sorted, non-overlapping, attached, page-aligned; map_count right. */
function checkInvariants(mm: AddressSpace): void {
  const out = { first: 0, last: 0, value: 0 };
  let q = 0;
  let n = 0;
  let prevEnd = -1;
  while (mm.index.next(q, 2 ** 53 - 1, out) !== 0) {
    const h = out.value;
    assert.equal(mm.arena.start(h), out.first);
    assert.equal(mm.arena.end(h), out.last + 1);
    assert.ok(out.first % P === 0 && (out.last + 1) % P === 0 && out.first < out.last);
    assert.ok(out.first >= prevEnd);
    assert.equal(mm.arena.state(h), VMA_ATTACHED);
    prevEnd = out.last + 1;
    q = out.last + 1;
    n++;
  }
  assert.equal(mm.mapCount, n);
  assert.equal(mm.arena.arena.live, n);
}

test('chaos: random valid and invalid calls keep every invariant; failed calls change nothing', () => {
  const r = rng(SEED + 1);
  const { mm, file } = setup();
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const addr = () =>
    r() < 0.03
      ? ulong(pick([2 ** 53, 2 ** 62, -4096, -(2 ** 20), 2 ** 47]))
      : BASE + Math.floor(r() * 40) * P + (r() < 0.1 ? 123 : 0);
  const len = () => ulong(pick([0, P, 2 * P, 5 * P, 17 * P, 3, -1, 2 ** 50]));
  const prot = () => pick([0, 1, 3, 5, 7, 0x10]);
  for (let i = 0; i < 1500; i++) {
    const before = mapsText(mm);
    const kind = Math.floor(r() * 9);
    let ret = 0;
    let partial = false;
    switch (kind) {
      case 0: {
        const flags = pick([MAP_PRIVATE, MAP_SHARED, 3, 0]) | pick([0, MAP_FIXED]) | pick([MAP_ANONYMOUS, 0]);
        ret = mm.sysMmap(addr(), len(), prot(), flags, pick([-1, file]), pick([0, P, 5]));
        break;
      }
      case 1:
        ret = mm.sysMunmap(addr(), len());
        break;
      case 2:
        ret = mm.sysMprotect(addr(), len(), prot());
        partial = true;
        break;
      case 3: {
        const old = len();
        const flags = pick([0, 1, 3, 5, 7, 8]);
        ret = mm.sysMremap(addr(), old, pick([old, len()]), flags, addr());
        partial = (flags & MREMAP_FIXED) !== 0;
        break;
      }
      case 4:
        ret = mm.sysMadvise(addr(), len(), pick([0, 1, 2, 4, 8, 10, 11, 14, 15, 16, 18, 22, 23, 5]));
        partial = true;
        break;
      case 5:
        ret = mm.sysMlock2(addr(), len(), pick([0, 1, 2]));
        partial = true;
        break;
      case 6:
        ret = mm.sysMunlock(addr(), len());
        partial = true;
        break;
      case 7:
        ret = mm.sysTouch(Math.floor(addr() / P) * P, Math.floor(r() * 8) * P, r() < 0.5);
        break;
      default:
        ret = mm.sysMsync(addr(), len(), pick([1, 4, 2, 6]));
    }
    checkInvariants(mm);
    if (ret < 0 && !partial) {
      assert.equal(
        mapsText(mm),
        before,
        `seed ${SEED + 1} step ${i}: kind ${kind} failed with ${errnoName(-ret)}`,
      );
    }
  }
  mm.destroy();
  assert.equal(mm.arena.arena.live, 0, 'teardown frees every record');
});
