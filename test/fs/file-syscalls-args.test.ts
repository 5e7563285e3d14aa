/**
 * Random bad arguments to every file syscall (src/kernel/file-syscalls.ts): each call gets seeded
 * draws from pools of good and bad values per argument; a small oracle, written from Linux's order
 * of checks (man pages and fs/read_write.c, fs/open.c), says which errno the draw must give. Every
 * draw the oracle says fails is made, and must throw exactly that errno and change nothing: not the
 * counts, the sizes, the file positions, the cached bytes, nor the host file (msync included:
 * the file is mapped shared with a dirty page, which a failing msync must not write back).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { O_RDONLY, O_RDWR, O_WRONLY } from '../../src/fs/open-file.js';
import {
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  MAX_FILE_BYTES,
} from '../../src/kernel/file-syscalls.js';
import type { Process } from '../../src/kernel/process.js';
import { MAP_SHARED, MS_ASYNC, MS_INVALIDATE, MS_SYNC, PROT_NONE } from '../../src/mm/vm-flags.js';
import { Rng } from '../../src/rng.js';
import { buffer, finish, outcome, P, pattern, peek, poke, RW, reopen, setup } from './file-syscalls-util.js';

const U64 = 2 ** 64;
const TASK_SIZE = 2 ** 47 - P;
const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-fileio-args-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** What C would receive, or NaN: an int keeps its low 32 bits; unsigned long / loff_t wrap at 2^64. */
function asInt(x: number): number {
  return Number.isSafeInteger(x) ? x | 0 : Number.NaN;
}
function asUlong(x: number): number {
  if (!Number.isInteger(x) || x < -(2 ** 63) || x >= U64) return Number.NaN;
  return x < 0 ? U64 + x : x;
}
function asLoff(x: number): number {
  if (!Number.isInteger(x) || x < -(2 ** 63) || x >= U64) return Number.NaN;
  return x >= 2 ** 63 ? x - U64 : x;
}

interface World {
  proc: Process;
  path: string;
  size: number;
  rw: number;
  ro: number;
  wo: number;
  closed: number;
  buf: number;
  none: number;
  unmapped: number;
  probe: number;
  /** A MAP_SHARED mapping of the file with a dirty page, and a locked one (msync). */
  map: number;
  locked: number;
}

function world(): World & { kernel: ReturnType<typeof setup>['kernel'] } {
  const { kernel, proc } = setup();
  const size = 3 * P + 77;
  const path = join(dir, 'args.bin');
  writeFileSync(path, pattern(40, 0, size));
  const rw = proc.open(path, O_RDWR);
  const ro = reopen(proc, rw, O_RDONLY);
  const wo = reopen(proc, rw, O_WRONLY);
  const closed = proc.memfdCreate('closed');
  proc.close(closed);
  const buf = buffer(proc, 2 * P);
  const none = buffer(proc, P);
  proc.mm.mprotect(none, P, PROT_NONE);
  const probe = buffer(proc, 4 * P);
  const map = proc.mm.mmap(0, 4 * P, RW, MAP_SHARED, rw, 0);
  proc.mm.mmu().store32(map + 8, 0x5a5a5a5a); // dirty: a failing msync must not write it back
  const locked = proc.mm.mmap(0, P, RW, MAP_SHARED, rw, 0);
  proc.mm.mlock(locked, P);
  const unmapped = buffer(proc, P); // last: no later mapping takes its place
  proc.mm.munmap(unmapped, P);
  return { kernel, proc, path, size, rw, ro, wo, closed, buf, none, unmapped, probe, map, locked };
}

/** Everything a failing call must leave alone. */
function snapshot(w: World, kernel: ReturnType<typeof setup>['kernel']): string {
  const { proc } = w;
  const pos = [w.rw, w.ro, w.wo].map((fd) => {
    const of = proc.fds.fgetOpen(fd);
    const p = proc.fds.opens.pos(of);
    proc.fds.opens.put(of);
    return p;
  });
  assert.equal(proc.pread(w.rw, w.probe, 4 * P, 0), w.size);
  const bytes = peek(proc, w.probe, w.size);
  return JSON.stringify({
    counts: kernel.counts(),
    size: proc.fstat(w.rw).size,
    pos,
    cache: Buffer.from(bytes).toString('base64'),
    host: readFileSync(w.path).toString('base64'),
  });
}

