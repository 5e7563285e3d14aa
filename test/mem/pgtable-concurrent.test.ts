/**
 * Lock-free page-table walks beside a writer on real worker CPUs (tasks/pgtable-churn.ts): the
 * reader never reaches a freed or poisoned table and never sees an entry the writer could not
 * have installed at that address; afterwards the tree is consistent, and every table comes back
 * once it is destroyed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { PageTables } from '../../src/mem/pgtable.js';
import { USER_ADDR_LIMIT } from '../../src/mem/pte.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { badEntry, type ChurnArgs, type ChurnResult } from './tasks/pgtable-churn.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

test('a CPU walking under RCU beside one that installs, zaps, moves and frees tables flat out sees no freed table', async () => {
  const seed = Number(process.env.PGTABLE_SEED ?? Date.now() % 100_000);
  const pt = PageTables.create({ capacity: 1 << 14, poison: true, name: 'test.pgtable.churn' });
  const base = { pt: pt.describe(), sync: new SharedArrayBuffer(8), seed, deadlineMs: Date.now() + 1500 };
  const task = new URL('./tasks/pgtable-churn.js', import.meta.url);
  const [[wrote], [read]] = await Promise.all([
    machine.run<ChurnResult>(task, { ...base, role: 'writer' } satisfies ChurnArgs, [0]),
    machine.run<ChurnResult>(task, { ...base, role: 'reader' } satisfies ChurnArgs, [1]),
  ]);
  assert.ok(wrote.operations > 1000, `seed ${seed}: the writer made ${wrote.operations} changes`);
  assert.ok(wrote.freed > 100, `seed ${seed}: the writer freed ${wrote.freed} tables`);
  assert.ok(read.checks > 10_000, `seed ${seed}: the reader made ${read.checks} walks`);
  assert.ok(
    read.freed > 100 && read.hugeSeen > 0,
    `seed ${seed}: the reader saw ${read.freed} entries, ${read.hugeSeen} huge`,
  );
  if (process.env.PGTABLE_VERBOSE) console.log(`seed ${seed}`, wrote, read);
  assert.equal(pt.validate(), undefined, `seed ${seed}`);
  pt.forEachPresent(0, USER_ADDR_LIMIT, (addr, entry) => {
    const problem = badEntry(entry, addr);
    assert.equal(problem, undefined, `seed ${seed}: ${problem}`);
  });
  pt.zapRange(0, USER_ADDR_LIMIT, () => {});
  pt.freePgtables(0, USER_ADDR_LIMIT, 0, 0);
  assert.equal(pt.countTables(), 1, 'only the PGD is left');
  pt.destroy();
  rcuBarrier();
  assert.equal(pt.live, 0, `seed ${seed}: tables leaked`);
});
