/**
 * Task: allocate `count` records of a shared arena, stamp each with (cpu, i), check every stamp
 * once every CPU holds all of its records (nobody else got the same record), free them all.
 * Odd CPUs allocate and free in batches (allocBatch / freeBatch), even CPUs one by one.
 */
import { Arena, type ArenaDescriptor } from '../../../src/shm/arena.js';

export interface AllocArgs {
  arena: ArenaDescriptor;
  handles: SharedArrayBuffer;
  count: number;
  cpus: number;
}

export default function alloc(cpu: number, args: AllocArgs): number {
  const arena = Arena.attach(args.arena);
  const handles = new Int32Array(args.handles);
  const mine = handles.subarray(1 + cpu * args.count, 1 + (cpu + 1) * args.count);
  Atomics.add(handles, 0, 1);
  while (Atomics.load(handles, 0) < args.cpus) {
    // Start together.
  }
  const batches = cpu % 2 === 1;
  for (let i = 0; i < args.count; ) {
    const want = batches ? Math.min(1 + (i % 7), args.count - i) : 1;
    if (batches) {
      if (arena.allocBatch(mine, i, want, want) !== want) throw new Error(`cpu ${cpu}: arena full at ${i}`);
    } else {
      mine[i] = arena.alloc();
      if (mine[i] === 0) throw new Error(`cpu ${cpu}: arena full at ${i}`);
    }
    for (let k = i; k < i + want; k++) {
      const at = mine[k] * arena.i32PerRecord;
      arena.i32[at] = cpu;
      arena.i32[at + 1] = k;
    }
    i += want;
  }
  Atomics.add(handles, 0, 1);
  while (Atomics.load(handles, 0) < 2 * args.cpus) {
    // Everybody holds all its records before anybody checks or frees.
  }
  let intact = 0;
  for (let i = 0; i < args.count; i++) {
    const at = mine[i] * arena.i32PerRecord;
    if (arena.i32[at] === cpu && arena.i32[at + 1] === i) intact++;
  }
  for (let i = 0; i < args.count; ) {
    const n = batches ? Math.min(1 + (i % 5), args.count - i) : 1;
    if (batches) arena.freeBatch(mine, i, n);
    else arena.free(mine[i]);
    i += n;
  }
  return intact;
}
