/**
 * Task (`vmspace replay --cpus N`): one of N CPUs replaying a Linux trace on one shared address
 * space, taking turns: CPU k runs the ops whose index is k modulo N, each after the op before it,
 * and checks the result and the whole VMA list after it (from its own facade) against the trace.
 *
 *   control (Int32): TURN, the index of the next op to run | FAILED, set by a CPU that diverged
 */
import { AddressSpace, type AddressSpaceDescriptor } from '../mm/address-space.js';
import { readTrace } from '../mm/trace/format.js';
import { replayOp } from '../mm/trace/replay.js';

export const TURN = 0;
export const FAILED = 1;
const GIVE_UP_MS = 60_000;

export interface TurnArgs {
  mm: AddressSpaceDescriptor;
  trace: string;
  fds: Array<[string, number]>;
  control: SharedArrayBuffer;
  cpus: number;
  strict: boolean;
}

export default function replayTurns(cpu: number, args: TurnArgs): string {
  const mm = AddressSpace.attach(args.mm);
  const trace = readTrace(args.trace);
  const fds = new Map(args.fds);
  const control = new Int32Array(args.control);
  const giveUp = Date.now() + GIVE_UP_MS;
  let report = '';
  for (const op of trace.ops) {
    if (op.i % args.cpus !== cpu) continue;
    for (let turn = Atomics.load(control, TURN); turn !== op.i; turn = Atomics.load(control, TURN)) {
      if (Atomics.load(control, FAILED) !== 0) return report;
      if (Date.now() > giveUp) throw new Error(`cpu ${cpu}: op ${op.i} never got its turn`);
      Atomics.wait(control, TURN, turn, 10);
    }
    report = replayOp(mm, fds, op, args.strict);
    if (report !== '') Atomics.store(control, FAILED, 1);
    Atomics.add(control, TURN, 1);
    Atomics.notify(control, TURN);
    if (report !== '') return `cpu ${cpu}: ${report}`;
  }
  mm.detach();
  return report;
}
