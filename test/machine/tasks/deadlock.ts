/** Task: CPU 0 and CPU 1 take two mutexes in opposite orders and meet in the middle: an ABBA deadlock. */
import { type LockDescriptor, Mutex } from '../../../src/sync/index.js';

export default function deadlock(
  cpu: number,
  args: { a: LockDescriptor; b: LockDescriptor; flag: SharedArrayBuffer },
) {
  const a = Mutex.attach(args.a);
  const b = Mutex.attach(args.b);
  const flag = new Int32Array(args.flag);
  const [first, second] = cpu === 0 ? [a, b] : [b, a];
  first.lock();
  Atomics.add(flag, 0, 1);
  while (Atomics.load(flag, 0) < 2) Atomics.wait(flag, 0, Atomics.load(flag, 0), 1);
  second.lock();
  return 'unreachable';
}
