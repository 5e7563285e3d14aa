/**
 * i_size's two readers agree: `size` (the seqcount over two halves) and `sizePages` (the one word
 * of pages the fault path reads) after every way a size is set: a new record, a shmem object, a
 * host file's fstat size, and setSizeLocked growing, shrinking, to a partial page, to 0, and past
 * 2^31 pages (where sizePages falls back to the seqcount).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileTable } from '../../src/fs/file-table.js';
import { PAGE_SIZE } from '../../src/mem/page.js';

const P = PAGE_SIZE;

function agree(files: FileTable, id: number, bytes: number): void {
  assert.equal(files.size(id), bytes);
  assert.equal(files.sizePages(id), Math.ceil(bytes / P), `pages of ${bytes} bytes`);
}

test('sizePages is round_up(i_size) in pages after every size change, past 2^31 pages too', () => {
  const files = FileTable.create();
  const id = files.add({ size: 3 * P + 1, writable: true, name: 'sized' });
  agree(files, id, 3 * P + 1);
  const sizes = [0, 1, P - 1, P, P + 1, 10 * P, 2 * P, 2 ** 31 * P - 1, 2 ** 31 * P, 2 ** 40 + 5, 2 ** 44, 7];
  files.iRwsemLock(id, true);
  try {
    for (const bytes of sizes) {
      files.setSizeLocked(id, bytes);
      agree(files, id, bytes);
    }
  } finally {
    files.iRwsemUnlock(id, true);
  }
  const shmem = files.addShmem(5 * P - 3, 1);
  assert.notEqual(shmem, 0);
  agree(files, shmem, 5 * P - 3);
  files.put(shmem);
  files.put(id);
  // A record reused after a large size starts from its own.
  const again = files.add({ size: P, writable: true, name: 'reused' });
  agree(files, again, P);
  files.put(again);
});
