/**
 * A process's descriptor table (struct files_struct): descriptor numbers to file ids, in shared
 * memory, so every CPU running in the process resolves the same descriptors. Each installed
 * descriptor holds one reference to its file (FileTable.get/put).
 *
 *   Int32 words: FILE_LOCK (spinlock, 2 words) | COUNT | (pad) | FD[0] FD[1] ... FD[MAX_FDS - 1]
 *
 * Guards: every FD[n] and COUNT are written under FILE_LOCK (Linux's files->file_lock); `fget`
 * takes the lock too, so a descriptor closed on one CPU is never resolved after its file was put.
 */
import { EBADF, EMFILE } from '../errno.js';
import { lockClass } from '../sync/lockclass.js';
import { SpinLock } from '../sync/spinlock.js';
import type { FileTable } from './file-table.js';

/** RLIMIT_NOFILE's usual soft limit. */
export const MAX_FDS = 1024;
const LOCK = 0;
const COUNT = 2;
const FD0 = 4;

const fileLockClass = lockClass('file_lock');

export interface FdTableDescriptor {
  buffer: SharedArrayBuffer;
}

export class FdTable {
  readonly files: FileTable;
  private readonly words: Int32Array;
  private readonly lock: SpinLock;

  static create(files: FileTable): FdTable {
    return new FdTable({ buffer: new SharedArrayBuffer((FD0 + MAX_FDS) * 4) }, files);
  }

  static attach(desc: FdTableDescriptor, files: FileTable): FdTable {
    return new FdTable(desc, files);
  }

  private constructor(desc: FdTableDescriptor, files: FileTable) {
    this.words = new Int32Array(desc.buffer);
    this.lock = SpinLock.at(this.words, LOCK, fileLockClass);
    this.files = files;
  }

  describe(): FdTableDescriptor {
    return { buffer: this.words.buffer as SharedArrayBuffer };
  }

  /** fd_install at the lowest free descriptor; takes one more reference to `file`. -EMFILE when full. */
  install(file: number): number {
    this.lock.lock();
    try {
      for (let fd = 0; fd < MAX_FDS; fd++) {
        if (this.words[FD0 + fd] !== 0) continue;
        this.files.get(file);
        this.words[FD0 + fd] = file;
        this.words[COUNT]++;
        return fd;
      }
      return -EMFILE;
    } finally {
      this.lock.unlock();
    }
  }

  /** fget: the file behind `fd` with a reference the caller must put, or 0 (EBADF). */
  fget(fd: number): number {
    if (!(Number.isInteger(fd) && fd >= 0 && fd < MAX_FDS)) return 0;
    this.lock.lock();
    const file = this.words[FD0 + fd];
    if (file !== 0) this.files.get(file);
    this.lock.unlock();
    return file;
  }

  /** close: 0 or -EBADF. */
  close(fd: number): number {
    if (!(Number.isInteger(fd) && fd >= 0 && fd < MAX_FDS)) return -EBADF;
    this.lock.lock();
    const file = this.words[FD0 + fd];
    if (file !== 0) {
      this.words[FD0 + fd] = 0;
      this.words[COUNT]--;
    }
    this.lock.unlock();
    if (file === 0) return -EBADF;
    this.files.put(file);
    return 0;
  }

  /**
   * dup_fd: makes this (new, empty) table a copy of `src`, each descriptor taking a reference to
   * its file. Only `src`'s lock is taken: nobody else sees this table yet.
   */
  dupFrom(src: FdTable): void {
    if (this.count !== 0) throw new Error('FdTable.dupFrom: the table is not empty');
    src.lock.lock();
    try {
      for (let fd = 0; fd < MAX_FDS; fd++) {
        const file = src.words[FD0 + fd];
        if (file === 0) continue;
        this.files.get(file);
        this.words[FD0 + fd] = file;
        this.words[COUNT]++;
      }
    } finally {
      src.lock.unlock();
    }
  }

  /** Closes every descriptor (process exit). */
  closeAll(): void {
    for (let fd = 0; fd < MAX_FDS; fd++) if (Atomics.load(this.words, FD0 + fd) !== 0) this.close(fd);
  }

  /** Open descriptors. */
  get count(): number {
    return Atomics.load(this.words, COUNT);
  }
}
