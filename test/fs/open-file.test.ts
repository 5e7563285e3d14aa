/**
 * Opening files and open file descriptions (src/kernel/open.ts, src/fs/open-file.ts,
 * src/fs/fd-table.ts) against real temporary files: open(2)'s flags and host errors as Linux
 * errno with nothing changed, dup and fork sharing one description (one f_pos; FD_CLOEXEC per
 * descriptor), memfd_create, ENOMEM at every allocation and EMFILE before the host file is
 * touched, the f_pos lock on two CPUs, the last close closing the host descriptor on any CPU, and
 * every count back to zero after exit.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { VmError } from '../../src/errno.js';
import { BACKING_HOST, BACKING_MEM } from '../../src/fs/backing.js';
import { MAX_FDS } from '../../src/fs/fd-table.js';
import { PLACE_SHMEM } from '../../src/fs/file-table.js';
import {
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_LARGEFILE,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TMPFILE,
  O_TRUNC,
  O_WRONLY,
} from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import {
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  MFD_HUGETLB,
  MFD_NOEXEC_SEAL,
} from '../../src/kernel/open.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts, lockdepSiteCounts } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { Rng } from '../../src/rng.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { FsCpuArgs, FsCpuResult } from './tasks/fs-cpus.js';

const P = 4096;
const ZERO = KERNEL_EMPTY;
const isRoot = process.getuid?.() === 0;
let dir = '';
let machine: Machine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-open-'));
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
  rmSync(dir, { recursive: true, force: true });
});

function setup(injector?: FailureInjector): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames: 512, injector });
  return { kernel, proc: Process.create(kernel, { rcuFree: false }) };
}

function finish(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), ZERO);
}

/** The errno name a call throws, or 'ok'. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof VmError) return e.code;
    throw e;
  }
}

/** Everything a failed call must leave as it was: counts, descriptors, the next descriptor. */
function state(kernel: Kernel, proc: Process): string {
  const fd = proc.memfdCreate('probe');
  proc.close(fd);
  rcuBarrier();
  return JSON.stringify({ counts: kernel.counts(), fds: proc.fds.count, next: fd });
}

/** The file behind `fd` (the descriptor keeps it alive). */
function fileOf(proc: Process, fd: number): number {
  const file = proc.fds.fget(fd);
  assert.ok(file !== 0, `descriptor ${fd} is not open`);
  proc.kernel.files.put(file);
  return file;
}

/** The description behind `fd` (the descriptor keeps it alive). */
function openOf(proc: Process, fd: number): number {
  const of = proc.fds.fgetOpen(fd);
  assert.ok(of !== 0, `descriptor ${fd} is not open`);
  proc.kernel.opens.put(of);
  return of;
}

test("open: a new description of the host file's one record; its size from fstat; O_CREAT|O_EXCL, O_TRUNC", () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'create.bin');
  const fd = proc.open(path, O_RDWR | O_CREAT | O_EXCL, 0o640);
  assert.equal(fd, 0);
  assert.equal(statSync(path).mode & 0o777, 0o640 & ~process.umask());
  const file = fileOf(proc, fd);
  assert.equal(kernel.files.backing(file), BACKING_HOST);
  assert.equal(kernel.files.size(file), 0);
  assert.equal(kernel.files.name(file), path);
  assert.ok(kernel.files.writable(file));
  assert.equal(
    outcome(() => proc.open(path, O_RDWR | O_CREAT | O_EXCL)),
    'EEXIST',
  );
  writeFileSync(path, new Uint8Array(3 * P + 5).fill(4));
  // Written behind the record's back (its size is the one it had at its first open): a later open
  // of the same host file finds that record, as Linux finds the inode.
  const ro = proc.open(path, O_RDONLY);
  const roFile = fileOf(proc, ro);
  assert.equal(roFile, file, 'one record per host file');
  assert.notEqual(openOf(proc, ro), openOf(proc, fd), 'another description');
  assert.equal(kernel.files.size(roFile), 0);
  const fresh = join(dir, 'fresh.bin');
  writeFileSync(fresh, new Uint8Array(3 * P + 5).fill(4));
  const fr = proc.open(fresh, O_RDONLY);
  assert.notEqual(fileOf(proc, fr), file);
  assert.equal(kernel.files.size(fileOf(proc, fr)), 3 * P + 5);
  const tr = proc.open(fresh, O_WRONLY | O_TRUNC);
  assert.equal(fileOf(proc, tr), fileOf(proc, fr));
  assert.equal(kernel.files.size(fileOf(proc, tr)), 0);
  assert.equal(statSync(fresh).size, 0);
  assert.equal(kernel.opens.flags(openOf(proc, tr)), O_WRONLY | O_LARGEFILE, 'O_TRUNC is not kept');
  // A long path keeps its last component as the display name.
  mkdirSync(join(dir, 'd'.repeat(200)));
  const deep = join(dir, 'd'.repeat(200), 'e'.repeat(200));
  const lf = proc.open(deep, O_RDWR | O_CREAT);
  assert.equal(kernel.files.name(fileOf(proc, lf)), 'e'.repeat(200));
  assert.equal(kernel.counts().openFiles, 5);
  finish(kernel, proc);
});

