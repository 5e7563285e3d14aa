/**
 * AddressSpace: one process's virtual address space (struct mm_struct) as seen from one CPU.
 * Everything two CPUs must agree on is shared memory: the VMA records (an Arena), the RangeIndex
 * of VMAs keyed by [vm_start, vm_end - 1] with mmap_lock as its external writer lock, the locks,
 * the per-mm scalars (MmState), the page tables (PageTables: also the per-2 MiB THP state), the
 * TLB domain, and the shared tables of files, descriptors and anonymous identities. The CPU-local part is a SyscallContext: this CPU's
 * transaction and scratch. `describe()` on one CPU and `AddressSpace.attach(desc)` on another give
 * two facades over one address space; any CPU runs any syscall, serialised only by mmap_lock.
 *
 * The syscall entry (`run`) owns the lock lifetime, like gVisor's syscalls.go and Linux's
 * vms_complete_munmap_vmas / mm_populate split:
 *
 *   check arguments (no lock) -> mmap_lock (W) -> body on the transaction (`*Locked`) -> commit
 *     -> unlock -> complete: populate under mmap_lock (R), where faults may allocate
 *
 * Raw syscalls (`sys*`) return a result or a negative errno, as the kernel does; the public
 * methods throw VmError instead. A failed call leaves the space unchanged except where Linux
 * documents partial effects (see docs/mm.md).
 */
import { DEBUG, VmAssertionError } from '../assert.js';
import { check, EAGAIN, EFAULT, EINVAL, ENOMEM } from '../errno.js';
import { FdTable, type FdTableDescriptor } from '../fs/fd-table.js';
import { FileTable, type FileTableDescriptor, fileReleaseDefer, fileReleaseFlush } from '../fs/file-table.js';
import { lockdepAssertNoneHeld } from '../lockdep/index.js';
import type { RangeIndex } from '../maple/api.js';
import { MapleTree, type MapleTreeDescriptor } from '../maple/tree.js';
import { PhysMem, type PhysMemDescriptor } from '../mem/frames.js';
import { Mmu } from '../mem/mmu.js';
import { PageTables, type PageTablesDescriptor } from '../mem/pgtable.js';
import { FAULT_SEGV_MAPERR, FAULT_SIGBUS, TlbDomain, type TlbDomainDescriptor } from '../mem/tlb.js';
import type { ArenaDescriptor, FailureInjector } from '../shm/arena.js';
import { rcuBarrier, rcuDeferFree } from '../sync/rcu.js';
import type { RwSem } from '../sync/rwsem.js';
import { AnonVmaTable } from './anon-vma.js';
import { checkMmLocked } from './check.js';
import { defaultConfig, type MmConfig } from './config.js';
import {
  CHECKED,
  type MmShared,
  POPULATE_FAULTIN_READ,
  POPULATE_FAULTIN_WRITE,
  POPULATE_IGNORE,
  POPULATE_MLOCK,
  POPULATE_NONE,
  POPULATE_TOUCH_READ,
  POPULATE_TOUCH_WRITE,
  SyscallContext,
} from './context.js';
import { faultinRange, mmPopulate } from './fault.js';
import {
  faultDesignCode,
  faultMayDropLockForIo,
  faultTriesSpeculative,
  faultTriesVmaLock,
} from './fault-design.js';
import { lockVmaUnderRcu } from './fault-lookup.js';
import {
  fileFaultCancel,
  fileFaultClearPoison,
  fileFaultIo,
  fileFaultPending,
  fileFaultPendingAddr,
  fileFaultPoison,
} from './file-fault.js';
import { installFileRmap } from './file-rmap.js';
import { dupMmap } from './fork.js';
import { type GupOptions, gupFlags, gupPages, gupPagesFast } from './gup.js';
import { allocMmId, mmForget } from './mm-registry.js';
import { MmState, type MmStateDescriptor } from './mm-state.js';
import {
  FAULT_FALLBACK,
  FAULT_GROW,
  FAULT_OOM,
  FAULT_RETRY,
  faultPageLocked,
  faultPageVmaLocked,
  MmuFault,
} from './mmu-fault.js';
import { type VmaView, vmaViews } from './proc-maps.js';
import { faultPageSpeculative, SPEC_ABORT, SPEC_SKIP } from './spec-fault.js';
import {
  NR_BRK,
  NR_DESTROY,
  NR_MADVISE,
  NR_MLOCK2,
  NR_MLOCKALL,
  NR_MMAP,
  NR_MPROTECT,
  NR_MREMAP,
  NR_MUNLOCK,
  NR_MUNLOCKALL,
  NR_MUNMAP,
  NR_POPULATE,
  NR_POPULATE_PART,
  NR_TOUCH,
  SyscallLog,
  type SyscallLogDescriptor,
} from './syscall-log.js';
import { cint, ulong } from './syscalls/args.js';
import { brkLocked } from './syscalls/brk.js';
import { madviseCheck, madviseLocked } from './syscalls/madvise.js';
import { mincoreReadLocked } from './syscalls/mincore.js';
import {
  mlock2Check,
  mlock2Locked,
  mlockallCheck,
  mlockallLocked,
  munlockallLocked,
  munlockLocked,
} from './syscalls/mlock.js';
import { mmapCheck, mmapLocked } from './syscalls/mmap.js';
import { mprotectCheck, mprotectLocked } from './syscalls/mprotect.js';
import { mremapCheck, mremapLocked } from './syscalls/mremap.js';
import {
  MSYNC_FSYNC,
  msyncBegin,
  msyncCheck,
  msyncFsync,
  msyncReadLocked,
  msyncState,
} from './syscalls/msync.js';
import { munmapLocked } from './syscalls/munmap.js';
import { touchCheck, touchFaults, touchLocked } from './syscalls/touch.js';
import { MAP_ANONYMOUS, PAGE_SIZE, PMD_SIZE } from './vm-flags.js';
import {
  countEvent,
  EV_FAULT_MMAP,
  EV_FAULT_RETRY,
  EV_FAULT_SPEC,
  EV_FAULT_VMA,
  EV_MMAP_FALLBACK,
  MmLocks,
  type MmLocksDescriptor,
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteDowngrade,
  mmapWriteLock,
  mmapWriteUnlock,
  vmaEndRead,
} from './vma-lock.js';
import { VmaArena, type VmaFields } from './vma-record.js';
import { type MmVmstat, mmVmstat } from './vmstat.js';

