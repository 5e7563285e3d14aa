/**
 * The file syscalls of a process (docs/fs.md, "File syscalls"; docs/api.md): read, write, pread,
 * pwrite, lseek, ftruncate, fallocate, fsync, fdatasync and an fstat of the size. Each resolves the
 * descriptor to its open file description (a reference for the call), checks the arguments in
 * Linux's order, and returns a count or -errno (the raw syscall); Process's methods throw VmError.
 * Nothing is changed by a call that fails its checks.
 *
 * Locks, in the documented order: the description's f_pos_lock (read, write and lseek, which use
 * f_pos; taken even when the description is not shared, unlike Linux), then the file's i_rwsem
 * (file-rw.ts, file-space.ts), then whatever the copies' faults take (mmap_lock or a VMA lock, and
 * the fault path's file locks): no page lock or invalidate_lock is ever held across a copy.
 *
 * Arguments are C's: fd and whence are ints (the low 32 bits), addresses and lengths unsigned long,
 * offsets loff_t (a value of 2^63 or more is negative); a non-integer is EINVAL (vmspace's rule for
 * values no C caller could pass). User buffers must pass access_ok (addr + len within TASK_SIZE:
 * EFAULT before anything is done); a fault during the copy gives a short count, or EFAULT when no
 * byte was copied. Counts are clamped to MAX_RW_COUNT as Linux does.
 *
 * Only regular files can be open here (open refuses the rest), so EISDIR, ESPIPE and EINVAL for a
 * file that cannot be read or written never arise. SEEK_DATA / SEEK_HOLE see every file as data
 * (no hole is tracked): SEEK_DATA returns the offset, SEEK_HOLE the end of the file.
 */
import { EBADF, EFAULT, EFBIG, EINVAL, ENXIO, EOPNOTSUPP } from '../errno.js';
import { backingOf } from '../fs/backing.js';
import { O_APPEND, OF_WB_ERR } from '../fs/open-file.js';
import { fileCheckAndAdvanceWbErr, writebackRange } from '../fs/page-cache.js';
import { MAX_PAGE_INDEX } from '../fs/page-index.js';
import type { AddressSpace } from '../mm/address-space.js';
import { U64 } from '../mm/syscalls/args.js';
import { fileRead, fileWrite, MAX_FILE_BYTES } from './file-rw.js';
import { filePunch, fileTruncate } from './file-space.js';

export { MAX_FILE_BYTES } from './file-rw.js';

/** Largest count one read or write moves (INT_MAX rounded down to a page, as Linux). */
export const MAX_RW_COUNT = 0x7ffff000;

// lseek whence.
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

// fallocate(2) mode bits.
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_NO_HIDE_STALE = 0x04;
export const FALLOC_FL_COLLAPSE_RANGE = 0x08;
export const FALLOC_FL_ZERO_RANGE = 0x10;
export const FALLOC_FL_INSERT_RANGE = 0x20;
export const FALLOC_FL_UNSHARE_RANGE = 0x40;
export const FALLOC_FL_WRITE_ZEROES = 0x80;
/** The modes (exclusive: at most one of them, or none for plain allocation). */
const FALLOC_FL_MODE_MASK =
  FALLOC_FL_PUNCH_HOLE |
  FALLOC_FL_COLLAPSE_RANGE |
  FALLOC_FL_ZERO_RANGE |
  FALLOC_FL_INSERT_RANGE |
  FALLOC_FL_UNSHARE_RANGE |
  FALLOC_FL_WRITE_ZEROES;

const LOFF_MAX = 2 ** 63;

/**
 * The loff_t `x` stands for (a JS number: values from 2^63 wrap to negative, as C's conversion
 * of a 64-bit value), or NaN when it stands for none (not an integer, outside [-2^63, 2^64)).
 */
export function loff(x: number): number {
  if (!Number.isInteger(x) || x < -LOFF_MAX || x >= U64) return Number.NaN;
  return x >= LOFF_MAX ? x - U64 : x;
}

/** access_ok: [addr, addr + len) lies below the task size. */
function accessOk(mm: AddressSpace, addr: number, len: number): boolean {
  return addr + len <= mm.config.taskSize;
}

/** rw_verify_area: the end of the access must be a valid loff_t. */
function rangeOk(pos: number, len: number): boolean {
  return pos >= 0 && pos + len < LOFF_MAX;
}

/**
 * read/write's fdget and checks: the description of `fd` (a reference the caller puts) when it is
 * open for reading (`write`: writing) and [addr, addr + len) passes access_ok; else -EBADF or
 * -EFAULT, holding nothing.
 */
