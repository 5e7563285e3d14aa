/**
 * The host backing (src/fs/host-backing.ts) against real temporary files: pages read straight into
 * PhysMem frames (a Uint8Array over a SharedArrayBuffer: node:fs accepts it), the tail past end of
 * file zeroed, writes that node:fs sees outside vmspace, truncate and extend, punch writing zeros
 * without growing the file, fsync/fdatasync, host errors as Linux errno, and the host descriptor
 * closed by the file's last put.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EBADF, EINVAL, EIO, ENOENT, ENOSPC } from '../../src/errno.js';
import { BACKING_HOST } from '../../src/fs/backing.js';
import { hostBacking, hostErrno } from '../../src/fs/host-backing.js';
import { O_RDONLY, O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { KIND_FILE } from '../../src/mem/page.js';
import { Rng } from '../../src/rng.js';
import { KERNEL_EMPTY } from '../support/leaks.js';

const P = 4096;
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-hostbacking-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function randomBytes(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r.below(256);
  return b;
}

/** A kernel, a host file holding `content` opened with `flags`, its file id and a file frame. */
function setup(name: string, content: Uint8Array, flags = O_RDWR) {
  const path = join(dir, name);
  writeFileSync(path, content);
  const kernel = Kernel.create({ frames: 256 });
  const of = kernel.openHost(path, { flags });
  const file = kernel.opens.file(of);
  const pfn = kernel.mem.allocFrame(KIND_FILE, file, 0);
  const frame = kernel.mem.bytes.subarray(pfn * P, pfn * P + P);
  return { path, kernel, of, file, pfn, frame };
}