export interface AddressSpaceOptions {
  config?: Partial<MmConfig>;
  /** The VMA index; the maple tree in production, a reference index in tests. */
  index: RangeIndex;
  /** The file table mappings name files in (shared between address spaces; default: a new one). */
  files?: FileTable;
  /** The descriptor table mmap resolves descriptors in (default: a new one over `files`). */
  fds?: FdTable;
  /** Anonymous identities (shared between address spaces, for fork; default: a new table). */
  anonVmas?: AnonVmaTable;
  /** Physical memory (a Kernel's; default: one PhysMem shared by this thread's address spaces). */
  mem?: PhysMem;
  /** Most page-table pages (default 4096: 8 GiB of touched address space in 4 KiB pages). */
  pageTableCapacity?: number;
  /** Shared with the index's node arena so tests can fail the k-th allocation of a syscall. */
  injector?: FailureInjector;
  vmaCapacity?: number;
  /** Free VMA records after an RCU grace period (default) or at once (single-threaded tools). */
  rcuFree?: boolean;
  /** Record every VMA-changing syscall in mmap_lock order (SyscallLog). */
  log?: SyscallLog;
  /** Replaying a SyscallLog: populate stages run only through populateLogged. */
  deferPopulate?: boolean;
}

/** Everything another CPU needs to attach the same address space (structured-cloneable). */
export interface AddressSpaceDescriptor {
  config: MmConfig;
  rcuFree: boolean;
  vmas: ArenaDescriptor;
  index: MapleTreeDescriptor;
  locks: MmLocksDescriptor;
  state: MmStateDescriptor;
  files: FileTableDescriptor;
  fds: FdTableDescriptor;
  anonVmas: ArenaDescriptor;
  mem: PhysMemDescriptor;
  pt: PageTablesDescriptor;
  tlb: TlbDomainDescriptor;
  log: SyscallLogDescriptor | null;
}

/** A body run under mmap_lock: the context and up to six integer arguments; result or -errno. */
type LockedBody = (
  mm: SyscallContext,
  a: number,
  b: number,
  c: number,
  d: number,
  e: number,
  f: number,
) => number;

/**
 * Frames for address spaces made without a Kernel: one PhysMem per thread, made on first use (the
 * replayer's file table caches its pages there too).
 */
let threadMem: PhysMem | null = null;
export function defaultPhysMem(): PhysMem {
  threadMem ??= PhysMem.create({ frames: 1 << 18 });
  return threadMem;
}

/** faultStage's mode for the fault of one page (not a POPULATE_* mode). */
const FAULT_ONE_PAGE = -1;
/** Tries of one page fault (each FAULT_RETRY ran the I/O it waited for: the next finds the page). */
const MAX_FAULT_TRIES = 64;
/** The most times one page's fault waits: its read, its page lock, its page_mkwrite. */
const PAGE_IO_WAITS = 3;
/** Rounds of a fault stage beyond PAGE_IO_WAITS per page (each round after the first follows a file I/O). */
const STAGE_SLACK_ROUNDS = 64;

function touchBody(mm: SyscallContext, addr: number, len: number, write: number): number {
  return touchLocked(mm, addr, len, write !== 0);
}

function munlockallBody(mm: SyscallContext): number {
  return munlockallLocked(mm);
}

/** GUP's options when none are given (no object per call). */
const NO_GUP_OPTIONS: GupOptions = Object.freeze({});

/** mincore's probe of the range before its vector is made. */
const EMPTY_VEC = new Uint8Array(0);

export class AddressSpace implements MmShared {
  readonly config: MmConfig;
  readonly arena: VmaArena;
  readonly index: RangeIndex;
  readonly locks: MmLocks;
  /** mmap_lock: syscalls that change VMAs hold it for write; it is the tree's external lock. */
  readonly mmapLock: RwSem;
  readonly state: MmState;
  readonly files: FileTable;
  readonly fds: FdTable;
  readonly anonVmas: AnonVmaTable;
  readonly mem: PhysMem;
  /** This address space's page tables. */
  readonly pt: PageTables;
  /** The shared half of every CPU's TLB for this address space (shootdowns go through it). */
  readonly tlb: TlbDomain;
  /** This CPU's transaction and scratch: what syscall bodies see. */
  readonly ctx: SyscallContext;
  /** The syscall log, if the address space keeps one. */
  readonly log: SyscallLog | null;
  /** VMA records are freed after an RCU grace period (false: at once). */
  readonly rcuFree: boolean;
  /** config.design as its code (fault-design.ts: DESIGN_*), for the fault path. */
  readonly faultDesign: number;
  private readonly deferPopulate: boolean;
  private readonly edges: number[] = [];
  /** This facade's (CPU's) Mmu, made by the first mmu() call. */
  private cpuMmu: Mmu | null = null;
  /** The last fault stage round left file work and ran it (stageIoErr: its 0 or -errno). */
  private stageIo = false;
  private stageIoErr = 0;

