/**
 * Node allocation for one writer: preallocated nodes first, then the arena. `preallocate` fills
 * the reserve before the caller takes a lock under which allocation is forbidden; a store then
 * takes its nodes from the reserve. Every node taken by an operation is remembered until the
 * operation commits, so a failed operation gives each back where it came from.
 */
import type { Arena } from '../shm/arena.js';

export class NodePool {
  private reserve: Int32Array = new Int32Array(64);
  private reserved = 0;
  /** Nodes taken by the current operation, and whether each came from the reserve. */
  private taken: Int32Array = new Int32Array(64);
  private fromReserve = new Uint8Array(64);
  private takenCount = 0;

  constructor(private readonly arena: Arena) {}

  get size(): number {
    return this.reserved;
  }

  /** Grows the reserve to `target` nodes; false (reserve as before) if the arena runs out. */
  fill(target: number): boolean {
    const before = this.reserved;
    while (this.reserved < target) {
      const handle = this.arena.alloc();
      if (handle === 0) {
        while (this.reserved > before) this.arena.free(this.reserve[--this.reserved]);
        return false;
      }
      if (this.reserved === this.reserve.length) this.reserve = grow(this.reserve);
      this.reserve[this.reserved++] = handle;
    }
    return true;
  }

  /** A node for the current operation, or 0 when the reserve is empty and the arena fails. */
  take(): number {
    let handle: number;
    let pooled = 1;
    if (this.reserved > 0) {
      handle = this.reserve[--this.reserved];
    } else {
      handle = this.arena.alloc();
      if (handle === 0) return 0;
      pooled = 0;
    }
    if (this.takenCount === this.taken.length) {
      this.taken = grow(this.taken);
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
        if (this.reserved === this.reserve.length) this.reserve = grow(this.reserve);
        this.reserve[this.reserved++] = handle;
      } else {
        this.arena.free(handle);
      }
    }
    this.takenCount = 0;
  }

  /** Frees the whole reserve. */
  release(): void {
    while (this.reserved > 0) this.arena.free(this.reserve[--this.reserved]);
  }
}

function grow(array: Int32Array): Int32Array {
  const bigger = new Int32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}
