/**
 * Per-address-space fault counters, like /proc/vmstat's pgfault and VMA_LOCK_* lines: a view over
 * the per-CPU event rows of MmLocks (vma-lock.ts), which each CPU counts into with plain writes
 * (no shared cache line on the fault path). Summing the rows is racy while CPUs fault: exact once
 * they stopped.
 *
 *   faults              every fault the fault path finished (faultsSpeculative + faultsVmaLock +
 *                       faultsMmapLock)
 *   faultsSpeculative   finished with no VMA or mmap lock (the speculative design, spec-fault.ts)
 *   faultsVmaLock       finished holding only the VMA's read lock (the vma-lock design's fast path,
 *                       and the speculative design's second try)
 *   faultsMmapLock      finished under mmap_lock (R): every fault under global and retry, the
 *                       fallbacks under vma-lock and speculative
 *   speculativeAborts   speculative attempts whose validation failed (the VMA was write-locked, or
 *                       changed, or its page table went, between the snapshot and the PTE lock)
 *   speculativeSkips    speculative attempts left to the vma-lock path unvalidated: no VMA, a file,
 *                       shared or new (no anon_vma, no PTE table) one, an entry already present
 *   fallbacks           fast-path attempts that took mmap_lock instead (any reason)
 *   vmaLockContention   VMA read trylocks that failed: the VMA was write-locked or detached
 *   lookupRetries       RCU walks repeated because the VMA found had just been detached
 *   faultRetries        faults that dropped their lock to wait for I/O and ran again (file faults,
 *                       retry and vma-lock designs; 0 for anonymous memory)
 *   writerWaits         VMA write locks that had to sleep until readers left
 */
import { FAULT_DESIGNS, type FaultDesign } from './fault-design.js';
import {
  EV_ABORT_DETACHED,
  EV_ABORT_LOCKED,
  EV_FAULT_MMAP,
  EV_FAULT_RETRY,
  EV_FAULT_SPEC,
  EV_FAULT_VMA,
  EV_MMAP_FALLBACK,
  EV_RETRY,
  EV_SPEC_ABORT,
  EV_SPEC_SKIP,
  EV_WRITER_WAITED,
  type MmLocks,
  resetVmaLockEvents,
  vmaLockEventSum,
} from './vma-lock.js';

export interface MmVmstat {
  design: FaultDesign;
  faults: number;
  faultsSpeculative: number;
  faultsVmaLock: number;
  faultsMmapLock: number;
  fallbacks: number;
  vmaLockContention: number;
  lookupRetries: number;
  faultRetries: number;
  writerWaits: number;
  speculativeAborts: number;
  speculativeSkips: number;
}

/** The counters of the address space whose locks are `locks`, running under design `code`. */
export function mmVmstat(locks: MmLocks, code: number): MmVmstat {
  const vma = vmaLockEventSum(locks, EV_FAULT_VMA);
  const mmap = vmaLockEventSum(locks, EV_FAULT_MMAP);
  const spec = vmaLockEventSum(locks, EV_FAULT_SPEC);
  const retries = vmaLockEventSum(locks, EV_RETRY);
  return {
    design: FAULT_DESIGNS[code],
    faults: spec + vma + mmap,
    faultsSpeculative: spec,
    faultsVmaLock: vma,
    faultsMmapLock: mmap,
    fallbacks: vmaLockEventSum(locks, EV_MMAP_FALLBACK),
    vmaLockContention:
      vmaLockEventSum(locks, EV_ABORT_LOCKED) + vmaLockEventSum(locks, EV_ABORT_DETACHED) + retries,
    lookupRetries: retries,
    faultRetries: vmaLockEventSum(locks, EV_FAULT_RETRY),
    writerWaits: vmaLockEventSum(locks, EV_WRITER_WAITED),
    speculativeAborts: vmaLockEventSum(locks, EV_SPEC_ABORT),
    speculativeSkips: vmaLockEventSum(locks, EV_SPEC_SKIP),
  };
}

/** Zeroes the counters (between the lab's phases; racy while CPUs fault). */
export function resetMmVmstat(locks: MmLocks): void {
  resetVmaLockEvents(locks);
}