test('open: host errors are Linux errno and change nothing (no descriptor, no record, no host file)', () => {
  const { kernel, proc } = setup();
  const keep = proc.memfdCreate('keep');
  const regular = join(dir, 'regular.bin');
  writeFileSync(regular, new Uint8Array(10));
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  const link = join(dir, 'link');
  symlinkSync(regular, link);
  const before = state(kernel, proc);
  const listing = readdirSync(dir).sort();
  const cases: [string, number, string][] = [
    [join(dir, 'missing'), O_RDONLY, 'ENOENT'],
    [join(dir, 'missing', 'x'), O_RDWR | O_CREAT, 'ENOENT'],
    [sub, O_RDONLY, 'EISDIR'],
    [sub, O_RDWR, 'EISDIR'],
    [sub, O_RDONLY | O_DIRECTORY, 'EISDIR'],
    [join(regular, 'x'), O_RDONLY, 'ENOTDIR'],
    [regular, O_RDONLY | O_DIRECTORY, 'ENOTDIR'],
    [link, O_RDONLY | O_NOFOLLOW, 'ELOOP'],
    [regular, O_RDWR | O_CREAT | O_EXCL, 'EEXIST'],
    ['/dev/null', O_RDWR, 'ENXIO'],
    ['', O_RDONLY, 'ENOENT'],
    [join(dir, 'x'.repeat(300)), O_RDWR | O_CREAT, 'ENAMETOOLONG'],
    [`${dir}/${'y/'.repeat(2100)}`, O_RDONLY, 'ENAMETOOLONG'],
    [join(dir, 'tmp'), O_RDWR | O_TMPFILE, 'EOPNOTSUPP'],
    [regular, O_PATH, 'EOPNOTSUPP'],
    [regular, 3, 'EINVAL'],
  ];
  for (const [path, flags, code] of cases) {
    assert.equal(
      outcome(() => proc.open(path, flags)),
      code,
      `open(${path.slice(0, 60)}, 0o${flags.toString(8)})`,
    );
  }
  assert.deepEqual(readdirSync(dir).sort(), listing, 'no host file was created');
  assert.equal(state(kernel, proc), before);
  // Through a symlink without O_NOFOLLOW: the target.
  const viaLink = proc.open(link, O_RDONLY);
  assert.equal(kernel.files.size(fileOf(proc, viaLink)), 10);
  proc.close(viaLink);
  if (!isRoot) {
    writeFileSync(join(dir, 'locked'), 'x', { mode: 0o200 });
    assert.equal(
      outcome(() => proc.open(join(dir, 'locked'), O_RDONLY)),
      'EACCES',
    );
    assert.equal(
      outcome(() => proc.open(join(dir, 'locked'), O_WRONLY)),
      'EACCES',
      'O_WRONLY needs read too',
    );
  }
  proc.close(keep);
  finish(kernel, proc);
});

