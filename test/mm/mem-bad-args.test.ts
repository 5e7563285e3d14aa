/**
 * Bad arguments to the memory calls of a Process (issue 10): seeded random non-integer, negative,
 * huge (>= 2^47), NaN and unaligned-into-a-hole addresses to the Mmu's loads, stores, copies and
 * page views; unaligned, huge, non-integer and holey ranges to mincore; fork of an exited process;
 * bad descriptors to open/close. Each ends in a VmError or a MemoryFault (never another throw)
 * and changes nothing: the maps text, the page-table entries and the kernel's counts are as before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmError } from '../../src/errno.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import type { Process } from '../../src/kernel/process.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { BASE, P, setup as setupProcess } from '../support/process-fixture.js';

const SEED = Number(process.env.VMSPACE_SEED ?? 20261207);
const CASES = 2000;

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

/**
 * A process with RW pages 0-3 (written), a hole at 4-5, read-only pages 6-7 (read: the zero page),
 * all resident, so that an access starting in a mapped page has nothing left to fault in there.
 */
function setup(): { kernel: Kernel; proc: Process } {
  const { kernel, proc } = setupProcess(2048);
  const anon = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  proc.mm.mmap(BASE, 4 * P, PROT_READ | PROT_WRITE, anon);
  proc.mm.mmap(BASE + 6 * P, 2 * P, PROT_READ, anon);
  const mmu = proc.mm.mmu();
  for (let i = 0; i < 4; i++) mmu.store32(BASE + i * P, i + 1);
  for (let i = 6; i < 8; i++) mmu.load32(BASE + i * P);
  return { kernel, proc };
}

/** Everything a bad call must leave as it was. */
function snapshot(kernel: Kernel, proc: Process): string {
  rcuBarrier();
  kernel.mem.drainAll();
  const entries: string[] = [];
  proc.mm.pt.forEachPresent(0, 2 ** 47, (addr: number, entry: number) => {
    entries.push(`${addr.toString(16)}:${entry.toString(16)}`);
  });
  return JSON.stringify({ maps: proc.maps(), entries, counts: kernel.counts(), pt: proc.mm.pt.live });
}

