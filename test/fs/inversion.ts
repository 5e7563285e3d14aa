/**
 * The lock-inversion run (tasks/inversion.ts) for the quick test and the stress run: two host
 * files, one process, four CPUs (two writers, a faulter, a mapper) for `durationMs`; then the
 * checks: no error (a deadlock ends in the watchdog's bounded waits), every write right, the
 * source regions untouched, the host files equal to the cache after fsync, every count at zero.
 * The validator's counts are the caller's to check (quiet-validator.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { reopen } from './file-syscalls-util.js';
import {
  type InversionArgs,
  type InversionResult,
  MIN_WRITES,
  PAGES,
  SRC,
  sourceWord,
} from './tasks/inversion.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const BASE = 0x300000000;
const task = new URL('./tasks/inversion.js', import.meta.url);

export interface InversionSummary {
  seed: number;
  /** Per writer: full, short, EFAULT, same-page, cross-file writes. */
  writes: number[][];
  /** Faulter: loads, SIGSEGV in a moving window. */
  loads: number[];
  /** Mapper: mremaps, remaps, madvises, syncs. */
  maps: number[];
}

function hostFile(dir: string, f: number): string {
  const path = join(dir, `file${f}.bin`);
  const words = new Int32Array((PAGES * P) >> 2);
  for (let k = 0; k < SRC; k++)
    for (let w = 0; w < P >> 2; w++) words[k * (P >> 2) + w] = sourceWord(f, k, w);
  writeFileSync(path, new Uint8Array(words.buffer));
  return path;
}

export async function runInversion(seed: number, durationMs: number): Promise<InversionSummary> {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-inversion-'));
  const machine = await Machine.start({ cpus: 4, watchdogMs: 20_000 });
  try {
    return await inversion(dir, machine, seed, durationMs);
  } finally {
    await machine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function inversion(
  dir: string,
  machine: Machine,
  seed: number,
  durationMs: number,
): Promise<InversionSummary> {
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel);
  const paths = [0, 1].map((f) => hostFile(dir, f));
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
    seed,
    durationMs,
    cpus: 4,
    sync: new SharedArrayBuffer(8),
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
  for (const w of [w0, w1]) {
    assert.equal(w.bad, 0, `a page read back wrong: ${w.firstBad}`);
    assert.ok(w.writes[0] + w.writes[1] + w.writes[2] >= MIN_WRITES, `writes: ${w.writes}`);
    assert.ok(w.writes[3] > 0 && w.writes[4] > 0, `same-page and cross-file writes: ${w.writes}`);
  }
  assert.ok(w0.writes[2] + w1.writes[2] > 0, 'some writes met a window being moved (EFAULT)');
  assert.equal(faulter.loads[2], 0, `source words: ${faulter.firstBad}`);
  assert.ok(faulter.loads[0] >= 200, `loads: ${faulter.loads}`);
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
  return { seed, writes: [w0.writes, w1.writes], loads: faulter.loads.slice(0, 2), maps: mapper.maps };
}
