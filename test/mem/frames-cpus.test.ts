/**
 * PhysMem on worker CPUs: CPUs allocate and free frames flat out (stamping and checking every
 * frame, handing frames to each other so that frees land in other CPUs' lists and last puts race),
 * and every frame is accounted for at the end; a CPU that runs out of memory while another CPU's
 * list holds frames asks for a drain, which that CPU answers at its next allocation; drainAll
 * refuses to touch lists while a CPU runs a task; frames a CPU gave back go to its home list and
 * come back to it first, and another CPU takes them before never-used frames.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { PhysMem } from '../../src/mem/frames.js';
import { FIRST_PFN } from '../../src/mem/page.js';
import { type ChurnArgs, type ChurnResult, MAILBOX, type StepArgs } from './tasks/frames.js';

const TASK = new URL('./tasks/frames.js', import.meta.url);

function assertAllFree(mem: PhysMem): void {
  mem.drainAll();
  assert.equal(mem.check(), undefined);
  const s = mem.stats();
  assert.deepEqual(
    [s.free, s.anon, s.file, s.pagetable, s.zero, s.other, s.cached],
    [mem.frames - FIRST_PFN, 0, 0, 0, 1, 0, 0],
  );
}

test('3 CPUs allocate, stamp, hand over and free frames flat out; every frame is accounted for', async () => {
  const cpus = 3;
  const rounds = 30_000;
  const mem = PhysMem.create({ frames: FIRST_PFN + 512, pcpHigh: 16, pcpBatch: 4 });
  const machine = await Machine.start({ cpus });
  try {
    const args: ChurnArgs = {
      op: 'churn',
      mem: mem.describe(),
      cpus,
      rounds,
      window: 48,
      mailboxes: new SharedArrayBuffer(4 * (1 + cpus * (2 + MAILBOX))),
    };
    const results = await machine.run<ChurnResult>(TASK, args);
    const s = mem.stats();
    const allocs = results.reduce((n, r) => n + r.allocs, 0);
    assert.equal(s.allocs, allocs);
    assert.equal(s.frees, allocs, 'every allocated frame was freed');
    assert.equal(s.failures, 0);
    assert.ok(
      s.refills > 100 && s.drains > 100,
      `the zone was used (${s.refills} refills, ${s.drains} drains)`,
    );
    for (const [cpu, r] of results.entries()) {
      assert.ok(r.sent > 100, `cpu ${cpu} handed frames over (${r.sent})`);
      assert.equal(r.received, results[(cpu + cpus - 1) % cpus].sent, `cpu ${cpu} received all it was sent`);
    }
    assert.ok(s.cached > 0, 'frames stay in the CPUs lists after the task');
    assert.equal(s.free, s.usable);
  } finally {
    await machine.stop();
  }
  assertAllFree(mem);
});

test('out of memory with frames in another CPU list: a drain request, answered at that CPU next allocation', async () => {
  const mem = PhysMem.create({ frames: FIRST_PFN + 64, pcpHigh: 16, pcpBatch: 4 });
  const machine = await Machine.start({ cpus: 2 });
  const step = (op: StepArgs['op'], cpu: number, held: SharedArrayBuffer) =>
    machine.run<number>(TASK, { op, mem: mem.describe(), held } satisfies StepArgs, [cpu]).then(([n]) => n);
  const held = () => new SharedArrayBuffer(4 * 65);
  try {
    const first = held();
    assert.equal(await step('hold', 0, first), 64, 'cpu 0 takes every frame');
    assert.equal(await step('put', 0, first), 64);
    const cached = mem.stats().cached;
    assert.ok(cached > 0 && cached <= 16, `cpu 0 keeps ${cached} frames in its list`);
    const second = held();
    assert.equal(await step('hold', 1, second), 64 - cached, 'cpu 1 gets all but those');
    assert.equal(mem.stats().failures, 2, 'the allocation that found memory exhausted, on each CPU');
    assert.equal(await step('hold', 1, held()), 0, 'and nothing more while cpu 0 is idle');
    assert.notEqual(await step('touch', 0, held()), 0, 'cpu 0 allocates: it drains first');
    const third = held();
    const more = await step('hold', 1, third);
    assert.ok(more >= cached - 4, `cpu 1 now gets what cpu 0 had cached (${more})`);
    await step('put', 1, second);
    await step('put', 1, third);
    assert.ok((await step('drain', 1, held())) > 0, 'drainCpuCache empties the calling CPU list');
    const spinning = held();
    const busy = step('spin', 0, spinning);
    while (Atomics.load(new Int32Array(spinning), 0) !== 1) await new Promise((r) => setTimeout(r, 1));
    assert.throws(() => mem.drainAll(), /drainAll: cpu 0 is running a task/);
    Atomics.store(new Int32Array(spinning), 0, 2);
    await busy;
  } finally {
    await machine.stop();
  }
  assertAllFree(mem);
});

test("home lists: a CPU gets back the frames it gave first, then other CPUs' frames before never-used ones", async () => {
  const mem = PhysMem.create({ frames: FIRST_PFN + 512, pcpHigh: 8, pcpBatch: 4 });
  const machine = await Machine.start({ cpus: 2 });
  const step = (op: StepArgs['op'], cpu: number, held: SharedArrayBuffer, limit?: number) =>
    machine
      .run<number>(TASK, { op, mem: mem.describe(), held, limit } satisfies StepArgs, [cpu])
      .then(([n]) => n);
  const held = () => new SharedArrayBuffer(4 * 257);
  const pfns = (b: SharedArrayBuffer) => [...new Int32Array(b, 4, new Int32Array(b)[0])];
  try {
    const a = held();
    const b = held();
    assert.equal(await step('hold', 0, a, 64), 64);
    assert.equal(await step('hold', 1, b, 64), 64);
    const setA = new Set(pfns(a));
    const setB = new Set(pfns(b));
    // cpu 1 gives B back first, then cpu 0 gives A: one shared LIFO would hand A to cpu 1 next.
    await step('put', 1, b);
    await step('put', 0, a);
    assert.equal(mem.check(), undefined);
    const untouched = mem.stats().untouched;
    const again = held();
    assert.equal(await step('hold', 1, again, 64), 64);
    const mine = pfns(again);
    assert.ok(
      mine.every((p) => setB.has(p)),
      `cpu 1 got back only its own frames (${mine.filter((p) => !setB.has(p)).length} of A's)`,
    );
    const more = held();
    assert.equal(await step('hold', 1, more, 32), 32);
    assert.ok(
      pfns(more).every((p) => setA.has(p)),
      "its home list empty, cpu 1 takes cpu 0's frames before never-used ones",
    );
    assert.equal(mem.stats().untouched, untouched, 'no never-used frame taken');
    assert.equal(mem.check(), undefined);
    await step('put', 1, again);
    await step('put', 1, more);
  } finally {
    await machine.stop();
  }
  assertAllFree(mem);
});
