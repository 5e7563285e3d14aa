/**
 * A process's descriptor table (struct files_struct): descriptor numbers to open file descriptions
 * (src/fs/open-file.ts), in shared memory, so every CPU running in the process resolves the same
 * descriptors. Each installed descriptor holds one reference to its description; dup and fork make
 * descriptors that share one description (its file position and flags).
 *
 *   Int32 words: FILE_LOCK (spinlock, 2 words) | COUNT | (pad) | FD[0] ... FD[MAX_FDS - 1] |
 *                CLOEXEC bitmap (MAX_FDS bits)
 *   FD[n]: 0 free | RESERVED (an open in progress holds the number) | an open file description id
 *
 * Guards: every FD[n], CLOEXEC bit and COUNT are written under FILE_LOCK (Linux's files->file_lock);
 * `fget` takes the lock too, so a descriptor closed on one CPU is never resolved after its
 * description was put. Nothing is taken under FILE_LOCK (a leaf): references are put after it is
 * released, since the last put of a description may close a host file.
 */
import { EBADF, EMFILE } from '../errno.js';
import type { ArenaDescriptor } from '../shm/arena.js';
import { lockClass } from '../sync/lockclass.js';
import { SpinLock } from '../sync/spinlock.js';
import type { FileTable } from './file-table.js';
import { O_RDONLY, O_RDWR, OpenFileTable } from './open-file.js';

/** RLIMIT_NOFILE's usual soft limit. */
export const MAX_FDS = 1024;
const LOCK = 0;
const COUNT = 2;
const FD0 = 4;
const CLOEXEC0 = FD0 + MAX_FDS;
/** FD[n] of a number get_unused_fd gave out whose description is not installed yet. */
const RESERVED = -1;
const WORDS = CLOEXEC0 + MAX_FDS / 32;

const fileLockClass = lockClass('file_lock');

export interface FdTableDescriptor {
  buffer: SharedArrayBuffer;
  /** The open file descriptions the descriptors name (the kernel's arena). */
  opens: ArenaDescriptor;
}

export class FdTable {
  readonly opens: OpenFileTable;
  private readonly words: Int32Array;
  private readonly lock: SpinLock;
  /** The FMODE_WRITE of the description the last successful fget on this CPU's view found. */
  fgetWritable = false;

  /** An empty table naming descriptions of `opens` (default: a private arena over `files`). */
  static create(files: FileTable, opens?: OpenFileTable): FdTable {
    const o = opens ?? OpenFileTable.create(files);
    if (o.files.arena.describe().records !== files.arena.describe().records)
      throw new Error('FdTable: the descriptions name files of another file table');
    return new FdTable(new SharedArrayBuffer(WORDS * 4), o);
  }

  static attach(desc: FdTableDescriptor, files: FileTable): FdTable {
    return new FdTable(desc.buffer, OpenFileTable.attach(desc.opens, files));
  }

  private constructor(buffer: SharedArrayBuffer, opens: OpenFileTable) {
    this.words = new Int32Array(buffer);
    this.lock = SpinLock.at(this.words, LOCK, fileLockClass);
    this.opens = opens;
  }

  describe(): FdTableDescriptor {
    return { buffer: this.words.buffer as SharedArrayBuffer, opens: this.opens.describe() };
  }

  /** The file table behind the descriptions. */
  get files(): FileTable {
    return this.opens.files;
  }

  /**
   * Opens `file` (a new description: O_RDWR when the file is writable, else O_RDONLY) at the lowest
   * free descriptor: the descriptor, -EMFILE when the table is full, -ENOMEM when no description
   * can be allocated. Preconditions: the caller holds a reference to `file`.
   */
  install(file: number): number {
    const of = this.opens.open(file, this.files.writable(file) ? O_RDWR : O_RDONLY);
    if (of < 0) return of;
    const fd = this.installOpen(of, false);
    this.opens.put(of);
    return fd;
  }

  /**
   * fd_install of description `of` at the lowest free descriptor (FD_CLOEXEC set when `cloexec`):
   * the descriptor, taking a reference to `of`, or -EMFILE when the table is full.
   */
  installOpen(of: number, cloexec: boolean): number {
    this.lock.lock();
    const fd = this.installLocked(of, cloexec);
    this.lock.unlock();
    return fd;
  }

  /** Preconditions: FILE_LOCK held; a reference to `of`. */
  private installLocked(of: number, cloexec: boolean): number {
    const fd = this.freeFdLocked();
    if (fd >= 0) this.fillLocked(fd, of, cloexec);
    return fd;
  }

  /** The lowest free descriptor, or -EMFILE. Preconditions: FILE_LOCK held. */
  private freeFdLocked(): number {
    for (let fd = 0; fd < MAX_FDS; fd++) if (this.words[FD0 + fd] === 0) return fd;
    return -EMFILE;
  }

  /** Preconditions: FILE_LOCK held; slot `fd` free or reserved; a reference to `of`. */
  private fillLocked(fd: number, of: number, cloexec: boolean): void {
    this.opens.get(of);
    this.words[FD0 + fd] = of;
    this.setCloexecLocked(fd, cloexec);
    this.words[COUNT]++;
  }

