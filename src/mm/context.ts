/**
 * SyscallContext: what a syscall body may use, and nothing of the AddressSpace facade. A body runs
 * under mmap_lock held for write, on this CPU's transaction (`txn`, `layer`, `ms`), reading the
 * shared per-mm state (`state`) and the shared tables (files, descriptors, anonymous identities,
 * page tables). It never takes or drops mmap_lock: the syscall entry
 * (src/mm/address-space.ts) does, and runs the work a body asks for after the unlock (populate).
 *
 * One SyscallContext per CPU per address space (its transaction and scratch are CPU-local); the
 * shared parts are the same on every CPU.
 */

import { ENOMEM } from '../errno.js';
import type { FdTable } from '../fs/fd-table.js';
import type { FileTable } from '../fs/file-table.js';
import type { RangeIndex } from '../maple/api.js';
import type { PhysMem } from '../mem/frames.js';
import type { PageTables } from '../mem/pgtable.js';
import type { TlbDomain } from '../mem/tlb.js';
import type { AnonVmaTable } from './anon-vma.js';
import type { MmConfig } from './config.js';
import { mmAnnounce } from './mm-registry.js';
import type { MmState } from './mm-state.js';
import { PageTableWork } from './pgtable-work.js';
import { Placement } from './placement.js';
import { MergeState, VmaLayer } from './vma.js';
import type { MmLocks } from './vma-lock.js';
import type { VmaArena } from './vma-record.js';
import { type VmaFreeFn, VmaTxn } from './vma-txn.js';

/**
 * A syscall's check stage passed: run its body under mmap_lock. (A check returns this, 0 for a
 * call that needs no work, or -errno.)
 */
export const CHECKED = 1;

/** What the populate stage after the unlock does (set by a body through `requestPopulate`). */
export const POPULATE_NONE = 0;
/** __mm_populate ignoring errors (MAP_POPULATE, MAP_LOCKED, mlockall, brk, mremap growth). */
export const POPULATE_IGNORE = 1;
/** mlock: __mm_populate whose error becomes the result (EFAULT -> ENOMEM, ENOMEM -> EAGAIN). */
export const POPULATE_MLOCK = 2;
/** MADV_POPULATE_READ / MADV_POPULATE_WRITE: faultin_page_range, its error is the result. */
export const POPULATE_FAULTIN_READ = 3;
export const POPULATE_FAULTIN_WRITE = 4;
/** touch: the traces' accesses, each page that allows them (touchFaults); -ENOMEM is the result. */
export const POPULATE_TOUCH_READ = 5;
export const POPULATE_TOUCH_WRITE = 6;

/** The shared parts of one address space (the same objects on every CPU that attached it). */
export interface MmShared {
  readonly config: MmConfig;
  readonly arena: VmaArena;
  readonly index: RangeIndex;
  readonly locks: MmLocks;
  readonly state: MmState;
  readonly files: FileTable;
  readonly fds: FdTable;
  readonly anonVmas: AnonVmaTable;
  /** Physical memory (shared by every address space of a Kernel) and this space's page tables. */
  readonly mem: PhysMem;
  readonly pt: PageTables;
  /** The address space's TLB domain (shootdowns after page-table work). */
  readonly tlb: TlbDomain;
}

/** The default mmuOffline: a context without an Mmu. */
function noMmu(): void {}

