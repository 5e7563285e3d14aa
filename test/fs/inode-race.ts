/**
 * Open racing the last close on two worker CPUs (tasks/inode.ts, `race`), for the quick test
 * (inode-cpus.test.ts) and the stress run (inode.stress.ts): two processes each open, check, write
 * and close one host file `rounds` times, their words on one page. Checks: no CPU ever read a value
 * older than its own last write (no second record, no revived dying record, no read of the host
 * file before a dying record wrote its page back), some last puts were munmap's (delayed fput),
 * the host file holds both final values, and every count (and the inode hash) is back to zero.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import type { Machine } from '../../src/machine/machine.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { InodeTaskArgs, InodeTaskResult } from './tasks/inode.js';

const P = 4096;
const task = new URL('./tasks/inode.js', import.meta.url);

export interface InodeRaceSummary {
  seed: number;
  opens: number;
  stale: number;
  /** Rounds that wrote through a mapping (its munmap maybe the last put). */
  mapped: number;
  /** Opens that met a dying record and waited for its release. */
  waits: number;
}

/** One race on CPUs 0 and 1 over a new file at `path`; returns the counts after checking them. */
export async function runInodeRace(
  machine: Machine,
  path: string,
  seed: number,
  rounds: number,
): Promise<InodeRaceSummary> {
  writeFileSync(path, new Uint8Array(P));
  const kernel = Kernel.create({ frames: 2048 });
  const procs = [Process.create(kernel), Process.create(kernel)];
  const args = (p: Process): InodeTaskArgs => ({
    mode: 'race',
    process: p.describe(),
    path,
    flags: 0,
    pages: 0,
    cpus: 2,
    rounds,
    seed,
    sync: new SharedArrayBuffer(8),
    ids: new SharedArrayBuffer(4),
  });
  const results = await Promise.all(
    procs.map(async (p, cpu) => (await machine.run<InodeTaskResult>(task, args(p), [cpu]))[0]),
  );
  assert.deepEqual(
    results.map((r) => r.error),
    ['', ''],
  );
  const summary: InodeRaceSummary = {
    seed,
    opens: results[0].opens + results[1].opens,
    stale: results[0].stale + results[1].stale,
    mapped: results[0].mapped + results[1].mapped,
    waits: kernel.files.inodes.waits,
  };
  for (const [cpu, r] of results.entries()) {
    assert.equal(r.opens, rounds);
    assert.equal(r.stale, 0, `seed ${seed}, CPU ${cpu}: an open read a value older than its own last write`);
    assert.ok(r.mapped > 0 && r.mapped < rounds, 'both ways of writing were used');
  }
  assert.equal(kernel.counts().files, 0, 'every record released');
  const host = new Int32Array(new Uint8Array(readFileSync(path)).buffer);
  assert.deepEqual([host[0], host[1]], [rounds, rounds], 'the last release wrote both words back');
  for (const p of procs) p.exit();
  for (const p of procs) p.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  assert.equal(kernel.files.inodes.count, 0);
  return summary;
}
