/**
 * Node allocation for one writer (one tree object on one CPU): preallocated nodes first, then the
 * arena. `preallocate` fills the reserve before the caller takes a lock under which allocation is
 * forbidden; a store then takes its nodes from the reserve. Every node taken by an operation is
 * remembered until the operation commits, so a failed operation gives each back where it came
 * from.
 *
 * The reserve doubles as this CPU's cache of nodes: a refill takes what is missing plus up to
 * CACHE_NODES more in one arena call (one lock round trip, no zeroing: every writer of a node
 * writes all its words), so most preallocations find the reserve full and touch no shared word.
 * A reserve left far above the need (after a large batch) is trimmed at the next fill. The extra
 * nodes are opportunistic: the arena's failure injector only sees the ones asked for.
 */
import type { Arena } from '../shm/arena.js';

/** Nodes a refill takes beyond what it was asked for. */
export const CACHE_NODES = 16;
/** A reserve more than this above the need is trimmed back to need + CACHE_NODES. */
const TRIM_ABOVE = 4 * CACHE_NODES;

export class NodePool {
  private reserve: Int32Array = new Int32Array(64);
  private reserved = 0;
  /** Nodes taken by the current operation, and whether each came from the reserve. */
  private taken: Int32Array = new Int32Array(64);
  private fromReserve = new Uint8Array(64);
  private takenCount = 0;
  /** Where a node allocated outside the reserve arrives. */
  private readonly one = new Int32Array(1);

  constructor(private readonly arena: Arena) {}

  get size(): number {
    return this.reserved;
  }

  /**
   * Makes the reserve hold at least `target` nodes (and at most target + TRIM_ABOVE); false
   * (reserve as before) if the arena cannot supply the missing ones.
   */
  fill(target: number): boolean {
    const missing = target - this.reserved;
    if (missing <= 0) {
      if (-missing > TRIM_ABOVE) this.trim(target + CACHE_NODES);
      return true;
    }
    const most = missing + CACHE_NODES;
    if (this.reserved + most > this.reserve.length) this.reserve = grow(this.reserve, this.reserved + most);
    const got = this.arena.allocBatch(this.reserve, this.reserved, missing, most);
    if (got === 0) return false;
    this.reserved += got;
    return true;
  }

  /** A node for the current operation, or 0 when the reserve is empty and the arena fails. */
  take(): number {
    let handle: number;
    let pooled = 1;
    if (this.reserved > 0) {
      handle = this.reserve[--this.reserved];
    } else {
      if (this.arena.allocBatch(this.one, 0, 1, 1) === 0) return 0;
      handle = this.one[0];
      pooled = 0;
    }
    if (this.takenCount === this.taken.length) {
      this.taken = grow(this.taken, this.takenCount + 1);
      const flags = new Uint8Array(this.taken.length);
      flags.set(this.fromReserve);
      this.fromReserve = flags;
    }
    this.taken[this.takenCount] = handle;
    this.fromReserve[this.takenCount++] = pooled;
    return handle;
  }

  /** The current operation succeeded: its nodes now belong to the tree. */
  commit(): void {
    this.takenCount = 0;
  }

  /** The current operation failed: every node it took goes back to the reserve or the arena. */
  rollback(): void {
    for (let i = 0; i < this.takenCount; i++) {
      const handle = this.taken[i];
      if (this.fromReserve[i] === 1) {
        if (this.reserved === this.reserve.length) this.reserve = grow(this.reserve, this.reserved + 1);
        this.reserve[this.reserved++] = handle;
      } else {
        this.arena.free(handle);
      }
    }
    this.takenCount = 0;
  }

  /** Frees the whole reserve. */
  release(): void {
    this.trim(0);
  }

  /** Frees reserve nodes down to `keep`. */
  private trim(keep: number): void {
    if (this.reserved <= keep) return;
    this.arena.freeBatch(this.reserve, keep, this.reserved - keep);
    this.reserved = keep;
  }
}

function grow(array: Int32Array, need: number): Int32Array {
  const bigger = new Int32Array(Math.max(need, array.length * 2));
  bigger.set(array);
  return bigger;
}