test('f_flags keep the access mode and status flags; FD_CLOEXEC is per descriptor: O_CLOEXEC sets it, dup clears it, fork keeps it', () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'flags.bin');
  writeFileSync(path, 'abc');
  const a = proc.open(path, O_RDWR | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_CREAT);
  const of = openOf(proc, a);
  assert.equal(kernel.opens.flags(of), O_RDWR | O_APPEND | O_NONBLOCK | O_LARGEFILE);
  assert.ok(kernel.opens.readable(of) && kernel.opens.writable(of));
  assert.equal(proc.fds.cloexec(a), 1);
  const b = proc.dup(a);
  assert.equal(proc.fds.cloexec(b), 0);
  assert.equal(openOf(proc, b), of, 'dup shares the description');
  const w = proc.open(path, O_WRONLY);
  assert.ok(!kernel.opens.readable(openOf(proc, w)) && kernel.opens.writable(openOf(proc, w)));
  const child = proc.fork();
  assert.equal(child.fds.cloexec(a), 1);
  assert.equal(child.fds.cloexec(b), 0);
  assert.equal(openOf(child, a), of, 'the child shares the parent description');
  assert.equal(kernel.opens.refs(of), 4, 'two descriptors in each process');
  assert.equal(proc.fds.cloexec(99), -9);
  finish(kernel, proc, child);
});

test('dup and fork share one description (one f_pos); a second open has its own; the last close puts it', () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'pos.bin');
  writeFileSync(path, new Uint8Array(P));
  const fd = proc.open(path, O_RDWR);
  const dupFd = proc.dup(fd);
  const other = proc.open(path, O_RDWR);
  const child = proc.fork();
  const setPos = (p: Process, d: number, pos: number) => {
    const o = p.fds.fgetOpen(d);
    p.fds.opens.lockPos(o);
    p.fds.opens.setPos(o, pos);
    p.fds.opens.unlockPos(o);
    p.fds.opens.put(o);
  };
  const getPos = (p: Process, d: number) => p.fds.opens.pos(openOf(p, d));
  setPos(proc, fd, 1234);
  assert.equal(getPos(proc, dupFd), 1234);
  assert.equal(getPos(child, fd), 1234);
  assert.equal(getPos(child, dupFd), 1234);
  assert.equal(getPos(proc, other), 0, 'another open, another description');
  setPos(child, dupFd, 2 ** 40 + 3);
  assert.equal(getPos(proc, fd), 2 ** 40 + 3, 'f_pos is a 64-bit position, shared with the child');
  const of = openOf(proc, fd);
  const hostFd = kernel.files.hostFd(kernel.opens.file(of));
  proc.close(fd);
  child.close(fd);
  proc.close(dupFd);
  assert.ok(kernel.opens.isOpen(of), 'the child still has a descriptor');
  assert.equal(fstatSync(hostFd).size, P);
  child.close(dupFd);
  assert.ok(!kernel.opens.isOpen(of));
  assert.equal(
    fstatSync(hostFd).size,
    P,
    'the other open still holds the file (one record, one host descriptor)',
  );
  proc.close(other);
  child.close(other);
  assert.throws(() => fstatSync(hostFd), { code: 'EBADF' });
  assert.equal(
    outcome(() => proc.close(fd)),
    'EBADF',
  );
  assert.equal(
    outcome(() => proc.dup(fd)),
    'EBADF',
  );
  finish(kernel, proc, child);
});