/** 'ok', a VmError's code, or a MemoryFault's signal and code; any other throw fails the test. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof VmError) return e.code;
    if (e instanceof MemoryFault) return `${e.signal} ${e.code}`;
    throw e;
  }
}

const NON_INTEGERS = [0.5, BASE + 0.5, BASE + 8 * P + 0.25, -1.5, Number.NaN, Infinity, -Infinity];
const OUTSIDE = [
  -1,
  -P,
  -(2 ** 47),
  -(2 ** 52),
  -(2 ** 52) + 5,
  -(2 ** 52) + 4 * P,
  -(2 ** 52) + 100 * P + 8,
  2 ** 47,
  2 ** 47 + P,
  2 ** 52,
  2 ** 53,
  2 ** 64,
];

test(`Mmu accesses at ${CASES} random bad addresses fault (SIGSEGV) and change nothing`, () => {
  const { kernel, proc } = setup();
  const mmu = proc.mm.mmu();
  const r = rng(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const before = snapshot(kernel, proc);
  const buf = new Uint8Array(3 * P);
  // An access of `size` bytes that starts in a mapped page and crosses into the hole (or past the end).
  const crossing = (size: number) => pick([BASE + 4 * P, BASE + 8 * P]) - 1 - Math.floor(r() * (size - 1));
  const access: Array<[number, (a: number) => unknown]> = [
    [1, (a) => mmu.load8(a)],
    [2, (a) => mmu.load16(a)],
    [4, (a) => mmu.load32(a)],
    [8, (a) => mmu.load64(a)],
    [4, (a) => mmu.loadF32(a)],
    [8, (a) => mmu.loadF64(a)],
    [4, (a) => mmu.fetch32(a)],
    [1, (a) => mmu.store8(a, 0xaa)],
    [2, (a) => mmu.store16(a, 0xaaaa)],
    [4, (a) => mmu.store32(a, -1)],
    [8, (a) => mmu.store64(a, -1, -1)],
    [4, (a) => mmu.storeF32(a, 1.5)],
    [8, (a) => mmu.storeF64(a, 1.5)],
  ];
  const seen = new Map<string, number>();
  for (let i = 0; i < CASES; i++) {
    const kind = Math.floor(r() * 4);
    let what: string;
    let fn: () => unknown;
    let allowOk = false;
    if (kind === 0) {
      const [size, call] = pick(access);
      const a = r() < 0.5 ? pick(OUTSIDE) : pick(NON_INTEGERS);
      // The fast path does not check addresses (mmu.ts): a non-integer in a page the TLB holds
      // is an access to the page it falls in.
      allowOk = Number.isFinite(a) && !Number.isInteger(a) && a >= BASE && a < BASE + 8 * P;
      what = `${call} at ${a}`;
      fn = () => call(a);
      void size;
    } else if (kind === 1) {
      const [size, call] = pick(access.filter(([s]) => s > 1));
      const a = crossing(size);
      what = `${call} crossing at 0x${a.toString(16)}`;
      fn = () => call(a);
    } else if (kind === 2) {
      const a =
        r() < 0.3 ? pick(OUTSIDE) : r() < 0.5 ? pick(NON_INTEGERS) : crossing(1 + Math.floor(r() * 2 * P));
      const write = r() < 0.5;
      allowOk = Number.isFinite(a) && !Number.isInteger(a) && a >= BASE && a < BASE + 8 * P;
      what = `page${write ? 'Base' : 'View'} at ${a}`;
      fn = () => (write ? mmu.pageBase(a, r() < 0.5) : mmu.pageView(a, r() < 0.5));
      if (Number.isInteger(a) && a >= BASE && a < BASE + 8 * P) allowOk = true;
    } else {
      const a = r() < 0.5 ? pick(OUTSIDE) : crossing(1 + Math.floor(r() * 2 * P));
      const n = 1 + Math.floor(r() * buf.length);
      const out = r() < 0.5;
      what = `copy${out ? 'Out' : 'In'} ${n} bytes at ${a}`;
      // Copies report the bytes not copied: all of them outside user space, some across a hole.
      fn = () => {
        const left = out ? mmu.copyOut(a, buf.subarray(0, n)) : mmu.copyIn(a, buf.subarray(0, n));
        if (left === 0 && !(Number.isInteger(a) && a >= BASE && a + n <= BASE + 8 * P)) {
          throw new Error(`${what}: everything copied`);
        }
      };
      allowOk = true;
    }
    let o: string;
    try {
      o = outcome(fn);
    } catch (e) {
      throw new Error(`case ${i} (${what}): ${(e as Error).stack}`);
    }
    if (o === 'ok') assert.ok(allowOk, `case ${i} (${what}) did not fault`);
    seen.set(o, (seen.get(o) ?? 0) + 1);
    if (i % 97 === 0) assert.equal(snapshot(kernel, proc), before, `case ${i} (${what}) changed the process`);
  }
  assert.equal(snapshot(kernel, proc), before);
  assert.ok((seen.get('SIGSEGV SEGV_MAPERR') ?? 0) > CASES / 4, JSON.stringify([...seen]));
  proc.exit();
});

test(`mincore with ${CASES} random bad ranges: EINVAL or ENOMEM (as Linux) and nothing changed`, () => {
  const { kernel, proc } = setup();
  const r = rng(SEED + 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const before = snapshot(kernel, proc);
  const seen = new Map<string, number>();
  for (let i = 0; i < CASES; i++) {
    const kind = Math.floor(r() * 5);
    let addr: number;
    let len: number;
    let expected: string;
    if (kind === 0) {
      // Unaligned start: EINVAL whatever the length.
      addr = BASE + Math.floor(r() * 8) * P + 1 + Math.floor(r() * (P - 1));
      len = pick([0, 1, P, 100 * P, 2 ** 47, -1]);
      expected = 'EINVAL';
    } else if (kind === 1) {
      // Non-integers (either argument): EINVAL.
      addr = r() < 0.5 ? pick(NON_INTEGERS) : BASE;
      len = addr === BASE ? pick([0.5, P + 0.25, Number.NaN, Infinity, -Infinity, 2 ** 64]) : P;
      expected = 'EINVAL';
    } else if (kind === 2) {
      // Huge lengths or starts outside user space: ENOMEM.
      addr = pick([BASE, 0, 2 ** 47 - P, 2 ** 47, 2 ** 52]);
      len = pick([2 ** 47, 2 ** 48, 2 ** 53, -P, -1, 2 ** 63]);
      expected = 'ENOMEM';
    } else if (kind === 3) {
      // A range that reaches the hole (pages 4-5) or past the last VMA: ENOMEM.
      const first = Math.floor(r() * 8);
      addr = BASE + first * P;
      const end = first <= 3 ? 5 + Math.floor(r() * 4) : 9 + Math.floor(r() * 8);
      len = (end - first) * P - Math.floor(r() * (P - 1));
      expected = first === 4 || first === 5 || first <= 3 || end > 8 ? 'ENOMEM' : 'ok';
    } else {
      // Negative starts: ulong makes them huge, outside user space (access_ok fails, even for 0).
      addr = pick([-P, -(2 ** 47), -(2 ** 52)]);
      len = pick([P, 0, 2 ** 47]);
      expected = 'ENOMEM';
    }
    const what = `mincore(${addr}, ${len})`;
    let o: string;
    try {
      o = outcome(() => proc.mm.mincore(addr, len));
    } catch (e) {
      throw new Error(`case ${i} (${what}): ${(e as Error).stack}`);
    }
    assert.equal(o, expected, `case ${i}: ${what}`);
    seen.set(o, (seen.get(o) ?? 0) + 1);
    if (i % 97 === 0) assert.equal(snapshot(kernel, proc), before, `case ${i} (${what}) changed the process`);
  }
  assert.equal(snapshot(kernel, proc), before);
  assert.ok(seen.size >= 2, JSON.stringify([...seen]));
  // The good ranges still answer.
  assert.deepEqual([...proc.mm.mincore(BASE, 4 * P)], [1, 1, 1, 1]);
  assert.deepEqual([...proc.mm.mincore(BASE + 6 * P, 2 * P - 5)], [1, 1]);
  proc.exit();
});

test('fork of an exited process is ESRCH; open and close with bad arguments are VmErrors; nothing changes', () => {
  const { kernel, proc } = setup();
  const r = rng(SEED + 2);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const fd = proc.open({ size: 4 * P, writable: true, name: 'f' });
  const before = snapshot(kernel, proc);
  const BAD_FDS = [-1, -(2 ** 31), fd + 1, 1023, 1024, 4096, 2 ** 31, 2 ** 53, 0.5, Number.NaN, Infinity];
  for (let i = 0; i < CASES / 4; i++) {
    const bad = pick(BAD_FDS);
    let o: string;
    try {
      o = outcome(() => proc.close(bad));
    } catch (e) {
      throw new Error(`case ${i}: close(${bad}): ${(e as Error).stack}`);
    }
    assert.equal(o, 'EBADF', `close(${bad})`);
  }
  for (const spec of [
    { size: -P, writable: true, name: 'neg' },
    { size: Number.NaN, writable: false, name: 'nan' },
    { size: 0.5, writable: false, name: 'half' },
    { size: 2 ** 64, writable: false, name: 'huge' },
  ]) {
    const o = (() => {
      try {
        return outcome(() => {
          const f = proc.open(spec);
          proc.close(f);
        });
      } catch (e) {
        throw new Error(`open(${JSON.stringify(spec)}): ${(e as Error).stack}`);
      }
    })();
    assert.equal(o, 'EINVAL', `open(${spec.name})`);
  }
  assert.equal(snapshot(kernel, proc), before);
  proc.close(fd);
  proc.exit();
  const after = kernel.counts();
  for (let i = 0; i < 20; i++) {
    assert.equal(
      outcome(() => proc.fork()),
      'ESRCH',
    );
    assert.equal(
      outcome(() => proc.close(0)),
      'ESRCH',
    );
    assert.equal(
      outcome(() => proc.open({ size: P, writable: false, name: 'g' })),
      'ESRCH',
    );
    assert.equal(
      outcome(() => proc.exit()),
      'ESRCH',
    );
  }
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), after);
  assert.deepEqual(after, KERNEL_EMPTY);
});