export class SyscallContext {
  readonly config: MmConfig;
  readonly arena: VmaArena;
  readonly index: RangeIndex;
  readonly locks: MmLocks;
  readonly state: MmState;
  readonly files: FileTable;
  readonly fds: FdTable;
  readonly anonVmas: AnonVmaTable;
  readonly mem: PhysMem;
  readonly pt: PageTables;
  /** The page-table work of this syscall, applied in order once the commit cannot fail. */
  readonly ptWork: PageTableWork;
  /** In the populate stage: faults install page-table entries (mmap_lock (R) + page_table_lock). */
  installPtes = false;
  /**
   * The anonymous fault in progress is an unshare (FAULT_FLAG_UNSHARE, set by GUP around
   * AddressSpace.faultForGup, not reset by open): a write-like fault that makes the page
   * exclusive to this mm (reuse or copy) without making the entry writable. Callers pass write.
   */
  faultUnshare = false;
  /**
   * FMODE_WRITE of the open file description mmap maps (set by `AddressSpace.sysMmap` before its
   * body runs, read by the body): one record serves every open of a host file, so whether a shared
   * mapping may be writable is the description's, not the file's.
   */
  mapFileWritable = false;
  /**
   * Set by the munmap body (open resets it): the commit leaves the page-table work, which is then
   * only zaps of ranges no VMA covers any more, to the syscall entry, which runs it after
   * downgrading mmap_lock to read (Linux's do_vmi_align_munmap with `unlock`): faults and populate
   * stages of other CPUs need not wait for the zap, its shootdown and the frees.
   */
  zapAfterDowngrade = false;
  /**
   * Takes this CPU's Mmu offline (AddressSpace.mmuOffline; a no-op until the facade sets it): a
   * fault on the per-VMA-lock path runs online and calls it before anything that may sleep.
   */
  mmuOffline: () => void = noMmu;
  readonly txn: VmaTxn;
  readonly layer: VmaLayer;
  readonly placement: Placement;
  /** Scratch merge state (struct vma_merge_struct) reused by every call. */
  readonly ms = new MergeState();

  /** Identities this syscall created: the creator's references, put once the commit took its own. */
  private readonly newAnon: number[] = [];
  private readonly newFiles: number[] = [];
  private savedBrk = 0;
  private savedDefFlags = 0;
  private savedShmem = 0;

  populateMode = POPULATE_NONE;
  populateStart = 0;
  populateLen = 0;

  constructor(shared: MmShared, freeRecord: VmaFreeFn) {
    this.config = shared.config;
    this.arena = shared.arena;
    this.index = shared.index;
    this.locks = shared.locks;
    this.state = shared.state;
    this.files = shared.files;
    this.fds = shared.fds;
    this.anonVmas = shared.anonVmas;
    this.mem = shared.mem;
    this.pt = shared.pt;
    this.ptWork = new PageTableWork(shared.pt, shared.mem, shared.index, shared.tlb, shared.locks);
    const rmap = { files: shared.files, mmId: shared.state.mmId, announce: () => mmAnnounce(shared) };
    this.txn = new VmaTxn(this.arena, this.index, freeRecord, this.locks, this, rmap);
    this.layer = new VmaLayer(this.txn, this.config.maxMapCount);
    this.placement = new Placement(this.index, this.arena, this.config, this.files);
  }

  // ---- per-mm state as the body sees it ------------------------------------------------------

  /** mm->map_count as last committed (the transaction's own change is txn.mapCountDelta). */
  get mapCount(): number {
    return this.state.mapCount;
  }
  get defFlags(): number {
    return this.state.defFlags;
  }
  set defFlags(flags: number) {
    this.state.defFlags = flags;
  }
  /** mm->brk (the exact requested break) and mm->start_brk. */
  get curBrk(): number {
    return this.state.brk;
  }
  set curBrk(brk: number) {
    this.state.brk = brk;
  }
  get startBrk(): number {
    return this.state.startBrk;
  }

  /** mm->locked_vm in pages as the transaction stands. */
  lockedPages(): number {
    return this.state.lockedVm + this.txn.lockedDelta();
  }

  /** anon_vma_alloc for this syscall: a new identity, or 0 when allocation fails. */
  newAnonVma(): number {
    const id = this.anonVmas.alloc();
    if (id !== 0) this.newAnon.push(id);
    return id;
  }

  /** shmem_zero_setup: a new shmem object of `size` bytes, or 0 when allocation fails. */
  newShmem(size: number): number {
    const id = this.files.addShmem(size, this.state.shmemCount);
    if (id === 0) return 0;
    this.state.shmemCount++;
    this.newFiles.push(id);
    return id;
  }

