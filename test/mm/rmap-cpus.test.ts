/**
 * The reverse map on two worker CPUs (tasks/rmap-race.ts): a zapper unmaps a whole file
 * (unmapMappingRange, under invalidate_lock (W)) on one CPU while the other splits, merges, moves
 * (mremap) and replaces the file's VMAs in two processes; after each zap returns no PTE of the
 * file is left in either process, however the commits interleaved with it (their commit windows:
 * src/fs/i-mmap.ts). Then both exit and the kernel is empty.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { A, P, PAGES, type RmapRaceArgs, type RmapRaceResult } from './tasks/rmap-race.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

const ROUNDS = 150;

test('a zap on one CPU against splits, merges, mremap moves and remaps on another: no PTE survives a zap', async () => {
  const kernel = Kernel.create({ frames: 8192 });
  const parent = Process.create(kernel);
  const fd = parent.open({ size: PAGES * P, writable: true, name: 'rmap-race' });
  const file = parent.fds.fget(fd);
  kernel.files.put(file);
  parent.mm.mmap(A, PAGES * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  const child = parent.fork();
  const procs = [parent.describe(), child.describe()];
  const ctl = new SharedArrayBuffer(16);
  const task = new URL('./tasks/rmap-race.js', import.meta.url);
  const common = { procs, fd, file, rounds: ROUNDS, seed: 0x5eed, ctl };
  const [mutator, zapper] = await Promise.all([
    machine.run<RmapRaceResult>(task, { ...common, role: 'mutator' } satisfies RmapRaceArgs, [0]),
    machine.run<RmapRaceResult>(task, { ...common, role: 'zapper' } satisfies RmapRaceArgs, [1]),
  ]);
  const m = mutator[0];
  const z = zapper[0];
  assert.equal(m.leftPtes, 0, `PTEs left after a zap returned (round ${m.rounds + 1})`);
  assert.equal(m.leftMapped, 0, 'cached pages still mapped after a zap returned');
  assert.equal(m.error, '', m.error);
  assert.equal(z.error, '', z.error);
  assert.equal(m.rounds, ROUNDS);
  assert.equal(z.rounds, ROUNDS);
  assert.ok(m.overlapped >= ROUNDS / 4, `syscalls overlapped the zaps (${m.overlapped} of ${m.syscalls})`);
  console.log(`rmap race: ${ROUNDS} zaps, ${m.syscalls} syscalls, ${m.overlapped} during a zap, 0 PTEs left`);
  child.exit();
  parent.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  assert.equal(kernel.files.iMmapEntries.live, 0, 'every i_mmap entry freed');
});
