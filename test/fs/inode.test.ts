/**
 * The inode hash on one CPU (docs/fs.md, "Opening files"; src/fs/inode-hash.ts): every open of one
 * host file names one file record, so one page cache: two descriptions of a path (or of a hard
 * link) see each other's writes at once through read/write and MAP_SHARED mappings; O_TRUNC of a
 * cached file truncates through the cache; the access mode that matters is the description's;
 * the record lives while a description or a mapping uses it, then leaves the hash with its cache;
 * a failing open changes nothing. Concurrency: test/fs/inode-cpus.test.ts.
 */
import assert from 'node:assert/strict';
import { fstatSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts, lockdepDependencies } from '../../src/lockdep/index.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { buffer, fileOf, finish, outcome, P, RW } from './file-syscalls-util.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-inode-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function setup(injector?: FailureInjector): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames: 2048, injector });
  return { kernel, proc: Process.create(kernel, { rcuFree: false }) };
}

/** A host file of `pages` pages, every byte `fill`. */
function hostFile(name: string, pages: number, fill = 0): string {
  const path = join(dir, name);
  writeFileSync(path, new Uint8Array(pages * P).fill(fill));
  return path;
}

/** The host file's word `w` (read with node:fs, outside vmspace). */
function hostWord(path: string, w: number): number {
  return new DataView(readFileSync(path).buffer).getInt32(w * 4, true);
}

function isSigbus(e: unknown): boolean {
  return e instanceof MemoryFault && e.signal === 'SIGBUS';
}

test('two opens of one path in one process: one record, one cache; read/write and MAP_SHARED see each other at once', () => {
  const { kernel, proc } = setup();
  const path = hostFile('two-opens.bin', 4);
  const a = proc.open(path, O_RDWR);
  const b = proc.open(path, O_RDWR);
  const file = fileOf(proc, a);
  assert.equal(fileOf(proc, b), file, 'one record per host file');
  assert.equal(kernel.counts().files, 1);
  assert.equal(kernel.files.inodes.check(), 1);
  const mmu = proc.mm.mmu();
  const buf = buffer(proc, P);
  const mapA = proc.mm.mmap(0, 4 * P, RW, MAP_SHARED, a, 0);
  const mapB = proc.mm.mmap(0, 4 * P, RW, MAP_SHARED, b, 0);
  for (let i = 1; i <= 50; i++) {
    const w = (i * 97) % P; // a word of the 4-page file (P words)
    // write(b) -> load through a's mapping and read(a).
    mmu.store32(buf, i);
    assert.equal(proc.pwrite(b, buf, 4, w * 4), 4);
    assert.equal(mmu.load32(mapA + w * 4), i, `round ${i}: a's mapping sees b's write`);
    mmu.store32(buf, 0);
    assert.equal(proc.pread(a, buf, 4, w * 4), 4);
    assert.equal(mmu.load32(buf), i, `round ${i}: read(a) sees write(b)`);
    // store through b's mapping -> read(a) and a's mapping.
    mmu.store32(mapB + w * 4, -i);
    assert.equal(proc.pread(a, buf, 4, w * 4), 4);
    assert.equal(mmu.load32(buf), -i, `round ${i}: read(a) sees b's store`);
    assert.equal(mmu.load32(mapA + w * 4), -i);
  }
  assert.ok(
    kernel.files.nrpages(file) > 0 && kernel.files.nrpages(file) <= 4,
    'one cache of at most 4 pages',
  );
  // Written back once, through the one host descriptor: fsync on either description.
  proc.fsync(a);
  const w = (50 * 97) % P;
  assert.equal(hostWord(path, w), -50);
  proc.mm.munmap(mapA, 4 * P);
  proc.mm.munmap(mapB, 4 * P);
  proc.close(a);
  assert.ok(kernel.files.isFile(file) && kernel.files.inodes.hashed(file), 'b still holds it');
  proc.close(b);
  assert.equal(kernel.files.inodes.count, 0);
  finish(kernel, proc);
});

test('a hard link is the same inode: opening it finds the same record', () => {
  const { kernel, proc } = setup();
  const path = hostFile('linked.bin', 1, 5);
  const link = join(dir, 'linked-too.bin');
  linkSync(path, link);
  const a = proc.open(path, O_RDWR);
  const b = proc.open(link, O_RDONLY);
  assert.equal(fileOf(proc, b), fileOf(proc, a));
  assert.equal(kernel.files.name(fileOf(proc, b)), path, 'the first opener named it');
  const other = proc.open(hostFile('unlinked.bin', 1, 5), O_RDONLY);
  assert.notEqual(fileOf(proc, other), fileOf(proc, a), 'another inode, another record');
  assert.equal(kernel.files.inodes.check(), 2);
  for (const fd of [a, b, other]) proc.close(fd);
  finish(kernel, proc);
});

