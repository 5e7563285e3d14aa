/**
 * Helpers of the file-syscall tests (test/fs/file-syscalls*.test.ts): a kernel and a process, user
 * buffers in anonymous memory filled and read through the process's Mmu, outcomes as errno names,
 * and the leak check.
 */
import assert from 'node:assert/strict';
import { VmError } from '../../src/errno.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';

export const P = 4096;
export const RW = PROT_READ | PROT_WRITE;

export function setup(frames = 8192): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames });
  return { kernel, proc: Process.create(kernel, { rcuFree: false }) };
}

/** Exits the processes, waits out deferred frees, and checks every count is back to zero. */
export function finish(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

/** A private anonymous read-write buffer of `bytes` (whole pages). */
export function buffer(proc: Process, bytes: number): number {
  return proc.mm.mmap(0, Math.ceil(bytes / P) * P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
}

/** Stores `data` at addr through the Mmu. */
export function poke(proc: Process, addr: number, data: Uint8Array): void {
  assert.equal(proc.mm.mmu().copyOut(addr, data), 0, 'poke faulted');
}

/** `len` bytes at addr through the Mmu. */
export function peek(proc: Process, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  assert.equal(proc.mm.mmu().copyIn(addr, out), 0, 'peek faulted');
  return out;
}

/** Bytes of a seeded pattern: byte i of stream `seed` (never all zero). */
export function pattern(seed: number, at: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (((at + i) * 31 + seed * 7 + ((at + i) >> 12)) % 251) | 1;
  return out;
}

/** The errno name a call throws, or 'ok'. */
export function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof VmError) return e.code;
    throw e;
  }
}

/** The file (id) behind descriptor `fd` (the descriptor keeps it alive). */
export function fileOf(proc: Process, fd: number): number {
  const file = proc.fds.fget(fd);
  assert.ok(file !== 0, `descriptor ${fd} is not open`);
  proc.kernel.files.put(file);
  return file;
}

/** A second open file description of the file behind `fd`, installed at a new descriptor. */
export function reopen(proc: Process, fd: number, flags: number): number {
  const of = proc.fds.opens.open(fileOf(proc, fd), flags);
  assert.ok(of > 0);
  const fd2 = proc.fds.installOpen(of, false);
  proc.fds.opens.put(of);
  return fd2;
}