  constructor(options: AddressSpaceOptions, attached?: AddressSpaceDescriptor) {
    if (attached !== undefined) {
      this.config = attached.config;
      this.rcuFree = attached.rcuFree;
      this.arena = VmaArena.attach(attached.vmas);
      this.index = options.index;
      this.locks = MmLocks.attach(attached.locks, this.arena);
      this.state = MmState.attach(attached.state);
      this.mem = PhysMem.attach(attached.mem);
      this.files = FileTable.attach(attached.files, this.mem);
      this.fds = FdTable.attach(attached.fds, this.files);
      this.anonVmas = AnonVmaTable.attach(attached.anonVmas);
      this.pt = PageTables.attach(attached.pt);
      this.tlb = TlbDomain.attach(attached.tlb);
      this.log = attached.log !== null ? SyscallLog.attach(attached.log) : null;
    } else {
      this.config = defaultConfig(options.config);
      this.rcuFree = options.rcuFree ?? true;
      const capacity = options.vmaCapacity ?? 256;
      this.arena = VmaArena.create(
        capacity,
        Math.max(capacity, this.config.maxMapCount + 16),
        options.injector,
      );
      this.index = options.index;
      this.locks = MmLocks.create(this.arena);
      this.state = MmState.create(this.config.startBrk, allocMmId());
      this.mem = options.mem ?? defaultPhysMem();
      this.files =
        options.files ??
        options.fds?.files ??
        FileTable.create({ injector: options.injector, mem: this.mem });
      this.fds = options.fds ?? FdTable.create(this.files);
      this.anonVmas = options.anonVmas ?? AnonVmaTable.create(options.injector);
      this.pt = PageTables.create({
        capacity: options.pageTableCapacity ?? 4096,
        injector: options.injector,
      });
      this.tlb = TlbDomain.create();
      this.log = options.log ?? null;
    }
    if (this.fds.files.arena.describe().records !== this.files.arena.describe().records) {
      throw new Error('AddressSpace: the descriptor table resolves into another file table');
    }
    this.mmapLock = this.locks.mmapLock;
    installFileRmap();
    this.faultDesign = faultDesignCode(this.config.design);
    this.deferPopulate = options.deferPopulate ?? false;
    const arena = this.arena;
    const free = this.rcuFree
      ? (h: number) => rcuDeferFree(arena.arena, h)
      : (h: number) => arena.arena.free(h);
    this.ctx = new SyscallContext(this, free);
    this.ctx.mmuOffline = () => this.mmuOffline();
    this.ctx.layer.onUnmap = (starts, ends, n, floor, ceiling) =>
      this.unmapPageTables(starts, ends, n, floor, ceiling);
  }

  /** The same address space on this CPU (the index must be a MapleTree to be shared). */
  static attach(desc: AddressSpaceDescriptor): AddressSpace {
    return new AddressSpace({ index: MapleTree.attach(desc.index) }, desc);
  }

  describe(): AddressSpaceDescriptor {
    if (!(this.index instanceof MapleTree)) {
      throw new Error('AddressSpace.describe: the VMA index is not a MapleTree, so other CPUs cannot see it');
    }
    return {
      config: this.config,
      rcuFree: this.rcuFree,
      vmas: this.arena.describe(),
      index: this.index.describe(),
      locks: this.locks.describe(),
      state: this.state.describe(),
      files: this.files.describe(),
      fds: this.fds.describe(),
      anonVmas: this.anonVmas.describe(),
      mem: this.mem.describe(),
      pt: this.pt.describe(),
      tlb: this.tlb.describe(),
      log: this.log !== null ? this.log.describe() : null,
    };
  }

  // ---- the syscall entry ---------------------------------------------------------------------

  /**
   * Runs `body` under mmap_lock held for write on a fresh transaction, commits it (a failed
   * commit turns the result into -ENOMEM and changes nothing), releases mmap_lock, then runs the
   * populate stage the body asked for. Preconditions: this CPU holds no lock; the arguments passed
   * the syscall's check. Returns holding no lock (checked by the validator); if the body throws (an
   * internal error, never an errno) its uncommitted work and mmap_lock are dropped first.
   */
  private run(name: string, nr: number, body: LockedBody, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0): number {
    const ctx = this.ctx;
    let ret: number;
    this.mmuOffline();
    fileReleaseDefer(); // a file whose last VMA goes is released after mmap_lock (delayed fput)
    mmapWriteLock(this.locks);
    try {
      ctx.open();
      ret = body(ctx, a, b, c, d, e, f);
      this.splitHugeAcrossVmasLocked();
      // munmap keeps its reverse-map windows open until its page-table work is done (zapDowngraded).
      const r = ctx.commitLocked(ctx.zapAfterDowngrade);
      if (r < 0) ret = r;
      // munmap's check comes after its page-table work (zapDowngraded): the tables are checked too.
      if (DEBUG && !ctx.zapAfterDowngrade) checkMmLocked(this);
      if (this.log !== null) this.log.appendLocked(nr, a, b, c, d, e, f, ret);
    } catch (error) {
      ctx.abandonLocked();
      mmapWriteUnlock(this.locks);
      fileReleaseFlush();
      lockdepAssertNoneHeld(name);
      throw error;
    }
    if (ctx.zapAfterDowngrade) this.zapDowngraded();
    else mmapWriteUnlock(this.locks);
    fileReleaseFlush();
    if (ctx.populateMode !== POPULATE_NONE && !this.deferPopulate) ret = this.populate(ret);
    lockdepAssertNoneHeld(name);
    return ret;
  }

  /**
   * munmap's page-table work (zaps, their shootdowns, free_pgtables of the gaps) after
   * downgrading mmap_lock to read, then its reverse-map windows close (a walker of a file sees the
   * unmap whole), then the unlock and the frames' puts. Safe under the read lock: the committed
   * VMAs no longer cover the zapped ranges, so no fault or GUP can reach them, and a table is freed
   * only where free_pgtables' floor and ceiling (the VMAs around the gap, which cannot change while
   * mmap_lock is held) say no VMA shares it. Preconditions: mmap_lock held for write, committed
   * with its windows held.
   */
  private zapDowngraded(): void {
    const ctx = this.ctx;
    const ptWork = ctx.ptWork;
    const hasWork = ptWork.hasWork();
    if (!hasWork || !ptWork.onlyZapsAndFrees()) {
      // Nothing in the page tables to zap or free (no downgrade needed: nothing would wait on it
      // for long), or a THP region split at a new VMA edge: the work runs under the write lock.
      try {
        try {
          if (hasWork) ptWork.apply();
        } finally {
          ctx.closeRmapWindowsLocked();
        }
        if (DEBUG) checkMmLocked(this);
      } finally {
        mmapWriteUnlock(this.locks);
      }
      return;
    }
    mmapWriteDowngrade(this.locks);
    try {
      try {
        ptWork.applyOps();
      } finally {
        ctx.closeRmapWindowsLocked();
      }
      if (DEBUG) checkMmLocked(this);
    } finally {
      mmapReadUnlock(this.locks);
    }
    // The frames are unreachable (zapped and shot down): their puts need no lock.
    ptWork.putZapped();
  }