function rwFget(mm: AddressSpace, fd: number, write: boolean, addr: number, len: number): number {
  const opens = mm.fds.opens;
  const of = mm.fds.fgetOpen(fd);
  if (of === 0) return -EBADF;
  const err = !(write ? opens.writable(of) : opens.readable(of))
    ? -EBADF
    : !accessOk(mm, addr, len)
      ? -EFAULT
      : 0;
  if (err === 0) return of;
  opens.put(of);
  return err;
}

/**
 * read(2): `len` bytes of descriptor `fd` at its file position into user memory at `addr`, moving
 * the position. Arguments as the kernel sees them (fd an int, addr and len unsigned long). The
 * count, or -EBADF / -EFAULT / -EIO / -ENOMEM.
 */
export function sysRead(mm: AddressSpace, fd: number, addr: number, len: number): number {
  const of = rwFget(mm, fd, false, addr, len);
  if (of < 0) return of;
  const opens = mm.fds.opens;
  try {
    mm.mmuOffline();
    opens.lockPos(of);
    try {
      const pos = opens.pos(of);
      const n = fileRead(mm, of, pos, addr, Math.min(len, MAX_RW_COUNT));
      if (n > 0) opens.setPos(of, pos + n);
      return n;
    } finally {
      opens.unlockPos(of);
    }
  } finally {
    opens.put(of);
  }
}

/** pread64(2): as read at byte `pos` (a loff_t), leaving the file position alone. -EINVAL for pos < 0. */
export function sysPread(mm: AddressSpace, fd: number, addr: number, len: number, pos: number): number {
  if (pos < 0) return -EINVAL;
  const of = rwFget(mm, fd, false, addr, len);
  if (of < 0) return of;
  const opens = mm.fds.opens;
  try {
    if (!rangeOk(pos, len)) return -EINVAL;
    return fileRead(mm, of, pos, addr, Math.min(len, MAX_RW_COUNT));
  } finally {
    opens.put(of);
  }
}

/**
 * write(2): `len` bytes from user memory at `addr` to descriptor `fd` at its file position (at the
 * end of the file with O_APPEND), moving the position. The count, or -EBADF / -EFAULT / -EFBIG /
 * -EIO / -ENOMEM.
 */
export function sysWrite(mm: AddressSpace, fd: number, addr: number, len: number): number {
  const of = rwFget(mm, fd, true, addr, len);
  if (of < 0) return of;
  const opens = mm.fds.opens;
  try {
    mm.mmuOffline();
    opens.lockPos(of);
    try {
      const pos = opens.pos(of);
      if (!rangeOk(pos, len)) return -EINVAL;
      const append = (opens.flags(of) & O_APPEND) !== 0;
      return fileWrite(mm, of, pos, addr, Math.min(len, MAX_RW_COUNT), append, true);
    } finally {
      opens.unlockPos(of);
    }
  } finally {
    opens.put(of);
  }
}

/**
 * pwrite64(2): as write at byte `pos`, leaving the file position alone; with O_APPEND the bytes
 * still go to the end of the file (Linux's documented behaviour). -EINVAL for pos < 0.
 */
export function sysPwrite(mm: AddressSpace, fd: number, addr: number, len: number, pos: number): number {
  if (pos < 0) return -EINVAL;
  const of = rwFget(mm, fd, true, addr, len);
  if (of < 0) return of;
  const opens = mm.fds.opens;
  try {
    if (!rangeOk(pos, len)) return -EINVAL;
    const append = (opens.flags(of) & O_APPEND) !== 0;
    return fileWrite(mm, of, pos, addr, Math.min(len, MAX_RW_COUNT), append, false);
  } finally {
    opens.put(of);
  }
}

/**
 * lseek(2): the new file position of descriptor `fd`, or -EBADF / -EINVAL (bad whence, a negative
 * result or one past MAX_FILE_BYTES) / -ENXIO (SEEK_DATA or SEEK_HOLE at or past the end).
 */
export function sysLseek(mm: AddressSpace, fd: number, offset: number, whence: number): number {
  const opens = mm.fds.opens;
  const of = mm.fds.fgetOpen(fd);
  if (of === 0) return -EBADF;
  try {
    if (!(whence >= SEEK_SET && whence <= SEEK_HOLE)) return -EINVAL;
    mm.mmuOffline();
    opens.lockPos(of);
    try {
      const pos = opens.pos(of);
      const target = seekTarget(mm.files.size(opens.file(of)), pos, offset, whence);
      if (target < 0) return target;
      opens.setPos(of, target);
      return target;
    } finally {
      opens.unlockPos(of);
    }
  } finally {
    opens.put(of);
  }
}

/** generic_file_llseek_size's arithmetic: the new position or -errno. */
function seekTarget(size: number, pos: number, offset: number, whence: number): number {
  let target = offset;
  if (whence === SEEK_CUR) target = pos + offset;
  else if (whence === SEEK_END) target = size + offset;
  else if (whence === SEEK_DATA || whence === SEEK_HOLE) {
    if (offset < 0 || offset >= size) return -ENXIO;
    if (whence === SEEK_HOLE) target = size;
  }
  if (target < 0 || target > MAX_FILE_BYTES) return -EINVAL;
  return target;
}

