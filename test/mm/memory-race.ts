/**
 * The memory race on real workers, for the quick test and the stress run (issue 10's "Must
 * hold": CPUs store and load in random pages, checking a per-page pattern, while another CPU
 * runs random munmap/mprotect/mremap/madvise/fork; never a stale or foreign value, no frame or
 * table leaked, every invariant of page tables against VMAs checked at the end).
 *
 *   accessor CPUs (Machine workers 0..A-1)  tasks/memory-accessor.ts: stores and loads through
 *                                           their Mmus on ONE process, each checked on the spot
 *   mutator (this thread)                   memory-mutator.ts: random syscalls on the window with
 *                                           predicted outcomes, forks with every child checked
 *                                           against the parent's image, frame reuse with poison
 *
 * The oracle (tasks/memory-model.ts has the shared layout, memory-pages.ts the fork image):
 *   - Every page of the window is a slot with a seqlock generation. An access whose slot's
 *     generation is even and unchanged across it saw the slot's one state: it must fault exactly
 *     when that state says (SEGV_MAPERR unmapped, SEGV_ACCERR by protection) and, in its own lane,
 *     read exactly the value the model holds: the last pattern this CPU stored into that
 *     incarnation, or 0 if none (0 is also legal for a MADV_FREE'd incarnation).
 *     Calls that must not change what a page holds or how it may be accessed (fork, GUP pins,
 *     MADV_POPULATE_*) leave the generation alone: accesses racing them are checked exactly.
 *   - An access racing a syscall on its slot may see the old or the new state: it may fault, and a
 *     load may return any well-formed value (an accessor's pattern, or 0). A racing store that did
 *     not fault makes its word WILD (any well-formed value) in every incarnation the slot held
 *     meanwhile, until that accessor stores there again.
 *   - Whatever the race: never poison (the scratch refills, freed-frame poison 0x6b6b6b6b), never
 *     a child's value in the parent, never a value nobody stored (those are never well formed).
 *   - A child, right after fork and again before it exits (the parent having run on), holds
 *     exactly the parent's model at the fork for every lane no accessor stored into meanwhile; its
 *     own stores stay its own.
 *   - At checkpoints (accessors paused, every second) and at the end: every word of the window
 *     against the model, the VMA invariants (checkMmLocked) and page tables against VMAs
 *     (checkPtesLocked) of the parent and each live child, map counts and reference counts of
 *     every frame against the page tables of all of them and the live pins (checkFrameMaps),
 *     each pin still mapped where its incarnation lives, PhysMem.check().
 *   - After every process exited: kernel.counts() all zero, every VMA record, tree node, page
 *     table and PMD leaf returned, PhysMem.check() clean after drainAll.
 */
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { GUP_PIN_COUNTING_BIAS } from '../../src/mem/page.js';
import { ptePfn } from '../../src/mem/pte.js';
import type { AddressSpace } from '../../src/mm/address-space.js';
import { checkMmLocked } from '../../src/mm/check.js';
import { checkFrameMaps, checkPtesLocked } from '../../src/mm/check-ptes.js';
import type { FaultDesign } from '../../src/mm/fault-design.js';
import { mmapReadLock, mmapReadUnlock } from '../../src/mm/vma-lock.js';
import type { MmVmstat } from '../../src/mm/vmstat.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { Mutator, type MutatorCounts, type Pin } from './memory-mutator.js';
import { checkParent } from './memory-pages.js';
import type { AccessorArgs, AccessorResult } from './tasks/memory-accessor.js';
import {
  C_DONE,
  C_ERRORS,
  C_PAUSE,
  C_PAUSED,
  C_READY,
  C_STOP,
  MemoryModel,
  P,
  SLOTS,
  WINDOW,
} from './tasks/memory-model.js';

export interface MemoryRaceOptions {
  seed: number;
  durationMs: number;
  /** Accessor CPUs (1..4); the mutator runs on this thread. */
  accessors?: number;
  checkpointMs?: number;
  /** Runs on past durationMs (up to giveUpMs more) until this many calls and forks were made. */
  minCalls?: number;
  minForks?: number;
  /** Bound on every wait of the race's own (ready, pause, grace periods, stop). */
  giveUpMs?: number;
  /** The process's fault-locking design (default: the default design). */
  design?: FaultDesign;
}

export interface MemoryRaceResult {
  accessors: AccessorResult[];
  mutator: MutatorCounts;
  checkpoints: number;
  /** Mutator calls in all (forks included). */
  calls: number;
  shootdowns: number;
  /** The process's fault counters at the end. */
  vmstat: MmVmstat;
}