test('memfd_create: an O_RDWR memory file named memfd:NAME; bad flags and names are EINVAL or EFAULT', () => {
  const { kernel, proc } = setup();
  const fd = proc.memfdCreate('cache', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  const file = fileOf(proc, fd);
  assert.equal(kernel.files.backing(file), BACKING_MEM);
  assert.equal(kernel.files.name(file), 'memfd:cache');
  assert.equal(kernel.files.size(file), 0);
  assert.equal(kernel.files.placement(file), PLACE_SHMEM);
  assert.ok(kernel.files.writable(file));
  assert.equal(kernel.opens.flags(openOf(proc, fd)), O_RDWR | O_LARGEFILE);
  assert.equal(proc.fds.cloexec(fd), 1);
  assert.equal(proc.fds.cloexec(proc.memfdCreate('', MFD_NOEXEC_SEAL)), 0);
  assert.equal(proc.fds.cloexec(proc.memfdCreate('x'.repeat(249), MFD_EXEC)), 0);
  // A shared writable mapping of it is allowed (mmap sees the description's file).
  const addr = proc.mm.mmap(0, P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  assert.ok(addr > 0);
  const before = state(kernel, proc);
  const bad: [unknown, unknown, string][] = [
    ['y'.repeat(250), 0, 'EINVAL'],
    ['a\0b', 0, 'EINVAL'],
    ['n', 0x20, 'EINVAL'],
    ['n', MFD_HUGETLB, 'EINVAL'],
    ['n', MFD_EXEC | MFD_NOEXEC_SEAL, 'EINVAL'],
    ['n', 0.5, 'EINVAL'],
    ['n', Number.NaN, 'EINVAL'],
    [null, 0, 'EFAULT'],
    [42, 0, 'EFAULT'],
  ];
  for (const [name, flags, code] of bad) {
    assert.equal(
      outcome(() => proc.memfdCreate(name as string, flags as number)),
      code,
      `memfd_create(${String(name).slice(0, 20)}, ${flags})`,
    );
  }
  assert.equal(state(kernel, proc), before);
  finish(kernel, proc);
});

test('mmap through the new descriptors: the access mode of the host open decides MAP_SHARED|PROT_WRITE', () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'map.bin');
  writeFileSync(path, new Uint8Array(4 * P));
  const ro = proc.open(path, O_RDONLY);
  const rw = proc.open(path, O_RDWR);
  const RW = PROT_READ | PROT_WRITE;
  assert.equal(
    outcome(() => proc.mm.mmap(0, P, RW, MAP_SHARED, ro, 0)),
    'EACCES',
  );
  assert.equal(
    outcome(() => proc.mm.mmap(0, P, PROT_READ, MAP_SHARED, ro, 0)),
    'ok',
  );
  assert.equal(
    outcome(() => proc.mm.mmap(0, P, RW, MAP_SHARED, rw, 0)),
    'ok',
  );
  const file = fileOf(proc, rw);
  proc.close(rw);
  assert.ok(kernel.files.isFile(file), 'the mapping keeps the file');
  assert.equal(kernel.counts().openFiles, 1);
  finish(kernel, proc);
});

test('random bad arguments to open, memfd_create, dup and close: the errno, nothing changed', () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'sweep.bin');
  writeFileSync(path, new Uint8Array(P));
  const fd = proc.open(path, O_RDWR);
  const r = new Rng(20240611);
  const pick = <T>(xs: readonly T[]): T => xs[r.below(xs.length)];
  const BAD_FDS = [-1, -(2 ** 31), fd + 1, 1023, 1024, 2 ** 31, 0.5, Number.NaN, Infinity];
  const BAD_NUMBERS = [0.5, Number.NaN, Infinity, -Infinity, 2 ** 64, -(2 ** 63) - 4096];
  const before = state(kernel, proc);
  const created = join(dir, 'never-created');
  for (let i = 0; i < 400; i++) {
    const kind = r.below(6);
    let call: () => unknown;
    let expect: string;
    if (kind === 0) {
      const flags = pick(BAD_NUMBERS);
      call = () => proc.open(created, flags as number);
      expect = 'EINVAL';
    } else if (kind === 1) {
      const mode = pick(BAD_NUMBERS);
      call = () => proc.open(created, O_RDWR | O_CREAT, mode as number);
      expect = 'EINVAL';
    } else if (kind === 2) {
      const p = pick([null, undefined, 7, {}, ['a']]);
      call = () => proc.open(p as unknown as string, O_RDWR | O_CREAT);
      expect = 'EFAULT';
    } else if (kind === 3) {
      // Any flags with access mode 3, O_PATH or O_TMPFILE bits.
      const extra = r.next() & ~(O_PATH | O_TMPFILE | 3);
      const f = pick([3 | extra, O_PATH | extra, O_TMPFILE | (extra & ~3)]);
      call = () => proc.open(created, f);
      expect = (f & 3) === 3 ? 'EINVAL' : 'EOPNOTSUPP';
    } else if (kind === 4) {
      const bad = pick(BAD_FDS);
      call = () => (r.below(2) === 0 ? proc.dup(bad) : proc.close(bad));
      expect = 'EBADF';
    } else {
      call = () => proc.memfdCreate('m', (r.next() | 0x20) & ~0x1f);
      expect = 'EINVAL';
    }
    assert.equal(outcome(call), expect, `case ${i} (kind ${kind})`);
  }
  assert.ok(!existsSync(created), 'no host file was created');
  assert.equal(state(kernel, proc), before);
  assert.equal(readFileSync(path).length, P);
  finish(kernel, proc);
});

