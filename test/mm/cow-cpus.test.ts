/**
 * Linux's tools/testing/selftests/mm/cow.c, the anonymous base-page cases, on two worker CPUs
 * (cow-cases.ts has the scripts, tasks/cow-cpus.ts plays one): CPU 0 plays the parent, CPU 1 the child (or, in the cases
 * without one, the device behind the pin). Each test is named after its cow.c case and checks what
 * cow.c checks (the child's page against its backup, the pipe against the page as spliced, the
 * pin against the mapping), that each CPU ran its steps, and that every process, frame and
 * anon_vma is back once both processes exited and the pipe was closed.
 *
 * Then: no data crosses between processes through a reused frame (tasks/frame-reuse.ts). A
 * process on CPU 0 writes a secret and exits; its frames are freed, poisoned in debug mode (0x6b,
 * checked on reuse) and still holding the secret without poisoning; a process on CPU 1 then gets
 * every one of those frames back and sees zeros only.
 *
 * Last, a vmsplice on a CPU whose Mmu is online while another CPU of the same process munmaps
 * (tasks/splice-race.ts): the splice must not wait for mmap_lock with its Mmu online.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEBUG } from '../../src/assert.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { POISON_BYTE } from '../../src/mem/page.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { COW_CASES, cpuOf, STEP, SYNC_WORDS, stepsOn } from './cow-cases.js';
import { ANON, BASE, fillPage, P, RW, wordOf } from './cow-fixture.js';
import type { CowCpusArgs, CowCpusResult } from './tasks/cow-cpus.js';
import { EXTRA, type FrameReuseArgs, PAGES, SECRET } from './tasks/frame-reuse.js';
import { SEED, SPLICES, type SpliceRaceArgs, UNMAPS } from './tasks/splice-race.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

function expectNothingLeft(kernel: Kernel): void {
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

/** The first failure of the two CPUs, preferring the one that failed over the one it stopped. */
function firstFailure(results: PromiseSettledResult<CowCpusResult[]>[]): unknown {
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  const cause = failed.find((r) => !String(r.reason).includes('the other CPU failed')) ?? failed[0];
  return cause?.reason;
}

for (let n = 0; n < COW_CASES.length; n++) {
  const c = COW_CASES[n];
  test(`cow.c ${c.name}`, async () => {
    assert.equal(cpuOf(c.steps[0].by), 0);
    const kernel = Kernel.create({ frames: 1024 });
    const sync = new SharedArrayBuffer(SYNC_WORDS * 4);
    const channel = `vmspace.cow-cpus.${process.pid}.${n}`;
    const task = new URL('./tasks/cow-cpus.js', import.meta.url);
    const runOn = (cpu: number) =>
      machine.run<CowCpusResult>(
        task,
        { case: n, cpu, kernel: kernel.describe(), sync, channel } satisfies CowCpusArgs,
        [cpu],
      );
    const results = await Promise.allSettled([runOn(0), runOn(1)]);
    const failure = firstFailure(results);
    if (failure !== undefined) throw failure;
    const ran = results.map((r) => (r.status === 'fulfilled' ? r.value[0].steps : -1));
    assert.deepEqual(ran, [stepsOn(c, 0), stepsOn(c, 1)], 'steps run by CPU 0 and CPU 1');
    assert.equal(new Int32Array(sync)[STEP], c.steps.length);
    expectNothingLeft(kernel);
  });
}

for (const poison of [true, false]) {
  test(`no data crosses between processes through a reused frame (poison ${poison ? 'on' : 'off'})`, async () => {
    const kernel = Kernel.create({ frames: 256, poison });
    assert.equal(kernel.mem.poison, poison);
    const mem = kernel.mem;
    const pfns = new Int32Array(new SharedArrayBuffer((2 * PAGES + EXTRA) * 4));
    const task = new URL('./tasks/frame-reuse.js', import.meta.url);
    const args = (role: FrameReuseArgs['role']): FrameReuseArgs => ({
      role,
      kernel: kernel.describe(),
      pfns: pfns.buffer as SharedArrayBuffer,
    });
    assert.deepEqual(await machine.run<number>(task, args('writer'), [0]), [PAGES]);
    // Every freed frame to the zone (which hands reused frames out first).
    rcuBarrier();
    mem.drainAll();
    assert.equal(kernel.counts().frames, 0);
    const secret = [...pfns.subarray(0, PAGES)];
    assert.equal(new Set(secret).size, PAGES);
    for (const pfn of secret) {
      const bytes = mem.bytes.subarray(pfn * P, (pfn + 1) * P);
      if (poison) {
        const bad = bytes.findIndex((b) => b !== POISON_BYTE);
        assert.equal(bad, -1, `freed pfn ${pfn}: byte ${bad} is not poison`);
      } else {
        // Not poisoned: the secret is still there while the frame is free...
        const v = new DataView(bytes.buffer, bytes.byteOffset, P);
        assert.equal(v.getInt32(P - 4, true), wordOf(SECRET, P - 4), `freed pfn ${pfn} kept its bytes`);
      }
    }
    // ... and the next process sees none of it (zeroed on reuse; the reader checks every word).
    assert.deepEqual(await machine.run<number>(task, args('reader'), [1]), [PAGES + EXTRA]);
    const reused = new Set(pfns.subarray(PAGES));
    const missing = secret.filter((pfn) => !reused.has(pfn));
    assert.deepEqual(missing, [], "every one of the writer's frames went to the reader");
    expectNothingLeft(kernel);
  });
}

test('debug mode (npm test) poisons freed frames by default', () => {
  assert.equal(Kernel.create({ frames: 16 }).mem.poison, DEBUG);
});

test('vmsplice on a CPU whose Mmu is online while another CPU of the process munmaps: no deadlock', async () => {
  const kernel = Kernel.create({ frames: 1024 });
  const proc = Process.create(kernel);
  proc.mm.mmap(BASE, P, RW, ANON);
  fillPage(proc.mm.mmu(), BASE, SEED);
  proc.detach();
  const sync = new SharedArrayBuffer(12);
  const task = new URL('./tasks/splice-race.js', import.meta.url);
  const args = (role: SpliceRaceArgs['role']): SpliceRaceArgs => ({ role, process: proc.describe(), sync });
  const [[splices], [unmaps]] = await Promise.all([
    machine.run<number>(task, args('splicer'), [0]),
    machine.run<number>(task, args('unmapper'), [1]),
  ]);
  assert.ok(splices >= SPLICES, `only ${splices} splices`);
  assert.ok(unmaps >= UNMAPS, `only ${unmaps} munmaps`);
  proc.exit();
  expectNothingLeft(kernel);
});
