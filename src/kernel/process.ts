/**
 * Process: the unit users create (struct task_struct's share of it: a pid, an address space and a
 * descriptor table), in shared memory, attachable on any CPU by its descriptor, as Linux's
 * task/mm split suggests: several CPUs may run in one process at once; each gets its own facade
 * (its own syscall transaction) over the one shared address space.
 *
 *   ProcessDescriptor = { pid, kernel: KernelDescriptor, mm: AddressSpaceDescriptor, fds, words }
 *   words (Int32): STATE (RUNNING | EXITED, atomic)
 *
 * Exit unmaps everything (the VMAs put their files and anon_vmas), closes every descriptor, and
 * frees the VMA tree's nodes and the page tables: after every process exited, the kernel's
 * counts are back to zero. Preconditions of exit: no other CPU still runs in the process.
 */
import { check, EINVAL, ESRCH, VmError } from '../errno.js';
import { FdTable, type FdTableDescriptor } from '../fs/fd-table.js';
import type { FileSpec } from '../fs/file-table.js';
import { O_CLOEXEC, O_RDONLY } from '../fs/open-file.js';
import { MapleTree } from '../maple/tree.js';
import { AddressSpace, type AddressSpaceDescriptor } from '../mm/address-space.js';
import type { MmConfig } from '../mm/config.js';
import { mapsText, smapsText, statusText } from '../mm/proc-maps.js';
import type { SyscallLog } from '../mm/syscall-log.js';
import { cint, ulong } from '../mm/syscalls/args.js';
import { mmapWriteLock, mmapWriteUnlock } from '../mm/vma-lock.js';
import {
  loff,
  sysFallocate,
  sysFstatSize,
  sysFsync,
  sysFtruncate,
  sysLseek,
  sysPread,
  sysPwrite,
  sysRead,
  sysWrite,
} from './file-syscalls.js';
import { Kernel, type KernelDescriptor } from './kernel.js';
import { MFD_CLOEXEC, memfdCreate, memfdCreateCheck, openHost, openHostCheck } from './open.js';

const STATE = 0;
const RUNNING = 1;
const EXITED = 2;

export interface ProcessOptions {
  /** Address-space knobs (Linux's defaults otherwise; see src/mm/config.ts). */
  config?: Partial<MmConfig>;
  /** Free VMA records after an RCU grace period (default; needed once other CPUs look VMAs up). */
  rcuFree?: boolean;
  /** Record the address space's VMA-changing syscalls in mmap_lock order. */
  log?: SyscallLog;
}

export interface ProcessDescriptor {
  pid: number;
  kernel: KernelDescriptor;
  mm: AddressSpaceDescriptor;
  fds: FdTableDescriptor;
  words: SharedArrayBuffer;
}

export class Process {
  readonly pid: number;
  readonly kernel: Kernel;
  /** The address space as this CPU sees it: syscalls (mmap, munmap, ...) and views. */
  readonly mm: AddressSpace;
  readonly fds: FdTable;
  private readonly words: Int32Array;

  /**
   * A new process with an empty address space and no descriptors. The Kernel's FailureInjector
   * (shared through its PhysMem) also fails the process's page-table and VMA-record allocations.
   */
  static create(kernel: Kernel, options: ProcessOptions = {}): Process {
    const fds = FdTable.create(kernel.files, kernel.opens);
    const mm = new AddressSpace({
      index: MapleTree.create({ externalLock: 'mmap_lock' }),
      fds,
      anonVmas: kernel.anonVmas,
      mem: kernel.mem,
      injector: kernel.mem.injector ?? undefined,
      config: options.config,
      rcuFree: options.rcuFree,
      log: options.log,
    });
    const words = new Int32Array(new SharedArrayBuffer(8));
    words[STATE] = RUNNING;
    return new Process(kernel.allocPid(), kernel, mm, fds, words);
  }

  /** The same process on this CPU. */
  static attach(desc: ProcessDescriptor): Process {
    const kernel = Kernel.attach(desc.kernel);
    const mm = AddressSpace.attach(desc.mm);
    return new Process(desc.pid, kernel, mm, mm.fds, new Int32Array(desc.words));
  }

  private constructor(pid: number, kernel: Kernel, mm: AddressSpace, fds: FdTable, words: Int32Array) {
    this.pid = pid;
    this.kernel = kernel;
    this.mm = mm;
    this.fds = fds;
    this.words = words;
  }

  describe(): ProcessDescriptor {
    return {
      pid: this.pid,
      kernel: this.kernel.describe(),
      mm: this.mm.describe(),
      fds: this.fds.describe(),
      words: this.words.buffer as SharedArrayBuffer,
    };
  }