  /** Runs a read-only body under mmap_lock held for read. */
  private runRead(name: string, body: LockedBody, a = 0, b = 0, c = 0): number {
    this.mmuOffline();
    mmapReadLock(this.locks);
    try {
      return body(this.ctx, a, b, c, 0, 0, 0);
    } finally {
      mmapReadUnlock(this.locks);
      lockdepAssertNoneHeld(name);
    }
  }

  /**
   * The populate stage (__mm_populate / faultin_page_range after mmap_write_unlock): faults the
   * requested range under mmap_lock held for read and the page-table lock, publishing only the
   * anon_vmas the faults create. Returns the syscall's result as the stage decides it.
   */
  private populate(ret: number): number {
    const ctx = this.ctx;
    return this.faultStage(ctx.populateMode, ctx.populateStart, ctx.populateLen, ret);
  }

  /**
   * A fault stage under mmap_lock held for read and the mm's page_table_lock: a populate stage
   * (`mode` a POPULATE_* mode over [start, start + len), `ret` the syscall's result going in) or,
   * with mode FAULT_ONE_PAGE, the fault of one page (`ret`: 1 for a write, 2 for an instruction
   * fetch). Publishes only the anon_vmas the faults create, logs the stage (with a log), then
   * shoots down and puts the pages copy-on-write replaced, after dropping page_table_lock (a
   * shootdown may sleep). Returns the syscall's result as the stage decides it, or the fault's.
   */
  private faultStage(mode: number, start: number, len: number, ret: number): number {
    const end = start + len;
    const maxRounds = PAGE_IO_WAITS * Math.ceil(len / PAGE_SIZE) + STAGE_SLACK_ROUNDS;
    let from = start;
    try {
      for (let round = 0; round < maxRounds; round++) {
        const r = this.faultStageOnce(mode, from, end - from, ret);
        if (!this.stageIo) return r;
        countEvent(this.locks, EV_FAULT_RETRY);
        const err = this.stageIoErr;
        if (mode === FAULT_ONE_PAGE)
          return err === 0 ? FAULT_RETRY : err === -ENOMEM ? FAULT_OOM : FAULT_SIGBUS;
        // FOLL_UNLOCKABLE: the walk goes on from the page that waited, the VMAs looked up again
        // under the retaken mmap_lock; a failed I/O answers that page with its error once.
        from = fileFaultPendingAddr();
        if (err < 0) fileFaultPoison(from, err);
      }
    } finally {
      fileFaultClearPoison();
    }
    throw new VmAssertionError(`fault stage [${start}, ${end}): more than ${maxRounds} rounds of file I/O`);
  }

  /**
   * One round of a fault stage over [start, start + len) (logged by stageRoundLocked). When a file
   * fault left work pending (file-fault.ts), the round ends there: the anon_vmas so far are
   * published, page_table_lock dropped, and the work runs after mmap_lock is released (retry,
   * vma-lock: the caller retries); under global (Linux before 5.1) it runs holding mmap_lock, and
   * a page fault then goes on under the same hold (at most PAGE_IO_WAITS waits), so mmap_lock is
   * held across the whole fault, I/O included; a populate stage, or a fault whose I/O failed,
   * returns to its caller as under the other designs. stageIo and stageIoErr tell the caller.
   */
  private faultStageOnce(mode: number, start: number, len: number, ret: number): number {
    const dropForIo = faultMayDropLockForIo(this.faultDesign);
    this.stageIo = false;
    this.stageIoErr = 0;
    this.mmuOffline();
    mmapReadLock(this.locks);
    let r: number;
    try {
      r = this.stageRoundLocked(mode, start, len, ret);
      for (let waits = 1; this.stageIo && !dropForIo; waits++) {
        this.stageIoErr = fileFaultIo(this.files, this.mem);
        if (mode !== FAULT_ONE_PAGE || this.stageIoErr !== 0 || waits === PAGE_IO_WAITS) break;
        r = this.stageRoundLocked(mode, start, len, ret);
      }
    } finally {
      mmapReadUnlock(this.locks);
    }
    if (this.stageIo && dropForIo) this.stageIoErr = fileFaultIo(this.files, this.mem);
    return r;
  }

  /**
   * faultStageOnce's work under mmap_lock: the stage's body in a transaction under page_table_lock,
   * the anon_vmas published, then (page_table_lock dropped) the copy-on-write shootdowns; sets
   * stageIo when a file fault left work pending. Preconditions: mmap_lock held for read.
   */
  private stageRoundLocked(mode: number, start: number, len: number, ret: number): number {
    const ctx = this.ctx;
    const end = start + len;
    const retIn = ret;
    ctx.open();
    ctx.installPtes = true;
    this.state.ptl.lock();
    let ptlHeld = true;
    try {
      if (mode === FAULT_ONE_PAGE) ret = faultPageLocked(ctx, start, (ret & 1) !== 0, (ret & 2) !== 0);
      else if (mode === POPULATE_IGNORE) mmPopulate(ctx, start, len, true);
      else if (mode === POPULATE_MLOCK) {
        const pop = mmPopulate(ctx, start, len, false);
        ret = pop === -EFAULT ? -ENOMEM : pop === -ENOMEM ? -EAGAIN : pop < 0 ? pop : ret;
      } else if (mode === POPULATE_FAULTIN_READ || mode === POPULATE_FAULTIN_WRITE) {
        ret = faultinRange(ctx, start, end, mode === POPULATE_FAULTIN_WRITE);
      } else if (mode === POPULATE_TOUCH_READ || mode === POPULATE_TOUCH_WRITE) {
        const r = touchFaults(ctx, start, end, mode === POPULATE_TOUCH_WRITE);
        if (r < 0) ret = r;
      }
      const io = fileFaultPending();
      ctx.commitAnonLocked();
      // Fault stages are serialised by page_table_lock, and with writers by mmap_lock. A page
      // fault is logged as the one-page touch it amounts to (it changes no VMA but its anon_vma).
      // Each round of a populate stage is logged where it ran, over what it walked: a round that
      // stopped for I/O as NR_POPULATE_PART up to the page that waits (other CPUs' syscalls may
      // come before the next round, which goes on from that page under a new mmap_lock hold).
      if (this.log !== null)
        this.logStage(mode, start, io ? fileFaultPendingAddr() - start : len, retIn, ret, io);
      this.state.ptl.unlock();
      ptlHeld = false;
      ctx.ptWork.flushDeferred();
      this.stageIo = io;
      return ret;
    } catch (error) {
      ctx.abandonLocked();
      if (fileFaultPending()) fileFaultCancel(this.files, this.mem);
      throw error;
    } finally {
      if (ptlHeld) this.state.ptl.unlock();
    }
  }

