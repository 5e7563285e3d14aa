/**
 * The per-VMA lock race on real workers, shared by the quick test and the stress run: CPU 0 runs
 * random syscalls on an AddressSpace created here (maple tree, poisoned VMA arena), the other CPUs
 * look VMAs up through lockVmaUnderRcu / lockMmAndFindVma at full speed. Checks what the readers
 * saw, the event counters, and that nothing leaks once the machine stopped.
 */
import assert from 'node:assert/strict';
import { Machine } from '../../src/machine/machine.js';
import { MapleTree } from '../../src/maple/tree.js';
import { AddressSpace } from '../../src/mm/address-space.js';
import { vmaLockEvents } from '../../src/mm/vma-lock.js';
import { CONTROL_WORDS, ERRORS, OPS, type RaceArgs } from './tasks/vma-race.js';
import type { ReaderCounts } from './tasks/vma-reader.js';

export async function raceVmaLocks(seed: number, readers: number, durationMs: number): Promise<void> {
  const tree = MapleTree.create({ name: 'race.vmas', externalLock: 'mmap_lock', poison: true });
  const mm = new AddressSpace({ index: tree });
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const args: RaceArgs = {
    mm: mm.describe(),
    control,
    seed,
    durationMs,
    maxOps: 50_000_000,
    readers,
  };
  const machine = await Machine.start({ cpus: readers + 1, watchdogMs: 20_000 });
  let counts: ReaderCounts[] = [];
  let ops = 0;
  try {
    const readerCpus = Array.from({ length: readers }, (_, i) => i + 1);
    const [writerResult, readerResults] = await Promise.all([
      machine.run<number>(new URL('./tasks/vma-writer.js', import.meta.url), args, [0]),
      machine.run<ReaderCounts>(new URL('./tasks/vma-reader.js', import.meta.url), args, readerCpus),
    ]);
    ops = writerResult[0];
    counts = readerResults;
  } catch (error) {
    console.error(`vma lock race failed with seed ${seed} (replay: VMSPACE_SEED=${seed})`);
    throw error;
  } finally {
    await machine.stop();
  }
  const w = new Int32Array(control);
  assert.equal(w[ERRORS], 0);
  assert.equal(ops, w[OPS]);
  assert.ok(ops > 100, `the writer made progress: ${ops} calls`);
  const total = (k: keyof ReaderCounts) => counts.reduce((sum, c) => sum + c[k], 0);
  assert.ok(total('vmaLocked') > 0, `some lookups held just the VMA: ${JSON.stringify(counts)}`);
  const events = vmaLockEvents(mm.locks);
  assert.equal(events.success, total('vmaLocked'), 'every VMA-locked lookup was counted');
  assert.equal(
    events.noVma + events.locked + events.detached + events.moved,
    total('mmapLocked') + total('holes'),
    'every fallback was counted with its reason',
  );
  assert.equal(events.mmapFallbacks, total('mmapLocked') + total('holes'));
  assert.equal(mm.arena.arena.live, 0, 'every VMA record was freed');
  assert.equal(tree.arena.live, 0, 'every tree node was freed');
  assert.deepEqual(mm.mmapLock.state(), { readers: 0, writer: false, queued: 0 });
}