  /** Asks the syscall entry to populate [start, start + len) after mmap_lock is released. */
  requestPopulate(start: number, len: number, mode: number): void {
    this.populateMode = mode;
    this.populateStart = start;
    this.populateLen = len;
  }

  // ---- the transaction's lifecycle (the syscall entry's, not the bodies') ----------------------

  /**
   * Opens a transaction. Preconditions: mmap_lock held by this CPU (for write, or for read when
   * only anon_vma assignment may follow, see commitAnonOnly).
   */
  open(): void {
    this.txn.reset();
    this.ptWork.reset();
    this.installPtes = false;
    this.zapAfterDowngrade = false;
    this.layer.mapCountBase = this.state.mapCount;
    if (this.newAnon.length !== 0) this.newAnon.length = 0;
    if (this.newFiles.length !== 0) this.newFiles.length = 0;
    this.savedBrk = this.state.brk;
    this.savedDefFlags = this.state.defFlags;
    this.savedShmem = this.state.shmemCount;
    this.populateMode = POPULATE_NONE;
  }

  /**
   * Commits the transaction: 0, or -ENOMEM with the address space exactly as before open().
   * The page-table work is applied too, unless zapAfterDowngrade asks the entry to do it. The
   * reverse-map commit windows the commit opens on files (src/fs/i-mmap.ts) close after the
   * page-table work; with `holdWindows` (fork: its page-table copy belongs in them; munmap: its
   * zaps after the downgrade) the caller closes them with closeRmapWindowsLocked. Preconditions:
   * mmap_lock held for write by this CPU, open() called.
   */
  commitLocked(holdWindows = false): number {
    const mapDelta = this.txn.mapCountDelta;
    const lockedDelta = this.txn.lockedDelta();
    const r = this.txn.prepare();
    if (r < 0 || this.ptWork.prepare() < 0) {
      this.abandonLocked();
      return -ENOMEM;
    }
    // What VmaTxn.apply asks once the changed VMAs are write-locked: whether the commit changes
    // page tables (files whose records only come and go need no window otherwise); fork copies
    // them in the windows it holds, not through ptWork (null: they change).
    const pageTables = holdWindows && !this.zapAfterDowngrade ? null : this.ptWork;
    try {
      this.txn.apply(pageTables);
      if (!this.zapAfterDowngrade) this.ptWork.apply();
    } finally {
      if (!holdWindows) this.txn.closeRmapWindows();
    }
    this.state.mapCount += mapDelta;
    this.state.lockedVm += lockedDelta;
    this.putCreated();
    if (!holdWindows) this.txn.reset();
    return 0;
  }

  /**
   * Closes the windows a commitLocked(true) left open. Preconditions: mmap_lock held, for write or
   * (munmap after its downgrade) for read by the CPU that committed.
   */
  closeRmapWindowsLocked(): void {
    this.txn.closeRmapWindows();
  }

  /** Drops the open transaction's work: scalars and new identities restored, page-table work dropped. */
  abandonLocked(): void {
    this.txn.reset();
    this.ptWork.reset();
    this.installPtes = false;
    this.state.brk = this.savedBrk;
    this.state.defFlags = this.savedDefFlags;
    this.state.shmemCount = this.savedShmem;
    this.putCreated();
    this.populateMode = POPULATE_NONE;
  }

  /**
   * Publishes the anon_vmas a fault walk under mmap_lock held for read gave VMAs.
   * Preconditions: mmap_lock held (read), the mm's page_table_lock held.
   */
  commitAnonLocked(): void {
    this.txn.commitAnonOnly();
    this.putCreated();
    this.txn.reset();
  }

  private putCreated(): void {
    for (const id of this.newAnon) this.anonVmas.put(id);
    for (const id of this.newFiles) this.files.put(id);
    if (this.newAnon.length !== 0) this.newAnon.length = 0;
    if (this.newFiles.length !== 0) this.newFiles.length = 0;
  }
}