  private logStage(mode: number, start: number, len: number, retIn: number, ret: number, io: boolean): void {
    const log = this.log as SyscallLog;
    if (io) {
      if (mode !== FAULT_ONE_PAGE && len > 0)
        log.appendLocked(NR_POPULATE_PART, start, len, mode, retIn, 0, 0, 0);
    } else if (mode !== FAULT_ONE_PAGE) log.appendLocked(NR_POPULATE, start, len, mode, retIn, 0, 0, ret);
    else if (ret === 0) {
      const touch = (retIn & 1) !== 0 ? POPULATE_TOUCH_WRITE : POPULATE_TOUCH_READ;
      log.appendLocked(NR_POPULATE, start, PAGE_SIZE, touch, 0, 0, 0, 0);
    }
  }

  // ---- the MMU: loads and stores of this CPU ------------------------------------------------

  /**
   * This CPU's Mmu for the address space (made on first use, one per facade: a facade is one
   * CPU's). Its miss handler is the page-fault path (mmu-fault.ts, faultPage). Deadlock rule: a
   * CPU must not hold up a shootdown while it blocks, so every syscall entry (run, runRead,
   * populate) and every view (vmas: maps, smaps, status) takes this Mmu offline before it may
   * wait for mmap_lock; the next access brings it back online. A CPU that stops using the space
   * calls detach(), which takes it offline too.
   */
  mmu(): Mmu {
    this.cpuMmu ??= new Mmu(this.mem, this.pt, this.tlb, new MmuFault(this));
    return this.cpuMmu;
  }

  /** This CPU's Mmu goes offline (before anything that may block: the deadlock rule above). */
  mmuOffline(): void {
    if (this.cpuMmu !== null) this.cpuMmu.offline();
  }

  /**
   * The Mmu's fault path for the page of addr (mmu-fault.ts): 0 once a translation allowing the
   * access is installed, or FAULT_SEGV_MAPERR / FAULT_SEGV_ACCERR / FAULT_SIGBUS / FAULT_OOM (out
   * of memory: the Mmu's handler delivers it as FAULT_SIGBUS). Runs like a
   * populate stage of one page (mmap_lock (R), page_table_lock, faultRange with installPtes,
   * commitAnonLocked, then the copy-on-write shootdown); a fault below a VM_GROWSDOWN VMA grows
   * it through a write-locked touch of the page (expand_downwards, then the same fault). With a
   * syscall log, a fault is logged as a one-page touch-populate stage so the log still replays.
   * Preconditions: this CPU holds no lock and is not in a syscall (its Mmu may be online, with no
   * translation in use: the Mmu's miss handler).
   */
  faultPage(addr: number, write: boolean, exec: boolean): number {
    const page = addr - (addr % PAGE_SIZE);
    let grown = false;
    for (let tries = 0; tries < MAX_FAULT_TRIES; tries++) {
      const r = this.faultPageOnce(page, write, exec);
      if (r === FAULT_RETRY) continue;
      if (r !== FAULT_GROW) return r;
      if (grown || this.sysTouch(page, PAGE_SIZE, write) < 0) return FAULT_SEGV_MAPERR;
      grown = true;
    }
    throw new VmAssertionError(`page fault at ${page}: ${MAX_FAULT_TRIES} retries in a row`);
  }

  /**
   * GUP's fault of one page (faultin_page, gup.ts): `write` a write fault, `unshare` the unshare
   * fault before a read-only pin (FAULT_FLAG_UNSHARE: the page becomes exclusive to this mm, reused
   * or copied, its entry staying read-only; checked as a read). One try, returning holding no
   * lock: 0, FAULT_RETRY (the fault ran the file work it waited for, with its locks dropped, or
   * under `global` with mmap_lock (R) kept until then; the caller looks the VMA up again: Linux's
   * `*locked = 0`), a FAULT_* code or FAULT_OOM; unlike faultPage it never grows a stack (Linux's
   * GUP does not since 6.5). Preconditions as faultPage.
   */
  faultForGup(addr: number, write: boolean, unshare: boolean): number {
    const ctx = this.ctx;
    ctx.faultUnshare = unshare;
    try {
      const r = this.faultPageOnce(addr - (addr % PAGE_SIZE), write || unshare, false);
      return r === FAULT_GROW ? FAULT_SEGV_MAPERR : r;
    } finally {
      ctx.faultUnshare = false;
    }
  }

  // ---- GUP: page references and pins for devices and pipes (gup.ts) -------------------------

  /**
   * get_user_pages: a reference (getPage) to each of `pages` pages from the page-aligned addr,
   * faulting them in (write: made exclusive, writable and dirty). The pfns (a prefix when a later
   * page fails; in `into` when given, emptied first) or -errno (EFAULT, EINVAL, ENOMEM, EAGAIN).
   * Drop them with putUserPages. Preconditions: this CPU holds no lock (GUP takes mmap_lock (R)).
   */
  getUserPages(addr: number, pages: number, opts = NO_GUP_OPTIONS, into?: number[]): number[] | number {
    return this.gup('getUserPages', addr, pages, gupFlags(opts, false), false, into);
  }

  /** get_user_pages_fast: getUserPages, lockless for the pages that allow it (gup.ts). */
  getUserPagesFast(addr: number, pages: number, opts = NO_GUP_OPTIONS, into?: number[]): number[] | number {
    return this.gup('getUserPagesFast', addr, pages, gupFlags(opts, false), true, into);
  }