test('O_TRUNC of a cached, mapped, dirty file truncates through its page cache: mappings zapped, SIGBUS at once', () => {
  const { kernel, proc } = setup();
  const path = hostFile('trunc.bin', 3, 1);
  const a = proc.open(path, O_RDWR);
  const file = fileOf(proc, a);
  const map = proc.mm.mmap(0, 3 * P, RW, MAP_SHARED, a, 0);
  const mmu = proc.mm.mmu();
  for (let pg = 0; pg < 3; pg++) mmu.store32(map + pg * P, 77 + pg); // dirty, mapped
  assert.equal(kernel.files.nrpages(file), 3);
  const t = proc.open(path, O_WRONLY | O_TRUNC);
  assert.equal(fileOf(proc, t), file, 'O_TRUNC opened the same record');
  assert.equal(kernel.files.size(file), 0);
  assert.equal(kernel.files.nrpages(file), 0, 'the cached pages are gone');
  assert.equal(statSync(path).size, 0, 'the host file is truncated');
  assert.throws(() => mmu.load32(map), isSigbus, 'the mapping was zapped: past the end is SIGBUS');
  // The dirty pages were dropped, not written back after the truncate.
  proc.fsync(a);
  assert.equal(statSync(path).size, 0);
  // Writing through the O_TRUNC description grows the one file; the mapping sees it.
  const buf = buffer(proc, P);
  mmu.store32(buf, 4242);
  assert.equal(proc.pwrite(t, buf, 4, 8), 4);
  assert.equal(mmu.load32(map + 8), 4242);
  assert.equal(kernel.files.size(file), 12);
  // O_RDONLY|O_TRUNC truncates too (Linux needs write permission for it, and so does the host open).
  const r = proc.open(path, O_RDONLY | O_TRUNC);
  assert.equal(kernel.files.size(file), 0);
  assert.throws(() => mmu.load32(map + 8), isSigbus);
  assert.equal(
    outcome(() => proc.pwrite(r, buf, 4, 0)),
    'EBADF',
    'the description is still read-only',
  );
  proc.mm.munmap(map, 3 * P);
  for (const fd of [a, t, r]) proc.close(fd);
  finish(kernel, proc);
});

test("the access mode is the description's: MAP_SHARED|PROT_WRITE needs a writable one; a writable open upgrades the host descriptor", () => {
  const { kernel, proc } = setup();
  const path = hostFile('modes.bin', 1);
  const ro = proc.open(path, O_RDONLY);
  const file = fileOf(proc, ro);
  const roHost = kernel.files.hostFd(file);
  assert.ok(!kernel.files.hostWritable(file));
  assert.equal(proc.mm.sysMmap(0, P, RW, MAP_SHARED, ro, 0), -13, 'EACCES through the read-only description');
  const rw = proc.open(path, O_RDWR);
  assert.equal(fileOf(proc, rw), file);
  assert.ok(kernel.files.hostWritable(file), 'the host descriptor was upgraded');
  assert.notEqual(kernel.files.hostFd(file), roHost);
  assert.equal(fstatSync(roHost).size, P, 'the retired read-only descriptor stays open');
  assert.equal(proc.mm.sysMmap(0, P, RW, MAP_SHARED, ro, 0), -13, 'still EACCES through the read-only one');
  const map = proc.mm.sysMmap(0, P, RW, MAP_SHARED, rw, 0);
  assert.ok(map > 0);
  // A read-only shared mapping of the read-only description cannot be made writable later.
  const roMap = proc.mm.sysMmap(0, P, PROT_READ, MAP_SHARED, ro, 0);
  assert.ok(roMap > 0);
  assert.equal(proc.mm.sysMprotect(roMap, P, PROT_READ | PROT_WRITE), -13);
  proc.mm.mmu().store32(map, 99);
  proc.fsync(rw);
  assert.equal(hostWord(path, 0), 99, 'writeback went through the writable host descriptor');
  // The other order: a read-only open of a file a writable description holds.
  const ro2 = proc.open(path, O_RDONLY);
  assert.equal(proc.mm.sysMmap(0, P, RW, MAP_SHARED, ro2, 0), -13);
  const hostNow = kernel.files.hostFd(file);
  proc.mm.munmap(map, P);
  proc.mm.munmap(roMap, P);
  for (const fd of [ro, rw, ro2]) proc.close(fd);
  assert.throws(() => fstatSync(roHost), { code: 'EBADF' }, 'the release closed both host descriptors');
  assert.throws(() => fstatSync(hostNow), { code: 'EBADF' });
  finish(kernel, proc);
});

