/**
 * Tasks for the RCU tests. `replace`: publish a new record in a shared slot and defer-free the old
 * one, as fast as possible. `read`: inside read sections, follow the slot and check the record is
 * whole and not poisoned. Both stop at a deadline or an iteration bound; both start together.
 */
import { Arena, type ArenaDescriptor, POISON_WORD } from '../../../src/shm/arena.js';
import { rcuBarrier, rcuDeferFree, rcuReadLock, rcuReadUnlock } from '../../../src/sync/rcu.js';

export interface ChurnArgs {
  role: 'replace' | 'read';
  arena: ArenaDescriptor;
  slot: SharedArrayBuffer;
  iterations: number;
  deadlineMs: number;
}

/** Record layout: [free-list link / generation, generation * 3, ~generation, generation + 7]. */
export default function churn(_cpu: number, args: ChurnArgs): number {
  const arena = Arena.attach(args.arena);
  const slot = new Int32Array(args.slot);
  Atomics.add(slot, 1, 1);
  while (Atomics.load(slot, 1) < 2 && Date.now() < args.deadlineMs) {
    // Start together.
  }
  return args.role === 'replace' ? replace(arena, slot, args) : read(arena, slot, args);
}

function replace(arena: Arena, slot: Int32Array, args: ChurnArgs): number {
  let n = 0;
  for (; n < args.iterations; n++) {
    if ((n & 63) === 0 && Date.now() > args.deadlineMs) break;
    const h = arena.alloc();
    if (h === 0) throw new Error(`arena full after ${n} replacements`);
    const at = h * arena.i32PerRecord;
    const g = n + 1;
    arena.i32[at] = g;
    arena.i32[at + 1] = g * 3;
    arena.i32[at + 2] = ~g;
    arena.i32[at + 3] = g + 7;
    const old = Atomics.exchange(slot, 0, h);
    if (old !== 0) rcuDeferFree(arena, old);
  }
  Atomics.store(slot, 2, 1);
  const last = Atomics.exchange(slot, 0, 0);
  if (last !== 0) rcuDeferFree(arena, last);
  rcuBarrier();
  return n;
}

function read(arena: Arena, slot: Int32Array, args: ChurnArgs): number {
  let n = 0;
  const i32 = arena.i32;
  for (; n < args.iterations && Atomics.load(slot, 2) === 0; n++) {
    if ((n & 255) === 0 && Date.now() > args.deadlineMs) break;
    rcuReadLock();
    const h = Atomics.load(slot, 0);
    if (h !== 0) {
      const at = h * arena.i32PerRecord;
      for (let k = 0; k < 4; k++) {
        const g = i32[at];
        if (g === POISON_WORD || i32[at + 1] === POISON_WORD || i32[at + 3] === POISON_WORD) {
          throw new Error(`reader saw freed (poisoned) record ${h} inside a read section`);
        }
        if (i32[at + 1] !== g * 3 || i32[at + 2] !== ~g || i32[at + 3] !== g + 7) {
          throw new Error(`reader saw a torn record ${h}: ${i32.slice(at, at + 4).join(',')}`);
        }
      }
    }
    rcuReadUnlock();
  }
  return n;
}
