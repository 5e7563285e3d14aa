/**
 * Where a file's bytes live (docs/fs.md, "Backing"): the file system below the page cache. One
 * Backing per kind of file; its state lives in the file record (FILE_BACKING names the kind,
 * FILE_HOST_FD the host descriptor), so every CPU uses the same object on any file.
 *
 * Every method is called without any mm lock held (never under mmap_lock; the page cache calls
 * readPage under the page lock, and writePage with PG_WRITEBACK set) and may sleep or do I/O. Each
 * returns a negative errno on failure (-EIO from the device or from injection, src/fs/inject.ts).
 */
import { assert, VmAssertionError } from '../assert.js';
import type { FileTable } from './file-table.js';

/** FILE_BACKING values. */
export const BACKING_MEM = 0;
export const BACKING_HOST = 1;

export interface Backing {
  /** Reads page `index` into `dst` (the frame's 4 KiB): bytes read (the rest is zeroed), or -errno. */
  readPage(files: FileTable, file: number, index: number, dst: Uint8Array): number;
  /** Writes the first `len` bytes of `src` as page `index`: 0 or -errno. */
  writePage(files: FileTable, file: number, index: number, src: Uint8Array, len: number): number;
  /** Truncates or extends the stored file to `size` bytes: 0 or -errno. */
  setSize(files: FileTable, file: number, size: number): number;
  /** Makes [offset, offset + len) read as zeros: 0 or -errno. */
  punch(files: FileTable, file: number, offset: number, len: number): number;
  /** fsync (dataOnly: fdatasync) of what was written: 0 or -errno. */
  sync(files: FileTable, file: number, dataOnly: boolean): number;
}

/**
 * BACKING_MEM (shared anonymous memory, memfd): nothing is stored below the cache; a page never
 * written reads as zeros. Its pages are never written back (they stay dirty: fsync has nothing to
 * do) nor reclaimed (they are the only copy), so writePage is never called.
 */
export const memBacking: Backing = {
  readPage(_files, _file, _index, dst) {
    dst.fill(0);
    return 0;
  },
  writePage(_files, file, index) {
    throw new VmAssertionError(
      `memory file ${file}: writePage of page ${index} (mem pages are never written back)`,
    );
  },
  setSize() {
    return 0;
  },
  punch() {
    return 0;
  },
  sync() {
    return 0;
  },
};

/** FILE_BACKING values are below this. */
export const BACKING_KINDS = 8;
const backings: (Backing | null)[] = [memBacking, null, null, null, null, null, null, null];

/**
 * Registers the Backing of kind `kind` on this thread (the host-file backing does it when its
 * module loads; tests register fakes). The table lives here so that no backing module imports
 * another one: a backing imports this file for the interface, this file imports none of them.
 */
export function registerBacking(kind: number, backing: Backing): void {
  assert(Number.isInteger(kind) && kind > BACKING_MEM && kind < BACKING_KINDS, 'registerBacking: bad kind');
  backings[kind] = backing;
}

/** The Backing of file `id` (by its FILE_BACKING word). */
export function backingOf(files: FileTable, id: number): Backing {
  const kind = files.backing(id);
  const backing = kind >= 0 && kind < BACKING_KINDS ? backings[kind] : null;
  if (backing === null) {
    throw new Error(
      kind === BACKING_HOST
        ? `file ${id}: host-file backing not loaded on this CPU (src/fs/host-backing.ts registers it)`
        : `file ${id}: no backing of kind ${kind} registered`,
    );
  }
  return backing;
}
