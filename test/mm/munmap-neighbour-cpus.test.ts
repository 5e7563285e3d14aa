/**
 * munmap's page-table work runs with mmap_lock downgraded to read (docs/locking.md): on two real
 * worker CPUs of one process, CPU B maps and unmaps a VMA right after CPU A's, sharing A's 2 MiB
 * region and PMD table, while A stores, loads, discards and faults its own pages again. A must
 * always read its last store (or 0 after its own discard): a zap or free_pgtables that reached a
 * table or page of A's would show it a zero page, a foreign value or poison. Then the tables
 * validate and every frame and table comes back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE } from '../../src/mm/vm-flags.js';
import { vmaLockEvents } from '../../src/mm/vma-lock.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import {
  BASE,
  type NeighbourRaceArgs,
  type NeighbourRaceResult,
  OWN_PAGES,
  P,
  RW,
} from './tasks/neighbour-race.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test("CPU B maps and unmaps next to CPU A's VMA (munmap under the downgraded lock): A never loses a page", async () => {
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel);
  assert.equal(
    proc.mm.sysMmap(BASE, OWN_PAGES * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
    BASE,
  );
  const base = {
    process: proc.describe(),
    sync: new SharedArrayBuffer(16),
    seed: Number(process.env.VMSPACE_SEED ?? 2024),
    durationMs: 1000,
  };
  const task = new URL('./tasks/neighbour-race.js', import.meta.url);
  const [[a], [b]] = await Promise.all([
    machine.run<NeighbourRaceResult>(task, { ...base, role: 'owner' } satisfies NeighbourRaceArgs, [0]),
    machine.run<NeighbourRaceResult>(task, { ...base, role: 'neighbour' } satisfies NeighbourRaceArgs, [1]),
  ]);
  if (process.env.NEIGHBOUR_VERBOSE) console.log(a, b, vmaLockEvents(proc.mm.locks));
  assert.equal(a.error, '', a.error);
  assert.ok(a.checks > 10_000, `only ${a.checks} loads checked`);
  assert.ok(a.refaults > 20, `only ${a.refaults} pages discarded and faulted again`);
  assert.ok(b.unmaps > 50, `only ${b.unmaps} munmaps`);
  assert.ok(vmaLockEvents(proc.mm.locks).success > 0, 'A faulted through its VMA lock');
  assert.equal(proc.mm.pt.validate(), undefined);
  proc.exit();
  proc.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});
