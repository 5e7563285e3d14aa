/**
 * Where a file's bytes live (docs/fs.md, "Backing"): the file system below the page cache. One
 * Backing per kind of file; its state lives in the file record (FILE_BACKING names the kind,
 * FILE_HOST_FD the host descriptor), so every CPU uses the same object on any file.
 *
 * Every method is called without any mm lock held (never under mmap_lock; the page cache calls
 * readPage under the page lock, and writePage with PG_WRITEBACK set) and may sleep or do I/O. Each
 * returns a negative errno on failure (-EIO from the device or from injection, src/fs/inject.ts).
 */
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
