/**
 * The inode hash on worker CPUs (docs/fs.md, "Opening files"): two processes that each open one
 * host file themselves, on different CPUs at the same moment, get one file record, so one page
 * cache: their shared mappings and read/write agree at once (the coherence task of
 * coherence-cpus.test.ts, run on the two independent opens); concurrent first opens of new files
 * make one record each; open racing the last close (by close, and by munmap's delayed fput) never
 * revives a dying record nor reads the host file before the dying record wrote its pages back; an
 * open that meets a dying record waits for its release. Every count returns to zero, the hash is
 * empty, the validator reports nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileReleaseDefer, fileReleaseFlush } from '../../src/fs/file-table.js';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { runInodeRace } from './inode-race.js';
import { quietValidator, validatorCounts } from './quiet-validator.js';
import type { CoherenceArgs, CoherenceResult } from './tasks/coherence.js';
import { type InodeTaskArgs, type InodeTaskResult, OPENED } from './tasks/inode.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const inodeTask = new URL('./tasks/inode.js', import.meta.url);
const coherenceTask = new URL('./tasks/coherence.js', import.meta.url);
let dir = '';
let machine: Machine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-inode-cpus-'));
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
  rmSync(dir, { recursive: true, force: true });
});

function taskArgs(
  proc: Process,
  mode: InodeTaskArgs['mode'],
  path: string,
  more: Partial<InodeTaskArgs> = {},
): InodeTaskArgs {
  return {
    mode,
    process: proc.describe(),
    path,
    flags: O_RDWR,
    pages: 0,
    cpus: 2,
    rounds: 0,
    seed: 0,
    sync: new SharedArrayBuffer(8),
    ids: new SharedArrayBuffer(4),
    ...more,
  };
}

/** Runs the inode task on CPUs 0 and 1 at once, process `procs[cpu]` on CPU cpu; no errors. */
async function onBoth(procs: Process[], args: InodeTaskArgs[]): Promise<InodeTaskResult[]> {
  const results = await Promise.all(
    procs.map(async (_p, cpu) => (await machine.run<InodeTaskResult>(inodeTask, args[cpu], [cpu]))[0]),
  );
  assert.deepEqual(
    results.map((r) => r.error),
    ['', ''],
  );
  return results;
}

function finish(kernel: Kernel, procs: Process[]): void {
  for (const p of procs) p.exit();
  for (const p of procs) p.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  assert.equal(kernel.files.inodes.check(), 0, 'every record left the inode hash');
}

test('two processes open one host file on two CPUs at once: one record; their mappings and read/write agree at once', async () => {
  const counts = validatorCounts();
  const PAGES = 16;
  const path = join(dir, 'coherent.bin');
  const initial = new Int32Array((PAGES * P) >> 2);
  for (let w = 0; w < initial.length; w++) initial[w] = 1_000_000 + w;
  writeFileSync(path, new Uint8Array(initial.buffer));
  const kernel = Kernel.create({ frames: 4096 });
  const procs = [Process.create(kernel), Process.create(kernel)]; // two processes, no fork
  const sync = new SharedArrayBuffer(8);
  const opened = await onBoth(
    procs,
    procs.map((p) => taskArgs(p, 'open', path, { pages: PAGES, sync })),
  );
  assert.equal(opened[0].file, opened[1].file, 'one record for both opens');
  assert.equal(kernel.counts().files, 1, 'the losing open freed its new record');
  assert.equal(kernel.counts().openFiles, 2, 'two descriptions');
  assert.equal(kernel.files.inodes.check(), 1);
  const model = new SharedArrayBuffer(initial.byteLength);
  new Int32Array(model).set(initial);
  const ROUNDS = 1500;
  const base = {
    path,
    pages: PAGES,
    privatePages: 4,
    rounds: ROUNDS,
    syncEvery: 25,
    seed: Number(process.env.VMSPACE_SEED ?? 20_261_208),
    sync: new SharedArrayBuffer(16),
    model,
  };
  const results = await Promise.all(
    procs.map(async (p, cpu) => {
      const o = opened[cpu];
      const args: CoherenceArgs = {
        ...base,
        process: p.describe(),
        fd: o.fd,
        shared: o.shared,
        private: o.private,
      };
      return (await machine.run<CoherenceResult>(coherenceTask, args, [cpu]))[0];
    }),
  );
  assert.deepEqual(
    results.map((r) => r.error),
    ['', ''],
  );
  const sum = (f: (r: CoherenceResult) => number) => f(results[0]) + f(results[1]);
  assert.equal(
    sum((r) => r.checked),
    ROUNDS,
  );
  assert.equal(
    sum((r) => r.sharedBad),
    0,
    "each process saw the other's writes at once",
  );
  assert.equal(
    sum((r) => r.privateBad),
    0,
  );
  assert.equal(
    sum((r) => r.hostBad),
    0,
    'after msync/fsync the host file holds the word',
  );
  for (const r of results) assert.ok(r.writes[0] > 0 && r.writes[1] > 0 && r.reads[0] > 0 && r.reads[1] > 0);
  procs[0].fsync(opened[0].fd);
  assert.deepEqual(new Int32Array(new Uint8Array(readFileSync(path)).buffer), new Int32Array(model));
  finish(kernel, procs);
  quietValidator(counts);
});

