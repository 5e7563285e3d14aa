/**
 * The public API of vmspace: what `import { ... } from 'vmspace'` offers (docs/api.md describes
 * each entry point). Every name is listed explicitly; modules reached by a deeper path
 * (`vmspace/dist/src/...`) are internal and change without notice.
 *
 * Groups follow the layers of ARCHITECTURE.md, lowest first; a new group (e.g. a process layer
 * above the address space) goes where its layer sits.
 */
// biome-ignore-all assist/source/organizeImports: the exports are grouped by layer, lowest first
import { MapleTree } from './maple/tree.js';
import { AddressSpace, type AddressSpaceOptions } from './mm/address-space.js';

// ---- errno: Linux error numbers and the error every failing call throws (src/errno.ts) -------
export {
  EACCES,
  EAGAIN,
  EBADF,
  EBUSY,
  EDEADLK,
  EDQUOT,
  EEXIST,
  EFAULT,
  EFBIG,
  EINTR,
  EINVAL,
  EIO,
  EISDIR,
  ELOOP,
  EMFILE,
  ENAMETOOLONG,
  ENFILE,
  ENODEV,
  ENOENT,
  ENOMEM,
  ENOSPC,
  ENOTDIR,
  ENXIO,
  EOPNOTSUPP,
  EOVERFLOW,
  EPERM,
  EROFS,
  ESRCH,
  ETIMEDOUT,
  ETXTBSY,
  errnoName,
  errnoValue,
  VmError,
} from './errno.js';

// ---- cpu: which CPU this thread is (src/cpu) ----------------------------------------------------
export { currentCpu, MAX_WORKER_CPUS } from './cpu/current.js';

// ---- sync: lock statistics per lock class, like /proc/lock_stat (src/sync/lockstat.ts) ---------
export {
  formatLockStat,
  HOLD_SAMPLE_EVERY,
  type LockStatColumn,
  type LockStatRow,
  lockStatOn,
  lockStatRows,
  resetLockStat,
  setLockStat,
} from './sync/lockstat.js';

// ---- lockdep: the lock validator, whose counts join the statistics table (src/lockdep) ---------
export {
  disableLockdep,
  enableLockdep,
  formatLockStatWithValidator,
  type LockdepCheck,
  LockdepError,
  type LockdepMode,
  type LockdepReport,
  lockdepCounts,
  lockdepReports,
  lockdepReset,
  setLockdepMode,
} from './lockdep/index.js';

// ---- maple: the RCU-safe B-tree of ranges that indexes the VMAs (src/maple) --------------------
export type { RangeIndex, RangeOut } from './maple/api.js';
export { MapleTree, type MapleTreeOptions } from './maple/tree.js';

// ---- mem: physical memory, page tables, the TLB and the MMU of each CPU (src/mem) -------------
export { PhysMem, type PhysMemDescriptor, type PhysMemSpec } from './mem/frames.js';
export { type MissHandler, Mmu } from './mem/mmu.js';
export { PageTables } from './mem/pgtable.js';
export { FAULT_SEGV_ACCERR, FAULT_SEGV_MAPERR, FAULT_SIGBUS, MemoryFault, TlbDomain } from './mem/tlb.js';

// ---- fs: the files an address space maps (src/fs) ----------------------------------------------
export { type FdTable, MAX_FDS } from './fs/fd-table.js';
export { type FileSpec, FileTable, NAME_MAX_BYTES } from './fs/file-table.js';
export {
  getInjection,
  INJECT_FAULT,
  INJECT_MKWRITE,
  INJECT_READ_PAGE,
  INJECT_SYNC,
  INJECT_TRUNCATE,
  INJECT_WRITE_PAGE,
  type Injection,
  MAX_INJECT_LATENCY_US,
  setInjection,
} from './fs/inject.js';
export {
  O_ACCMODE,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECT,
  O_DIRECTORY,
  O_DSYNC,
  O_EXCL,
  O_LARGEFILE,
  O_NOATIME,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_SYNC,
  O_TMPFILE,
  O_TRUNC,
  O_WRONLY,
  type OpenFileTable,
} from './fs/open-file.js';