  /**
   * pin_user_pages: like getUserPages, but each page is pinned (GUP_PIN_COUNTING_BIAS, so fork
   * copies it for the child) and a read-only pin of a page shared copy-on-write first unshares it.
   * `longterm`: see gup.ts. Drop them with unpinUserPages.
   */
  pinUserPages(addr: number, pages: number, opts = NO_GUP_OPTIONS, into?: number[]): number[] | number {
    return this.gup('pinUserPages', addr, pages, gupFlags(opts, true), false, into);
  }

  /** pin_user_pages_fast: pinUserPages, lockless for the pages that allow it (gup.ts). */
  pinUserPagesFast(addr: number, pages: number, opts = NO_GUP_OPTIONS, into?: number[]): number[] | number {
    return this.gup('pinUserPagesFast', addr, pages, gupFlags(opts, true), true, into);
  }

  /** The four GUP entries: `foll` from gupFlags (or -EINVAL), `fast` GUP-fast first. */
  private gup(
    name: string,
    addr: number,
    pages: number,
    foll: number,
    fast: boolean,
    into: number[] | undefined,
  ): number[] | number {
    const out = into ?? [];
    let r = foll;
    if (foll >= 0)
      r = fast ? gupPagesFast(this, addr, pages, foll, out) : gupPages(this, addr, pages, foll, out);
    lockdepAssertNoneHeld(name);
    // Trimmed only when the count differs: a reused `into` of the right length allocates nothing.
    const n = Math.max(r, 0);
    if (out.length !== n) out.length = n;
    return r < 0 ? r : out;
  }

  /**
   * One try at the fault of `page`: under the vma-lock design the per-VMA-lock fast path first,
   * then (global, retry, or a fallback) the mmap_lock path. Counts the fault by the path that
   * finished it (vmstat.ts); a FAULT_GROW is not counted, faultPage runs the fault again. The
   * anonymous fast path runs with this CPU's Mmu online (it waits only for PTE locks and zone_lock,
   * whose holders never wait for a shootdown, and for its own shootdown, where it counts as
   * acknowledged); so does a file fault, which only trylocks the page and takes the Mmu offline
   * before it may sleep (an injected page_mkwrite latency: ctx.mmuOffline; the I/O or page-lock
   * wait after it dropped the VMA lock: below); faultStage (mmap_lock) goes offline first.
   */
  private faultPageOnce(page: number, write: boolean, exec: boolean): number {
    const ctx = this.ctx;
    const locks = this.locks;
    if (faultTriesSpeculative(this.faultDesign)) {
      const r = this.faultSpeculative(page, write, exec);
      if (r !== SPEC_SKIP && r !== SPEC_ABORT) return r;
    }
    if (faultTriesVmaLock(this.faultDesign)) {
      const h = lockVmaUnderRcu(this, page);
      if (h !== 0) {
        let r: number;
        try {
          r = faultPageVmaLocked(ctx, h, page, write, exec);
          ctx.ptWork.flushDeferred();
        } catch (error) {
          if (fileFaultPending()) fileFaultCancel(this.files, this.mem);
          throw error;
        } finally {
          vmaEndRead(locks, h);
        }
        if (r === FAULT_RETRY) {
          // The file work the fault left, with the VMA lock dropped (file-fault.ts).
          countEvent(locks, EV_FAULT_RETRY);
          this.mmuOffline();
          const err = fileFaultIo(this.files, this.mem);
          lockdepAssertNoneHeld('page fault');
          return err === 0 ? FAULT_RETRY : err === -ENOMEM ? FAULT_OOM : FAULT_SIGBUS;
        }
        if (r !== FAULT_FALLBACK) {
          countEvent(locks, EV_FAULT_VMA);
          return r;
        }
      }
      countEvent(locks, EV_MMAP_FALLBACK);
    }
    const r = this.faultStage(FAULT_ONE_PAGE, page, PAGE_SIZE, (write ? 1 : 0) | (exec ? 2 : 0));
    if (r !== FAULT_GROW && r !== FAULT_RETRY) countEvent(locks, EV_FAULT_MMAP);
    lockdepAssertNoneHeld('page fault');
    return r;
  }

  /**
   * The speculative design's first try (spec-fault.ts): 0 or FAULT_SEGV_ACCERR, counted as a
   * speculative fault, or SPEC_SKIP / SPEC_ABORT (counted there) for the vma-lock path. Runs with
   * the Mmu online, as the anonymous vma-lock fast path does.
   */
  private faultSpeculative(page: number, write: boolean, exec: boolean): number {
    const ctx = this.ctx;
    const r = faultPageSpeculative(ctx, page, write, exec);
    ctx.ptWork.flushDeferred();
    if (r === SPEC_SKIP || r === SPEC_ABORT) return r;
    countEvent(this.locks, EV_FAULT_SPEC);
    lockdepAssertNoneHeld('speculative page fault');
    return r;
  }

  /** The fault counters of this address space, like /proc/vmstat (vmstat.ts). */
  vmstat(): MmVmstat {
    return mmVmstat(this.locks, this.faultDesign);
  }

  /**
   * Replaying a SyscallLog: with `deferPopulate`, syscalls only ask for their populate stage, and
   * the replayer runs it where the log recorded it. Returns the stage's result for a syscall that
   * returned `ret`.
   */
  populateLogged(start: number, len: number, mode: number, ret: number): number {
    this.ctx.requestPopulate(start, len, mode);
    return this.populate(ret);
  }

  /**
   * unmap_region for the unmapped VMAs [starts[i], ends[i]) (ascending) between floor and ceiling:
   * the ranges are zapped, then free_pgtables frees the tables of the groups of VMAs less than
   * 2 MiB apart, each with the next group's start as its ceiling.
   */
  private unmapPageTables(
    starts: Float64Array,
    ends: Float64Array,
    n: number,
    floor: number,
    ceiling: number,
  ): void {
    const work = this.ctx.ptWork;
    for (let i = 0; i < n; i++) work.zap(starts[i], ends[i]);
    let i = 0;
    while (i < n) {
      let j = i;
      while (j + 1 < n && starts[j + 1] <= ends[j] + PMD_SIZE) j++;
      const groupCeiling = j + 1 < n ? starts[j + 1] : ceiling;
      work.freeTables(starts[i], ends[j], floor, groupCeiling);
      i = j + 1;
    }
  }