test('the record lives while a mapping uses it, leaves the hash with its cache at the last put; a later open reads what it wrote back', () => {
  const { kernel, proc } = setup();
  const path = hostFile('lives.bin', 2);
  const fd = proc.open(path, O_RDWR);
  const file = fileOf(proc, fd);
  const map = proc.mm.mmap(0, 2 * P, RW, MAP_SHARED, fd, 0);
  proc.close(fd);
  assert.ok(kernel.files.isFile(file) && kernel.files.inodes.hashed(file), 'the mapping holds the record');
  proc.mm.mmu().store32(map + P, 31337);
  // An open while only the mapping holds it finds the same record and sees the unwritten store.
  const again = proc.open(path, O_RDONLY);
  assert.equal(fileOf(proc, again), file);
  const buf = buffer(proc, P);
  assert.equal(proc.pread(again, buf, 4, P), 4);
  assert.equal(proc.mm.mmu().load32(buf), 31337);
  assert.equal(hostWord(path, P / 4), 0, 'not written back yet');
  proc.close(again);
  proc.mm.munmap(map, 2 * P); // the last put (delayed fput): write back, drop the cache, unhash
  assert.ok(!kernel.files.isFile(file));
  assert.equal(kernel.files.inodes.count, 0);
  rcuBarrier(); // the cache's index nodes go back after a grace period
  assert.equal(kernel.counts().cacheNodes, 0);
  assert.equal(hostWord(path, P / 4), 31337, 'the release wrote the dirty page back');
  const fresh = proc.open(path, O_RDONLY);
  assert.equal(proc.pread(fresh, buf, 4, P), 4);
  assert.equal(proc.mm.mmu().load32(buf), 31337);
  proc.close(fresh);
  finish(kernel, proc);
  assert.equal(kernel.files.inodes.count, 0);
});

test('failing opens of a cached file change nothing: its references, the hash, the descriptors, the host file', () => {
  const injector = new FailureInjector();
  const { kernel, proc } = setup(injector);
  const path = hostFile('cached.bin', 1, 3);
  const fd = proc.open(path, O_RDWR);
  const file = fileOf(proc, fd);
  const state = () =>
    JSON.stringify([
      kernel.counts(),
      kernel.files.refs(file),
      kernel.files.inodes.count,
      proc.fds.count,
      statSync(path).size,
    ]);
  const before = state();
  const cases: [string, () => number][] = [
    ['EEXIST', () => proc.open(path, O_RDWR | O_CREAT | O_EXCL)],
    ['EINVAL', () => proc.open(path, 3)],
    ['ENOENT', () => proc.open(join(dir, 'missing.bin'), O_RDWR)],
    ['EISDIR', () => proc.open(dir, O_RDWR)],
    ['EFAULT', () => proc.open(7 as unknown as string, O_RDWR)],
  ];
  for (const [errno, call] of cases) {
    assert.equal(outcome(call), errno);
    assert.equal(state(), before, errno);
  }
  // ENOMEM at each allocation of an open whose record is hashed already (the new record, the description).
  for (let k = 0; k < 2; k++) {
    injector.failAfter(k);
    assert.equal(
      outcome(() => proc.open(path, O_RDWR | O_TRUNC)),
      'ENOMEM',
    );
    injector.disarm();
    assert.equal(state(), before, `ENOMEM at allocation ${k}: nothing changed, nothing truncated`);
  }
  proc.close(fd);
  finish(kernel, proc);
});

test('inode_hash is a leaf for the validator: taken with no lock held, nothing taken under it', () => {
  const { kernel, proc } = setup();
  const path = hostFile('leaf.bin', 1);
  const a = proc.open(path, O_RDWR);
  const b = proc.open(path, O_RDONLY | O_TRUNC); // the hashed path, and a truncate after it
  const map = proc.mm.mmap(0, P, RW, MAP_SHARED, a, 0);
  proc.close(a);
  proc.close(b);
  proc.mm.munmap(map, P); // the release (and its unhash) after mmap_lock: delayed fput
  const deps = lockdepDependencies();
  assert.ok(deps.length > 0, 'the validator records dependencies in this suite');
  const touching = deps.filter((d) => d.from === '(inode_hash)' || d.to === '(inode_hash)');
  assert.deepEqual(touching, [], 'no lock before or after inode_hash');
  const c = lockdepCounts();
  assert.deepEqual([c.circular, c.sleep_in_atomic, c.held_at_return], [0, 0, 0]);
  finish(kernel, proc);
});
