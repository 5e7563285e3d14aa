/**
 * A backing for tests (main thread only): pages kept in a Map, counters of calls, and injected
 * -EIO on the next reads or writes. Registered as FILE_BACKING kind TEST_BACKING; `fakeFile`
 * makes a file of that kind. Unlike BACKING_MEM, its pages can be written back and reclaimed, as a
 * host file's can.
 */
import { EIO } from '../../src/errno.js';
import { type Backing, registerBacking } from '../../src/fs/backing.js';
import { FILE_BACKING, type FileTable, setBackingRelease } from '../../src/fs/file-table.js';
import { PAGE_SIZE } from '../../src/mem/page.js';

export const TEST_BACKING = 7;

export class FakeStore implements Backing {
  readonly pages = new Map<string, Uint8Array>();
  reads = 0;
  writes = 0;
  failReads = 0;
  failWrites = 0;
  /** Lengths of the writes, in order. */
  readonly writeLens: number[] = [];

  readPage(_files: FileTable, file: number, index: number, dst: Uint8Array): number {
    this.reads++;
    if (this.failReads > 0) {
      this.failReads--;
      return -EIO;
    }
    const page = this.pages.get(`${file}:${index}`);
    dst.fill(0);
    if (page === undefined) return 0;
    dst.set(page);
    return page.length;
  }

  writePage(_files: FileTable, file: number, index: number, src: Uint8Array, len: number): number {
    this.writes++;
    this.writeLens.push(len);
    if (this.failWrites > 0) {
      this.failWrites--;
      return -EIO;
    }
    this.pages.set(`${file}:${index}`, src.slice(0, len));
    return 0;
  }

  setSize(): number {
    return 0;
  }
  punch(): number {
    return 0;
  }
  sync(): number {
    return 0;
  }

  /** Stores `page` words filled with `value` as page `index` of `file`. */
  fill(file: number, index: number, value: number): void {
    const bytes = new Uint8Array(PAGE_SIZE);
    new Int32Array(bytes.buffer).fill(value);
    this.pages.set(`${file}:${index}`, bytes);
  }
}

export const store = new FakeStore();
registerBacking(TEST_BACKING, store);
// Nothing to close: the bytes live in this module's map.
setBackingRelease(TEST_BACKING, () => {});

/** A file of the fake backing, `pages` pages long. */
export function fakeFile(files: FileTable, pages: number, name = 'fake'): number {
  const id = files.add({ size: pages * PAGE_SIZE, writable: true, name });
  files.words[files.word(id, FILE_BACKING)] = TEST_BACKING;
  return id;
}