  get exited(): boolean {
    return Atomics.load(this.words, STATE) === EXITED;
  }

  /**
   * open(2) of a host file: `open(path, flags, mode)` opens `path` with node:fs (Kernel.openHost;
   * O_CLOEXEC sets the descriptor's FD_CLOEXEC) and returns the lowest free descriptor.
   * `open(spec)` registers a synthetic file instead (its size, access mode and name, as traces
   * describe files; its bytes are memory) and opens it O_RDWR when writable, else O_RDONLY.
   * Throws VmError (EFAULT, EINVAL, ENOENT, EACCES, EEXIST, EISDIR, ENOMEM, EMFILE, ...) with
   * nothing changed.
   */
  open(spec: FileSpec): number;
  open(path: string, flags?: number, mode?: number): number;
  open(what: FileSpec | string, flags: number = O_RDONLY, mode = 0o666): number {
    this.assertRunning();
    // A FileSpec is an object with a size; anything else is a path (not a string: EFAULT).
    if (typeof what === 'object' && what !== null && 'size' in what) return this.openSpec(what);
    check(openHostCheck(what, flags, mode), `open ${what}`);
    const fd = check(this.fds.reserve(), 'open');
    this.mm.mmuOffline(); // the open may wait (a dying record of the file, O_TRUNC's locks)
    const of = openHost(this.kernel.files, this.kernel.opens, what, flags, mode);
    return this.installOpened(fd, of, (flags & O_CLOEXEC) !== 0, `open ${what}`);
  }

  private openSpec(spec: FileSpec): number {
    const id = this.kernel.files.add(spec);
    try {
      return check(this.fds.install(id), 'open');
    } finally {
      this.kernel.files.put(id);
    }
  }

  /**
   * Installs a new description (`of`, or -errno) at reserved descriptor `fd` and drops the
   * opener's reference; a failed open gives the descriptor back and throws.
   */
  private installOpened(fd: number, of: number, cloexec: boolean, what: string): number {
    if (of < 0) {
      this.fds.unreserve(fd);
      check(of, what);
    }
    this.fds.installReserved(fd, of, cloexec);
    this.kernel.opens.put(of);
    return fd;
  }

  /**
   * memfd_create(2): a descriptor of a new empty memory file named memfd:NAME, open O_RDWR
   * (MFD_CLOEXEC sets FD_CLOEXEC). Throws VmError (EFAULT, EINVAL, ENOMEM, EMFILE).
   */
  memfdCreate(name: string, flags = 0): number {
    this.assertRunning();
    check(memfdCreateCheck(name, flags), 'memfd_create');
    const fd = check(this.fds.reserve(), 'memfd_create');
    const of = memfdCreate(this.kernel.files, this.kernel.opens, name, flags);
    return this.installOpened(fd, of, (flags & MFD_CLOEXEC) !== 0, 'memfd_create');
  }

  /** dup(2): the lowest free descriptor sharing `fd`'s open file description. Throws EBADF, EMFILE. */
  dup(fd: number): number {
    this.assertRunning();
    return check(this.fds.dup(fd), 'dup');
  }

  /** close(2). Throws VmError(EBADF) for a descriptor that is not open. */
  close(fd: number): void {
    this.assertRunning();
    check(this.fds.close(fd), 'close');
  }

  /**
   * fork(2)'s memory and descriptor half: a child process sharing the Kernel, with a copy of this
   * address space (dup_mmap, src/mm/fork.ts: VMAs but VM_DONTCOPY ones, locks not inherited,
   * private anonymous pages shared copy-on-write, possibly pinned pages copied) and of the
   * descriptor table (each descriptor shares the parent's open file description: one file position
   * for both). Throws VmError(ENOMEM) with nothing
   * allocated (the child torn down), VmError(ESRCH) once this process exited.
   */
  fork(): Process {
    this.assertRunning();
    const child = Process.create(this.kernel, { config: this.mm.config, rcuFree: this.mm.rcuFree });
    let r: number;
    try {
      r = this.mm.dupMmap(child.mm);
    } catch (error) {
      child.exit();
      throw error;
    }
    if (r < 0) {
      child.exit();
      check(r, 'fork');
    }
    child.fds.dupFrom(this.fds);
    return child;
  }

  // ---- file syscalls (file-syscalls.ts): the raw calls return -errno, these throw VmError ------

  /** read(2): the bytes read into user memory at `addr` (0 at the end of the file). */
  read(fd: number, addr: number, len: number): number {
    this.assertRunning();
    const d = cint(fd);
    const a = ulong(addr);
    const l = ulong(len);
    return check(Number.isNaN(d + a + l) ? -EINVAL : sysRead(this.mm, d, a, l), 'read');
  }

