/**
 * An aligned 32-bit load or store is one access of the word, also on the Mmu's slow path (a TLB
 * miss): a CPU racing it sees the word whole, old or new, as on hardware. The slow path copied
 * bytes one at a time, so a load racing a store saw half of each (the all-CPU punch race's
 * 'stale' and 'foreign' reads: a new stamp's low byte over the old word's zeros, or the reverse).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { WordTearArgs, WordTearResult } from './tasks/word-tear.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test('slow-path loads and stores of an aligned word on two CPUs: never a torn value', async () => {
  const kernel = Kernel.create({ frames: 1024 });
  const proc = Process.create(kernel);
  const addr = proc.mm.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  proc.mm.mmu().store32(addr, 0); // the page present
  proc.mm.mmuOffline();
  const base = { process: proc.describe(), addr, durationMs: 800 };
  const task = new URL('./tasks/word-tear.js', import.meta.url);
  const [, [loader]] = await Promise.all([
    machine.run<WordTearResult>(task, { ...base, role: 'storer' } satisfies WordTearArgs, [0]),
    machine.run<WordTearResult>(task, { ...base, role: 'loader' } satisfies WordTearArgs, [1]),
  ]);
  assert.ok(loader.loads > 10_000, `only ${loader.loads} loads`);
  assert.equal(loader.torn, 0, `${loader.torn} torn words, the first 0x${(loader.first >>> 0).toString(16)}`);
  proc.exit();
  proc.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});
