/**
 * Task: takes the read lock of the VMA at `address`, says so (flags[HELD] = 1), and keeps it until
 * a new read attempt is refused (a writer is waiting), then sets flags[RELEASED] = 1 and releases
 * it. Returns how many attempts were refused; gives up when the test sets flags[ABORT].
 */
import { attachFaultMm, type FaultMmDescriptor, lockVmaUnderRcu } from '../../../src/mm/fault-lookup.js';
import { READ_OK, vmaEndRead, vmaTryRead } from '../../../src/mm/vma-lock.js';

export const HELD = 0;
export const RELEASED = 1;
export const ABORT = 2;

export interface HoldArgs {
  mm: FaultMmDescriptor;
  flags: SharedArrayBuffer;
  address: number;
}

export default function hold(_cpu: number, args: HoldArgs): { refused: number } {
  const mm = attachFaultMm(args.mm);
  const flags = new Int32Array(args.flags);
  const h = lockVmaUnderRcu(mm, args.address);
  if (h === 0) throw new Error('the VMA could not be read-locked');
  Atomics.store(flags, HELD, 1);
  const deadline = Date.now() + 10_000;
  let refused = 0;
  while (refused === 0) {
    if (Atomics.load(flags, ABORT) !== 0 || Date.now() > deadline) {
      vmaEndRead(mm.locks, h);
      throw new Error('no writer came');
    }
    if (vmaTryRead(mm.locks, h) === READ_OK) vmaEndRead(mm.locks, h);
    else refused++;
  }
  Atomics.store(flags, RELEASED, 1);
  vmaEndRead(mm.locks, h);
  return { refused };
}
