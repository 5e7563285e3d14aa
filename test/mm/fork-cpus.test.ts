/**
 * fork on real worker CPUs (tasks/fork-cow.ts): the parent runs on CPU A and its child on CPU B,
 * each attached by its descriptor. The parent rewrites every page (copy-on-write faults, with an
 * mprotect(R) / mprotect(RW) now and then) while the child reads them flat out: the child sees
 * only the data of the fork (basic COW, cow-scenarios.md cases 1 and 2), then its own writes; the
 * parent never sees the child's. After both exit every frame and identity is back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import {
  childValue,
  type ForkCowArgs,
  type ForkCowResult,
  P,
  PAGES,
  parentValue,
  ROUNDS,
  STRIDE,
  snapshot,
  WINDOW,
} from './tasks/fork-cow.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test('basic COW on two CPUs: the parent writes on CPU A while its child reads on CPU B; no data crosses', async () => {
  const kernel = Kernel.create({ frames: 8192 });
  const parent = Process.create(kernel, { config: { privileged: true } });
  parent.mm.mmap(WINDOW, PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  const mmu = parent.mm.mmu();
  for (let p = 0; p < PAGES; p++)
    for (let w = 0; w < P; w += STRIDE) mmu.store32(WINDOW + p * P + w, snapshot(p, w));
  const child = parent.fork();
  parent.detach();
  const sync = new SharedArrayBuffer(8);
  const task = new URL('./tasks/fork-cow.js', import.meta.url);
  const [[a], [b]] = await Promise.all([
    machine.run<ForkCowResult>(
      task,
      { role: 'parent', process: parent.describe(), sync } satisfies ForkCowArgs,
      [0],
    ),
    machine.run<ForkCowResult>(
      task,
      { role: 'child', process: child.describe(), sync } satisfies ForkCowArgs,
      [1],
    ),
  ]);
  assert.equal(a.error, '', a.error);
  assert.equal(b.error, '', b.error);
  assert.equal(a.pages, ROUNDS * PAGES);
  assert.ok(b.pages >= PAGES, `the child read only ${b.pages} pages`);
  // The final contents, through this thread's Mmus.
  const cm = child.mm.mmu();
  for (let p = 0; p < PAGES; p++) {
    for (let w = 0; w < P; w += STRIDE) {
      assert.equal(mmu.load32(WINDOW + p * P + w), parentValue(ROUNDS - 1, p, w), `parent page ${p}`);
      assert.equal(
        cm.load32(WINDOW + p * P + w),
        p % 2 === 0 ? childValue(p, w) : snapshot(p, w),
        `child page ${p}`,
      );
    }
  }
  parent.detach();
  child.detach();
  parent.exit();
  child.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});
