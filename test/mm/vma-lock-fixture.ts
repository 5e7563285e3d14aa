/**
 * A hand-built address space for the per-VMA lock tests: VMA arena (poisoned), locks and a maple
 * tree with mmap_lock as its external lock, and the writer steps a syscall does (write-lock,
 * publish, detach, defer the free) spelled out, so the lock scheme is tested apart from the VMA
 * semantics.
 */

import { MapleTree } from '../../src/maple/tree.js';
import type { FaultMmDescriptor } from '../../src/mm/fault-lookup.js';
import {
  MmLocks,
  mmapWriteLock,
  mmapWriteUnlock,
  vmaMarkAttached,
  vmaMarkDetached,
  vmaStartWrite,
} from '../../src/mm/vma-lock.js';
import { VmaArena } from '../../src/mm/vma-record.js';
import { rcuBarrier, rcuDeferFree } from '../../src/sync/rcu.js';

export const P = 4096;

export class HandMm {
  readonly arena = VmaArena.create(64, 4096);
  readonly locks = MmLocks.create(this.arena);
  readonly index = MapleTree.create({ name: 'test.vma-lock', externalLock: 'mmap_lock', poison: true });

  /** The fault side other CPUs attach (attachFaultMm). */
  describe(): FaultMmDescriptor {
    return { vmas: this.arena.describe(), index: this.index.describe(), locks: this.locks.describe() };
  }

  /** Publishes a new VMA [start, end) as a syscall does; returns its record. */
  map(start: number, end: number): number {
    mmapWriteLock(this.locks);
    try {
      const h = this.arena.alloc();
      if (h === 0) throw new Error('vma arena full');
      this.arena.setRange(h, start, end, start / P);
      vmaStartWrite(this.locks, h);
      vmaMarkAttached(this.locks, h);
      if (this.index.store(start, end - 1, h) < 0) throw new Error('tree store failed');
      return h;
    } finally {
      mmapWriteUnlock(this.locks);
    }
  }

  /** Unmaps VMA `h` as munmap does: write-lock, erase, detach, free after a grace period. */
  unmap(h: number): void {
    mmapWriteLock(this.locks);
    try {
      vmaStartWrite(this.locks, h);
      this.index.store(this.arena.start(h), this.arena.end(h) - 1, 0);
      vmaMarkDetached(this.locks, h);
      rcuDeferFree(this.arena.arena, h);
    } finally {
      mmapWriteUnlock(this.locks);
    }
  }

  /** Unmaps everything, waits for the deferred frees, and returns the nodes of the tree. */
  destroy(): void {
    const out = { first: 0, last: 0, value: 0 };
    while (this.index.next(0, 2 ** 53 - 1, out) !== 0) this.unmap(out.value);
    rcuBarrier();
    mmapWriteLock(this.locks);
    this.index.destroy();
    mmapWriteUnlock(this.locks);
    rcuBarrier();
  }
}