type Args = number[];
interface Call {
  name: string;
  pools: (w: World) => number[][];
  oracle: (w: World, a: Args) => string;
  run: (w: World, a: Args) => unknown;
}

const FD_POOL = (w: World) => [w.rw, w.ro, w.wo, w.closed, -1, 5000, 2 ** 32 + w.rw, 1.5, Number.NaN];
const ADDR_POOL = (w: World) => [w.buf, w.buf + P, w.none, w.unmapped, -1, TASK_SIZE, 2 ** 47, 0.5, 2 ** 64];
const LEN_POOL = [0, 100, P + 1, -1, 2 ** 47, U64 - 1, 1.5, Number.NaN];
const OFF_POOL = [0, 100, 2 * P, -1, -(2 ** 63), 2 ** 63, 2 ** 62, MAX_FILE_BYTES, 1.5];

/** Open, and with the access asked; EBADF otherwise. */
function fdErr(w: World, fd: number, access: 'r' | 'w' | 'any'): string {
  if (fd !== w.rw && fd !== w.ro && fd !== w.wo) return 'EBADF';
  if (access === 'r' && fd === w.wo) return 'EBADF';
  if (access === 'w' && fd === w.ro) return 'EBADF';
  return '';
}
function badBuffer(w: World, addr: number): boolean {
  return addr === w.none || addr === w.unmapped;
}

