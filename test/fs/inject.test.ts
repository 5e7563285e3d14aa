/**
 * Injection (src/fs/inject.ts): per file and per operation, a latency slept before the operation
 * (measured: never shorter than asked) and a count of next calls that fail with EIO (exactly that
 * many, also when two CPUs race for them); bad settings are EINVAL and change nothing; injected
 * and real host I/O under mmap_lock is reported by the validator, and inside an RCU read section
 * it throws.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EIO, VmError } from '../../src/errno.js';
import { hostBacking } from '../../src/fs/host-backing.js';
import {
  getInjection,
  INJECT_FAULT,
  INJECT_MKWRITE,
  INJECT_OP_COUNT,
  INJECT_READ_PAGE,
  INJECT_SYNC,
  INJECT_TRUNCATE,
  INJECT_WRITE_PAGE,
  injectOp,
  MAX_INJECT_LATENCY_US,
  setInjection,
} from '../../src/fs/inject.js';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts, lockdepSiteCounts } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { Machine } from '../../src/machine/machine.js';
import { Rng } from '../../src/rng.js';
import { rcuReadLock, rcuReadUnlock } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { FsCpuArgs, FsCpuResult } from './tasks/fs-cpus.js';

const P = 4096;
const OPS = [INJECT_READ_PAGE, INJECT_WRITE_PAGE, INJECT_SYNC, INJECT_FAULT, INJECT_MKWRITE, INJECT_TRUNCATE];
let dir = '';
let machine: Machine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-inject-'));
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
  rmSync(dir, { recursive: true, force: true });
});

function memFile(kernel: Kernel): number {
  return kernel.files.add({ size: 8 * P, writable: true, name: 'inject' });
}

test('the operation names are 0..5 and nothing is injected on a new file', () => {
  assert.deepEqual(OPS, [0, 1, 2, 3, 4, 5]);
  assert.equal(INJECT_OP_COUNT, OPS.length);
  const kernel = Kernel.create({ frames: 64 });
  const file = memFile(kernel);
  for (const op of OPS) {
    assert.deepEqual(getInjection(kernel.files, file, op), { latencyUs: 0, failNext: 0 });
    for (let i = 0; i < 10; i++) assert.equal(injectOp(kernel.files, file, op), 0);
  }
  kernel.files.put(file);
});

test('failNext n: exactly the next n calls of that operation fail with EIO; other operations and files are untouched', () => {
  const kernel = Kernel.create({ frames: 64 });
  const file = memFile(kernel);
  const other = memFile(kernel);
  for (const op of OPS) {
    const n = 1 + op;
    setInjection(kernel.files, file, op, { failNext: n });
    for (const o of OPS)
      if (o !== op) assert.equal(injectOp(kernel.files, file, o), 0, `op ${o} beside ${op}`);
    assert.equal(injectOp(kernel.files, other, op), 0, 'another file');
    let failed = 0;
    for (let i = 0; i < n + 5; i++) if (injectOp(kernel.files, file, op) === -EIO) failed++;
    assert.equal(failed, n, `op ${op}`);
    assert.deepEqual(getInjection(kernel.files, file, op), { latencyUs: 0, failNext: 0 });
  }
  // Fields left out keep their value; a new count replaces the old one.
  setInjection(kernel.files, file, INJECT_SYNC, { failNext: 7 });
  setInjection(kernel.files, file, INJECT_SYNC, { latencyUs: 1 });
  assert.deepEqual(getInjection(kernel.files, file, INJECT_SYNC), { latencyUs: 1, failNext: 7 });
  setInjection(kernel.files, file, INJECT_SYNC, { failNext: 2, latencyUs: 0 });
  assert.equal(injectOp(kernel.files, file, INJECT_SYNC), -EIO);
  assert.equal(injectOp(kernel.files, file, INJECT_SYNC), -EIO);
  assert.equal(injectOp(kernel.files, file, INJECT_SYNC), 0);
  kernel.files.put(file);
  kernel.files.put(other);
});

test('latency: every call sleeps at least the latency (measured), then fails if a failure is due', () => {
  const kernel = Kernel.create({ frames: 64 });
  const file = memFile(kernel);
  for (const us of [300, 5_000, 20_000]) {
    setInjection(kernel.files, file, INJECT_WRITE_PAGE, { latencyUs: us, failNext: 1 });
    const results: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      results.push(injectOp(kernel.files, file, INJECT_WRITE_PAGE));
      const took = (performance.now() - t0) * 1000;
      assert.ok(took >= us, `asked ${us} us, slept ${took.toFixed(0)} us`);
    }
    assert.deepEqual(results, [-EIO, 0, 0]);
    const t0 = performance.now();
    assert.equal(injectOp(kernel.files, file, INJECT_READ_PAGE), 0);
    assert.ok(performance.now() - t0 < us / 1000, 'another operation is not slowed');
  }
  kernel.files.put(file);
});

test('the host backing runs its injection first: a failed read leaves the frame alone, a slow sync is slow', () => {
  const path = join(dir, 'slow.bin');
  writeFileSync(path, new Uint8Array(2 * P).fill(9));
  const kernel = Kernel.create({ frames: 64 });
  const of = kernel.openHost(path, { flags: O_RDWR });
  const file = kernel.opens.file(of);
  const frame = new Uint8Array(new SharedArrayBuffer(P)).fill(1);
  setInjection(kernel.files, file, INJECT_READ_PAGE, { failNext: 1 });
  assert.equal(hostBacking.readPage(kernel.files, file, 0, frame), -EIO);
  assert.ok(
    frame.every((b) => b === 1),
    'the failed read did not touch the frame',
  );
  assert.equal(hostBacking.readPage(kernel.files, file, 1, frame), P);
  assert.ok(frame.every((b) => b === 9));
  setInjection(kernel.files, file, INJECT_TRUNCATE, { failNext: 2 });
  assert.equal(hostBacking.setSize(kernel.files, file, 0), -EIO);
  assert.equal(hostBacking.punch(kernel.files, file, 0, P), -EIO);
  assert.equal(kernel.files.size(file), 2 * P);
  setInjection(kernel.files, file, INJECT_SYNC, { latencyUs: 10_000 });
  const t0 = performance.now();
  assert.equal(hostBacking.sync(kernel.files, file, true), 0);
  assert.ok(performance.now() - t0 >= 10);
  setInjection(kernel.files, file, INJECT_WRITE_PAGE, { failNext: 1 });
  assert.equal(hostBacking.writePage(kernel.files, file, 0, frame, P), -EIO);
  kernel.opens.put(of);
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});

test('bad settings are EINVAL and change nothing (random sweep)', () => {
  const kernel = Kernel.create({ frames: 64 });
  const file = memFile(kernel);
  setInjection(kernel.files, file, INJECT_FAULT, { latencyUs: 3, failNext: 4 });
  const snapshot = () => OPS.map((op) => getInjection(kernel.files, file, op));
  const before = JSON.stringify(snapshot());
  const r = new Rng(77);
  const badNumbers = [-1, 0.5, Number.NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, -(2 ** 31)];
  const pick = <T>(xs: readonly T[]): T => xs[r.below(xs.length)];
  for (let i = 0; i < 300; i++) {
    const kind = r.below(4);
    const op = kind === 0 ? pick([-1, 6, 7, 8, 0.5, Number.NaN, 1e9]) : r.below(OPS.length);
    const id = kind === 1 ? pick([0, -1, file + 1, 1e6, 0.5, Number.NaN]) : file;
    const setting =
      kind === 2
        ? { latencyUs: pick([...badNumbers, MAX_INJECT_LATENCY_US + 1]), failNext: 1 }
        : kind === 3
          ? { latencyUs: 1, failNext: pick(badNumbers) }
          : { latencyUs: 1, failNext: 1 };
    assert.throws(
      () => setInjection(kernel.files, id, op, setting),
      (e: unknown) => e instanceof VmError && e.code === 'EINVAL',
      `case ${i}: setInjection(${id}, ${op}, ${JSON.stringify(setting)})`,
    );
  }
  assert.equal(JSON.stringify(snapshot()), before);
  kernel.files.put(file);
});

test('injected and host I/O under mmap_lock is reported with its site; inside an RCU read section it throws', () => {
  assert.ok(lockHooks.on, 'the suite runs with the validator on');
  const path = join(dir, 'io.bin');
  writeFileSync(path, new Uint8Array(P));
  const kernel = Kernel.create({ frames: 64 });
  const proc = Process.create(kernel);
  const fd = proc.open(path, O_RDWR);
  const file = proc.fds.fget(fd);
  const frame = new Uint8Array(new SharedArrayBuffer(P));
  const io = (site: string) => lockdepSiteCounts().find((s) => s.site === site)?.io ?? 0;
  const before = lockdepCounts().mmap_io;
  // Outside mmap_lock: nothing to report.
  setInjection(kernel.files, file, INJECT_FAULT, { latencyUs: 100 });
  assert.equal(injectOp(kernel.files, file, INJECT_FAULT), 0);
  assert.equal(hostBacking.readPage(kernel.files, file, 0, frame), P);
  assert.equal(lockdepCounts().mmap_io, before);
  proc.mm.mmapLock.downRead();
  try {
    assert.equal(injectOp(kernel.files, file, INJECT_FAULT), 0);
    assert.equal(hostBacking.readPage(kernel.files, file, 0, frame), P);
  } finally {
    proc.mm.mmapLock.upRead();
  }
  assert.equal(lockdepCounts().mmap_io, before + 2);
  assert.equal(io('fs.inject.fault'), 1);
  assert.equal(io('fs.host.read_page'), 1);
  rcuReadLock();
  try {
    assert.throws(() => injectOp(kernel.files, file, INJECT_FAULT), /inside an RCU read section/);
    assert.throws(() => hostBacking.sync(kernel.files, file, false), /inside an RCU read section/);
  } finally {
    rcuReadUnlock();
  }
  kernel.files.put(file);
  proc.exit();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});

test('two CPUs race for the failures set on the main thread: exactly n fail in all', async () => {
  const kernel = Kernel.create({ frames: 64 });
  const file = memFile(kernel);
  const task = new URL('./tasks/fs-cpus.js', import.meta.url);
  for (const [n, op] of [
    [1, INJECT_READ_PAGE],
    [500, INJECT_MKWRITE],
    [3000, INJECT_SYNC],
  ]) {
    setInjection(kernel.files, file, op, { failNext: n });
    const sync = new SharedArrayBuffer(4);
    const args = (): FsCpuArgs => ({
      role: 'inject',
      kernel: kernel.describe(),
      file,
      op,
      rounds: 2000,
      cpus: 2,
      sync,
    });
    const [[a], [b]] = await Promise.all([
      machine.run<FsCpuResult>(task, args(), [0]),
      machine.run<FsCpuResult>(task, args(), [1]),
    ]);
    assert.equal(a.error, '', a.error);
    assert.equal(b.error, '', b.error);
    assert.equal(a.count + b.count, n, `failNext ${n}: ${a.count} + ${b.count}`);
    assert.equal(getInjection(kernel.files, file, op).failNext, 0);
  }
  kernel.files.put(file);
  assert.equal(kernel.counts().files, 0);
});