test('ENOMEM at every allocation of open and memfd_create: nothing allocated, no host file created or truncated', () => {
  const injector = new FailureInjector();
  const { kernel, proc } = setup(injector);
  const keep = proc.memfdCreate('keep');
  const existing = join(dir, 'keep-size.bin');
  writeFileSync(existing, new Uint8Array(2 * P).fill(1));
  const calls: [string, () => number][] = [
    ['create', () => proc.open(join(dir, 'enomem.bin'), O_RDWR | O_CREAT | O_EXCL)],
    ['trunc', () => proc.open(existing, O_RDWR | O_TRUNC)],
    ['memfd', () => proc.memfdCreate('m')],
  ];
  for (const [what, call] of calls) {
    let failures = 0;
    for (let k = 0; k < 10; k++) {
      const before = state(kernel, proc);
      injector.failAfter(k);
      let fd = -1;
      const o = outcome(() => {
        fd = call();
      });
      injector.disarm();
      if (o === 'ok') {
        proc.close(fd);
        rmSync(join(dir, 'enomem.bin'), { force: true });
        writeFileSync(existing, new Uint8Array(2 * P).fill(1));
        assert.ok(failures > 0, `${what}: succeeded at k=${k} before any failure`);
        break;
      }
      failures++;
      assert.equal(o, 'ENOMEM', `${what} at allocation ${k}`);
      assert.equal(state(kernel, proc), before, `${what} at allocation ${k}`);
      assert.ok(!existsSync(join(dir, 'enomem.bin')), `${what} at allocation ${k}: a file was created`);
      assert.equal(statSync(existing).size, 2 * P, `${what} at allocation ${k}: truncated`);
    }
    assert.equal(failures, 2, `${what}: the file record and the description`);
  }
  proc.close(keep);
  finish(kernel, proc);
});

test('EMFILE comes before the host file is touched: with the table full, O_CREAT creates nothing', () => {
  const { kernel, proc } = setup();
  const first = proc.memfdCreate('fill');
  for (let i = 1; i < MAX_FDS; i++) assert.equal(proc.dup(first), i);
  const path = join(dir, 'emfile.bin');
  assert.equal(
    outcome(() => proc.open(path, O_RDWR | O_CREAT)),
    'EMFILE',
  );
  assert.ok(!existsSync(path));
  assert.equal(
    outcome(() => proc.memfdCreate('more')),
    'EMFILE',
  );
  assert.equal(
    outcome(() => proc.dup(first)),
    'EMFILE',
  );
  // The argument checks still come first, as in Linux.
  assert.equal(
    outcome(() => proc.open(path, 3)),
    'EINVAL',
  );
  assert.equal(
    outcome(() => proc.memfdCreate('m', 0x40)),
    'EINVAL',
  );
  assert.equal(kernel.counts().openFiles, 1);
  assert.equal(kernel.counts().files, 1);
  proc.close(77);
  assert.equal(proc.open(path, O_RDWR | O_CREAT), 77, 'the lowest free descriptor');
  assert.ok(existsSync(path));
  finish(kernel, proc);
});

