/**
 * Opening files (docs/fs.md, "Opening files"): a host file by path (filp_open over node:fs) and a
 * memory file (memfd_create). Each makes an open file description holding one reference for the
 * caller (Process installs it at a descriptor), naming a file record (inode): memfd_create a new
 * one; a host open the one record of that host file, looked up by (st_dev, st_ino) in the inode
 * hash (src/fs/inode-hash.ts, Linux's iget), so every open of one file on any CPU and in any
 * process shares one page cache. The first open makes the record; the others take a reference to
 * it and close their own host descriptor (one host descriptor per record), unless theirs is open
 * for writing and the record's is not: then theirs replaces it (FileTable.upgradeHostFdLocked).
 *
 * Everything that can fail for want of memory is allocated before the host file is touched (a new
 * record, used only if the hash has none, and the description), so an ENOMEM leaves no host file
 * created or truncated; a host error (ENOENT, EACCES, EEXIST, EISDIR, ELOOP, ENOTDIR, ...) gives
 * back what was allocated. Either way nothing changed. O_TRUNC is not passed to the host: once the
 * description names the record, the file is truncated through the page cache (as ftruncate: the
 * cached pages go, every mapping of them is zapped), so another opener's cache never holds bytes
 * the host file lost; its host descriptor is opened for writing (O_TRUNC needs write permission).
 *
 * Host descriptors are opened without O_APPEND (the write path appends at i_size itself, and a
 * positioned write to an O_APPEND host descriptor would append anyway) and without O_SYNC,
 * O_DSYNC and O_DIRECT (the page cache decides when bytes reach the host file), and with
 * O_NONBLOCK (a FIFO or device cannot hang the open; only regular files are accepted). An O_WRONLY
 * open opens the host file O_RDWR: the page cache reads the pages a write only partly covers.
 */
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { basename } from 'node:path';
import { VmAssertionError } from '../assert.js';
import { EFAULT, EINVAL, EISDIR, ENAMETOOLONG, ENOENT, ENXIO, EOPNOTSUPP, VmError } from '../errno.js';
import { BACKING_HOST, BACKING_MEM } from '../fs/backing.js';
import { type FileTable, NAME_MAX_BYTES, PLACE_GENERIC, PLACE_SHMEM } from '../fs/file-table.js';
import { closeQuietly, hostErrno } from '../fs/host-backing.js';
import { type InodeKey, inodeKey } from '../fs/inode-hash.js';
import {
  O_ACCMODE,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_LARGEFILE,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TMPFILE,
  O_TRUNC,
  type OpenFileTable,
} from '../fs/open-file.js';
import { fileTruncate } from './file-space.js';

/** Longest path (bytes, with its NUL: Linux's PATH_MAX). */
export const PATH_MAX = 4096;

// memfd_create(2) flags.
export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
export const MFD_HUGETLB = 0x4;
export const MFD_NOEXEC_SEAL = 0x8;
export const MFD_EXEC = 0x10;
const MFD_KNOWN = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/** Longest memfd name (bytes): NAME_MAX less the "memfd:" prefix. */
export const MFD_NAME_MAX = 249;

/** What the host descriptor is opened with, for each open(2) flag passed on (x86_64 -> host). */
const PASSED: readonly (readonly [number, number])[] = [
  [O_CREAT, constants.O_CREAT],
  [O_EXCL, constants.O_EXCL],
  [O_NOFOLLOW, constants.O_NOFOLLOW],
  [O_DIRECTORY, constants.O_DIRECTORY],
];

/**
 * An int argument: its low 32 bits (as Linux sees it), or null for a value no C caller could pass
 * (not an integer, or outside [-2^63, 2^64)).
 */
function intArg(x: unknown): number | null {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < -(2 ** 63) || x >= 2 ** 64) return null;
  return x | 0; // ToInt32: the low 32 bits, exactly, for any integer
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * The checks of open(2) that need no file system (and come before EMFILE, as in Linux): 0, or
 * -errno.
 */
