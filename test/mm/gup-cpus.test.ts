/**
 * GUP-fast on real worker CPUs (tasks/gup-race.ts), one process:
 *   - it takes no lock: populated pages are pinned on one CPU while another holds mmap_lock (W);
 *   - pins and gets on CPU A race munmap, mprotect, fork, MADV_DONTNEED and mremap (the PTE table
 *     moved whole) on CPU B, with freed frames reused at once: every page returned is a page of the
 *     mapping at some instant (anonymous, referenced, exclusive when pinned, holding only its own
 *     pattern or zeros, twice while held), never freed or reused while held; no leak at the end;
 *   - a pin racing fork is never lost to copy-on-write: what the device writes the process reads,
 *     and what the process stores the pin sees. Checked to fail (within a run of this length) when
 *     gupFast ignores write_protect_seq.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { GUP_PIN_COUNTING_BIAS } from '../../src/mem/page.js';
import { ptePfn } from '../../src/mem/pte.js';
import { putUserPages, unpinUserPages } from '../../src/mm/gup.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import {
  type GupRaceArgs,
  type GupRaceResult,
  P,
  PAGES,
  refill,
  WINDOW,
  WINDOW_LEN,
} from './tasks/gup-race.js';

const DURATION_MS = 1500;
const TASK = new URL('./tasks/gup-race.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
});

function setup(): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames: 8192 });
  const proc = Process.create(kernel, { config: { privileged: true } });
  proc.mm.mmap(WINDOW, WINDOW_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  refill(proc, 0, PAGES);
  proc.detach();
  return { kernel, proc };
}

function finish(kernel: Kernel, proc: Process): void {
  proc.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.equal(kernel.mem.check(), undefined);
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

async function race(
  roles: [GupRaceArgs['role'], GupRaceArgs['role']],
  seed: number,
): Promise<GupRaceResult[]> {
  const { kernel, proc } = setup();
  const sync = new SharedArrayBuffer(16);
  const runs = roles.map((role, cpu) =>
    machine.run<GupRaceResult>(
      TASK,
      { role, process: proc.describe(), sync, seed, durationMs: DURATION_MS } satisfies GupRaceArgs,
      [cpu],
    ),
  );
  const results = (await Promise.all(runs)).map(([r]) => r);
  for (const r of results) assert.equal(r.error, '', r.error);
  if (process.env.GUP_VERBOSE) console.log(JSON.stringify(results));
  finish(kernel, proc);
  return results;
}

test('GUP-fast takes no lock: populated pages are pinned and got while another CPU holds mmap_lock for write', async () => {
  const { kernel, proc } = setup();
  const mm = proc.mm;
  const sync = new SharedArrayBuffer(16);
  const words = new Int32Array(sync);
  const held = machine.run<GupRaceResult>(
    TASK,
    { role: 'holder', process: proc.describe(), sync, seed: 1, durationMs: 0 } satisfies GupRaceArgs,
    [1],
  );
  try {
    while (Atomics.load(words, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    const mapped = Array.from({ length: PAGES }, (_, i) => ptePfn(mm.pt.lookupPte(WINDOW + i * P)));
    const pinned = mm.pinUserPagesFast(WINDOW, PAGES, { write: true });
    assert.deepEqual(pinned, mapped);
    for (const pfn of mapped) assert.equal(kernel.mem.refcountOf(pfn), 1 + GUP_PIN_COUNTING_BIAS);
    unpinUserPages(kernel.mem, mapped);
    const got = mm.getUserPagesFast(WINDOW, PAGES);
    assert.deepEqual(got, mapped);
    putUserPages(kernel.mem, mapped);
    assert.equal(Atomics.load(words, 3), 0, 'mmap_lock was held all along');
  } finally {
    Atomics.store(words, 3, 1);
    Atomics.notify(words, 3);
    await held;
  }
  proc.detach();
  finish(kernel, proc);
});

test("GUP-fast on CPU A racing munmap, mprotect, fork, MADV_DONTNEED and mremap on CPU B: every page returned is the mapping's, held safely; nothing leaks", async () => {
  const [pinner, mutator] = await race(['pinner', 'mutator'], 0x5eed);
  assert.ok(mutator.ops >= 20, `the mutator ran ${mutator.ops} operations`);
  assert.ok(pinner.calls > 1000, `the pinner had pages ${pinner.calls} times`);
  assert.ok(pinner.lockless > 0, `the lockless walk had ${pinner.lockless} pages`);
});

test('a GUP-fast pin racing fork on another CPU is never lost to copy-on-write', async () => {
  const [pinner, forker] = await race(['forkpin', 'forker'], 0xf0f0);
  assert.ok(forker.ops >= 20, `the forker forked ${forker.ops} times`);
  assert.ok(pinner.calls > 1000, `the pinner pinned ${pinner.calls} times`);
});