  /**
   * A huge page mapping cannot straddle VMAs: a VMA edge the transaction creates inside a region
   * mapped huge splits the mapping into a table. Preconditions: mmap_lock held for write.
   */
  private splitHugeAcrossVmasLocked(): void {
    if (this.pt.thpRegions === 0) return;
    const edges = this.edges;
    if (edges.length !== 0) edges.length = 0;
    this.ctx.txn.changedEdges(edges);
    for (const edge of edges) if (edge % PMD_SIZE !== 0) this.ctx.ptWork.split(edge);
  }

  /** mm->map_count. */
  get mapCount(): number {
    return this.state.mapCount;
  }
  /** mm->brk (the exact requested break). */
  get curBrk(): number {
    return this.state.brk;
  }
  get startBrk(): number {
    return this.state.startBrk;
  }
  /** mm->def_flags. */
  get defFlags(): number {
    return this.state.defFlags;
  }
  /** mm->locked_vm in pages. */
  lockedPages(): number {
    return this.state.lockedVm;
  }

  /** Shows the [vsyscall] gate page with these VM_* flags in the maps view (0: none). */
  setGate(flags: number): void {
    this.state.gateFlags = flags;
  }

  /**
   * Adds a VMA as it is (process start-up layout); its range must be free. With `withAnon`, it
   * gets a new anon_vma (it has anonymous pages).
   */
  insertVma(f: VmaFields, withAnon = false): void {
    const ctx = this.ctx;
    this.mmuOffline();
    mmapWriteLock(this.locks);
    try {
      ctx.open();
      if (ctx.txn.intersecting(f.start, f.end) >= 0) {
        throw new Error(`insertVma: [${f.start.toString(16)}, ${f.end.toString(16)}) is not free`);
      }
      const anon = withAnon ? ctx.newAnonVma() : f.anon;
      if (anon === 0 && withAnon) throw new Error('insertVma: no memory for an anon_vma');
      ctx.txn.insert({ ...f, anon });
      check(ctx.commitLocked(), 'insertVma');
    } catch (error) {
      ctx.abandonLocked();
      throw error;
    } finally {
      mmapWriteUnlock(this.locks);
    }
  }

  /**
   * fork's dup_mmap (src/mm/fork.ts): copies this address space's VMAs and anonymous page tables
   * into `child`, a new, empty address space nobody else uses. 0, or -ENOMEM with the child
   * holding part of the copy (the caller destroys it). Preconditions: this CPU holds no lock.
   */
  dupMmap(child: AddressSpace): number {
    this.mmuOffline();
    const r = dupMmap(this, child);
    lockdepAssertNoneHeld('fork');
    return r;
  }

  /**
   * Unmaps everything and returns every record (VMA, tree node, page-table leaf, the identities
   * the VMAs held) to its arena, after the RCU grace period. Other CPUs must have stopped using it.
   */
  destroy(): void {
    this.run('destroy', NR_DESTROY, (mm) => {
      const first = mm.txn.findFrom(0);
      if (first >= 0) mm.layer.unmapRange(first, 0, 2 ** 53);
      return 0;
    });
    mmForget(this.state);
    rcuBarrier();
  }

  /**
   * This CPU stops using the address space: its tree reserve goes back and its deferred frees run
   * (call before exit on every CPU that made syscalls, so nothing stays allocated).
   */
  detach(): void {
    this.mmuOffline();
    if (this.index instanceof MapleTree) this.index.releasePreallocated();
    rcuBarrier();
  }

  // ---- raw syscalls: result or -errno ---------------------------------------------------------

