/**
 * Coherence of one host file on two worker CPUs (issue 11, "Must hold"): a parent and its fork
 * child (one file record, so one page cache: docs/fs.md) each map the file MAP_SHARED and
 * MAP_PRIVATE and take turns writing a word (store through the shared mapping or pwrite) and
 * checking it on the other CPU at once (load through the other process's shared mapping or pread,
 * and its private mapping: the file's value until that page was written privately, its own after).
 * After msync(MS_SYNC) or fsync the word is in the host file read with node:fs; at the end the
 * whole host file equals the model. The validator reports nothing; teardown leaves every count at
 * zero (cached pages, page-index nodes, i_mmap entries, host descriptors).
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
import { MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { quietValidator, validatorCounts } from './quiet-validator.js';
import type { CoherenceArgs, CoherenceResult } from './tasks/coherence.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const task = new URL('./tasks/coherence.js', import.meta.url);
let dir = '';
let machine: Machine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-coherence-'));
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * One run of tasks/coherence.ts: `rounds` rounds, every `syncEvery`-th made durable; at the end the
 * host file is compared with the model after an fsync (`teardown` false) or after both processes
 * exited without one (the file's last put writes the dirty pages back).
 */
async function coherence(rounds: number, syncEvery: number, teardown: boolean): Promise<void> {
  const counts = validatorCounts();
  const PAGES = 16;
  const path = join(dir, `coherent-${rounds}.bin`);
  const initial = new Int32Array((PAGES * P) >> 2);
  for (let w = 0; w < initial.length; w++) initial[w] = 1_000_000 + w;
  writeFileSync(path, new Uint8Array(initial.buffer));
  const kernel = Kernel.create({ frames: 4096 });
  const a = Process.create(kernel);
  const fd = a.open(path, O_RDWR);
  const b = a.fork();
  const maps = [a, b].map((p) => ({
    shared: p.mm.mmap(0, PAGES * P, RW, MAP_SHARED, fd, 0),
    private: p.mm.mmap(0, PAGES * P, RW, MAP_PRIVATE, fd, 0),
  }));
  const model = new SharedArrayBuffer(initial.byteLength);
  new Int32Array(model).set(initial);
  const ROUNDS = rounds;
  const base = {
    fd,
    path,
    pages: PAGES,
    privatePages: 4,
    rounds: ROUNDS,
    syncEvery,
    seed: Number(process.env.VMSPACE_SEED ?? 20_261_208),
    sync: new SharedArrayBuffer(16),
    model,
  };
  const results = await Promise.all(
    [a, b].map(async (p, cpu) => {
      const args: CoherenceArgs = { ...base, process: p.describe(), ...maps[cpu] };
      const [r] = await machine.run<CoherenceResult>(task, args, [cpu]);
      return r;
    }),
  );
  assert.deepEqual(
    results.map((r) => r.error),
    ['', ''],
  );
  if (process.env.FS_VERBOSE) console.log(results);
  const sum = (f: (r: CoherenceResult) => number) => f(results[0]) + f(results[1]);
  assert.equal(
    sum((r) => r.checked),
    ROUNDS,
    'every round checked',
  );
  assert.equal(
    sum((r) => r.sharedBad),
    0,
    'the other process saw every write at once',
  );
  assert.equal(
    sum((r) => r.privateBad),
    0,
    'private mappings: the file until written, their own bytes after',
  );
  assert.equal(
    sum((r) => r.hostBad),
    0,
    'after msync/fsync the host file holds the word',
  );
  assert.equal(
    sum((r) => r.hostChecks),
    Math.floor(ROUNDS / base.syncEvery),
  );
  for (const r of results) {
    if (ROUNDS >= 2 * syncEvery)
      assert.ok(r.hostChecks > 0, 'each CPU checked the host file after the other made it durable');
    assert.ok(r.writes[0] > 0 && r.writes[1] > 0, `stores and pwrites: ${r.writes}`);
    assert.ok(r.reads[0] > 0 && r.reads[1] > 0, `loads and preads: ${r.reads}`);
  }
  // The whole host file after one more fsync, or after teardown: the model, never a private
  // mapping's bytes.
  const hostWords = () => new Int32Array(new Uint8Array(readFileSync(path)).buffer);
  if (!teardown) {
    a.fsync(fd);
    assert.deepEqual(hostWords(), new Int32Array(model));
  } else assert.notDeepEqual(hostWords(), new Int32Array(model), 'dirty pages are left for teardown');
  a.close(fd);
  b.close(fd);
  for (const p of [b, a]) p.exit();
  for (const p of [b, a]) p.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  if (teardown) assert.deepEqual(hostWords(), new Int32Array(model), 'the last put wrote the dirty pages');
  quietValidator(counts);
}

test('two processes on two CPUs: shared mappings, pread/pwrite and private mappings agree at once; msync/fsync reach the host file', async () => {
  await coherence(3000, 25, false);
});

test('teardown without msync or fsync: the exits write every dirty page back and free every cached page, node and i_mmap entry', async () => {
  await coherence(600, 1_000_000, true);
});
