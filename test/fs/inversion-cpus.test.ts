/**
 * The lock inversion of issue 11 does not deadlock (its "Must hold"): write() and pwrite() hold the
 * file's i_rwsem while they fault on a user buffer that maps the same file, or another file (the
 * other order than a fault's mmap_lock → invalidate_lock → page lock), on two CPUs, while a third
 * CPU faults both files and a fourth moves, unmaps and remaps the buffers' mappings, zaps them and
 * writes the files back (inversion.ts, tasks/inversion.ts; 2 s here, inversion.stress.ts runs
 * longer). Nothing deadlocks (every wait is bounded by the watchdog: a deadlock is an error), the
 * validator reports nothing (no lock-order cycle, no I/O under mmap_lock), every write's bytes are
 * right, and the host files hold them after fsync.
 */
import { test } from 'node:test';
import { runInversion } from './inversion.js';
import { quietValidator, validatorCounts } from './quiet-validator.js';

test('write() from a mapping of the same file and of another, against faults, mremap, munmap and writeback on other CPUs: no deadlock, no report, right data', async () => {
  const counts = validatorCounts();
  const s = await runInversion(Number(process.env.VMSPACE_SEED ?? 20_261_210), 2000);
  if (process.env.FS_VERBOSE) console.log(s);
  quietValidator(counts);
});
