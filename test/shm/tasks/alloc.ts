/**
 * Task: allocate `count` records of a shared arena, stamp each with (cpu, i), check every stamp
 * once every CPU holds all of its records (nobody else got the same record), free them all.
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
  for (let i = 0; i < args.count; i++) {
    const h = arena.alloc();
    if (h === 0) throw new Error(`cpu ${cpu}: arena full at ${i}`);
    const at = h * arena.i32PerRecord;
    arena.i32[at] = cpu;
    arena.i32[at + 1] = i;
    mine[i] = h;
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
  for (let i = 0; i < args.count; i++) arena.free(mine[i]);
  return intact;
}
