/**
 * The fault-locking designs (issue 12): which locks a page fault holds, chosen per address space
 * at creation (`MmConfig.design`, carried in the descriptor, inherited by fork's child). The code
 * is the same under every design; only these branch points differ:
 *
 *   design     lookup and lock of the fault                     a fault that must wait for I/O
 *   global     mmap_lock (R) for the whole fault                waits holding mmap_lock (R)
 *              (Linux before 5.1)
 *   retry      mmap_lock (R) for the whole fault                drops mmap_lock, waits, retries
 *              (Linux 5.1 to 6.3)                               (VM_FAULT_RETRY)
 *   vma-lock   RCU walk + the VMA's read trylock, mmap_lock     drops its locks, waits, retries
 *              only as fallback (Linux 6.4+; the default)
 *   speculative  anonymous: RCU walk, no VMA lock, the VMA's     as vma-lock (file faults take
 *              stamp validated under the PTE lock (spec-fault.ts; the vma-lock path)
 *              Lespinasse's speculative page faults, never
 *              merged); a change or anything else: as vma-lock
 *
 * Branch points: `faultTriesSpeculative` (AddressSpace.faultPageOnce: try the lockless
 * speculative fault first?), `faultTriesVmaLock` (AddressSpace.faultPageOnce: try the per-VMA-lock
 * fast path before mmap_lock?) and `faultMayDropLockForIo` (the file fault of issue 11 calls it before it waits for a
 * read or a locked page: true means take a file reference, drop every lock, wait, return
 * FAULT_RETRY; false means wait where it is, mmap_lock held). Anonymous faults never wait for I/O,
 * so `global` and `retry` behave alike until file faults exist.
 *
 * Hot paths use the numeric codes (DESIGN_*), never the names.
 */

export type FaultDesign = 'global' | 'retry' | 'vma-lock' | 'speculative';

/** Every design, in the order the lab shows them (the oldest first; the unmerged one last). */
export const FAULT_DESIGNS: readonly FaultDesign[] = ['global', 'retry', 'vma-lock', 'speculative'];

export const DESIGN_GLOBAL = 0;
export const DESIGN_RETRY = 1;
export const DESIGN_VMA_LOCK = 2;
export const DESIGN_SPECULATIVE = 3;

export const DEFAULT_FAULT_DESIGN: FaultDesign = 'vma-lock';

/** Whether `name` names a design. */
export function isFaultDesign(name: unknown): name is FaultDesign {
  return typeof name === 'string' && (FAULT_DESIGNS as readonly string[]).includes(name);
}

/** The numeric code of design `name` (DESIGN_*); a RangeError for anything else. */
export function faultDesignCode(name: string): number {
  const code = (FAULT_DESIGNS as readonly string[]).indexOf(name);
  if (code < 0) throw new RangeError(`mm config: design '${name}' is not one of ${FAULT_DESIGNS.join(', ')}`);
  return code;
}

/** The name of design code `code`. */
export function faultDesignName(code: number): FaultDesign {
  const name = FAULT_DESIGNS[code];
  if (name === undefined) throw new RangeError(`fault design code ${code}`);
  return name;
}

/** A fault tries the VMA read lock under RCU (falling back to mmap_lock): vma-lock, speculative. */
export function faultTriesVmaLock(code: number): boolean {
  return code >= DESIGN_VMA_LOCK;
}

/** A fault first tries the speculative path (spec-fault.ts), then the VMA lock: speculative only. */
export function faultTriesSpeculative(code: number): boolean {
  return code === DESIGN_SPECULATIVE;
}

/**
 * A fault that must wait for I/O or a locked page drops its locks and returns FAULT_RETRY (retry,
 * vma-lock), instead of waiting with mmap_lock held for read (global). The file fault calls this
 * before it waits (issue 11); an anonymous fault never waits.
 */
export function faultMayDropLockForIo(code: number): boolean {
  return code !== DESIGN_GLOBAL;
}