  /** write(2): the bytes written from user memory at `addr`. */
  write(fd: number, addr: number, len: number): number {
    this.assertRunning();
    const d = cint(fd);
    const a = ulong(addr);
    const l = ulong(len);
    return check(Number.isNaN(d + a + l) ? -EINVAL : sysWrite(this.mm, d, a, l), 'write');
  }

  /** pread64(2): read at byte `offset`, the file position unchanged. */
  pread(fd: number, addr: number, len: number, offset: number): number {
    this.assertRunning();
    const d = cint(fd);
    const a = ulong(addr);
    const l = ulong(len);
    const o = loff(offset);
    return check(Number.isNaN(d + a + l + o) ? -EINVAL : sysPread(this.mm, d, a, l, o), 'pread');
  }

  /** pwrite64(2): write at byte `offset`, the file position unchanged. */
  pwrite(fd: number, addr: number, len: number, offset: number): number {
    this.assertRunning();
    const d = cint(fd);
    const a = ulong(addr);
    const l = ulong(len);
    const o = loff(offset);
    return check(Number.isNaN(d + a + l + o) ? -EINVAL : sysPwrite(this.mm, d, a, l, o), 'pwrite');
  }

  /** lseek(2): the new file position (whence SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE). */
  lseek(fd: number, offset: number, whence: number): number {
    this.assertRunning();
    const d = cint(fd);
    const o = loff(offset);
    const w = cint(whence);
    return check(Number.isNaN(d + o + w) ? -EINVAL : sysLseek(this.mm, d, o, w), 'lseek');
  }

  /** ftruncate(2). */
  ftruncate(fd: number, len: number): void {
    this.assertRunning();
    const d = cint(fd);
    const l = loff(len);
    check(Number.isNaN(d + l) ? -EINVAL : sysFtruncate(this.mm, d, l), 'ftruncate');
  }

  /** fallocate(2): FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE only (others: EOPNOTSUPP). */
  fallocate(fd: number, mode: number, offset: number, len: number): void {
    this.assertRunning();
    const d = cint(fd);
    const m = cint(mode);
    const o = loff(offset);
    const l = loff(len);
    const bad = Number.isNaN(d + m + o + l);
    check(bad ? -EINVAL : sysFallocate(this.mm, d, m, o, l), 'fallocate');
  }

  /** fsync(2): dirty pages written to the backing, then the backing synced. */
  fsync(fd: number): void {
    this.assertRunning();
    const d = cint(fd);
    check(Number.isNaN(d) ? -EINVAL : sysFsync(this.mm, d, false), 'fsync');
  }

  /** fdatasync(2). */
  fdatasync(fd: number): void {
    this.assertRunning();
    const d = cint(fd);
    check(Number.isNaN(d) ? -EINVAL : sysFsync(this.mm, d, true), 'fdatasync');
  }

  /** fstat(2)'s st_size: the size of the file open at `fd`. */
  fstat(fd: number): { size: number } {
    this.assertRunning();
    const d = cint(fd);
    return { size: check(Number.isNaN(d) ? -EINVAL : sysFstatSize(this.mm, d), 'fstat') };
  }

  /** /proc/PID/maps. */
  maps(): string {
    return mapsText(this.mm);
  }

  /** A short /proc/PID/smaps (Size, Rss, Anonymous and VmFlags per VMA). */
  smaps(): string {
    return smapsText(this.mm);
  }

  /** The memory lines of /proc/PID/status (VmSize, VmLck, VmRSS, RssAnon, RssFile, RssShmem). */
  status(): string {
    return statusText(this.mm);
  }

  /** This CPU stops running in the process (see AddressSpace.detach). */
  detach(): void {
    this.mm.detach();
  }

  /**
   * exit: tears the process down (see the file comment). Only one CPU exits a process; the
   * others must have stopped running in it.
   */
  exit(): void {
    if (Atomics.compareExchange(this.words, STATE, RUNNING, EXITED) !== RUNNING) {
      throw new VmError(ESRCH, `process ${this.pid} has exited already`);
    }
    this.mm.destroy();
    this.fds.closeAll();
    const tree = this.mm.index;
    if (!(tree instanceof MapleTree)) throw new VmError(EINVAL, 'process: the VMA index is not a maple tree');
    mmapWriteLock(this.mm.locks);
    try {
      tree.destroy();
      this.mm.pt.destroy();
    } finally {
      mmapWriteUnlock(this.mm.locks);
    }
    this.kernel.releasePid();
  }

  private assertRunning(): void {
    if (this.exited) throw new VmError(ESRCH, `process ${this.pid} has exited`);
  }
}