// ---- mm: the address space, its views and the constants callers pass (src/mm) ----------------
export { AddressSpace, type AddressSpaceDescriptor, type AddressSpaceOptions } from './mm/address-space.js';
export {
  FOLL_LONGTERM,
  FOLL_PIN,
  FOLL_WRITE,
  type GupOptions,
  putUserPages,
  readPage,
  unpinUserPages,
  writePage,
} from './mm/gup.js';
export { Pipe } from './mm/pipe.js';
export { checkMmLocked } from './mm/check.js';
export { SyscallLog } from './mm/syscall-log.js';
export { defaultConfig, type MmConfig } from './mm/config.js';
export { FAULT_DESIGNS, type FaultDesign } from './mm/fault-design.js';
export type { MmVmstat } from './mm/vmstat.js';
export { mapsLine, mapsText, smapsText, statusText, type VmaView } from './mm/proc-maps.js';
export {
  MADV_COLD,
  MADV_COLLAPSE,
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_DONTNEED_LOCKED,
  MADV_FREE,
  MADV_GUARD_INSTALL,
  MADV_GUARD_REMOVE,
  MADV_HUGEPAGE,
  MADV_HWPOISON,
  MADV_KEEPONFORK,
  MADV_MERGEABLE,
  MADV_NOHUGEPAGE,
  MADV_NORMAL,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MADV_REMOVE,
  MADV_SEQUENTIAL,
  MADV_SOFT_OFFLINE,
  MADV_UNMERGEABLE,
  MADV_WILLNEED,
  MADV_WIPEONFORK,
  MAP_32BIT,
  MAP_ANONYMOUS,
  MAP_DENYWRITE,
  MAP_DROPPABLE,
  MAP_EXECUTABLE,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NONBLOCK,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_STACK,
  MAP_SYNC,
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MLOCK_ONFAULT,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  MS_ASYNC,
  MS_INVALIDATE,
  MS_SYNC,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_NONE,
  PROT_READ,
  PROT_SEM,
  PROT_WRITE,
} from './mm/vm-flags.js';

/** The lock an address space holds for every change of its VMA tree. */
const MMAP_LOCK = 'mmap_lock';

/**
 * A maple tree set up as an address space's VMA index: its writers are serialised by the
 * address space's `mmap_lock`, so the tree takes no lock of its own.
 */
export function createVmaTree(name = 'vmas'): MapleTree {
  return MapleTree.create({ name, externalLock: MMAP_LOCK });
}

/** `new AddressSpace(...)`'s options without the index, which `createAddressSpace` makes. */
export interface CreateAddressSpaceOptions
  extends Omit<AddressSpaceOptions, 'index' | 'shared' | 'injector'> {
  /** Name of the VMA tree (shows in lock and arena statistics); default `vmas`. */
  name?: string;
}

/** A fresh, empty address space over a new maple tree of VMAs (Linux 6.18 x86_64 defaults). */
export function createAddressSpace(options: CreateAddressSpaceOptions = {}): AddressSpace {
  const { name, ...rest } = options;
  return new AddressSpace({ ...rest, index: createVmaTree(name) });
}

// ---- mm/trace: the Linux trace reader and replayer (src/mm/trace) -----------------------------
export {
  parseTrace,
  readTrace,
  type Trace,
  type TraceFile,
  type TraceHeader,
  type TraceOp,
  type TraceVma,
} from './mm/trace/format.js';
export { type ReplayOptions, type ReplayResult, replayTrace, seedAddressSpace } from './mm/trace/replay.js';

// ---- kernel: processes and the tables they share (src/kernel) ----------------------------------
export { Kernel, type KernelCounts, type KernelDescriptor, type OpenHostOptions } from './kernel/kernel.js';
export {
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  MFD_HUGETLB,
  MFD_NAME_MAX,
  MFD_NOEXEC_SEAL,
  PATH_MAX,
} from './kernel/open.js';
export {
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_INSERT_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_NO_HIDE_STALE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_UNSHARE_RANGE,
  FALLOC_FL_WRITE_ZEROES,
  FALLOC_FL_ZERO_RANGE,
  MAX_FILE_BYTES,
  MAX_RW_COUNT,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
  SEEK_SET,
  sysFallocate,
  sysFstatSize,
  sysFsync,
  sysFtruncate,
  sysLseek,
  sysPread,
  sysPwrite,
  sysRead,
  sysWrite,
} from './kernel/file-syscalls.js';
export { Process, type ProcessDescriptor, type ProcessOptions } from './kernel/process.js';

// ---- machine: worker threads acting as CPUs with stable ids (src/machine) ----------------------
export { CpuError, DEFAULT_WATCHDOG_MS, Machine, type MachineOptions } from './machine/machine.js';
