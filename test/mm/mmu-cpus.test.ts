/**
 * The MMU on two real worker CPUs sharing one process (tasks/mmu-race.ts): CPU A stores and loads
 * through its Mmu while CPU B unmaps, maps, protects, moves and discards the same pages and
 * poisons reused frames; A never reads poison or a value that was not stored there, takes
 * MemoryFaults where the pages are gone, and exit returns every frame.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { vmaLockEvents } from '../../src/mm/vma-lock.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { type MmuRaceArgs, type MmuRaceResult, WINDOW_PAGES } from './tasks/mmu-race.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test('CPU A accesses through its Mmu while CPU B remaps the pages: no stale or foreign value, frames all return', async () => {
  const kernel = Kernel.create({ frames: 8192 });
  const proc = Process.create(kernel, { config: { privileged: true } });
  const base = {
    process: proc.describe(),
    gen: new SharedArrayBuffer(WINDOW_PAGES * 4),
    sync: new SharedArrayBuffer(16),
    seed: Number(process.env.VMSPACE_SEED ?? 1010),
    durationMs: 1200,
  };
  const task = new URL('./tasks/mmu-race.js', import.meta.url);
  const [[a], [b]] = await Promise.all([
    machine.run<MmuRaceResult>(task, { ...base, role: 'accessor' } satisfies MmuRaceArgs, [0]),
    machine.run<MmuRaceResult>(task, { ...base, role: 'mutator' } satisfies MmuRaceArgs, [1]),
  ]);
  const events = vmaLockEvents(proc.mm.locks);
  if (process.env.MMU_VERBOSE) console.log(a, b, proc.mm.tlb.stats(), events);
  assert.equal(a.error, '', a.error);
  assert.ok(a.pairs > 500, `only ${a.pairs} store-load pairs`);
  assert.ok(a.faults > 100, `only ${a.faults} faults`);
  assert.ok(b.calls > 100, `only ${b.calls} calls`);
  assert.ok(b.poisonFills > 20, `only ${b.poisonFills} poison fills`);
  assert.ok(proc.mm.tlb.stats().shootdowns > 50);
  assert.ok(events.success > 0 && events.mmapFallbacks > 0, 'faults took both paths');
  proc.exit();
  proc.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});