export async function raceMemory(options: MemoryRaceOptions): Promise<MemoryRaceResult> {
  const accessors = options.accessors ?? 2;
  const giveUpMs = options.giveUpMs ?? 20_000;
  const kernel = Kernel.create({ frames: 16_384 });
  const proc = Process.create(kernel, {
    config:
      options.design === undefined ? { privileged: true } : { privileged: true, design: options.design },
  });
  const m = MemoryModel.create(accessors);
  const mutator = new Mutator(proc, m, options.seed, giveUpMs);
  mutator.mapWindow();
  const machine = await Machine.start({ cpus: accessors, watchdogMs: 30_000 });
  let results: AccessorResult[] = [];
  let failure: unknown;
  let checkpoints = 0;
  try {
    const task = new URL('./tasks/memory-accessor.js', import.meta.url);
    const runs = Array.from({ length: accessors }, (_, a) => {
      const args: AccessorArgs = {
        process: proc.describe(),
        model: m.buffers,
        lane: a,
        seed: options.seed,
        giveUpMs,
        limitMs: options.durationMs + 3 * giveUpMs,
      };
      return machine.run<AccessorResult>(task, args, [a]).then((r) => r[0]);
    });
    try {
      waitFor(() => Atomics.load(m.control, C_READY) === accessors, giveUpMs, 'the accessors to start');
      checkpoints = mutate(kernel, proc, m, mutator, options, giveUpMs);
    } catch (error) {
      failure = error;
    } finally {
      Atomics.store(m.control, C_STOP, 1);
      Atomics.notify(m.control, C_PAUSE);
    }
    results = await Promise.all(runs);
  } finally {
    await machine.stop();
  }
  const errors = results.filter((r) => r.error !== '').map((r) => r.error);
  if (failure !== undefined) {
    if (errors.length > 0 && failure instanceof Error)
      failure.message += `\n(accessors: ${errors.join('\n')})`;
    throw failure;
  }
  assert.deepEqual(errors, [], errors.join('\n'));
  assert.equal(Atomics.load(m.control, C_ERRORS), 0);

  // The end: every accessor detached; one last checkpoint, then every process exits.
  checkpoint(kernel, proc, m, mutator);
  const shootdowns = proc.mm.tlb.stats().shootdowns;
  const vmstat = proc.mm.vmstat();
  for (const child of mutator.children.splice(0)) mutator.retire(child);
  for (const pin of mutator.pins.splice(0)) mutator.unpin(pin);
  const arenas = [proc.mm.arena.arena, (proc.mm.index as unknown as { arena: { live: number } }).arena];
  proc.detach();
  proc.exit();
  rcuBarrier();
  for (const arena of arenas) assert.equal(arena.live, 0, 'VMA records or tree nodes left after exit');
  assert.equal(proc.mm.pt.live, 0, 'page tables left after exit');
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  assert.equal(kernel.mem.check(), undefined);
  return {
    accessors: results,
    mutator: mutator.counts,
    checkpoints: checkpoints + 1,
    calls: mutator.counts.total,
    shootdowns,
    vmstat,
  };
}

/** The mutator's loop on this thread until the deadline or an accessor's error: checkpoints counted. */
function mutate(
  kernel: Kernel,
  proc: Process,
  m: MemoryModel,
  mutator: Mutator,
  options: MemoryRaceOptions,
  giveUpMs: number,
): number {
  const start = Date.now();
  const deadline = start + options.durationMs;
  const hardDeadline = deadline + giveUpMs;
  const minCalls = options.minCalls ?? 0;
  const minForks = options.minForks ?? 0;
  const every = options.checkpointMs ?? 1000;
  let nextCheckpoint = start + every;
  let checkpoints = 0;
  const more = (): boolean => {
    const now = Date.now();
    const c = mutator.counts;
    return now < deadline || (now < hardDeadline && (c.total < minCalls || c.forks < minForks));
  };
  for (let n = 1; more() && Atomics.load(m.control, C_ERRORS) === 0; n++) {
    mutator.step();
    if (n % 8 === 0) mutator.poison();
    if (Date.now() >= nextCheckpoint) {
      checkpoints++;
      pause(m, checkpoints, giveUpMs);
      try {
        checkpoint(kernel, proc, m, mutator);
      } finally {
        Atomics.store(m.control, C_PAUSE, 0);
        Atomics.notify(m.control, C_PAUSE);
      }
      nextCheckpoint = Date.now() + every;
    }
  }
  return checkpoints;
}