test('the f_pos lock on two CPUs: a parent and its forked child bump one shared position, no update lost', async () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'race.bin');
  writeFileSync(path, 'x');
  const fd = proc.open(path, O_RDWR);
  const child = proc.fork();
  const task = new URL('./tasks/fs-cpus.js', import.meta.url);
  const sync = new SharedArrayBuffer(4);
  const ROUNDS = 20_000;
  const args = (p: Process): FsCpuArgs => ({
    role: 'pos',
    process: p.describe(),
    fd,
    rounds: ROUNDS,
    cpus: 2,
    sync,
  });
  const [[a], [b]] = await Promise.all([
    machine.run<FsCpuResult>(task, args(proc), [0]),
    machine.run<FsCpuResult>(task, args(child), [1]),
  ]);
  assert.equal(a.error, '', a.error);
  assert.equal(b.error, '', b.error);
  assert.equal(kernel.opens.pos(openOf(proc, fd)), 2 * ROUNDS);
  finish(kernel, proc, child);
});

test('the last close on another CPU puts the file there and closes the host descriptor', async () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'remote-close.bin');
  writeFileSync(path, new Uint8Array(P));
  const fd = proc.open(path, O_RDWR);
  const hostFd = kernel.files.hostFd(fileOf(proc, fd));
  const task = new URL('./tasks/fs-cpus.js', import.meta.url);
  const [[r]] = await Promise.all([
    machine.run<FsCpuResult>(
      task,
      { role: 'close', process: proc.describe(), fd, rounds: 0, cpus: 1, sync: new SharedArrayBuffer(4) },
      [1],
    ),
  ]);
  assert.equal(r.error, '', r.error);
  assert.equal(kernel.counts().openFiles, 0);
  assert.equal(kernel.counts().files, 0);
  assert.throws(() => fstatSync(hostFd), { code: 'EBADF' });
  finish(kernel, proc);
});

test('exit closes every descriptor of every kind: host descriptors closed, every count back to zero', () => {
  const { kernel, proc } = setup();
  const hostFds: number[] = [];
  for (let i = 0; i < 20; i++) {
    const fd = proc.open(join(dir, `exit-${i}.bin`), O_RDWR | O_CREAT | (i % 2 === 0 ? O_CLOEXEC : 0));
    hostFds.push(kernel.files.hostFd(fileOf(proc, fd)));
    proc.dup(fd);
    proc.memfdCreate(`m${i}`);
    proc.open({ size: P, writable: i % 3 === 0, name: `spec-${i}` });
  }
  const child = proc.fork();
  proc.exit();
  for (const h of hostFds) assert.equal(fstatSync(h).size, 0, 'the child keeps them open');
  assert.equal(kernel.counts().openFiles, 60);
  finish(kernel, child);
  for (const h of hostFds) assert.throws(() => fstatSync(h), { code: 'EBADF' });
});

test('a host file whose last reference was its mapping is released after munmap drops mmap_lock (delayed fput)', () => {
  assert.ok(lockHooks.on, 'the suite runs with the validator on');
  const { kernel, proc } = setup();
  const path = join(dir, 'last-map.bin');
  writeFileSync(path, new Uint8Array(2 * P));
  const mmapIo = () => lockdepCounts().mmap_io;
  const releaseSite = () => lockdepSiteCounts().find((s) => s.site === 'fs.host.release')?.io ?? 0;
  const before = mmapIo();
  for (const unmap of ['munmap', 'exit'] as const) {
    const p = unmap === 'exit' ? Process.create(kernel, { rcuFree: false }) : proc;
    const fd = p.open(path, O_RDWR);
    const addr = p.mm.mmap(0, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const hostFd = kernel.files.hostFd(fileOf(p, fd));
    p.close(fd);
    assert.equal(fstatSync(hostFd).size, 2 * P, 'the mapping keeps the file open');
    if (unmap === 'munmap') p.mm.munmap(addr, 2 * P);
    else p.exit();
    assert.throws(() => fstatSync(hostFd), { code: 'EBADF' }, `${unmap}: the host descriptor is closed`);
    assert.equal(kernel.counts().files, 0);
  }
  assert.equal(mmapIo(), before, 'no I/O under mmap_lock');
  assert.equal(releaseSite(), 0);
  finish(kernel, proc);
});
