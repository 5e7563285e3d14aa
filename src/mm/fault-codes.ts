/**
 * The fault path's own answers besides 0 and the Mmu's FAULT_SEGV_* / FAULT_SIGBUS codes (src/mem/
 * tlb.ts, -1..-3). One definition each, shared by mmu-fault.ts, file-fault.ts, gup.ts and the
 * address space's fault loop.
 */

/** faultPageLocked: no VMA contains the address, but a VM_GROWSDOWN one above may grow to it. */
export const FAULT_GROW = 1;
/** faultPageVmaLocked: the fast path cannot decide; take mmap_lock. */
export const FAULT_FALLBACK = 2;
/**
 * VM_FAULT_RETRY: the fault dropped its locks to wait for I/O or a locked page (file faults,
 * file-fault.ts); run it again. The retry finds the page in the cache.
 */
export const FAULT_RETRY = 3;
/**
 * VM_FAULT_OOM: a frame, a page table or an anon_vma could not be allocated. Not an Mmu code (the
 * Mmu's FAULT_* are -1..-3): MmuFault turns it into FAULT_SIGBUS, GUP into -ENOMEM.
 */
export const FAULT_OOM = -4;