export function openHostCheck(path: unknown, flagsArg: unknown, modeArg: unknown): number {
  return openCheck(path, intArg(flagsArg), intArg(modeArg));
}

function openCheck(path: unknown, flags: number | null, mode: number | null): number {
  if (typeof path !== 'string') return -EFAULT;
  if (flags === null || mode === null) return -EINVAL;
  if (path.includes('\0')) return -EINVAL; // no C string holds one; Node would throw
  if (path.length === 0) return -ENOENT;
  if (utf8Length(path) >= PATH_MAX) return -ENAMETOOLONG;
  if ((flags & O_TMPFILE) === O_TMPFILE || (flags & O_PATH) !== 0) return -EOPNOTSUPP;
  if ((flags & O_ACCMODE) === O_ACCMODE) return -EINVAL;
  return 0;
}

/** Rounds of an open that keeps meeting dying records of its host file (each waits for an unhash). */
const IGET_ROUNDS = 1 << 16;

/** Whether the host descriptor is opened for writing: for writing, and for O_TRUNC (see the header). */
function hostWrites(flags: number): boolean {
  return (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
}

/** Host flags: O_NONBLOCK always, so opening a FIFO or a device cannot hang (they are ENXIO then). */
function hostFlags(flags: number): number {
  let host = (hostWrites(flags) ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NONBLOCK;
  for (const [linux, h] of PASSED) if ((flags & linux) !== 0) host |= h;
  return host;
}

/** The record's display name: the path, or its last component when the path is too long. */
function displayName(path: string): string {
  return utf8Length(path) <= NAME_MAX_BYTES ? path : basename(path);
}

/**
 * filp_open: opens host file `path` with open(2)'s `flags` and `mode` (used with O_CREAT): a new
 * description (holding the caller's reference) of the host file's BACKING_HOST record (found in
 * the inode hash, or a new one whose size is the host file's); or -errno, nothing changed (but
 * for an O_TRUNC whose truncation failed: the description is gone, the size may have changed, as
 * in Linux). Preconditions: no lock held (it may wait for a dying record, and truncate).
 */
export function openHost(
  files: FileTable,
  opens: OpenFileTable,
  path: unknown,
  flagsArg: unknown,
  modeArg: unknown,
): number {
  const flags = intArg(flagsArg);
  const mode = intArg(modeArg);
  const c = openCheck(path, flags, mode);
  if (c < 0) return c;
  const p = path as string;
  const f = flags as number;
  const readOnly = (f & O_ACCMODE) === O_RDONLY;
  let file: number;
  try {
    file = files.add(
      { size: 0, writable: !readOnly, name: displayName(p), placement: PLACE_GENERIC },
      BACKING_HOST,
    );
  } catch (error) {
    if (error instanceof VmError) return -error.errno;
    throw error;
  }
  const of = opens.open(file, f | O_LARGEFILE);
  files.put(file); // the description's reference keeps it; a failed open frees it here
  if (of < 0) return of;
  const r = openHostFd(p, f, (mode as number) & 0o7777);
  if (r.fd < 0) {
    opens.put(of);
    return r.fd;
  }
  const inode = igetHost(files, file, r);
  if (inode !== file) files.put(opens.rebind(of, inode)); // the new record goes unused
  if ((f & O_TRUNC) !== 0) {
    const t = fileTruncate(files, inode, 0);
    if (t < 0) {
      opens.put(of);
      return t;
    }
  }
  return of;
}

/** A regular host file opened: its descriptor (-errno: nothing left open), size and identity. */
interface HostOpen {
  fd: number;
  size: number;
  writable: boolean;
  key: InodeKey | null;
}

/**
 * iget: the record of host file `r` with a reference the caller owns: the hashed one (then `r.fd`
 * is closed, or replaces the record's read-only descriptor), or else `fresh`, completed with
 * `r.fd` and hashed (its reference is the caller's already). A dying record (no reference left)
 * is not revived: wait until its release unhashed it, and look again. Preconditions: no lock held;
 * `fresh` a new BACKING_HOST record, not hashed, that the caller holds a reference to.
 */
function igetHost(files: FileTable, fresh: number, r: HostOpen): number {
  const hash = files.inodes;
  const key = r.key as InodeKey;
  for (let round = 0; round < IGET_ROUNDS; round++) {
    hash.lock();
    const found = hash.findLocked(key);
    if (found === 0) {
      files.setHost(fresh, r.fd, r.size, r.writable);
      hash.insertLocked(fresh, key);
      hash.unlock();
      return fresh;
    }
    if (files.tryGet(found)) {
      const upgrade = r.writable && !files.hostWritable(found);
      if (upgrade) files.upgradeHostFdLocked(found, r.fd);
      hash.unlock();
      if (!upgrade) closeQuietly(r.fd);
      return found;
    }
    const seq = hash.prepareWaitLocked();
    hash.unlock();
    hash.waitForUnhash(seq, found);
  }
  throw new VmAssertionError(`open: host descriptor ${r.fd} met dying records ${IGET_ROUNDS} times`);
}

/** The host descriptor of a regular file, its size and identity, or fd = -errno (nothing left open). */
function openHostFd(path: string, flags: number, mode: number): HostOpen {
  let fd: number;
  try {
    fd = openSync(path, hostFlags(flags), mode);
  } catch (error) {
    return { fd: -hostErrno(error), size: 0, writable: false, key: null };
  }
  let errno = 0;
  let size = 0;
  let key: InodeKey | null = null;
  try {
    const st = fstatSync(fd, { bigint: true });
    if (st.isDirectory()) errno = EISDIR;
    else if (!st.isFile()) errno = ENXIO;
    size = Number(st.size);
    key = inodeKey(st.dev, st.ino);
  } catch (error) {
    errno = hostErrno(error);
  }
  if (errno === 0) return { fd, size, writable: hostWrites(flags), key };
  closeSync(fd);
  return { fd: -errno, size: 0, writable: false, key: null };
}

/** The checks of memfd_create(2) (they come before EMFILE, as in Linux): 0, or -errno. */
export function memfdCreateCheck(name: unknown, flagsArg: unknown): number {
  return memfdCheck(name, intArg(flagsArg));
}

function memfdCheck(name: unknown, flags: number | null): number {
  if (typeof name !== 'string') return -EFAULT;
  if (flags === null || (flags & ~MFD_KNOWN) !== 0) return -EINVAL;
  if ((flags & MFD_HUGETLB) !== 0) return -EINVAL; // no hugetlbfs
  if ((flags & MFD_NOEXEC_SEAL) !== 0 && (flags & MFD_EXEC) !== 0) return -EINVAL;
  if (name.includes('\0') || utf8Length(name) > MFD_NAME_MAX) return -EINVAL;
  return 0;
}

/**
 * memfd_create: a new description (O_RDWR, the caller's reference) of a new empty BACKING_MEM file
 * named memfd:NAME, or -errno with nothing changed. MFD_CLOEXEC is the caller's to apply to the
 * descriptor; MFD_ALLOW_SEALING, MFD_NOEXEC_SEAL and MFD_EXEC are accepted (no seals exist yet).
 */
export function memfdCreate(
  files: FileTable,
  opens: OpenFileTable,
  nameArg: unknown,
  flagsArg: unknown,
): number {
  const flags = intArg(flagsArg);
  const c = memfdCheck(nameArg, flags);
  if (c < 0) return c;
  let file: number;
  try {
    file = files.add(
      { size: 0, writable: true, name: `memfd:${nameArg as string}`, placement: PLACE_SHMEM },
      BACKING_MEM,
    );
  } catch (error) {
    if (error instanceof VmError) return -error.errno;
    throw error;
  }
  const of = opens.open(file, O_RDWR | O_LARGEFILE);
  files.put(file);
  return of;
}
