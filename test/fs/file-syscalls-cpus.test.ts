/**
 * File syscalls on two worker CPUs of one process (src/kernel/file-syscalls.ts): write() and read()
 * through one shared open file description keep one consistent f_pos (every record whole, none
 * lost or read twice), and pwrite/pread at disjoint offsets never see each other's bytes; the host
 * file holds the same after fsync; the validator reports nothing (no I/O under mmap_lock, no
 * lock-order cycle); every count is back to zero.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { O_CREAT, O_RDWR } from '../../src/fs/open-file.js';
import { SEEK_CUR, SEEK_SET } from '../../src/kernel/file-syscalls.js';
import { Machine } from '../../src/machine/machine.js';
import { finish, P, setup } from './file-syscalls-util.js';
import { quietValidator, validatorCounts } from './quiet-validator.js';
import { type FileIoArgs, type FileIoResult, pageByte, REC, recordByte } from './tasks/file-io.js';

const task = new URL('./tasks/file-io.js', import.meta.url);
let dir = '';
let machine: Machine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-fileio-cpus-'));
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function runBoth(
  role: FileIoArgs['role'],
  proc: ReturnType<typeof setup>['proc'],
  fd: number,
  rounds: number,
  pages = 0,
): Promise<FileIoResult[]> {
  const sync = new SharedArrayBuffer(4);
  const args: FileIoArgs = { role, process: proc.describe(), fd, rounds, pages, cpus: 2, sync };
  const results = (
    await Promise.all([
      machine.run<FileIoResult>(task, args, [0]),
      machine.run<FileIoResult>(task, args, [1]),
    ])
  ).map(([r]) => r);
  for (const r of results) assert.equal(r.error, '', r.error);
  return results;
}

test('two CPUs write() and then read() through one shared description: one f_pos, every record whole, none lost or read twice', async () => {
  const counts = validatorCounts();
  const { kernel, proc } = setup();
  const path = join(dir, 'records.bin');
  const fd = proc.open(path, O_RDWR | O_CREAT);
  const ROUNDS = 600;
  await runBoth('append', proc, fd, ROUNDS);
  const total = 2 * ROUNDS * REC;
  assert.equal(proc.fstat(fd).size, total);
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), total, 'f_pos moved by every write');
  proc.fsync(fd);
  const host = new Uint8Array(readFileSync(path));
  assert.equal(host.length, total);
  const next = [0, 0];
  for (let at = 0; at < total; at += REC) {
    const words = new Int32Array(host.buffer.slice(at, at + 8));
    const [cpu, seq] = [words[0], words[1]];
    assert.ok(cpu === 0 || cpu === 1, `record at ${at}: cpu ${cpu}`);
    assert.equal(seq, next[cpu], `record at ${at}: CPU ${cpu}'s records in order, none lost`);
    next[cpu]++;
    for (let i = 8; i < REC; i++)
      assert.equal(host[at + i], recordByte(cpu, seq, i), `record at ${at} is whole`);
  }
  assert.deepEqual(next, [ROUNDS, ROUNDS]);
  // Both CPUs read it back through the same description.
  proc.lseek(fd, 0, SEEK_SET);
  const [a, b] = await runBoth('read', proc, fd, 0);
  assert.equal(a.bad + b.bad, 0, 'no torn record');
  const seen = new Set<number>();
  for (const r of [a, b]) {
    for (let i = 0; i < r.records.length; i += 2) {
      const key = r.records[i] * 1_000_000 + r.records[i + 1];
      assert.ok(!seen.has(key), `record ${key} read twice`);
      seen.add(key);
    }
  }
  assert.equal(seen.size, 2 * ROUNDS, 'every record read once');
  assert.ok(a.records.length > 0 && b.records.length > 0, 'both CPUs read');
  assert.equal(proc.lseek(fd, 0, SEEK_CUR), total);
  finish(kernel, proc);
  quietValidator(counts);
});

test('two CPUs pwrite and pread disjoint pages of one file: each sees its own bytes; the host file has the last round', async () => {
  const counts = validatorCounts();
  const { kernel, proc } = setup();
  const path = join(dir, 'pages.bin');
  const fd = proc.open(path, O_RDWR | O_CREAT);
  const PAGES = 48;
  const ROUNDS = 12;
  const [a, b] = await runBoth('pages', proc, fd, ROUNDS, PAGES);
  assert.equal(a.bad + b.bad, 0, 'no page read back wrong');
  assert.equal(proc.fstat(fd).size, PAGES * P);
  proc.fsync(fd);
  const host = new Uint8Array(readFileSync(path));
  assert.equal(host.length, PAGES * P);
  for (let k = 0; k < PAGES; k++)
    for (let i = 0; i < P; i += 97)
      assert.equal(host[k * P + i], pageByte(k, ROUNDS - 1, i), `page ${k} byte ${i}`);
  finish(kernel, proc);
  quietValidator(counts);
});
