/**
 * How a tree gives back the nodes it replaced. A writer marks a replaced node DEAD and hands it to
 * its reclaimer; with lock-free readers the reclaimer must wait for a grace period before the
 * record is reused. `rcuReclaimer` (the default) defers the free with the foundation's RCU;
 * `immediateReclaimer` frees at once and is only safe when no reader can be inside the tree
 * (single-threaded use, teardown of a tree nobody else sees).
 */
import type { Arena } from '../shm/arena.js';
import { rcuDeferFree } from '../sync/rcu.js';

export interface Reclaimer {
  deferFree(arena: Arena, handle: number): void;
}

export const rcuReclaimer: Reclaimer = { deferFree: rcuDeferFree };

export const immediateReclaimer: Reclaimer = {
  deferFree(arena: Arena, handle: number): void {
    arena.free(handle);
  },
};
