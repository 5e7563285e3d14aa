/**
 * The speculative-fault race of tasks/spec-race.ts, set up and run on a Machine's CPUs 0 and 1
 * (test/mm/spec-fault-cpus.test.ts for a second or so, spec-fault.stress.ts for longer): a process
 * of the speculative design with the anchor and the mutator's VMA mapped; rounds of the two CPUs
 * until one round's faults saw an abort (at least `minRounds`, at most `maxRounds`); then the page
 * tables checked against the VMAs and the frames' map counts, and every resource given back.
 */
import assert from 'node:assert/strict';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import type { Machine } from '../../src/machine/machine.js';
import { checkPtesLocked } from '../../src/mm/check-ptes.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE } from '../../src/mm/vm-flags.js';
import type { MmVmstat } from '../../src/mm/vmstat.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import {
  ANCHOR_PAGES,
  BASE,
  P,
  RW,
  RWX,
  SPAN_PAGES,
  type SpecRaceArgs,
  type SpecRaceResult,
  WIN,
} from './tasks/spec-race.js';

export interface SpecRaceOptions {
  seed: number;
  roundMs: number;
  minRounds: number;
  maxRounds: number;
  /** SpecRaceArgs.oracleSpinUs (0 unless given). */
  oracleSpinUs?: number;
}

export interface SpecRaceTotals {
  rounds: number;
  faulter: SpecRaceResult;
  mutator: SpecRaceResult;
  vmstat: MmVmstat;
}

const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

export async function raceSpeculative(machine: Machine, o: SpecRaceOptions): Promise<SpecRaceTotals> {
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel, { config: { design: 'speculative' } });
  const mm = proc.mm;
  assert.equal(mm.sysMmap(BASE, ANCHOR_PAGES * P, RWX, ANON, -1, 0), BASE);
  mm.mmu().store32(BASE, 1);
  assert.equal(mm.sysMmap(WIN, SPAN_PAGES * P, RW, ANON, -1, 0), WIN);
  mm.mmu().store32(WIN, 1);
  // The main thread waits for the CPUs below: its Mmu must not hold up their shootdowns.
  mm.mmuOffline();
  const task = new URL('./tasks/spec-race.js', import.meta.url);
  const faulter: SpecRaceResult = { ops: 0, signals: 0, checks: 0, error: '' };
  const mutator: SpecRaceResult = { ops: 0, signals: 0, checks: 0, error: '' };
  let rounds = 0;
  while (rounds < o.maxRounds && (rounds < o.minRounds || mm.vmstat().speculativeAborts === 0)) {
    const base = {
      process: proc.describe(),
      sync: new SharedArrayBuffer(12),
      seed: o.seed + rounds,
      durationMs: o.roundMs,
      oracleSpinUs: o.oracleSpinUs ?? 0,
    };
    const [[f], [m]] = await Promise.all([
      machine.run<SpecRaceResult>(task, { ...base, role: 'faulter' } satisfies SpecRaceArgs, [1]),
      machine.run<SpecRaceResult>(task, { ...base, role: 'mutator' } satisfies SpecRaceArgs, [0]),
    ]);
    assert.equal(m.error, '', `seed ${o.seed + rounds}: ${m.error}`);
    for (const [sum, r] of [
      [faulter, f],
      [mutator, m],
    ] as const) {
      sum.ops += r.ops;
      sum.signals += r.signals;
      sum.checks += r.checks;
    }
    rounds++;
  }
  const vmstat = mm.vmstat();
  checkPtesLocked(mm);
  proc.exit();
  proc.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  return { rounds, faulter, mutator, vmstat };
}
