/**
 * Task: one of two CPUs replaying a Linux trace on one shared address space, taking turns: this
 * CPU runs the ops whose index has its parity, each after the other CPU's previous op, and checks
 * the result and the whole VMA list after it (from its own facade) against the trace.
 *
 *   turn (Int32): the index of the next op to run; FAILED: set by a CPU that saw a divergence
 */
import { AddressSpace, type AddressSpaceDescriptor } from '../../../src/mm/address-space.js';
import { readTrace } from '../../../src/mm/trace/format.js';
import { replayOp } from '../../../src/mm/trace/replay.js';

export const TURN = 0;
export const FAILED = 1;
const GIVE_UP_MS = 60_000;

export interface TurnArgs {
  mm: AddressSpaceDescriptor;
  trace: string;
  fds: Array<[string, number]>;
  control: SharedArrayBuffer;
}

export default function replayTurns(cpu: number, args: TurnArgs): string {
  const mm = AddressSpace.attach(args.mm);
  const trace = readTrace(args.trace);
  const fds = new Map(args.fds);
  const control = new Int32Array(args.control);
  const giveUp = Date.now() + GIVE_UP_MS;
  let report = '';
  for (const op of trace.ops) {
    if (op.i % 2 !== cpu % 2) continue;
    for (let turn = Atomics.load(control, TURN); turn !== op.i; turn = Atomics.load(control, TURN)) {
      if (Atomics.load(control, FAILED) !== 0) return report;
      if (Date.now() > giveUp) throw new Error(`cpu ${cpu}: op ${op.i} never got its turn`);
      Atomics.wait(control, TURN, turn, 10);
    }
    report = replayOp(mm, fds, op, true);
    if (report !== '') Atomics.store(control, FAILED, 1);
    Atomics.add(control, TURN, 1);
    Atomics.notify(control, TURN);
    if (report !== '') return `cpu ${cpu}: ${report}`;
  }
  mm.detach();
  return report;
}
