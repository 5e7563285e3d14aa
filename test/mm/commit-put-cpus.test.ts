/**
 * A VMA commit holds the references of the identities it removes until it is done with them
 * (vma-txn.ts, closeRmapWindows): the file of a removed VMA is put only after the commit closed its
 * i_mmap commit window on that file. On worker CPUs: CPU 1 maps a memfd MAP_SHARED, touches it
 * (its TLB holds the page), and closes the descriptor exactly while CPU 0's munmap (or MAP_FIXED
 * mmap) of the last mapping waits in its TLB shootdown for CPU 1, after the commit removed the
 * VMA and before its window closed. Put too early, the removed VMA's reference was not the last:
 * the close freed the record, and the window's close then wrote to the freed record (the poison
 * check of the next allocation: "arena file: record N was written after it was freed", seen once
 * in the shared-process race). Now the close is not the last put, the record is released after
 * the commit, untouched once freed, and every count returns to zero.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEBUG } from '../../src/assert.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { POISON_WORD } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { CommitPutArgs, CommitPutResult } from './tasks/commit-put.js';

const P = 4096;
const task = new URL('./tasks/commit-put.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
});

/** Words 1.. of a freed record that are no longer poison (word 0 links the free list). */
function unpoisoned(kernel: Kernel, id: number): number[] {
  const a = kernel.files.arena;
  const words: number[] = [];
  for (let w = 1; w < a.i32PerRecord; w++) {
    if (a.i32[id * a.i32PerRecord + w] !== POISON_WORD) words.push(w);
  }
  return words;
}

for (const how of ['munmap', 'mmap-fixed'] as const) {
  test(`a memfd closed on another CPU inside the ${how} commit of its last mapping: released after the commit, its record untouched once freed`, async () => {
    const kernel = Kernel.create();
    const proc = Process.create(kernel);
    const len = 4 * P;
    const fd = proc.memfdCreate('commit-put');
    proc.ftruncate(fd, len);
    const addr = proc.mm.mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const file = proc.fds.fget(fd);
    kernel.files.put(file); // the descriptor and the mapping keep it
    assert.equal(kernel.files.refs(file), 2, 'the description and the VMA hold the memfd');
    const sync = new SharedArrayBuffer(8);
    const args = (role: CommitPutArgs['role']): CommitPutArgs => ({
      role,
      how,
      process: proc.describe(),
      fd,
      file,
      addr,
      len,
      sync,
    });
    const [unmapped, held] = await Promise.all([
      machine.run<CommitPutResult>(task, args('unmapper'), [0]),
      machine.run<CommitPutResult>(task, args('holder'), [1]),
    ]);
    assert.equal(unmapped.length, 1);
    const [{ refsAtClose, generation }] = held;
    assert.ok(generation > 0, 'the holder waited for a shootdown');
    assert.equal(refsAtClose, 2, "the commit still held the removed VMA's reference when the close came");
    assert.equal(kernel.files.isFile(file), false, 'the memfd was released once both were gone');
    if (DEBUG) assert.deepEqual(unpoisoned(kernel, file), [], 'words written after the record was freed');
    // The freed record is the next one handed out: the arena's own poison check runs on it.
    const again = proc.memfdCreate('again');
    proc.close(again);
    proc.exit();
    proc.detach();
    rcuBarrier();
    kernel.mem.drainAll();
    assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  });
}
