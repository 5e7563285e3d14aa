/**
 * Finding and holding the VMA of a faulting address, as Linux's do_user_addr_fault does:
 *
 *   h = lockVmaUnderRcu(mm, addr)          fast path: RCU walk + VMA read trylock, no mmap_lock
 *   if (h !== 0) { ...fault...; vmaEndRead(mm.locks, h) }
 *   else {
 *     h = lockMmAndFindVma(mm, addr)       fallback: mmap_lock for read + walk
 *     if (h === 0) -> SIGSEGV              (nothing maps addr; mmap_lock already released)
 *     ...fault...; mmapReadUnlock(mm.locks)
 *   }
 *
 * The fast path never waits: a VMA that is write-locked, detached, or no longer covering the
 * address (it was moved or shrunk after the walk) makes it return 0 and count why, in the
 * address space's event counters (vmaLockEvents). Everything here is allocation-free.
 */
import { type RangeIndex, rangeOut } from '../maple/api.js';
import { MapleTree, type MapleTreeDescriptor } from '../maple/tree.js';
import type { ArenaDescriptor } from '../shm/arena.js';
import { rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import {
  countEvent,
  EV_ABORT_DETACHED,
  EV_ABORT_LOCKED,
  EV_ABORT_MOVED,
  EV_ABORT_NO_VMA,
  EV_MMAP_FALLBACK,
  EV_RETRY,
  EV_SUCCESS,
  MmLocks,
  type MmLocksDescriptor,
  mmapReadLock,
  mmapReadUnlock,
  READ_DETACHED,
  READ_OK,
  vmaEndRead,
  vmaTryRead,
} from './vma-lock.js';
import { VmaArena } from './vma-record.js';

/** What a fault needs of an address space: its VMA index and its locks (an AddressSpace on any CPU). */
export interface FaultMm {
  readonly index: RangeIndex;
  readonly locks: MmLocks;
}

/** The VMA records, tree and locks of an address space (AddressSpaceDescriptor has them too). */
export interface FaultMmDescriptor {
  vmas: ArenaDescriptor;
  index: MapleTreeDescriptor;
  locks: MmLocksDescriptor;
}

/** Attaches just the fault side of an address space on this CPU: lookups, locks, VMA fields. */
export function attachFaultMm(desc: FaultMmDescriptor): FaultMm & { readonly arena: VmaArena } {
  const arena = VmaArena.attach(desc.vmas);
  return { arena, index: MapleTree.attach(desc.index), locks: MmLocks.attach(desc.locks, arena) };
}

/** Walks repeated when the VMA found was detached meanwhile (it was just replaced). */
const DETACHED_RETRIES = 2;

/** Per CPU (each CPU is one thread): the walk's result, reused by every lookup. */
const out = rangeOut();

/**
 * lock_vma_under_rcu: the read-locked VMA record covering `address`, or 0 (the caller falls back
 * to lockMmAndFindVma). Release a returned record with vmaEndRead(mm.locks, h).
 */
export function lockVmaUnderRcu(mm: FaultMm, address: number): number {
  const locks = mm.locks;
  for (let retries = 0; ; retries++) {
    rcuReadLock();
    const h = mm.index.load(address, out);
    if (h <= 0) {
      rcuReadUnlock();
      countEvent(locks, EV_ABORT_NO_VMA);
      return 0;
    }
    const result = vmaTryRead(locks, h);
    rcuReadUnlock();
    if (result === READ_OK) return checkCovers(locks, h, address);
    if (result !== READ_DETACHED) {
      countEvent(locks, EV_ABORT_LOCKED);
      return 0;
    }
    if (retries === DETACHED_RETRIES) {
      countEvent(locks, EV_ABORT_DETACHED);
      return 0;
    }
    countEvent(locks, EV_RETRY);
  }
}

/** The read lock pins the VMA's range: it must still cover the address the walk looked up. */
function checkCovers(locks: MmLocks, h: number, address: number): number {
  const arena = locks.arena;
  if (address < arena.start(h) || address >= arena.end(h)) {
    vmaEndRead(locks, h);
    countEvent(locks, EV_ABORT_MOVED);
    return 0;
  }
  countEvent(locks, EV_SUCCESS);
  return h;
}

/**
 * lock_mm_and_find_vma: takes mmap_lock for read and returns the VMA record covering `address`
 * with mmap_lock still held (release it with mmapReadUnlock(mm.locks)), or 0 with mmap_lock
 * released when nothing maps the address. (Stack expansion below a VM_GROWSDOWN VMA is the fault
 * layer's: it needs mmap_lock for write.)
 */
export function lockMmAndFindVma(mm: FaultMm, address: number): number {
  const locks = mm.locks;
  countEvent(locks, EV_MMAP_FALLBACK);
  mmapReadLock(locks);
  const h = mm.index.load(address, out);
  if (h <= 0) {
    mmapReadUnlock(locks);
    return 0;
  }
  const arena = locks.arena;
  if (address < arena.start(h) || address >= arena.end(h)) {
    mmapReadUnlock(locks);
    throw new Error(
      `lockMmAndFindVma: the index maps ${address} to VMA record ${h}, which does not cover it`,
    );
  }
  return h;
}