const CALLS: Call[] = [
  {
    name: 'read',
    pools: (w) => [FD_POOL(w), ADDR_POOL(w), LEN_POOL],
    oracle(w, [fd0, a0, l0]) {
      const [fd, a, l] = [asInt(fd0), asUlong(a0), asUlong(l0)];
      if (Number.isNaN(fd + a + l)) return 'EINVAL';
      const e = fdErr(w, fd, 'r');
      if (e) return e;
      if (a + l > TASK_SIZE) return 'EFAULT';
      if (l === 0) return 'ok';
      return badBuffer(w, a) ? 'EFAULT' : 'ok';
    },
    run: (w, [fd, a, l]) => w.proc.read(fd, a, l),
  },
  {
    name: 'pread',
    pools: (w) => [FD_POOL(w), ADDR_POOL(w), LEN_POOL, OFF_POOL],
    oracle(w, [fd0, a0, l0, o0]) {
      const [fd, a, l, o] = [asInt(fd0), asUlong(a0), asUlong(l0), asLoff(o0)];
      if (Number.isNaN(fd + a + l + o)) return 'EINVAL';
      if (o < 0) return 'EINVAL';
      const e = fdErr(w, fd, 'r');
      if (e) return e;
      if (a + l > TASK_SIZE) return 'EFAULT';
      if (o + l >= 2 ** 63) return 'EINVAL';
      if (l === 0 || o >= w.size) return 'ok';
      return badBuffer(w, a) ? 'EFAULT' : 'ok';
    },
    run: (w, [fd, a, l, o]) => w.proc.pread(fd, a, l, o),
  },
  {
    name: 'write',
    pools: (w) => [FD_POOL(w), ADDR_POOL(w), LEN_POOL],
    oracle(w, [fd0, a0, l0]) {
      const [fd, a, l] = [asInt(fd0), asUlong(a0), asUlong(l0)];
      if (Number.isNaN(fd + a + l)) return 'EINVAL';
      const e = fdErr(w, fd, 'w');
      if (e) return e;
      if (a + l > TASK_SIZE) return 'EFAULT';
      if (l === 0) return 'ok';
      return badBuffer(w, a) ? 'EFAULT' : 'ok';
    },
    run: (w, [fd, a, l]) => w.proc.write(fd, a, l),
  },
  {
    name: 'pwrite',
    pools: (w) => [FD_POOL(w), ADDR_POOL(w), LEN_POOL, OFF_POOL],
    oracle(w, [fd0, a0, l0, o0]) {
      const [fd, a, l, o] = [asInt(fd0), asUlong(a0), asUlong(l0), asLoff(o0)];
      if (Number.isNaN(fd + a + l + o)) return 'EINVAL';
      if (o < 0) return 'EINVAL';
      const e = fdErr(w, fd, 'w');
      if (e) return e;
      if (a + l > TASK_SIZE) return 'EFAULT';
      if (o + l >= 2 ** 63) return 'EINVAL';
      if (l === 0) return 'ok';
      if (o >= MAX_FILE_BYTES) return 'EFBIG';
      return badBuffer(w, a) ? 'EFAULT' : 'ok';
    },
    run: (w, [fd, a, l, o]) => w.proc.pwrite(fd, a, l, o),
  },
  {
    name: 'lseek',
    pools: (w) => [
      FD_POOL(w),
      [0, 10, -1, -(2 ** 62), 2 ** 63, MAX_FILE_BYTES + 1, w.size, 1.5],
      [0, 1, 2, 3, 4, 5, -1, 2 ** 32, 1.5],
    ],
    oracle(w, [fd0, o0, wh0]) {
      const [fd, o, wh] = [asInt(fd0), asLoff(o0), asInt(wh0)];
      if (Number.isNaN(fd + o + wh)) return 'EINVAL';
      const e = fdErr(w, fd, 'any');
      if (e) return e;
      if (wh < 0 || wh > 4) return 'EINVAL';
      if ((wh === 3 || wh === 4) && (o < 0 || o >= w.size)) return 'ENXIO';
      const target = wh === 2 ? w.size + o : o; // every position is 0
      if (wh !== 4 && (target < 0 || target > MAX_FILE_BYTES)) return 'EINVAL';
      return 'ok';
    },
    run: (w, [fd, o, wh]) => w.proc.lseek(fd, o, wh),
  },
  {
    name: 'ftruncate',
    pools: (w) => [FD_POOL(w), [-1, -(2 ** 63), 2 ** 63, MAX_FILE_BYTES + 1, w.size, 1.5, Number.NaN]],
    oracle(w, [fd0, l0]) {
      const [fd, l] = [asInt(fd0), asLoff(l0)];
      if (Number.isNaN(fd + l)) return 'EINVAL';
      if (l < 0) return 'EINVAL';
      const e = fdErr(w, fd, 'any');
      if (e) return e;
      if (fd === w.ro) return 'EINVAL';
      if (l > MAX_FILE_BYTES) return 'EFBIG';
      return l === w.size ? 'ok' : 'ok-changes';
    },
    run: (w, [fd, l]) => w.proc.ftruncate(fd, l),
  },
  {
    name: 'fallocate',
    pools: (w) => [
      FD_POOL(w),
      [
        PUNCH,
        0,
        FALLOC_FL_KEEP_SIZE,
        FALLOC_FL_PUNCH_HOLE,
        PUNCH | FALLOC_FL_ZERO_RANGE,
        FALLOC_FL_COLLAPSE_RANGE | 1,
        0x100,
        1.5,
      ],
      [0, 100, -1, MAX_FILE_BYTES, 2 ** 63, 1.5],
      [0, 1, P, -1, MAX_FILE_BYTES, 1.5],
    ],
    oracle(w, [fd0, m0, o0, l0]) {
      const [fd, m, o, l] = [asInt(fd0), asInt(m0), asLoff(o0), asLoff(l0)];
      if (Number.isNaN(fd + m + o + l)) return 'EINVAL';
      const e = fdErr(w, fd, 'any');
      if (e) return e;
      if (o < 0 || l <= 0) return 'EINVAL';
      const modeOk = [0, FALLOC_FL_KEEP_SIZE, PUNCH, FALLOC_FL_COLLAPSE_RANGE].includes(m);
      if (!modeOk) return 'EOPNOTSUPP';
      if (fd === w.ro) return 'EBADF';
      if (o + l > MAX_FILE_BYTES) return 'EFBIG';
      if (m !== PUNCH) return 'EOPNOTSUPP';
      return 'ok-changes';
    },
    run: (w, [fd, m, o, l]) => w.proc.fallocate(fd, m, o, l),
  },
  {
    name: 'fsync',
    pools: (w) => [FD_POOL(w)],
    oracle(w, [fd0]) {
      const fd = asInt(fd0);
      if (Number.isNaN(fd)) return 'EINVAL';
      return fdErr(w, fd, 'any') || 'ok';
    },
    run: (w, [fd]) => w.proc.fsync(fd),
  },
  {
    name: 'msync',
    pools: (w) => [
      [w.map, w.map + 8, w.locked, w.unmapped, w.buf, w.none, 0, U64 - 2 * P, 1.5, Number.NaN, 2 ** 47],
      [0, 1, P, 4 * P, 2 ** 47, 2 ** 63, -1, 1.5, Number.NaN],
      [MS_ASYNC, MS_SYNC, MS_INVALIDATE, MS_ASYNC | MS_SYNC, MS_SYNC | MS_INVALIDATE, 8, -1, 1.5],
    ],
    oracle(w, [a0, l0, f0]) {
      const [a, l, f] = [asUlong(a0), asUlong(l0), asInt(f0)];
      if (Number.isNaN(a + l + f)) return 'EINVAL';
      if ((f & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) !== 0 || a % P !== 0) return 'EINVAL';
      if ((f & MS_ASYNC) !== 0 && (f & MS_SYNC) !== 0) return 'EINVAL';
      // PAGE_ALIGN wraps on 64 bits (-1 becomes 0: nothing to do); an end that wraps is ENOMEM.
      const aligned = Math.ceil(l / P) * P;
      const end = a + (aligned >= U64 ? aligned - U64 : aligned);
      if (end >= U64) return 'ENOMEM';
      if (end === a) return 'ok';
      return msyncWalk(w, a, end, f);
    },
    run: (w, [a, l, f]) => w.proc.mm.msync(a, l, f),
  },
];

