/**
 * The file syscalls of a process (src/kernel/file-syscalls.ts) on one CPU, against real temporary
 * host files checked with node:fs after fsync, and memory files: read/write/pread/pwrite through
 * the page cache into and out of process memory, the readahead windows, O_APPEND, short copies at
 * a PROT_NONE or unmapped boundary, EIO injected on read and on writeback (errseq: once per
 * description, the data kept dirty), truncate and punch, and every count back to zero.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { INJECT_READ_PAGE, INJECT_TRUNCATE, INJECT_WRITE_PAGE, setInjection } from '../../src/fs/inject.js';
import { O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_WRONLY } from '../../src/fs/open-file.js';
import { findGetPage, RA_MAX_PAGES } from '../../src/fs/page-cache.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
  SEEK_SET,
} from '../../src/kernel/file-syscalls.js';
import { MAP_SHARED, MS_SYNC, PROT_NONE } from '../../src/mm/vm-flags.js';
import {
  buffer,
  fileOf,
  finish,
  outcome,
  P,
  pattern,
  peek,
  poke,
  RW,
  reopen,
  setup,
} from './file-syscalls-util.js';

const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-fileio-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function hostFile(name: string, data: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

test('read, pread, write, pwrite against a host file: the bytes node:fs sees after fsync', () => {
  const { kernel, proc } = setup();
  const size = 5 * P + 123;
  const initial = pattern(1, 0, size);
  const path = hostFile('rw.bin', initial);
  const fd = proc.open(path, O_RDWR);
  const buf = buffer(proc, 12 * P);
  // read() from the start, in two unaligned pieces: the position moves.
  assert.equal(proc.read(fd, buf, 3 * P + 7), 3 * P + 7);
  assert.equal(proc.read(fd, buf + 3 * P + 7, 8 * P), size - 3 * P - 7, 'stops at the end of the file');
  assert.deepEqual(peek(proc, buf, size), initial);
  assert.equal(proc.read(fd, buf, P), 0, 'at the end: 0');
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), size);
  // pread leaves the position alone.
  assert.equal(proc.pread(fd, buf, 100, 2 * P - 50), 100);
  assert.deepEqual(peek(proc, buf, 100), initial.subarray(2 * P - 50, 2 * P + 50));
  assert.equal(proc.pread(fd, buf, 100, size + 10), 0, 'past the end: 0');
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), size);
  // pwrite across a page boundary inside the file (partial pages are read first).
  const patch = pattern(2, 0, 300);
  poke(proc, buf, patch);
  assert.equal(proc.pwrite(fd, buf, 300, P - 100), 300);
  // write() at the position (the end): the file grows; a second write past a gap leaves zeros.
  const tail = pattern(3, 0, 2 * P);
  poke(proc, buf + P, tail);
  assert.equal(proc.write(fd, buf + P, 2 * P), 2 * P);
  assert.equal(proc.pwrite(fd, buf + P, 10, size + 2 * P + 3 * P), 10);
  const expected = new Uint8Array(size + 5 * P + 10);
  expected.set(initial);
  expected.set(patch, P - 100);
  expected.set(tail, size);
  expected.set(tail.subarray(0, 10), size + 5 * P);
  assert.equal(proc.fstat(fd).size, expected.length);
  proc.fsync(fd);
  assert.deepEqual(new Uint8Array(readFileSync(path)), expected);
  // Read back through vmspace too.
  assert.equal(proc.pread(fd, buf, expected.length, 0), expected.length);
  assert.deepEqual(peek(proc, buf, expected.length), expected);
  finish(kernel, proc);
});

test('whole-page writes are not read first; a write past the end zeroes the old tail the size grows over', () => {
  const { kernel, proc } = setup();
  const path = hostFile('whole.bin', pattern(4, 0, 3 * P));
  const fd = proc.open(path, O_RDWR);
  const file = fileOf(proc, fd);
  const buf = buffer(proc, 2 * P);
  poke(proc, buf, pattern(5, 0, 2 * P));
  // Every read of the backing fails: a whole-page overwrite needs none.
  setInjection(kernel.files, file, INJECT_READ_PAGE, { failNext: 1000 });
  assert.equal(proc.pwrite(fd, buf, 2 * P, P), 2 * P);
  assert.equal(
    outcome(() => proc.pwrite(fd, buf, 10, 5)),
    'EIO',
    'a partial page must be read: EIO',
  );
  setInjection(kernel.files, file, INJECT_READ_PAGE, { failNext: 0 });
  // A memfd: a store through a shared mapping past the end of the last page must not become data.
  const m = proc.memfdCreate('tail');
  poke(proc, buf, pattern(6, 0, 100));
  assert.equal(proc.write(m, buf, 100), 100);
  const mf = fileOf(proc, m);
  // As a store through a shared mapping would: junk past the end, straight into the cached page.
  const pfn = kernel.mem.owner.findIndex((o, i) => o === mf && kernel.mem.index[i] === 0);
  assert.ok(pfn > 0);
  kernel.mem.bytes.fill(0xee, pfn * P + 100, pfn * P + 200);
  assert.equal(proc.pwrite(m, buf, 1, 300), 1, 'grows the file over the junk');
  assert.equal(proc.pread(m, buf + P, 301, 0), 301);
  const got = peek(proc, buf + P, 301);
  assert.deepEqual(got.subarray(100, 300), new Uint8Array(200), 'the old tail reads as zeros');
  proc.fsync(fd);
  const host = new Uint8Array(readFileSync(path));
  assert.deepEqual(host.subarray(P, 3 * P), pattern(5, 0, 2 * P));
  finish(kernel, proc);
});

test('memfd: write, lseek (SET/CUR/END/DATA/HOLE), read, ftruncate, fstat', () => {
  const { kernel, proc } = setup();
  const fd = proc.memfdCreate('rw');
  const buf = buffer(proc, 4 * P);
  const data = pattern(7, 0, 3 * P + 1);
  poke(proc, buf, data);
  assert.equal(proc.write(fd, buf, data.length), data.length);
  assert.equal(proc.fstat(fd).size, data.length);
  assert.equal(proc.lseek(fd, 0, SEEK_SET), 0);
  assert.equal(proc.lseek(fd, 10, SEEK_CUR), 10);
  assert.equal(proc.lseek(fd, -1, SEEK_END), data.length - 1);
  assert.equal(proc.lseek(fd, 5, SEEK_DATA), 5);
  assert.equal(proc.lseek(fd, 5, SEEK_HOLE), data.length, 'the file is all data: the hole is at the end');
  assert.equal(
    outcome(() => proc.lseek(fd, data.length, SEEK_DATA)),
    'ENXIO',
  );
  assert.equal(
    outcome(() => proc.lseek(fd, -1, SEEK_SET)),
    'EINVAL',
  );
  assert.equal(proc.lseek(fd, 2 * P, SEEK_SET), 2 * P);
  assert.equal(proc.read(fd, buf + 2 * P + 64, 2 * P), P + 1);
  assert.deepEqual(peek(proc, buf + 2 * P + 64, P + 1), data.subarray(2 * P));
  proc.ftruncate(fd, P + 10);
  assert.equal(proc.fstat(fd).size, P + 10);
  proc.ftruncate(fd, 3 * P);
  assert.equal(proc.pread(fd, buf, 3 * P, 0), 3 * P);
  const back = peek(proc, buf, 3 * P);
  assert.deepEqual(back.subarray(0, P + 10), data.subarray(0, P + 10));
  assert.deepEqual(back.subarray(P + 10), new Uint8Array(2 * P - 10), 'truncated bytes come back as zeros');
  proc.fsync(fd);
  proc.fdatasync(fd);
  finish(kernel, proc);
});

test('sequential reads grow the readahead window (4, 12, 28, 60, 92 pages cached); random reads keep it at 4', () => {
  const { kernel, proc } = setup();
  const pages = 128;
  const path = hostFile('ra.bin', pattern(8, 0, pages * P));
  const fd = proc.open(path, O_RDONLY);
  const file = fileOf(proc, fd);
  const buf = buffer(proc, P);
  const seen: number[] = [];
  for (let i = 0; i < pages; i++) {
    assert.equal(proc.read(fd, buf, P), P);
    const n = kernel.files.nrpages(file);
    if (seen.at(-1) !== n) seen.push(n);
  }
  const expected = [4];
  for (let w = 8; expected.at(-1)! < pages; w = Math.min(2 * w, RA_MAX_PAGES))
    expected.push(Math.min(expected.at(-1)! + w, pages));
  assert.deepEqual(seen, expected);
  assert.deepEqual(seen.slice(0, 5), [4, 12, 28, 60, 92]);
  // Random reads through another description (its own window) of another file (one whose pages
  // are not cached yet: an open of the same path shares the cache): each miss reads 4 pages.
  const fd2 = proc.open(hostFile('ra2.bin', pattern(8, 0, pages * P)), O_RDONLY);
  const file2 = fileOf(proc, fd2);
  for (const page of [100, 7, 60, 30]) {
    const before = kernel.files.nrpages(file2);
    assert.equal(proc.pread(fd2, buf, 1, page * P), 1);
    assert.equal(kernel.files.nrpages(file2) - before, 4, `a random miss at page ${page} reads 4 pages`);
  }
  finish(kernel, proc);
});

test('O_APPEND: write and pwrite go to the end; the position follows the write', () => {
  const { kernel, proc } = setup();
  const path = hostFile('append.bin', pattern(9, 0, 1000));
  const fd = proc.open(path, O_WRONLY | O_APPEND);
  const buf = buffer(proc, P);
  poke(proc, buf, pattern(10, 0, 500));
  assert.equal(proc.write(fd, buf, 500), 500);
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), 1500);
  proc.lseek(fd, 0, SEEK_SET);
  assert.equal(proc.write(fd, buf, 10), 10, 'appends whatever the position');
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), 1510);
  assert.equal(proc.pwrite(fd, buf, 5, 0), 5, 'pwrite on O_APPEND appends (Linux)');
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), 1510, 'pwrite leaves the position');
  assert.equal(
    outcome(() => proc.read(fd, buf, 1)),
    'EBADF',
    'O_WRONLY cannot read',
  );
  proc.fsync(fd);
  const expected = new Uint8Array(1515);
  expected.set(pattern(9, 0, 1000));
  expected.set(pattern(10, 0, 500), 1000);
  expected.set(pattern(10, 0, 10), 1500);
  expected.set(pattern(10, 0, 5), 1510);
  assert.deepEqual(new Uint8Array(readFileSync(path)), expected);
  finish(kernel, proc);
});

test('a fault mid-copy gives a short count; at the first byte EFAULT, with nothing changed', () => {
  const { kernel, proc } = setup();
  const fd = proc.memfdCreate('short');
  const base = buffer(proc, 4 * P);
  const data = pattern(11, 0, 4 * P);
  poke(proc, base, data);
  assert.equal(proc.write(fd, base, 4 * P), 4 * P);
  proc.mm.mprotect(base + 2 * P, P, PROT_NONE);
  proc.mm.munmap(base + 3 * P, P);
  // read into [base + P - 100, ...): stops at the PROT_NONE page.
  assert.equal(proc.pread(fd, base + P - 100, 3 * P, 0), P + 100);
  assert.equal(proc.lseek(fd, 0, SEEK_SET), 0);
  assert.equal(proc.read(fd, base + 2 * P - 8, 100), 8, 'short read moves the position by the bytes copied');
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), 8);
  assert.equal(
    outcome(() => proc.read(fd, base + 2 * P, 100)),
    'EFAULT',
  );
  assert.equal(
    outcome(() => proc.read(fd, base + 3 * P, 100)),
    'EFAULT',
    'unmapped',
  );
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), 8, 'EFAULT moves nothing');
  // write from a buffer running into the PROT_NONE page: the bytes before it are written.
  const w = proc.memfdCreate('w');
  assert.equal(proc.write(w, base + 2 * P - 300, P), 300);
  assert.equal(proc.fstat(w).size, 300);
  assert.equal(
    outcome(() => proc.write(w, base + 2 * P, 10)),
    'EFAULT',
  );
  assert.equal(
    outcome(() => proc.pwrite(w, base + 3 * P, 10, 5 * P)),
    'EFAULT',
  );
  assert.equal(proc.fstat(w).size, 300, 'a write that copied nothing does not grow the file');
  assert.equal(proc.lseek(w, 0, SEEK_CUR), 300);
  // A whole-page write stopping short inside the file keeps the rest of the page.
  proc.mm.mprotect(base + 2 * P, P, RW);
  poke(proc, base + P, pattern(12, 0, P));
  proc.mm.mprotect(base + 2 * P, P, PROT_NONE);
  assert.equal(proc.pwrite(fd, base + P + 1000, P, P), P - 1000);
  assert.equal(proc.pread(fd, base, P, P), P);
  const page = peek(proc, base, P);
  assert.deepEqual(page.subarray(0, P - 1000), pattern(12, 1000, P - 1000));
  assert.deepEqual(page.subarray(P - 1000), data.subarray(2 * P - 1000, 2 * P));
  finish(kernel, proc);
});

test('a user buffer that maps the same file: no deadlock, and any bytes copied are right', () => {
  const { kernel, proc } = setup();
  const fd = proc.memfdCreate('self');
  const buf = buffer(proc, 4 * P);
  const data = pattern(13, 0, 4 * P);
  poke(proc, buf, data);
  assert.equal(proc.write(fd, buf, 4 * P), 4 * P);
  const map = proc.mm.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
  // read pages 0-1 into the mapping of pages 2-3, and write from the mapping of page 0 to page 3:
  // without file faults the mapping faults (EFAULT); with them the bytes must be the file's.
  const r = outcome(() => proc.pread(fd, map + 2 * P, 2 * P, 0));
  const w = outcome(() => proc.pwrite(fd, map, P, 3 * P));
  for (const o of [r, w]) assert.ok(o === 'ok' || o === 'EFAULT', o);
  assert.equal(proc.pread(fd, buf, 4 * P, 0), 4 * P);
  const now = peek(proc, buf, 4 * P);
  const expected = data.slice();
  if (r === 'ok') expected.set(data.subarray(0, 2 * P), 2 * P);
  if (w === 'ok') expected.set(expected.slice(0, P), 3 * P);
  assert.deepEqual(now, expected);
  proc.mm.munmap(map, 4 * P);
  finish(kernel, proc);
});

test('read into a mapping of the same file one page on: the pages are copied in file order, as Linux copies page by page', () => {
  const { kernel, proc } = setup();
  const fd = proc.memfdCreate('shifted');
  const buf = buffer(proc, 4 * P);
  const data = pattern(14, 0, 4 * P);
  poke(proc, buf, data);
  assert.equal(proc.write(fd, buf, 4 * P), 4 * P);
  const map = proc.mm.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0);
  poke(proc, map, data); // every page mapped writable and in the TLB
  const file = fileOf(proc, fd);
  const pfns = [0, 1, 2, 3].map((i) => {
    const pfn = findGetPage(kernel.files, file, i);
    kernel.files.mem?.putPage(pfn);
    return pfn;
  });
  assert.deepEqual(
    pfns,
    [pfns[0], pfns[0] + 1, pfns[0] + 2, pfns[0] + 3],
    'the cached pages are consecutive frames',
  );
  // Pages 0-2 of the file into the mapping of pages 1-3: page 1 becomes page 0, then page 2 the
  // new page 1 (page 0 again), and so on; one copy of the three frames would give pages 0-2.
  assert.equal(proc.pread(fd, map + P, 3 * P, 0), 3 * P);
  const now = peek(proc, map, 4 * P);
  for (let p = 0; p < 4; p++)
    assert.deepEqual(now.subarray(p * P, (p + 1) * P), data.subarray(0, P), `page ${p}`);
  proc.mm.munmap(map, 4 * P);
  finish(kernel, proc);
});

test('EIO during read: EIO with nothing read, a short count after some bytes; nothing cached from the failure', () => {
  const { kernel, proc } = setup();
  const path = hostFile('eio.bin', pattern(14, 0, 16 * P));
  const fd = proc.open(path, O_RDONLY);
  const file = fileOf(proc, fd);
  const buf = buffer(proc, 16 * P);
  setInjection(kernel.files, file, INJECT_READ_PAGE, { failNext: 1 });
  assert.equal(
    outcome(() => proc.read(fd, buf, P)),
    'EIO',
  );
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), 0);
  assert.equal(kernel.files.nrpages(file), 0);
  assert.equal(proc.pread(fd, buf, 1, 0), 1, 'the next read succeeds');
  // The retry repeated page 0: sequential, so the window doubled to 8 pages.
  const cached = kernel.files.nrpages(file);
  assert.equal(cached, 8);
  setInjection(kernel.files, file, INJECT_READ_PAGE, { failNext: 1000 });
  assert.equal(proc.read(fd, buf, 12 * P), cached * P, 'the cached pages, then EIO: a short count');
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), cached * P);
  assert.deepEqual(peek(proc, buf, cached * P), pattern(14, 0, cached * P));
  assert.equal(kernel.files.nrpages(file), cached, 'nothing cached from the failures');
  setInjection(kernel.files, file, INJECT_READ_PAGE, { failNext: 0 });
  assert.equal(proc.read(fd, buf, 16 * P), (16 - cached) * P);
  assert.deepEqual(peek(proc, buf, (16 - cached) * P), pattern(14, cached * P, (16 - cached) * P));
  finish(kernel, proc);
});

test('writeback EIO: fsync reports it once to each description open at the time; the data stays dirty and a later fsync writes it', () => {
  const { kernel, proc } = setup();
  const path = hostFile('wb.bin', new Uint8Array(2 * P));
  const a = proc.open(path, O_RDWR);
  const b = reopen(proc, a, O_RDWR);
  const file = fileOf(proc, a);
  const buf = buffer(proc, 2 * P);
  const data = pattern(15, 0, 2 * P);
  poke(proc, buf, data);
  assert.equal(proc.pwrite(a, buf, 2 * P, 0), 2 * P);
  setInjection(kernel.files, file, INJECT_WRITE_PAGE, { failNext: 1 });
  assert.equal(
    outcome(() => proc.fsync(a)),
    'EIO',
  );
  const host = new Uint8Array(readFileSync(path));
  assert.ok(!host.every((x, i) => x === data[i]), 'one page did not reach the file');
  const c = reopen(proc, a, O_RDONLY); // opened after a reported error: hears nothing
  assert.equal(
    outcome(() => proc.fsync(a)),
    'ok',
    'reported once to a',
  );
  assert.deepEqual(
    new Uint8Array(readFileSync(path)),
    data,
    'the page stayed dirty: the second fsync wrote it',
  );
  assert.equal(
    outcome(() => proc.fdatasync(b)),
    'EIO',
    'b was open at the time: it hears once',
  );
  assert.equal(
    outcome(() => proc.fsync(b)),
    'ok',
  );
  assert.equal(
    outcome(() => proc.fsync(c)),
    'ok',
  );
  // A dup shares a's description: it heard already.
  const d = proc.dup(a);
  assert.equal(
    outcome(() => proc.fsync(d)),
    'ok',
  );
  finish(kernel, proc);
});

test('writeback EIO under msync(MS_SYNC) of a shared mapping: EIO, the stored pages stay dirty, the next msync writes them; the descriptor still hears once', () => {
  const { kernel, proc } = setup();
  const path = hostFile('wb-msync.bin', new Uint8Array(2 * P));
  const fd = proc.open(path, O_RDWR);
  const file = fileOf(proc, fd);
  const map = proc.mm.mmap(0, 2 * P, RW, MAP_SHARED, fd, 0);
  const data = pattern(16, 0, 2 * P);
  poke(proc, map, data);
  setInjection(kernel.files, file, INJECT_WRITE_PAGE, { failNext: 1 });
  assert.equal(
    outcome(() => proc.mm.msync(map, 2 * P, MS_SYNC)),
    'EIO',
  );
  assert.ok(!new Uint8Array(readFileSync(path)).every((x, i) => x === data[i]), 'a page failed');
  assert.equal(
    outcome(() => proc.mm.msync(map, 2 * P, MS_SYNC)),
    'ok',
    'the failed page stayed dirty; the retry wrote it',
  );
  assert.deepEqual(new Uint8Array(readFileSync(path)), data);
  // msync goes through the mapping's file, not a description: the descriptor open at the time of
  // the failure hears of it at its next fsync, once.
  assert.equal(
    outcome(() => proc.fsync(fd)),
    'EIO',
  );
  assert.equal(
    outcome(() => proc.fsync(fd)),
    'ok',
  );
  proc.mm.munmap(map, 2 * P);
  finish(kernel, proc);
});

test('truncate and punch: the range reads as zeros at once, through vmspace and in the host file after fsync', () => {
  const { kernel, proc } = setup();
  const size = 6 * P;
  const data = pattern(16, 0, size);
  const path = hostFile('punch.bin', data);
  const fd = proc.open(path, O_RDWR);
  const buf = buffer(proc, 8 * P);
  assert.equal(proc.pread(fd, buf, size, 0), size); // everything cached
  // Punch [P + 100, 4P + 50): partial pages at both ends, two whole pages between.
  proc.fallocate(fd, PUNCH, P + 100, 3 * P - 50);
  const expected = data.slice();
  expected.fill(0, P + 100, 4 * P + 50);
  assert.equal(proc.fstat(fd).size, size, 'KEEP_SIZE');
  assert.equal(proc.pread(fd, buf, size, 0), size);
  assert.deepEqual(peek(proc, buf, size), expected);
  // Punch past the end: nothing.
  proc.fallocate(fd, PUNCH, size + P, P);
  // Shrink to an unaligned size, then grow: the cut bytes come back as zeros.
  proc.ftruncate(fd, 2 * P + 10);
  assert.equal(statSync(path).size, 2 * P + 10);
  proc.ftruncate(fd, 5 * P);
  expected.fill(0, 2 * P + 10);
  assert.equal(proc.pread(fd, buf, 6 * P, 0), 5 * P);
  assert.deepEqual(peek(proc, buf, 5 * P), expected.subarray(0, 5 * P));
  proc.fsync(fd);
  assert.deepEqual(new Uint8Array(readFileSync(path)), expected.subarray(0, 5 * P));
  // The backing's error: EIO, and (growing) nothing changed.
  setInjection(kernel.files, fileOf(proc, fd), INJECT_TRUNCATE, { failNext: 1 });
  assert.equal(
    outcome(() => proc.ftruncate(fd, 7 * P)),
    'EIO',
  );
  assert.equal(proc.fstat(fd).size, 5 * P);
  finish(kernel, proc);
});

test('a punch over pages written past the host file end: fsync still gives the host file its size (the stress found it)', () => {
  const { kernel, proc } = setup();
  const path = hostFile('punch-past-host.bin', pattern(17, 0, 2 * P));
  const fd = proc.open(path, O_RDWR);
  const buf = buffer(proc, 2 * P);
  proc.mm.mmu().copyOut(buf, pattern(18, 0, 2 * P));
  // i_size grows to 6 pages in the cache only (no writeback yet); then pages 4 and 5 are punched:
  // nothing dirty is left past the host file's end, yet the file is 6 pages long.
  assert.equal(proc.pwrite(fd, buf, 2 * P, 4 * P), 2 * P);
  proc.fallocate(fd, PUNCH, 4 * P, 2 * P);
  assert.equal(proc.fstat(fd).size, 6 * P);
  proc.fsync(fd);
  const expected = new Uint8Array(6 * P);
  expected.set(pattern(17, 0, 2 * P));
  assert.deepEqual(new Uint8Array(readFileSync(path)), expected, 'the host file after fsync');
  finish(kernel, proc);
});

test('an O_CREAT file written and read back across page and description boundaries', () => {
  const { kernel, proc } = setup();
  const path = join(dir, 'new.bin');
  const fd = proc.open(path, O_RDWR | O_CREAT, 0o600);
  const buf = buffer(proc, 3 * P);
  for (let k = 0; k < 20; k++) {
    const piece = pattern(18 + k, 0, 700);
    poke(proc, buf, piece);
    assert.equal(proc.write(fd, buf, 700), 700);
  }
  proc.fsync(fd);
  const host = new Uint8Array(readFileSync(path));
  assert.equal(host.length, 14000);
  for (let k = 0; k < 20; k++)
    assert.deepEqual(host.subarray(k * 700, k * 700 + 700), pattern(18 + k, 0, 700));
  const ro = proc.open(path, O_RDONLY);
  assert.equal(proc.pread(ro, buf, 3 * P, 6000), 8000, 'to the end of the file');
  assert.deepEqual(peek(proc, buf, 8000), host.subarray(6000));
  finish(kernel, proc);
});