  sysMmap(addr: number, len: number, prot: number, flags: number, fd: number, offset: number): number {
    const file = (flags & MAP_ANONYMOUS) === 0 ? this.fgetForMap(fd) : 0;
    const txn = this.ctx.txn;
    txn.lentFile = file;
    try {
      const c = mmapCheck(flags, file, offset);
      return c !== CHECKED
        ? c
        : this.run('syscall mmap', NR_MMAP, mmapLocked, addr, len, prot, flags, file, offset);
    } finally {
      // Unless the new VMA's record took it (VmaTxn.lentFile).
      if (txn.lentFile !== 0) this.files.put(txn.lentFile);
      txn.lentFile = 0;
    }
  }
  /**
   * The file behind `fd` with a reference the caller puts (0: EBADF), its description's FMODE_WRITE
   * left in `ctx.mapFileWritable` for the mmap body.
   */
  private fgetForMap(fd: number): number {
    const fds = this.fds;
    const file = fds.fget(fd);
    if (file !== 0) this.ctx.mapFileWritable = fds.fgetWritable;
    return file;
  }
  sysMunmap(addr: number, len: number): number {
    return this.run('syscall munmap', NR_MUNMAP, munmapLocked, addr, len);
  }
  sysMprotect(addr: number, len: number, prot: number): number {
    const c = mprotectCheck(addr, len, prot);
    return c !== CHECKED ? c : this.run('syscall mprotect', NR_MPROTECT, mprotectLocked, addr, len, prot);
  }
  sysMremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr: number): number {
    const c = mremapCheck(this.config.taskSize, oldAddr, oldLen, newLen, flags, newAddr);
    if (c !== CHECKED) return c;
    return this.run('syscall mremap', NR_MREMAP, mremapLocked, oldAddr, oldLen, newLen, flags, newAddr);
  }
  /** brk never fails: a refused request (or a failed commit) returns the old break. */
  sysBrk(addr: number): number {
    const r = this.run('syscall brk', NR_BRK, brkLocked, addr);
    return r < 0 ? this.state.brk : r;
  }
  sysMadvise(addr: number, len: number, advice: number): number {
    const c = madviseCheck(addr, len, advice);
    return c !== CHECKED ? c : this.run('syscall madvise', NR_MADVISE, madviseLocked, addr, len, advice);
  }
  sysMlock2(addr: number, len: number, flags: number): number {
    const c = mlock2Check(this.config, flags);
    return c !== CHECKED ? c : this.run('syscall mlock2', NR_MLOCK2, mlock2Locked, addr, len, flags);
  }
  sysMunlock(addr: number, len: number): number {
    return this.run('syscall munlock', NR_MUNLOCK, munlockLocked, addr, len);
  }
  sysMlockall(flags: number): number {
    const c = mlockallCheck(this.config, flags);
    return c !== CHECKED ? c : this.run('syscall mlockall', NR_MLOCKALL, mlockallLocked, flags);
  }
  sysMunlockall(): number {
    return this.run('syscall munlockall', NR_MUNLOCKALL, munlockallBody);
  }
  /** msync: the walk under mmap_lock (R); MS_SYNC's write-back of each range with it dropped. */
  sysMsync(addr: number, len: number, flags: number): number {
    const c = msyncCheck(addr, len, flags);
    if (c !== CHECKED) return c;
    msyncBegin(addr);
    // Bounded: each round passes at least one VMA.
    for (let round = 0; round <= this.config.maxMapCount + 1; round++) {
      const r = this.runRead('syscall msync', msyncReadLocked, addr, len, flags);
      if (r !== MSYNC_FSYNC) return r;
      const err = msyncFsync(this.files);
      lockdepAssertNoneHeld('syscall msync');
      if (err < 0) return err;
      if (msyncState.start >= addr + len) return msyncState.unmapped;
    }
    return msyncState.unmapped;
  }
  /** mincore: 1 in vec[i] for each resident page of [addr, addr + len); 0 or -errno. */
  sysMincore(addr: number, len: number, vec: Uint8Array): number {
    this.mmuOffline();
    mmapReadLock(this.locks);
    try {
      return mincoreReadLocked(this.ctx, addr, len, vec);
    } finally {
      mmapReadUnlock(this.locks);
      lockdepAssertNoneHeld('syscall mincore');
    }
  }
  /** The traces' fault stand-in: accesses every page of [addr, addr + len) that can be accessed. */
  sysTouch(addr: number, len: number, write: boolean): number {
    const c = touchCheck(this.config.taskSize, addr, len);
    return c !== CHECKED ? c : this.run('syscall touch', NR_TOUCH, touchBody, addr, len, write ? 1 : 0);
  }

  // ---- public API: throws VmError -------------------------------------------------------------

  mmap(addr: number, len: number, prot: number, flags: number, fd = -1, offset = 0): number {
    const a = ulong(addr);
    const l = ulong(len);
    const p = ulong(prot);
    const f = ulong(flags);
    const d = cint(fd);
    const o = ulong(offset);
    const bad = Number.isNaN(a + l + p + f + d + o);
    return check(bad ? -EINVAL : this.sysMmap(a, l, p, f, d, o), 'mmap');
  }
  munmap(addr: number, len: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    check(Number.isNaN(a + l) ? -EINVAL : this.sysMunmap(a, l), 'munmap');
  }
  mprotect(addr: number, len: number, prot: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    const p = ulong(prot);
    check(Number.isNaN(a + l + p) ? -EINVAL : this.sysMprotect(a, l, p), 'mprotect');
  }
  mremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr = 0): number {
    const a = ulong(oldAddr);
    const ol = ulong(oldLen);
    const nl = ulong(newLen);
    const f = ulong(flags);
    const na = ulong(newAddr);
    return check(Number.isNaN(a + ol + nl + f + na) ? -EINVAL : this.sysMremap(a, ol, nl, f, na), 'mremap');
  }
  /** brk never fails: it returns the new break, or the old one when the request is refused. */
  brk(addr: number): number {
    const a = ulong(addr);
    return this.sysBrk(Number.isNaN(a) ? 0 : a);
  }
  madvise(addr: number, len: number, advice: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    const v = cint(advice);
    check(Number.isNaN(a + l + v) ? -EINVAL : this.sysMadvise(a, l, v), 'madvise');
  }
  mlock(addr: number, len: number, flags = 0): void {
    const a = ulong(addr);
    const l = ulong(len);
    const f = cint(flags);
    check(Number.isNaN(a + l + f) ? -EINVAL : this.sysMlock2(a, l, f), 'mlock');
  }
  munlock(addr: number, len: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    check(Number.isNaN(a + l) ? -EINVAL : this.sysMunlock(a, l), 'munlock');
  }
  mlockall(flags: number): void {
    const f = cint(flags);
    check(Number.isNaN(f) ? -EINVAL : this.sysMlockall(f), 'mlockall');
  }
  munlockall(): void {
    check(this.sysMunlockall(), 'munlockall');
  }
  msync(addr: number, len: number, flags: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    const f = cint(flags);
    check(Number.isNaN(a + l + f) ? -EINVAL : this.sysMsync(a, l, f), 'msync');
  }
  /** mincore(2): the residency of each page of [addr, addr + len), one byte per page (0 or 1). */
  mincore(addr: number, len: number): Uint8Array {
    const a = ulong(addr);
    const l = ulong(len);
    if (Number.isNaN(a + l)) check(-EINVAL, 'mincore');
    // The range is checked before the vector is made: a huge length must be ENOMEM (outside user
    // space, or a hole), not a RangeError from a vector too large to allocate.
    const probe = this.sysMincore(a, l, EMPTY_VEC);
    if (probe !== -EFAULT) {
      check(probe, 'mincore');
      return EMPTY_VEC.slice();
    }
    let vec: Uint8Array | null = null;
    try {
      vec = new Uint8Array(Math.ceil(l / PAGE_SIZE));
    } catch {
      // Too large a vector for this host: ENOMEM, as a failed allocation in the kernel.
    }
    check(vec === null ? -ENOMEM : this.sysMincore(a, l, vec), 'mincore');
    return vec as Uint8Array;
  }
  touch(addr: number, len: number, write: boolean): void {
    const a = ulong(addr);
    const l = ulong(len);
    check(Number.isNaN(a + l) ? -EINVAL : this.sysTouch(a, l, write), 'touch');
  }

  // ---- views ---------------------------------------------------------------------------------

  /** The VMAs in address order, as /proc/PID/maps and smaps show them (`resident`: with Rss). */
  vmas(resident = false): VmaView[] {
    this.mmuOffline();
    mmapReadLock(this.locks);
    try {
      return vmaViews(this, resident);
    } finally {
      mmapReadUnlock(this.locks);
    }
  }
}