  /**
   * get_unused_fd: reserves the lowest free descriptor for an open in progress (so EMFILE comes
   * before the file is touched): the descriptor, or -EMFILE. Finish with `installReserved` or
   * `unreserve`; until then the number resolves to nothing (EBADF) and is not handed out again.
   */
  reserve(): number {
    this.lock.lock();
    const fd = this.freeFdLocked();
    if (fd >= 0) this.words[FD0 + fd] = RESERVED;
    this.lock.unlock();
    return fd;
  }

  /** fd_install at a reserved descriptor: takes a reference to `of`. */
  installReserved(fd: number, of: number, cloexec: boolean): void {
    this.lock.lock();
    const slot = this.words[FD0 + fd];
    if (slot === RESERVED) this.fillLocked(fd, of, cloexec);
    this.lock.unlock();
    if (slot !== RESERVED) throw new Error(`FdTable.installReserved: descriptor ${fd} is not reserved`);
  }

  /** put_unused_fd: gives a reserved descriptor back. */
  unreserve(fd: number): void {
    this.lock.lock();
    const slot = this.words[FD0 + fd];
    if (slot === RESERVED) this.words[FD0 + fd] = 0;
    this.lock.unlock();
    if (slot !== RESERVED) throw new Error(`FdTable.unreserve: descriptor ${fd} is not reserved`);
  }

  /** Preconditions: FILE_LOCK held. */
  private setCloexecLocked(fd: number, on: boolean): void {
    const bit = 1 << (fd & 31);
    const at = CLOEXEC0 + (fd >> 5);
    this.words[at] = on ? this.words[at] | bit : this.words[at] & ~bit;
  }

  /**
   * fget for mmap: the file behind `fd` with a file reference the caller must put, or 0 (EBADF).
   * The description's FMODE_WRITE is left in `fgetWritable` (read under file_lock: the table's
   * reference keeps the description alive there, so no reference to it is taken and put).
   */
  fget(fd: number): number {
    if (!validFd(fd)) return 0;
    this.lock.lock();
    const of = this.words[FD0 + fd];
    const file = of > 0 ? this.opens.file(of) : 0;
    if (file !== 0) {
      this.files.get(file);
      this.fgetWritable = this.opens.writable(of);
    }
    this.lock.unlock();
    return file;
  }

  /** fdget: the description behind `fd` with a reference the caller must put, or 0 (EBADF). */
  fgetOpen(fd: number): number {
    if (!validFd(fd)) return 0;
    this.lock.lock();
    const of = Math.max(this.words[FD0 + fd], 0);
    if (of !== 0) this.opens.get(of);
    this.lock.unlock();
    return of;
  }

  /** close: 0 or -EBADF. */
  close(fd: number): number {
    if (!validFd(fd)) return -EBADF;
    this.lock.lock();
    const of = this.words[FD0 + fd];
    if (of > 0) {
      this.words[FD0 + fd] = 0;
      this.setCloexecLocked(fd, false);
      this.words[COUNT]--;
    }
    this.lock.unlock();
    if (of <= 0) return -EBADF;
    this.opens.put(of);
    return 0;
  }

  /**
   * dup: the lowest free descriptor naming `fd`'s description (FD_CLOEXEC clear), or -EBADF, or
   * -EMFILE (nothing changed).
   */
  dup(fd: number): number {
    if (!validFd(fd)) return -EBADF;
    this.lock.lock();
    const of = this.words[FD0 + fd];
    const r = of <= 0 ? -EBADF : this.installLocked(of, false);
    this.lock.unlock();
    return r;
  }

  /** FD_CLOEXEC of an open descriptor, or -EBADF. */
  cloexec(fd: number): number {
    if (!validFd(fd)) return -EBADF;
    this.lock.lock();
    const r = this.words[FD0 + fd] <= 0 ? -EBADF : (this.words[CLOEXEC0 + (fd >> 5)] >>> (fd & 31)) & 1;
    this.lock.unlock();
    return r;
  }

  /**
   * dup_fd (fork): makes this (new, empty) table a copy of `src` whose descriptors share `src`'s
   * descriptions (a reference each) and keep their FD_CLOEXEC. Only `src`'s lock is taken: nobody
   * else sees this table yet (fillLocked's precondition holds for it).
   */
  dupFrom(src: FdTable): void {
    if (this.count !== 0) throw new Error('FdTable.dupFrom: the table is not empty');
    if (src.opens.arena.describe().records !== this.opens.arena.describe().records)
      throw new Error('FdTable.dupFrom: the tables name descriptions of different arenas');
    src.lock.lock();
    try {
      for (let fd = 0; fd < MAX_FDS; fd++) {
        const of = src.words[FD0 + fd];
        // A reserved number (an open in progress in the parent) stays free in the child.
        if (of > 0) this.fillLocked(fd, of, ((src.words[CLOEXEC0 + (fd >> 5)] >>> (fd & 31)) & 1) !== 0);
      }
    } finally {
      src.lock.unlock();
    }
  }

  /** Closes every descriptor (process exit). */
  closeAll(): void {
    for (let fd = 0; fd < MAX_FDS; fd++) if (Atomics.load(this.words, FD0 + fd) > 0) this.close(fd);
  }

  /** Open descriptors. */
  get count(): number {
    return Atomics.load(this.words, COUNT);
  }
}

function validFd(fd: number): boolean {
  return Number.isInteger(fd) && fd >= 0 && fd < MAX_FDS;
}
