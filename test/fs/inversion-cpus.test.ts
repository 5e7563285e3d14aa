/**
 * The lock inversion of issue 11 does not deadlock (its "Must hold"): write() and pwrite() hold the
 * file's i_rwsem while they fault on a user buffer that maps the same file, or another file (the
 * other order than a fault's mmap_lock → invalidate_lock → page lock), on two CPUs, while a third
 * CPU faults both files and a fourth moves, unmaps and remaps the buffers' mappings, zaps them and
 * writes the files back (tasks/inversion.ts). Nothing deadlocks (every wait is bounded by the
 * watchdog: a deadlock is an error), the validator reports nothing (no lock-order cycle, no I/O
 * under mmap_lock), every write's bytes are right, and the host files hold them after fsync.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { reopen } from './file-syscalls-util.js';
import { quietValidator, validatorCounts } from './quiet-validator.js';
import { type InversionArgs, type InversionResult, PAGES, SRC, sourceWord } from './tasks/inversion.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const BASE = 0x300000000;
const task = new URL('./tasks/inversion.js', import.meta.url);
let dir = '';
let machine: Machine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-inversion-'));
  machine = await Machine.start({ cpus: 4, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
  rmSync(dir, { recursive: true, force: true });
});

function hostFile(f: number): string {
  const path = join(dir, `file${f}.bin`);
  const words = new Int32Array((PAGES * P) >> 2);
  for (let k = 0; k < SRC; k++)
    for (let w = 0; w < P >> 2; w++) words[k * (P >> 2) + w] = sourceWord(f, k, w);
  writeFileSync(path, new Uint8Array(words.buffer));
  return path;
}

test('write() from a mapping of the same file and of another, against faults, mremap, munmap and writeback on other CPUs: no deadlock, no report, right data', async () => {
  const counts = validatorCounts();
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel);
  const paths = [0, 1].map(hostFile);
  const fds = paths.map((path) => proc.open(path, O_RDWR));
  const ownFds = fds.map((fd) => [0, 1].map(() => reopen(proc, fd, O_RDWR)));
  const stable = fds.map((fd) => proc.mm.mmap(0, PAGES * P, RW, MAP_SHARED, fd, 0));
  const windowA = [0, 1].map((f) => BASE + f * 0x1000000);
  const windowB = windowA.map((a) => a + 0x800000);
  for (const f of [0, 1]) proc.mm.mmap(windowA[f], SRC * P, RW, MAP_SHARED | MAP_FIXED, fds[f], 0);
  const base = {
    process: proc.describe(),
    fds,
    ownFds,
    stable,
    windowA,
    windowB,
    seed: Number(process.env.VMSPACE_SEED ?? 20_261_210),
    durationMs: 2000,
    cpus: 4,
    sync: new SharedArrayBuffer(4),
  };
  const roles: [InversionArgs['role'], number][] = [
    ['writer', 0],
    ['writer', 1],
    ['faulter', 0],
    ['mapper', 0],
  ];
  const results = await Promise.all(
    roles.map(async ([role, writer], cpu) => {
      const [r] = await machine.run<InversionResult>(
        task,
        { ...base, role, writer } satisfies InversionArgs,
        [cpu],
      );
      return r;
    }),
  );
  assert.deepEqual(
    results.map((r) => r.error),
    ['', '', '', ''],
  );
  const [w0, w1, faulter, mapper] = results;
  if (process.env.FS_VERBOSE) console.log({ w0, w1, faulter, mapper });
  for (const w of [w0, w1]) {
    assert.equal(w.bad, 0, `a page read back wrong: ${w.firstBad}`);
    assert.ok(w.writes[0] >= 100, `full writes: ${w.writes}`);
    assert.ok(w.writes[3] > 0 && w.writes[4] > 0, `same-page and cross-file writes: ${w.writes}`);
  }
  assert.ok(w0.writes[2] + w1.writes[2] > 0, 'some writes met a window being moved (EFAULT)');
  assert.equal(faulter.loads[2], 0, `source words: ${faulter.firstBad}`);
  assert.ok(faulter.loads[0] >= 1000, `loads: ${faulter.loads}`);
  assert.ok(
    mapper.maps.every((n) => n > 0),
    `mapper: ${mapper.maps}`,
  );
  // The host files after fsync: the source regions untouched, each destination page what a pread
  // through vmspace gives.
  for (const f of [0, 1]) {
    proc.fsync(fds[f]);
    const host = new Int32Array(new Uint8Array(readFileSync(paths[f])).buffer);
    const view = new Int32Array(PAGES * (P >> 2));
    const mmu = proc.mm.mmu();
    for (let i = 0; i < view.length; i++) view[i] = mmu.load32(stable[f] + i * 4);
    assert.deepEqual(host, view, `file ${f}: the host file is the cache`);
    for (let k = 0; k < SRC; k++) assert.equal(host[k * (P >> 2) + 7], sourceWord(f, k, 7));
  }
  proc.exit();
  proc.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  quietValidator(counts);
});
