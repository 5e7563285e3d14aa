/**
 * The shared-process race on real workers, for the quick test and the stress run: writer CPUs run
 * random syscalls on ONE process (each attached by its descriptor), reader CPUs look VMAs up on the
 * fault path (lockVmaUnderRcu, falling back to mmap_lock) beside them. Then it checks:
 *   - the readers saw only live, attached VMAs covering their address (test/mm/tasks/vma-reader.ts);
 *   - a single-threaded model replaying the syscall log (the order mmap_lock granted the calls)
 *     gets every call's result and ends with the same maps;
 *   - every counter equals its recount (checkMmLocked), also as seen from another CPU;
 *   - after exit, no VMA record, tree node, file, anon_vma or page-table leaf is left.
 */
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { AddressSpace } from '../../src/mm/address-space.js';
import { checkMmLocked } from '../../src/mm/check.js';
import { mapsText } from '../../src/mm/proc-maps.js';
import {
  NR_BRK,
  NR_MADVISE,
  NR_MLOCK2,
  NR_MLOCKALL,
  NR_MMAP,
  NR_MPROTECT,
  NR_MREMAP,
  NR_MUNLOCK,
  NR_MUNLOCKALL,
  NR_MUNMAP,
  NR_POPULATE,
  NR_POPULATE_PART,
  NR_TOUCH,
  SyscallLog,
} from '../../src/mm/syscall-log.js';
import { mmapReadLock, mmapReadUnlock } from '../../src/mm/vma-lock.js';
import { CONTROL_WORDS, ERRORS, type RaceArgs } from '../mm/tasks/vma-race.js';
import type { ReaderCounts } from '../mm/tasks/vma-reader.js';
import { ArrayRangeIndex } from '../support/array-range-index.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { WriterArgs } from './tasks/proc-writer.js';

const CONFIG = { privileged: true, startBrk: 0x0f0000000 };

export interface RaceResult {
  syscalls: number;
  populates: number;
  lookups: number;
  logged: number;
}

export async function raceSharedProcess(seed: number, durationMs: number): Promise<RaceResult> {
  const kernel = Kernel.create();
  const log = SyscallLog.create(4_000_000);
  const proc = Process.create(kernel, { config: CONFIG, log });
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const writers = 2;
  const readers = 1;
  const machine = await Machine.start({ cpus: writers + readers, watchdogMs: 30_000 });
  let ops: number[] = [];
  let counts: ReaderCounts[] = [];
  try {
    const wargs: WriterArgs = { process: proc.describe(), control, seed, durationMs, readers, writers };
    const rargs: RaceArgs = { mm: proc.mm.describe(), control, seed, durationMs, maxOps: 0, readers };
    const writerCpus = Array.from({ length: writers }, (_, cpu) => cpu);
    const readerCpus = Array.from({ length: readers }, (_, k) => writers + k);
    [ops, counts] = await Promise.all([
      machine.run<number>(new URL('./tasks/proc-writer.js', import.meta.url), wargs, writerCpus),
      machine.run<ReaderCounts>(new URL('../mm/tasks/vma-reader.js', import.meta.url), rargs, readerCpus),
    ]);
  } finally {
    await machine.stop();
  }
  assert.equal(Atomics.load(new Int32Array(control), ERRORS), 0, 'a reader saw a bad VMA');
  assert.equal(log.lost, 0, 'the syscall log overflowed');
  const calls = ops.reduce((x, y) => x + y, 0);
  assert.ok(
    log.count >= calls,
    `${log.count} logged syscalls for ${calls} random calls (some make two or three)`,
  );
  const syscalls = log.count;

  // Counters against a recount, read under mmap_lock from a facade of its own (another CPU's view).
  const other = AddressSpace.attach(proc.mm.describe());
  mmapReadLock(other.locks);
  try {
    checkMmLocked(other);
  } finally {
    mmapReadUnlock(other.locks);
  }
  let populates = 0;
  for (let i = 0; i < log.count; i++) if (log.entry(i)[0] === NR_POPULATE) populates++;
  assert.ok(populates > 0, 'populate stages ran (and were logged)');
  const model = replayLog(log);
  assert.equal(mapsText(proc.mm), mapsText(model), 'the model replay of the log ends with the same maps');
  assert.equal(proc.mm.lockedPages(), model.lockedPages());
  assert.equal(proc.mm.mapCount, model.mapCount);

  const vmaArena = proc.mm.arena.arena;
  const tree = proc.mm.index as unknown as { arena: { live: number } };
  proc.exit();
  proc.detach();
  assert.equal(vmaArena.live, 0, 'VMA records left after exit');
  assert.equal(tree.arena.live, 0, 'tree nodes left after exit');
  assert.equal(proc.mm.pt.live, 0, 'page tables left after exit');
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  return { syscalls, populates, lookups: counts.reduce((x, c) => x + c.lookups, 0), logged: log.count };
}

/**
 * Replays the log on a fresh single-threaded address space; every result must match. Populate
 * stages run where the log has them (they ran after their syscall released mmap_lock, so other
 * CPUs' calls may come between).
 */
function replayLog(log: SyscallLog): AddressSpace {
  const mm = new AddressSpace({
    index: new ArrayRangeIndex(),
    rcuFree: false,
    config: CONFIG,
    deferPopulate: true,
  });
  for (let i = 0; i < log.count; i++) {
    const [nr, a, b, c, d, e, f, ret] = log.entry(i);
    let got: number;
    if (nr === NR_MMAP) got = mm.sysMmap(a, b, c, d, e === 0 ? -1 : e, f);
    else if (nr === NR_MUNMAP) got = mm.sysMunmap(a, b);
    else if (nr === NR_MPROTECT) got = mm.sysMprotect(a, b, c);
    else if (nr === NR_MREMAP) got = mm.sysMremap(a, b, c, d, e);
    else if (nr === NR_MADVISE) got = mm.sysMadvise(a, b, c);
    else if (nr === NR_BRK) got = mm.sysBrk(a);
    else if (nr === NR_TOUCH) got = mm.sysTouch(a, b, c !== 0);
    else if (nr === NR_MLOCK2) got = mm.sysMlock2(a, b, c);
    else if (nr === NR_MUNLOCK) got = mm.sysMunlock(a, b);
    else if (nr === NR_MLOCKALL) got = mm.sysMlockall(a);
    else if (nr === NR_MUNLOCKALL) got = mm.sysMunlockall();
    else if (nr === NR_POPULATE) got = mm.populateLogged(a, b, c, d);
    else if (nr === NR_POPULATE_PART) {
      // A round that stopped for I/O: its effects (page tables, anon_vmas) where it ran; the
      // stage's result is its last round's.
      mm.populateLogged(a, b, c, d);
      got = ret;
    } else throw new Error(`log entry ${i}: unexpected syscall ${nr}`);
    assert.equal(got, ret, `log entry ${i} (syscall ${nr}) returned ${got} in the model, ${ret} live`);
  }
  return mm;
}
