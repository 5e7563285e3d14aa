/**
 * Get/pin-user-pages (src/mm/gup.ts) and the page-reference pipe (src/mm/pipe.ts) on one CPU:
 * partial counts, errors, the zero page unshared for a pin, partial pipe reads. The copy-on-write
 * cases of cow.c that involve a pipe or a pin run on two worker CPUs in cow-cpus.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EFAULT, EINVAL } from '../../src/errno.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import type { Process } from '../../src/kernel/process.js';
import { PG_ANON_EXCLUSIVE, ZERO_PFN } from '../../src/mem/page.js';
import { ptePfn } from '../../src/mem/pte.js';
import { putUserPages, unpinUserPages } from '../../src/mm/gup.js';
import { Pipe } from '../../src/mm/pipe.js';
import { PROT_READ } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { setup as setupProcess } from '../support/process-fixture.js';
import { ANON, BASE, fillPage, P, RW, wordOf } from './cow-fixture.js';

const SEED = 100;

function setup(): { kernel: Kernel; parent: Process } {
  const { kernel, proc: parent } = setupProcess();
  parent.mm.mmap(BASE, 2 * P, RW, ANON);
  fillPage(parent.mm.mmu(), BASE, SEED);
  return { kernel, parent };
}

function exitAll(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

function pins(result: number[] | number): number[] {
  assert.ok(Array.isArray(result), `GUP failed: ${String(result)}`);
  return result;
}

test('GUP: partial counts, errors, zero page unshared for a pin, get references', () => {
  const { kernel, parent } = setup();
  const mem = kernel.mem;
  // Page 1 read (the zero page mapped): a read pin gives it a fresh exclusive page instead.
  assert.equal(parent.mm.mmu().load32(BASE + P), 0);
  assert.equal(ptePfn(parent.mm.pt.lookupPte(BASE + P)), ZERO_PFN);
  const two = pins(parent.mm.pinUserPages(BASE, 2, {}));
  assert.equal(two.length, 2);
  assert.notEqual(two[1], ZERO_PFN);
  assert.equal(ptePfn(parent.mm.pt.lookupPte(BASE + P)), two[1]);
  assert.equal(mem.testFlag(two[1], PG_ANON_EXCLUSIVE), true);
  unpinUserPages(mem, two);
  // Past the mapping: the pages done so far; nothing mapped: EFAULT; bad address: EINVAL.
  const part = pins(parent.mm.getUserPages(BASE, 3, { write: true }));
  assert.equal(part.length, 2);
  putUserPages(mem, part);
  assert.equal(parent.mm.getUserPages(BASE + 2 * P, 1), -EFAULT);
  assert.equal(parent.mm.pinUserPages(BASE + 1, 1), -EINVAL);
  // A write pin of a read-only mapping: EFAULT.
  parent.mm.mprotect(BASE, 2 * P, PROT_READ);
  assert.equal(parent.mm.pinUserPages(BASE, 1, { write: true }), -EFAULT);
  // Pipe: partial pages, a read across pages, close puts the rest.
  parent.mm.mprotect(BASE, 2 * P, RW);
  const pipe = new Pipe(mem);
  assert.equal(pipe.spliceFrom(parent.mm, BASE + 256, P), P);
  const head = pipe.read(P - 256);
  const view = new DataView(head.buffer);
  for (let w = 0; w < head.length; w += 4) assert.equal(view.getInt32(w, true), wordOf(SEED, 256 + w));
  assert.equal(pipe.size, 256);
  pipe.close();
  assert.equal(pipe.spliceFrom(parent.mm, BASE, P), -EINVAL);
  exitAll(kernel, parent);
});
