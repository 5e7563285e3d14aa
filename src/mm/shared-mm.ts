/**
 * An address space as other CPUs see it: the VMA records, the maple tree of VMAs and the locks
 * (mmap_lock, the lock sequence, the per-VMA locks), all in shared memory. The CPU that owns the
 * AddressSpace describes it; a worker CPU attaches a SharedMm and can look VMAs up for faults
 * (src/mm/fault-lookup.ts: lockVmaUnderRcu, lockMmAndFindVma) and read VMA fields under a VMA
 * read lock or mmap_lock.
 *
 *   SharedMmDescriptor = { vmas: ArenaDescriptor, index: MapleTreeDescriptor, locks: MmLocksDescriptor }
 *
 * The per-mm scalars of AddressSpace (map_count, brk, def_flags, anon identities, file table) are
 * CPU-local objects today, so the syscalls run on the CPU that created the AddressSpace, or on
 * one CPU that built its AddressSpace over these same shared parts (AddressSpaceOptions.shared).
 */
import type { RangeIndex } from '../maple/api.js';
import { MapleTree, type MapleTreeDescriptor } from '../maple/tree.js';
import type { ArenaDescriptor } from '../shm/arena.js';
import type { FaultMm } from './fault-lookup.js';
import { MmLocks, type MmLocksDescriptor } from './vma-lock.js';
import { VmaArena } from './vma-record.js';

export interface SharedMmDescriptor {
  vmas: ArenaDescriptor;
  index: MapleTreeDescriptor;
  locks: MmLocksDescriptor;
}

/** The shared parts of an address space (an AddressSpace has all three). */
export interface SharedMmParts {
  readonly arena: VmaArena;
  readonly index: RangeIndex;
  readonly locks: MmLocks;
}

export class SharedMm implements FaultMm, SharedMmParts {
  readonly arena: VmaArena;
  readonly index: MapleTree;
  readonly locks: MmLocks;

  /** Descriptors of an address space whose index is a MapleTree (other indexes are CPU-local). */
  static describe(mm: SharedMmParts): SharedMmDescriptor {
    if (!(mm.index instanceof MapleTree)) {
      throw new Error('SharedMm.describe: the VMA index is not a MapleTree, so other CPUs cannot see it');
    }
    return { vmas: mm.arena.describe(), index: mm.index.describe(), locks: mm.locks.describe() };
  }

  static attach(desc: SharedMmDescriptor): SharedMm {
    return new SharedMm(desc);
  }

  private constructor(desc: SharedMmDescriptor) {
    this.arena = VmaArena.attach(desc.vmas);
    this.index = MapleTree.attach(desc.index);
    this.locks = MmLocks.attach(desc.locks, this.arena);
  }
}