function finish(kernel: Kernel, of: number, pfn: number): void {
  kernel.mem.putPage(pfn);
  kernel.opens.put(of);
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

test('readPage reads into a frame of shared memory; the part past end of file is zeroed', () => {
  const content = randomBytes(2 * P + 100, 1);
  const { kernel, of, file, pfn, frame } = setup('read.bin', content);
  assert.equal(kernel.files.backing(file), BACKING_HOST);
  assert.equal(kernel.files.size(file), 2 * P + 100);
  assert.ok(frame.buffer instanceof SharedArrayBuffer);
  for (let index = 0; index < 4; index++) {
    frame.fill(0xee);
    const n = hostBacking.readPage(kernel.files, file, index, frame);
    const expect = Math.max(0, Math.min(P, content.length - index * P));
    assert.equal(n, expect, `page ${index}`);
    assert.deepEqual(frame.subarray(0, n), content.subarray(index * P, index * P + n));
    assert.ok(
      frame.subarray(n).every((b) => b === 0),
      `page ${index}: the tail is zeroed`,
    );
  }
  finish(kernel, of, pfn);
});

test('writePage writes a page (or its first len bytes) that node:fs reads outside vmspace', () => {
  const { path, kernel, of, file, pfn, frame } = setup('write.bin', new Uint8Array(P));
  frame.set(randomBytes(P, 2));
  assert.equal(hostBacking.writePage(kernel.files, file, 3, frame, 1000), 0);
  const host = readFileSync(path);
  assert.equal(host.length, 3 * P + 1000, 'the file grew to the end of the write');
  assert.deepEqual(new Uint8Array(host.subarray(3 * P)), frame.subarray(0, 1000));
  assert.ok(
    host.subarray(P, 3 * P).every((b) => b === 0),
    'the hole reads as zeros',
  );
  assert.equal(hostBacking.writePage(kernel.files, file, 0, frame, P), 0);
  assert.deepEqual(new Uint8Array(readFileSync(path).subarray(0, P)), frame);
  finish(kernel, of, pfn);
});

test('setSize truncates and extends; punch writes zeros over the range without growing the file', () => {
  const content = randomBytes(4 * P, 3);
  const { path, kernel, of, file, pfn } = setup('size.bin', content);
  assert.equal(hostBacking.setSize(kernel.files, file, 3 * P + 7), 0);
  assert.equal(statSync(path).size, 3 * P + 7);
  assert.equal(hostBacking.setSize(kernel.files, file, 5 * P), 0);
  const grown = readFileSync(path);
  assert.equal(grown.length, 5 * P);
  assert.deepEqual(new Uint8Array(grown.subarray(0, 3 * P + 7)), content.subarray(0, 3 * P + 7));
  assert.ok(
    grown.subarray(3 * P + 7).every((b) => b === 0),
    'the extension reads as zeros',
  );
  writeFileSync(path, content);
  // 100 bytes into page 1, to 200 bytes past the end: zeros up to the end, the size kept.
  assert.equal(hostBacking.punch(kernel.files, file, P + 100, 3 * P + 200), 0);
  const punched = readFileSync(path);
  assert.equal(punched.length, 4 * P, 'KEEP_SIZE: the file did not grow');
  assert.deepEqual(new Uint8Array(punched.subarray(0, P + 100)), content.subarray(0, P + 100));
  assert.ok(punched.subarray(P + 100).every((b) => b === 0));
  // A punch of more than one 64 KiB chunk, and a punch wholly past the end (nothing to write).
  assert.equal(hostBacking.setSize(kernel.files, file, 40 * P), 0);
  writeFileSync(path, randomBytes(40 * P, 4));
  assert.equal(hostBacking.punch(kernel.files, file, 5, 39 * P), 0);
  const big = readFileSync(path);
  assert.ok(big.subarray(5, 39 * P + 5).every((b) => b === 0));
  assert.ok(
    big.subarray(39 * P + 5).some((b) => b !== 0),
    'bytes past the range stay',
  );
  assert.equal(hostBacking.punch(kernel.files, file, 100 * P, P), 0);
  assert.equal(statSync(path).size, 40 * P);
  assert.equal(hostBacking.sync(kernel.files, file, false), 0);
  assert.equal(hostBacking.sync(kernel.files, file, true), 0);
  finish(kernel, of, pfn);
});

test('host errors come back as Linux errno: a write through a read-only host descriptor is EBADF', () => {
  const { path, kernel, of, file, pfn, frame } = setup('ro.bin', randomBytes(P, 5), O_RDONLY);
  frame.fill(7);
  assert.equal(hostBacking.writePage(kernel.files, file, 0, frame, P), -EBADF);
  assert.equal(
    hostBacking.setSize(kernel.files, file, 0),
    -EINVAL,
    'ftruncate of a read-only descriptor: EINVAL',
  );
  assert.equal(hostBacking.punch(kernel.files, file, 0, P), -EBADF);
  assert.deepEqual(new Uint8Array(readFileSync(path)), randomBytes(P, 5), 'the file is unchanged');
  assert.equal(hostBacking.readPage(kernel.files, file, 0, frame), P, 'reads still work');
  finish(kernel, of, pfn);
});

test('hostErrno: a real ENOSPC from the host (/dev/full), unknown codes and non-errors are EIO', () => {
  let real: unknown = null;
  const fd = openSync('/dev/full', 'w');
  try {
    writeSync(fd, new Uint8Array(new SharedArrayBuffer(16)));
  } catch (error) {
    real = error;
  } finally {
    closeSync(fd);
  }
  assert.ok(real !== null, '/dev/full accepted a write');
  assert.equal(hostErrno(real), ENOSPC);
  let missing: unknown = null;
  try {
    readFileSync(join(dir, 'missing'));
  } catch (error) {
    missing = error;
  }
  assert.equal(hostErrno(missing), ENOENT);
  assert.equal(hostErrno({ code: 'EWHATEVER' }), EIO);
  assert.equal(hostErrno({ code: 'ERR_INVALID_ARG_TYPE' }), EIO);
  assert.equal(hostErrno(new Error('plain')), EIO);
  assert.equal(hostErrno(null), EIO);
});

test("the file's last put closes its host descriptor, not an earlier one", () => {
  const path = join(dir, 'close.bin');
  writeFileSync(path, randomBytes(100, 6));
  const kernel = Kernel.create({ frames: 64 });
  const of = kernel.openHost(path, { flags: O_RDWR });
  const file = kernel.opens.file(of);
  const fd = kernel.files.hostFd(file);
  assert.equal(fstatSync(fd).size, 100);
  kernel.files.get(file); // a mapping's reference, say
  kernel.opens.put(of);
  assert.equal(kernel.counts().openFiles, 0);
  assert.equal(fstatSync(fd).size, 100, 'still open: the file has a reference');
  kernel.files.put(file);
  assert.throws(() => fstatSync(fd), { code: 'EBADF' });
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});
