/**
 * GUP over a slow file raced against munmap/mremap/mprotect of the same range on another CPU
 * (issue 12, "Must hold"; tasks/gup-slow-race.ts has the oracle), for the quick test and the
 * stress run. Two host files of stamped pages, their reads and their fault callback slowed down by
 * injection; one process whose fault-locking design is the run's; CPU 0 gets, pins and copies
 * pages of a window of file mappings, CPU 1 remaps, reprotects and moves that window, drops its
 * pages and reclaims the page cache so that faults read the slow device again. Frames are
 * poisoned when freed. After the run: the files unchanged on the host (nothing freed or foreign
 * was written back), the frames checked, every count back to zero, and the validator's counts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INJECT_FAULT, INJECT_READ_PAGE, setInjection } from '../../src/fs/inject.js';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts } from '../../src/lockdep/index.js';
import type { Machine } from '../../src/machine/machine.js';
import type { FaultDesign } from '../../src/mm/fault-design.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import {
  BUF,
  FILE_PAGES,
  type GupSlowArgs,
  type GupSlowResult,
  initialStates,
  MAX_CALL_PAGES,
  ORACLE_WORDS,
  P,
  stamp,
  WINDOW,
  WINDOW_PAGES,
} from './tasks/gup-slow-race.js';

const TASK = new URL('./tasks/gup-slow-race.js', import.meta.url);
const RW = PROT_READ | PROT_WRITE;
/** Checks that must not move in any design (mmap_sleep and mmap_alloc are the mm's own, by design). */
const DEADLOCK_CHECKS = ['circular', 'recursive', 'bad_unlock', 'held_at_return', 'sleep_in_atomic'] as const;

export interface GupSlowSummary {
  design: FaultDesign;
  seed: number;
  gupper: GupSlowResult;
  mutator: GupSlowResult;
  /** The validator's "I/O under mmap_lock" count over the run. */
  mmapIo: number;
  /** Faults that dropped their locks for I/O (vmstat). */
  retries: number;
}

/** The host file's bytes: page k of file f holds stamp(f, k, w) at every word w. */
function fileBytes(f: number): Uint8Array {
  const words = new Int32Array((FILE_PAGES * P) / 4);
  for (let k = 0; k < FILE_PAGES; k++)
    for (let w = 0; w < P; w += 4) words[(k * P + w) >> 2] = stamp(f, k, w);
  return new Uint8Array(words.buffer);
}

/**
 * One run on CPUs 0 (the gupper) and 1 (the mutator) of `machine` under `design`; asserts what
 * holds after any run (no error on either CPU, files intact, nothing leaked, no deadlock check
 * moved) and returns the counts for the caller's own assertions.
 */
export async function runGupSlowRace(
  machine: Machine,
  design: FaultDesign,
  seed: number,
  durationMs: number,
  lie = false,
  min = { ops: 0, calls: 0 },
  latencyUs = 150,
): Promise<GupSlowSummary> {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-gup-slow-'));
  try {
    const paths = [0, 1].map((f) => join(dir, `stamped-${f}.bin`));
    for (let f = 0; f < 2; f++) writeFileSync(paths[f], fileBytes(f));
    const kernel = Kernel.create({ frames: 2048, poison: true });
    const proc = Process.create(kernel, { config: { design } });
    const fds = paths.map((path) => proc.open(path, O_RDWR));
    const files = fds.map((fd) => {
      const id = proc.fds.fget(fd);
      kernel.files.put(id);
      setInjection(kernel.files, id, INJECT_READ_PAGE, { latencyUs });
      setInjection(kernel.files, id, INJECT_FAULT, { latencyUs });
      return id;
    });
    const scratchFd = proc.memfdCreate('gup-slow-scratch');
    proc.mm.mmap(WINDOW, WINDOW_PAGES * P, RW, MAP_SHARED | MAP_FIXED, fds[0], 0);
    proc.mm.mmap(BUF, MAX_CALL_PAGES * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    const oracle = new SharedArrayBuffer(ORACLE_WORDS * 4);
    initialStates(new Int32Array(oracle));
    const desc = proc.describe();
    proc.detach();
    const before = lockdepCounts();
    const base = { process: desc, fds, files, scratchFd, oracle, seed, durationMs, lie };
    const floors = { minOps: min.ops, minCalls: min.calls };
    const [[gupper], [mutator]] = await Promise.all([
      machine.run<GupSlowResult>(TASK, { ...base, ...floors, role: 'gupper' } satisfies GupSlowArgs, [0]),
      machine.run<GupSlowResult>(TASK, { ...base, ...floors, role: 'mutator' } satisfies GupSlowArgs, [1]),
    ]);
    const after = lockdepCounts();
    if (!lie) assert.equal(gupper.error, '', `${design}: ${gupper.error}`);
    assert.equal(mutator.error, '', `${design}: ${mutator.error}`);
    for (const check of DEADLOCK_CHECKS) assert.equal(after[check], before[check], `validator: ${check}`);
    const retries = proc.mm.vmstat().faultRetries;
    for (const fd of fds) proc.fsync(fd);
    for (let f = 0; f < 2; f++) {
      const host = Buffer.from(readFileSync(paths[f]));
      assert.ok(host.equals(fileBytes(f)), `${design}: file ${f} changed on the host`);
    }
    for (const fd of [...fds, scratchFd]) proc.close(fd);
    proc.exit();
    rcuBarrier();
    kernel.mem.drainAll();
    assert.equal(kernel.mem.check(), undefined);
    assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
    return { design, seed, gupper, mutator, mmapIo: after.mmap_io - before.mmap_io, retries };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The assertions every run makes of its counts (the quick test and the stress run). */
export function assertGupSlowRace(s: GupSlowSummary, minCalls: number): void {
  const g = s.gupper;
  const calls = g.calls.reduce((a, b) => a + b, 0);
  assert.ok(calls >= minCalls && g.calls.every((n) => n > 0), `${s.design}: calls ${g.calls}`);
  // Most calls race a remap and end short or EFAULT; a few pages in every 20 calls are judged.
  assert.ok(g.pages >= minCalls / 16, `${s.design}: ${g.pages} pages judged in ${calls} calls`);
  assert.ok(g.efaults > 0 && g.short > 0, `${s.design}: EFAULTs ${g.efaults}, short counts ${g.short}`);
  assert.ok(g.anonPages > 0, `${s.design}: no private copy was returned`);
  assert.ok(g.unjudged * 100 <= calls, `${s.design}: ${g.unjudged} calls unjudged`);
  assert.ok(
    s.mutator.ops >= 50 && s.mutator.reclaimed > 0,
    `${s.design}: mutator ${JSON.stringify(s.mutator)}`,
  );
  // global holds mmap_lock across the whole fault, I/O included; the others drop it and retry.
  if (s.design !== 'global') assert.ok(s.retries > 0, `${s.design}: no fault dropped its locks for I/O`);
  // Linus's rule: only the global design may hold mmap_lock across I/O (and here it does).
  if (s.design === 'global') assert.ok(s.mmapIo > 0, 'global: the validator saw no I/O under mmap_lock');
  else assert.equal(s.mmapIo, 0, `${s.design}: I/O under mmap_lock`);
}