/** Asks the accessors to pause and waits until each has (or is done). */
function pause(m: MemoryModel, k: number, giveUpMs: number): void {
  Atomics.store(m.control, C_PAUSE, k);
  for (let a = 0; a < m.accessors; a++) {
    waitFor(
      () => Atomics.load(m.control, C_PAUSED + a) === k || Atomics.load(m.control, C_DONE + a) !== 0,
      giveUpMs,
      `accessor ${a} to pause`,
    );
  }
}

/**
 * Everything checkable while no CPU but this one runs in the processes (see the file comment).
 * Leaves this CPU's Mmu on the parent offline.
 */
function checkpoint(kernel: Kernel, proc: Process, m: MemoryModel, mutator: Mutator): void {
  const mem = kernel.mem;
  const mapped = new Int32Array(mem.frames);
  checkSpace(proc.mm, mapped);
  for (const child of mutator.children) checkSpace(child.proc.mm, mapped);
  const refs = new Int32Array(mem.frames);
  for (const pin of mutator.pins) {
    refs[pin.pfn] += GUP_PIN_COUNTING_BIAS;
    checkPinned(proc, m, pin);
  }
  checkFrameMaps(mem, mapped, refs);
  assert.equal(kernel.mem.check(), undefined);
  const mmu = proc.mm.mmu();
  try {
    checkParent(mmu, m, mutator.counts.pages);
  } finally {
    mmu.offline();
  }
  for (const child of mutator.children) {
    child.image.check(child.proc.mm.mmu(), `child ${child.tag} at a checkpoint`, mutator.counts.pages);
  }
}

/** A pin stays reliable: while its incarnation lives, the incarnation's slot maps the pinned frame. */
function checkPinned(proc: Process, m: MemoryModel, pin: Pin): void {
  for (let p = 0; p < SLOTS; p++) {
    if (m.rec[p] === 0 || m.serial[m.rec[p]] !== pin.serial) continue;
    const pfn = ptePfn(proc.mm.pt.lookupPte(WINDOW + p * P));
    if (pfn !== pin.pfn)
      throw new Error(`slot ${p} maps pfn ${pfn}, not the frame pinned on its incarnation (${pin.pfn})`);
    return;
  }
}

function checkSpace(mm: AddressSpace, mapped: Int32Array): void {
  mmapReadLock(mm.locks);
  try {
    checkMmLocked(mm);
    checkPtesLocked(mm, mapped);
  } finally {
    mmapReadUnlock(mm.locks);
  }
}

/** Waits for `done` on this thread (sleeping 0.2 ms between looks: the CPUs share cores). */
function waitFor(done: () => boolean, giveUpMs: number, what: string): void {
  const deadline = Date.now() + giveUpMs;
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`waited more than ${giveUpMs} ms for ${what}`);
    Atomics.wait(sleep, 0, 0, 0.2);
  }
}

/** One line of figures for the logs. */
export function describeRace(seed: number, r: MemoryRaceResult): string {
  const sum = (k: keyof AccessorResult): number => r.accessors.reduce((x, a) => x + (a[k] as number), 0);
  const calls = Object.entries(r.mutator.calls)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const c = r.mutator;
  return (
    `memory race seed ${seed}: ${sum('loads')} loads, ${sum('stores')} stores, ${sum('faults')} faults ` +
    `(${sum('stable')} stable accesses checked exactly, ${sum('racyStores')} racing stores, ` +
    `${sum('overflows')} history overflows, ${sum('lazyZeros')} lazy zeros); ${r.calls} calls: ${calls}; ` +
    `${c.errnos} predicted errnos; ${c.forks} forks, ${c.childChecks} child checks, ${c.childStores} child stores, ` +
    `${c.pages.pages} pages checked, ${c.pages.unstableLanes} lanes unsettled at fork; ${c.poisonFills} poison fills; ` +
    `${c.incarnations} incarnations; ${r.checkpoints} checkpoints; ${r.shootdowns} shootdowns; ` +
    `design ${r.vmstat.design}: ${r.vmstat.faultsSpeculative} speculative, ${r.vmstat.faultsVmaLock} vma-lock, ` +
    `${r.vmstat.faultsMmapLock} mmap_lock faults, ${r.vmstat.speculativeAborts} speculative aborts`
  );
}
