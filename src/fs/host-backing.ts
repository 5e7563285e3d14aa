/**
 * The host backing (docs/fs.md, "Backing"): a file's bytes live in a real file of the host, reached
 * through one host descriptor opened with node:fs (by Kernel.openHost) and kept in the record's
 * HOST_FD word. A host descriptor is a number valid on every thread of the Node process, so any CPU
 * does positioned I/O on it; the record owns it, and its last reference closes it (the release
 * registered below). Every open of one host file shares its record (src/fs/inode-hash.ts), so a
 * record has one host descriptor, and two when an open for writing upgraded a read-only one.
 *
 * Reads and writes go straight between the host file and the frame's bytes: node:fs's readSync and
 * writeSync accept a Uint8Array over a SharedArrayBuffer (checked by test/fs/host-backing.test.ts),
 * so there is no copy and no scratch buffer. Node has no fallocate, so `punch` writes zeros over the
 * part of the range inside the host file: reads then give zeros as after FALLOC_FL_PUNCH_HOLE, but
 * the blocks stay allocated (and the write is real I/O, not a metadata change).
 *
 * Every method first runs its operation's injection (src/fs/inject.ts), then announces the I/O
 * (`fsMightIO`), then calls node:fs; a host error becomes the Linux errno of its code (EIO for a
 * code without one). Preconditions of every method: the caller holds a reference to a host file
 * and no spinlock, RCU read section or mmap_lock (docs/fs.md: backings are called outside them).
 */
import { closeSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, readSync, writeSync } from 'node:fs';
import { assert } from '../assert.js';
import { EIO, errnoValue } from '../errno.js';
import { BACKING_HOST, type Backing, registerBacking } from './backing.js';
import { FILE_HOST_FD_RO, type FileTable, setBackingRelease } from './file-table.js';
import {
  fsMightIO,
  INJECT_READ_PAGE,
  INJECT_SYNC,
  INJECT_TRUNCATE,
  INJECT_WRITE_PAGE,
  injectOp,
} from './inject.js';

const PAGE_SIZE = 4096;
/** Zeros written by punch, a chunk at a time (never written to: shared by every call). */
const ZEROS = new Uint8Array(64 * 1024);
/** Short reads or writes tolerated in a row before the call gives up with EIO (bounded loops). */
const MAX_SHORT = 64;

/**
 * The Linux errno (positive) of an error node:fs threw: its `code` when Linux has that name, else
 * EIO (the host's number is not used: libuv's numbers are the host OS's, not Linux's).
 */
export function hostErrno(error: unknown): number {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return EIO;
  try {
    return errnoValue(code);
  } catch {
    return EIO;
  }
}

function fdOf(files: FileTable, file: number): number {
  assert(files.backing(file) === BACKING_HOST, 'host backing: not a host file');
  return files.hostFd(file);
}

/** Reads page `index` into `dst` (4 KiB): the bytes read before end of file; the rest is zeroed. */
function readPage(files: FileTable, file: number, index: number, dst: Uint8Array): number {
  const injected = injectOp(files, file, INJECT_READ_PAGE);
  if (injected < 0) return injected;
  fsMightIO('fs.host.read_page');
  const fd = fdOf(files, file);
  const pos = index * PAGE_SIZE;
  let done = 0;
  try {
    for (let round = 0; round < MAX_SHORT && done < PAGE_SIZE; round++) {
      const n = readSync(fd, dst, done, PAGE_SIZE - done, pos + done);
      if (n === 0) break;
      done += n;
    }
  } catch (error) {
    return -hostErrno(error);
  }
  if (done < PAGE_SIZE) dst.fill(0, done, PAGE_SIZE);
  return done;
}

/** Writes `src[0, len)` at page `index`'s offset: 0 or -errno. */
function writePage(files: FileTable, file: number, index: number, src: Uint8Array, len: number): number {
  const injected = injectOp(files, file, INJECT_WRITE_PAGE);
  if (injected < 0) return injected;
  fsMightIO('fs.host.write_page');
  return writeAll(fdOf(files, file), src, len, index * PAGE_SIZE);
}

function writeAll(fd: number, src: Uint8Array, len: number, pos: number): number {
  let done = 0;
  try {
    for (let round = 0; round < MAX_SHORT && done < len; round++)
      done += writeSync(fd, src, done, len - done, pos + done);
  } catch (error) {
    return -hostErrno(error);
  }
  return done === len ? 0 : -EIO;
}

function setSize(files: FileTable, file: number, size: number): number {
  const injected = injectOp(files, file, INJECT_TRUNCATE);
  if (injected < 0) return injected;
  fsMightIO('fs.host.truncate');
  try {
    ftruncateSync(fdOf(files, file), size);
  } catch (error) {
    return -hostErrno(error);
  }
  return 0;
}

/** Zeros over [offset, offset + len) ∩ the host file (KEEP_SIZE: the host file never grows). */
function punch(files: FileTable, file: number, offset: number, len: number): number {
  const injected = injectOp(files, file, INJECT_TRUNCATE);
  if (injected < 0) return injected;
  fsMightIO('fs.host.punch');
  const fd = fdOf(files, file);
  let hostSize: number;
  try {
    hostSize = fstatSync(fd).size;
  } catch (error) {
    return -hostErrno(error);
  }
  const end = Math.min(offset + len, hostSize);
  // Bounded: each round writes one chunk of the (finite) range.
  for (let at = offset; at < end; at += ZEROS.length) {
    const r = writeAll(fd, ZEROS, Math.min(ZEROS.length, end - at), at);
    if (r < 0) return r;
  }
  return 0;
}

function sync(files: FileTable, file: number, dataOnly: boolean): number {
  const injected = injectOp(files, file, INJECT_SYNC);
  if (injected < 0) return injected;
  fsMightIO('fs.host.sync');
  try {
    if (dataOnly) fdatasyncSync(fdOf(files, file));
    else fsyncSync(fdOf(files, file));
  } catch (error) {
    return -hostErrno(error);
  }
  return 0;
}

export const hostBacking: Backing = { readPage, writePage, setSize, punch, sync };

/**
 * The last reference to a host file went: close its host descriptor. A close error is dropped, as
 * Linux drops the errors of the last fput (writeback errors were reported by fsync already).
 */
function releaseHost(files: FileTable, id: number): void {
  const fd = files.hostFd(id);
  if (fd < 0) return; // an open that failed before its host descriptor was set
  fsMightIO('fs.host.release');
  closeQuietly(fd);
  // The read-only descriptor an open for writing retired (FileTable.upgradeHostFdLocked).
  const ro = files.words[files.word(id, FILE_HOST_FD_RO)];
  if (ro >= 0) closeQuietly(ro);
}

/** Closes a host descriptor the caller owns, dropping any error (the descriptor is gone either way). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing to report to.
  }
}

setBackingRelease(BACKING_HOST, releaseHost);
registerBacking(BACKING_HOST, hostBacking);