/**
 * msync's walk over the VMAs (from /proc/pid/maps), as mm/msync.c: ENOMEM where no VMA is left or
 * a hole is met (at once for plain MS_ASYNC, else at the end), EBUSY at a locked VMA under
 * MS_INVALIDATE; a walk that reaches a shared file VMA under MS_SYNC writes it back ('ok-changes').
 */
function msyncWalk(w: World, start: number, end: number, flags: number): string {
  const vmas = w.proc
    .maps()
    .trim()
    .split('\n')
    .map((line) => {
      const [range, perms] = line.split(' ');
      const [s, e] = range.split('-').map((x) => Number.parseInt(x, 16));
      return { s, e, shared: perms[3] === 's' };
    });
  let hole = false;
  for (const v of vmas) {
    if (v.e <= start) continue;
    if (start < v.s) {
      if (flags === MS_ASYNC) return 'ENOMEM';
      start = v.s;
      if (start >= end) return 'ENOMEM';
      hole = true;
    }
    if ((flags & MS_INVALIDATE) !== 0 && v.s === w.locked) return 'EBUSY';
    if ((flags & MS_SYNC) !== 0 && v.shared) return 'ok-changes';
    start = v.e;
    if (start >= end) return hole ? 'ENOMEM' : 'ok';
  }
  return 'ENOMEM';
}

test('random bad arguments to every file syscall: the errno Linux gives, in its order, and nothing changed', () => {
  const w = world();
  poke(w.proc, w.buf, pattern(41, 0, 2 * P));
  const rng = new Rng(Number(process.env.VMSPACE_SEED ?? 20_261_207));
  const before = snapshot(w, w.kernel);
  const made = new Map<string, number>();
  const errnos = new Map<string, Set<string>>();
  for (const call of CALLS) {
    errnos.set(call.name, new Set());
    const pools = call.pools(w);
    let n = 0;
    // Bounded: draws per call; most of them fail by construction of the pools.
    for (let draw = 0; draw < 400 && n < 120; draw++) {
      const args = pools.map((pool) => pool[rng.below(pool.length)]);
      const want = call.oracle(w, args);
      if (want.startsWith('ok')) continue;
      n++;
      const got = outcome(() => call.run(w, args));
      assert.equal(got, want, `${call.name}(${args.join(', ')})`);
      errnos.get(call.name)?.add(got);
    }
    made.set(call.name, n);
    assert.equal(snapshot(w, w.kernel), before, `${call.name}: a failing call changed something`);
  }
  for (const [name, n] of made) assert.ok(n >= 30, `${name}: only ${n} failing draws`);
  assert.deepEqual([...(errnos.get('msync') ?? [])].sort(), ['EBUSY', 'EINVAL', 'ENOMEM']);
  finish(w.kernel, w.proc);
});