test('concurrent first opens of a file from two CPUs make one record; open racing the last close never revives a dying one', async () => {
  const counts = validatorCounts();
  const kernel = Kernel.create({ frames: 2048 });
  const procs = [Process.create(kernel), Process.create(kernel)];
  // First opens: every round a new file both CPUs open at the same moment.
  const ROUNDS = 40;
  const base = join(dir, 'first');
  for (let r = 0; r < ROUNDS; r++) writeFileSync(`${base}.${r}`, new Uint8Array(P));
  const ids = new SharedArrayBuffer(2 * ROUNDS * 4);
  const sync = new SharedArrayBuffer(8);
  await onBoth(
    procs,
    procs.map((p) => taskArgs(p, 'opens', base, { rounds: ROUNDS, ids, sync })),
  );
  const id = new Int32Array(ids);
  for (let r = 0; r < ROUNDS; r++) {
    assert.ok(id[r] > 0);
    assert.equal(id[r], id[ROUNDS + r], `round ${r}: both opens named one record`);
  }
  assert.equal(kernel.counts().files, 0, 'closed: every record released');
  assert.equal(kernel.files.inodes.count, 0);
  finish(kernel, procs);
  // Open against last close: both CPUs open, check, write and close one file (their words share a page).
  const race = await runInodeRace(
    machine,
    join(dir, 'race.bin'),
    Number(process.env.VMSPACE_SEED ?? 12_000),
    300,
  );
  if (process.env.FS_VERBOSE) console.log(race);
  quietValidator(counts);
});

test('an open that meets a dying record waits for its release, then reads what the release wrote back', async () => {
  const counts = validatorCounts();
  const kernel = Kernel.create({ frames: 1024 });
  const a = Process.create(kernel);
  const b = Process.create(kernel);
  const path = join(dir, 'dying.bin');
  writeFileSync(path, new Uint8Array(P));
  const fd = a.open(path, O_RDWR);
  const buf = a.mm.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  a.mm.mmu().store32(buf, 0x5eed);
  assert.equal(a.pwrite(fd, buf, 4, 0), 4); // dirty in the cache, not yet in the host file
  const file = a.fds.fget(fd);
  kernel.files.put(file);
  // The last put inside a deferral section: the record is dying (no reference) but not released.
  fileReleaseDefer();
  let flushed = false;
  try {
    a.close(fd);
    assert.equal(kernel.files.refs(file), 0);
    assert.ok(kernel.files.inodes.hashed(file), 'still hashed until its release');
    const waitsBefore = kernel.files.inodes.waits;
    const sync = new SharedArrayBuffer(8);
    const reader = machine.run<InodeTaskResult>(inodeTask, taskArgs(b, 'read', path, { sync }), [0]);
    for (let i = 0; i < 200 && kernel.files.inodes.waits === waitsBefore; i++) await sleep(10);
    assert.equal(kernel.files.inodes.waits, waitsBefore + 1, 'the open met the dying record');
    await sleep(100);
    assert.equal(Atomics.load(new Int32Array(sync), OPENED), 0, 'the open is still waiting');
    assert.equal(new DataView(readFileSync(path).buffer).getInt32(0, true), 0, 'not written back yet');
    fileReleaseFlush(); // the release: write back, close, unhash, free
    flushed = true;
    const [r] = await reader;
    assert.equal(r.error, '');
    assert.equal(r.value, 0x5eed, 'the new record read the bytes the dying one wrote back');
    assert.equal(kernel.files.inodes.waits, waitsBefore + 1);
  } finally {
    if (!flushed) fileReleaseFlush();
  }
  finish(kernel, [a, b]);
  quietValidator(counts);
});
