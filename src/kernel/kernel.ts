/**
 * Kernel: the system-wide tables every process shares (what Linux keeps in globals): physical
 * memory (PhysMem: frames and page descriptors), the file table (one record per file identity), the
 * open file descriptions (struct file: what descriptors name), the anonymous identities (anon_vma
 * records, shared by a parent and its children after fork), and the pid counter. Created once, on the main thread or
 * any CPU; `describe()` / `Kernel.attach(desc)` gives another CPU the same tables.
 *
 *   words (Int32): NEXT_PID (atomic) | PROCESSES (atomic: live Process records)
 */
import { check } from '../errno.js';
import { FileTable, type FileTableDescriptor } from '../fs/file-table.js';
import { O_RDONLY, OpenFileTable } from '../fs/open-file.js';
import { PhysMem, type PhysMemDescriptor } from '../mem/frames.js';
import { AnonVmaTable } from '../mm/anon-vma.js';
import type { ArenaDescriptor, FailureInjector } from '../shm/arena.js';
import { openHost } from './open.js';

const NEXT_PID = 0;
const PROCESSES = 1;
const FIRST_PID = 1000;

export interface KernelDescriptor {
  words: SharedArrayBuffer;
  mem: PhysMemDescriptor;
  files: FileTableDescriptor;
  opens: ArenaDescriptor;
  anonVmas: ArenaDescriptor;
}

/** Kernel.openHost's open(2) arguments. */
export interface OpenHostOptions {
  /** open(2) flags (O_RDONLY when left out): O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, ... */
  flags?: number;
  /** Permission bits of a file O_CREAT makes (0o666 when left out; the host's umask applies). */
  mode?: number;
}

export interface KernelOptions {
  /** Fails the k-th allocation of any shared table (tests of ENOMEM paths). */
  injector?: FailureInjector;
  /** Physical memory in 4 KiB frames (default: PhysMem's, 256 MiB reserved, committed as used). */
  frames?: number;
  /** Poison freed frames and check the poison on reuse (default: on in debug mode; PhysMem's). */
  poison?: boolean;
}

/** Live shared records, for leak checks: every count is 0 once every process exited. */
export interface KernelCounts {
  processes: number;
  /** Frames in use, the zero page aside (anonymous, file, page-table and other pages). */
  frames: number;
  files: number;
  /** Open file descriptions (struct file). */
  openFiles: number;
  anonVmas: number;
  /** Page-index nodes of every file's page cache (FileTable.cacheNodes). */
  cacheNodes: number;
  /** Reverse-map entries: file-backed VMA records linked on their file's i_mmap. */
  iMmapEntries: number;
}

export class Kernel {
  readonly mem: PhysMem;
  readonly files: FileTable;
  /** Open file descriptions, shared by every process's descriptor table. */
  readonly opens: OpenFileTable;
  readonly anonVmas: AnonVmaTable;
  private readonly words: Int32Array;

  static create(options: KernelOptions = {}): Kernel {
    const words = new SharedArrayBuffer(16);
    new Int32Array(words)[NEXT_PID] = FIRST_PID;
    const mem = PhysMem.create({
      frames: options.frames,
      injector: options.injector,
      poison: options.poison,
    });
    const files = FileTable.create({ injector: options.injector, mem });
    return new Kernel(
      words,
      mem,
      files,
      OpenFileTable.create(files, { injector: options.injector }),
      AnonVmaTable.create(options.injector),
    );
  }

  static attach(desc: KernelDescriptor): Kernel {
    const mem = PhysMem.attach(desc.mem);
    const files = FileTable.attach(desc.files, mem);
    return new Kernel(
      desc.words,
      mem,
      files,
      OpenFileTable.attach(desc.opens, files),
      AnonVmaTable.attach(desc.anonVmas),
    );
  }

  private constructor(
    words: SharedArrayBuffer,
    mem: PhysMem,
    files: FileTable,
    opens: OpenFileTable,
    anonVmas: AnonVmaTable,
  ) {
    this.words = new Int32Array(words);
    this.mem = mem;
    this.files = files;
    this.opens = opens;
    this.anonVmas = anonVmas;
  }

  describe(): KernelDescriptor {
    return {
      words: this.words.buffer as SharedArrayBuffer,
      mem: this.mem.describe(),
      files: this.files.describe(),
      opens: this.opens.describe(),
      anonVmas: this.anonVmas.describe(),
    };
  }

  /**
   * filp_open of a host file (src/kernel/open.ts): an open file description of the host file
   * `path`'s one file record (found by device and inode number, or made with its size from fstat),
   * holding the caller's reference (put it with `kernel.opens.put`, or install it at a
   * descriptor). The host descriptor is closed when the file's last reference goes. Throws VmError
   * (EFAULT, EINVAL, ENOENT, EACCES, EEXIST, EISDIR, ENOTDIR, ELOOP, ENAMETOOLONG, EOPNOTSUPP,
   * ENOMEM, ...) with nothing changed. Preconditions: no lock held, and no Mmu of this CPU online
   * (the open may wait for a dying record of the file, and O_TRUNC truncates its cache).
   */
  openHost(path: string, options: OpenHostOptions = {}): number {
    const r = openHost(this.files, this.opens, path, options.flags ?? O_RDONLY, options.mode ?? 0o666);
    return check(r, `open ${path}`);
  }

  /** alloc_pid: a new pid; the process count goes up until `releasePid`. */
  allocPid(): number {
    Atomics.add(this.words, PROCESSES, 1);
    return Atomics.add(this.words, NEXT_PID, 1);
  }

  releasePid(): void {
    Atomics.sub(this.words, PROCESSES, 1);
  }

  counts(): KernelCounts {
    return {
      processes: Atomics.load(this.words, PROCESSES),
      frames: framesInUse(this.mem),
      files: this.files.live,
      openFiles: this.opens.live,
      anonVmas: this.anonVmas.live,
      cacheNodes: this.files.cacheNodes.live,
      iMmapEntries: this.files.iMmapEntries.live,
    };
  }
}

/** Frames in use but for the zero page (frames cached in CPU lists count as free). */
function framesInUse(mem: PhysMem): number {
  const s = mem.stats();
  return s.anon + s.file + s.pagetable + s.other;
}