/**
 * ftruncate(2): sets the size of the file open at `fd` to `len` (a loff_t): 0, or -EINVAL (len <
 * 0, or not open for writing), -EBADF, -EFBIG (past MAX_FILE_BYTES), -EIO.
 */
export function sysFtruncate(mm: AddressSpace, fd: number, len: number): number {
  if (len < 0) return -EINVAL;
  const opens = mm.fds.opens;
  const of = mm.fds.fgetOpen(fd);
  if (of === 0) return -EBADF;
  try {
    if (!opens.writable(of)) return -EINVAL;
    if (len > MAX_FILE_BYTES) return -EFBIG;
    mm.mmuOffline();
    return fileTruncate(mm.files, opens.file(of), len);
  } finally {
    opens.put(of);
  }
}

/**
 * fallocate(2): only FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE is supported (0, the range reads
 * as zeros). -EBADF, -EINVAL (offset < 0 or len <= 0), -EOPNOTSUPP (any other mode, an unknown bit,
 * PUNCH_HOLE without KEEP_SIZE, two modes at once: Linux 6.12 and later), -EBADF (not open for
 * writing), -EFBIG (offset + len past MAX_FILE_BYTES), -EIO.
 */
export function sysFallocate(
  mm: AddressSpace,
  fd: number,
  mode: number,
  offset: number,
  len: number,
): number {
  const opens = mm.fds.opens;
  const of = mm.fds.fgetOpen(fd);
  if (of === 0) return -EBADF;
  try {
    if (offset < 0 || len <= 0) return -EINVAL;
    const m = fallocateModeCheck(mode);
    if (m < 0) return m;
    if (!opens.writable(of)) return -EBADF;
    if (offset + len > MAX_FILE_BYTES) return -EFBIG;
    if (mode !== (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) return -EOPNOTSUPP;
    mm.mmuOffline();
    return filePunch(mm.files, opens.file(of), offset, len);
  } finally {
    opens.put(of);
  }
}

/** vfs_fallocate's mode checks (modes are exclusive): 0 or -EOPNOTSUPP. */
function fallocateModeCheck(mode: number): number {
  if ((mode & ~(FALLOC_FL_MODE_MASK | FALLOC_FL_KEEP_SIZE)) !== 0) return -EOPNOTSUPP;
  const kind = mode & FALLOC_FL_MODE_MASK;
  const keep = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
  if (kind === 0 || kind === FALLOC_FL_UNSHARE_RANGE || kind === FALLOC_FL_ZERO_RANGE) return 0;
  if (kind === FALLOC_FL_PUNCH_HOLE) return keep ? 0 : -EOPNOTSUPP;
  if (kind === FALLOC_FL_COLLAPSE_RANGE || kind === FALLOC_FL_INSERT_RANGE || kind === FALLOC_FL_WRITE_ZEROES)
    return keep ? -EOPNOTSUPP : 0;
  return -EOPNOTSUPP;
}

/**
 * fsync(2) / fdatasync(2) (`dataOnly`): writes every dirty cached page of the file back, then
 * syncs the backing. 0, or -EBADF, or the writeback error this description has not heard of yet
 * (reported once to each description open when it happened: errseq), or the backing's sync error.
 * Pages whose write failed stay dirty: a later fsync writes them.
 */
export function sysFsync(mm: AddressSpace, fd: number, dataOnly: boolean): number {
  const opens = mm.fds.opens;
  const of = mm.fds.fgetOpen(fd);
  if (of === 0) return -EBADF;
  try {
    const files = mm.files;
    const id = opens.file(of);
    mm.mmuOffline();
    const wb = writebackRange(files, id, 0, MAX_PAGE_INDEX);
    // The cursor moves under f_pos_lock (Linux: f_lock), so two fsyncs of one description
    // cannot both report one error.
    opens.lockPos(of);
    const seen = fileCheckAndAdvanceWbErr(files, id, opens.words, opens.word(of, OF_WB_ERR));
    opens.unlockPos(of);
    if (wb < 0) return wb;
    if (seen < 0) return seen;
    return backingOf(files, id).sync(files, id, dataOnly);
  } finally {
    opens.put(of);
  }
}

/** The size in bytes of the file open at `fd` (fstat's st_size), or -EBADF. */
export function sysFstatSize(mm: AddressSpace, fd: number): number {
  const opens = mm.fds.opens;
  const of = mm.fds.fgetOpen(fd);
  if (of === 0) return -EBADF;
  try {
    return mm.files.size(opens.file(of));
  } finally {
    opens.put(of);
  }
}
