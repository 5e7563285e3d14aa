/**
 * Task: one case of cow-cases.ts (Linux's cow.c) played by two worker CPUs
 * (test/mm/cow-cpus.test.ts): CPU 0 runs the parent's steps, CPU 1 the child's or the device's.
 *
 * Steps run in the order of the script, one CPU at a time: `sync[STEP]` is the next step's index;
 * a CPU waits (bounded, RCU-quiescent, its Mmus offline) until it reaches its own next step, runs
 * it, and moves STEP on. A step that fails sets ABORT, which ends the other CPU's wait. The fork
 * step hands the child over: the parent's CPU posts child.describe() on a BroadcastChannel the
 * child's CPU opened before READY, which receives it once STEP has passed the fork.
 */
import assert from 'node:assert/strict';
import { BroadcastChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { Kernel, type KernelDescriptor } from '../../../src/kernel/kernel.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { rcuBlockBegin, rcuBlockEnd } from '../../../src/sync/rcu.js';
import { ABORT, COW_CASES, childOf, cpuOf, READY, type Side, STEP, type Step } from '../cow-cases.js';

/** How long a CPU waits for the other's step (below the Machine's watchdog). */
const STEP_WAIT_MS = 15_000;
const WAIT_SLICE_MS = 50;
const WAIT_SLICES = STEP_WAIT_MS / WAIT_SLICE_MS;
/** Rounds of receiveMessageOnPort (1 ms apart) before the child's descriptor counts as lost. */
const RECEIVE_TRIES = 1000;

export interface CowCpusArgs {
  case: number;
  cpu: number;
  kernel: KernelDescriptor;
  sync: SharedArrayBuffer;
  channel: string;
}

export interface CowCpusResult {
  /** Steps this CPU ran. */
  steps: number;
}

// ---- the runner -------------------------------------------------------------------------------

export default function run(cpu: number, args: CowCpusArgs): CowCpusResult {
  assert.equal(cpu, args.cpu, 'the task runs on the CPU it was meant for');
  const c = COW_CASES[args.case];
  const sync = new Int32Array(args.sync);
  const channel = new BroadcastChannel(args.channel);
  const s: Side = {
    kernel: Kernel.attach(args.kernel),
    sync,
    parent: null,
    child: null,
    pipe: null,
    pins: [],
  };
  let ran = 0;
  try {
    Atomics.add(sync, READY, 1);
    waitFor(s, READY, 2);
    for (let i = 0; i < c.steps.length; i++) {
      const step = c.steps[i];
      if (cpuOf(step.by) !== cpu) {
        if (step.fork && cpu !== 0) {
          waitFor(s, STEP, i + 1);
          s.child = Process.attach(receive(channel));
        }
        continue;
      }
      waitFor(s, STEP, i);
      runStep(step, i, s);
      if (step.fork) handOff(s, channel);
      ran++;
      Atomics.store(sync, STEP, i + 1);
      Atomics.notify(sync, STEP);
    }
    assert.equal(s.parent, null, 'the parent exited');
    assert.equal(s.child, null, 'the child exited');
    assert.equal(s.pipe, null, 'the pipe was closed');
    return { steps: ran };
  } catch (error) {
    Atomics.store(sync, ABORT, 1);
    Atomics.notify(sync, STEP);
    Atomics.notify(sync, READY);
    throw error;
  } finally {
    channel.close();
  }
}

function runStep(step: Step, i: number, s: Side): void {
  try {
    step.run(s);
  } catch (error) {
    if (error instanceof Error) error.message = `step ${i} (${step.by}: ${step.what}): ${error.message}`;
    throw error;
  }
}

/** The parent's CPU gives the child to the child's CPU and stops using it. */
function handOff(s: Side, channel: BroadcastChannel): void {
  const child = childOf(s);
  channel.postMessage(child.describe());
  child.detach();
  s.child = null;
}

/** The child's descriptor, posted by the parent's CPU before it moved STEP past the fork. */
function receive(channel: BroadcastChannel): ProcessDescriptor {
  const wait = new Int32Array(new SharedArrayBuffer(4));
  for (let tries = 0; tries < RECEIVE_TRIES; tries++) {
    // Node accepts a BroadcastChannel here (its types name only MessagePort).
    const got = receiveMessageOnPort(channel as unknown as MessagePort);
    if (got !== undefined) return got.message as ProcessDescriptor;
    Atomics.wait(wait, 0, 0, 1);
  }
  throw new Error(`the child's descriptor did not arrive within ${RECEIVE_TRIES} ms`);
}

/**
 * Waits until sync[word] >= value, or throws when the other CPU aborted or after STEP_WAIT_MS.
 * Meanwhile this CPU is RCU-quiescent and its Mmus are offline (no grace period or shootdown
 * waits for it).
 */
function waitFor(s: Side, word: number, value: number): void {
  if (Atomics.load(s.sync, word) >= value) return;
  if (s.parent) s.parent.mm.mmu().offline();
  if (s.child) s.child.mm.mmu().offline();
  const online = rcuBlockBegin();
  try {
    for (let slice = 0; slice < WAIT_SLICES; slice++) {
      const now = Atomics.load(s.sync, word);
      if (now >= value) return;
      if (Atomics.load(s.sync, ABORT) !== 0) throw new Error('the other CPU failed');
      Atomics.wait(s.sync, word, now, WAIT_SLICE_MS);
    }
    throw new Error(`waited ${STEP_WAIT_MS} ms for sync[${word}] >= ${value}`);
  } finally {
    rcuBlockEnd(online);
  }
}
