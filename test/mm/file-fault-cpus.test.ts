/**
 * File faults on two real worker CPUs (tasks/file-fault-cpu.ts): a store through one process's
 * MAP_SHARED mapping is seen at once by another process's mapping of the same file on the other
 * CPU; a fault whose `fault` callback is slowed down (injected latency) does not hold up mmap and
 * munmap of the same address space on another CPU under vma-lock (it drops its locks for the
 * I/O), while under 'global' they wait behind it; the validator sees no I/O under mmap_lock
 * except under 'global'; a per-VMA-lock write fault, which runs with its CPU's Mmu online, takes
 * it offline before its page_mkwrite sleeps (a munmap's shootdown on the other CPU does not wait
 * for the sleep); nothing leaks.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { INJECT_FAULT, INJECT_MKWRITE, setInjection } from '../../src/fs/inject.js';
import { findGetPage } from '../../src/fs/page-cache.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts } from '../../src/lockdep/index.js';
import { Machine } from '../../src/machine/machine.js';
import { PG_DIRTY } from '../../src/mem/page.js';
import type { FaultDesign } from '../../src/mm/fault-design.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { FileFaultCpuArgs, FileFaultCpuResult } from './tasks/file-fault-cpu.js';

const P = 4096;
const BASE = 0x200000000;
const RW = PROT_READ | PROT_WRITE;
const task = new URL('./tasks/file-fault-cpu.js', import.meta.url);

let machine: Machine;
before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

function finish(kernel: Kernel, ...procs: Process[]): void {
  for (const p of procs) p.exit();
  for (const p of procs) p.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
}

test("a store through one process's shared file mapping is seen at once by another process on another CPU", async () => {
  const kernel = Kernel.create({ frames: 4096 });
  const a = Process.create(kernel);
  const fd = a.open({ size: 16 * P, writable: true, name: 'shared.bin' });
  const b = a.fork();
  a.mm.mmap(BASE, 16 * P, RW, MAP_SHARED | MAP_FIXED, fd);
  b.mm.mmap(BASE + 64 * P, 16 * P, RW, MAP_SHARED | MAP_FIXED, fd);
  const sync = new SharedArrayBuffer(16);
  const base = { pages: 16, rounds: 2000, durationMs: 0, sync, stallMs: 0 };
  const [[w], [r]] = await Promise.all([
    machine.run<FileFaultCpuResult>(
      task,
      { ...base, role: 'writer', process: a.describe(), base: BASE } satisfies FileFaultCpuArgs,
      [0],
    ),
    machine.run<FileFaultCpuResult>(
      task,
      { ...base, role: 'reader', process: b.describe(), base: BASE + 64 * P } satisfies FileFaultCpuArgs,
      [1],
    ),
  ]);
  assert.equal(w.count, 2000);
  assert.equal(r.count, 2000);
  assert.equal(r.mismatches, 0, 'every round seen at once');
  a.close(fd);
  b.close(fd);
  finish(kernel, b, a);
});

/** The injected latency of the file's `fault` callback (ms). */
const LATENCY_MS = 1000;

/** One slow fault on CPU 0 while CPU 1 maps and unmaps: the mapper's iterations beside it. */
async function slowFaultVersusMmap(
  design: FaultDesign,
): Promise<{ maps: number; longestMs: number; io: number }> {
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel, { config: { design } });
  const fd = proc.open({ size: 64 * P, writable: true, name: 'slow.bin' });
  const file = proc.mm.fds.fget(fd);
  kernel.files.put(file);
  setInjection(kernel.files, file, INJECT_FAULT, { latencyUs: LATENCY_MS * 1000 });
  proc.mm.mmap(BASE, 64 * P, PROT_READ, MAP_SHARED | MAP_FIXED, fd);
  const io = lockdepCounts().mmap_io;
  const sync = new SharedArrayBuffer(16);
  const base = {
    process: proc.describe(),
    base: BASE,
    pages: 64,
    rounds: 0,
    durationMs: 3 * LATENCY_MS,
    sync,
    stallMs: LATENCY_MS / 5,
  };
  const [, [m]] = await Promise.all([
    machine.run<FileFaultCpuResult>(task, { ...base, role: 'faulter' } satisfies FileFaultCpuArgs, [0]),
    machine.run<FileFaultCpuResult>(task, { ...base, role: 'mapper' } satisfies FileFaultCpuArgs, [1]),
  ]);
  const result = { maps: m.count, longestMs: Math.round(m.longestMs), io: lockdepCounts().mmap_io - io };
  proc.close(fd);
  finish(kernel, proc);
  return result;
}

test('a fault waiting for slow I/O holds up mmap/munmap on another CPU under global, not under vma-lock or retry', async () => {
  const vma = await slowFaultVersusMmap('vma-lock');
  const retry = await slowFaultVersusMmap('retry');
  const global = await slowFaultVersusMmap('global');
  if (process.env.FILE_FAULT_VERBOSE) console.log({ vma, retry, global });
  assert.equal(vma.io + retry.io, 0, 'vma-lock, retry: no I/O under mmap_lock');
  assert.ok(global.io > 0, 'global: I/O under mmap_lock, counted');
  assert.ok(
    vma.maps >= 10 && retry.maps >= 10,
    `beside the fault: vma-lock ${vma.maps}, retry ${retry.maps}`,
  );
  // Under global the fault holds mmap_lock across its callback: an mmap waits for the rest of it
  // (a mapper that started before the fault took the lock may slip a few iterations in first).
  const half = LATENCY_MS / 2;
  assert.ok(global.longestMs >= half, `global: the longest mmap/munmap took ${global.longestMs} ms`);
  assert.ok(
    vma.longestMs < half && retry.longestMs < half,
    `longest mmap/munmap beside the fault: vma-lock ${vma.longestMs} ms, retry ${retry.longestMs} ms`,
  );
});

test('a per-VMA-lock shared write whose page_mkwrite sleeps takes its Mmu offline first: munmaps on another CPU do not wait for it', async () => {
  const kernel = Kernel.create({ frames: 4096 });
  const proc = Process.create(kernel);
  const fd = proc.open({ size: 64 * P, writable: true, name: 'mkwrite.bin' });
  const file = proc.mm.fds.fget(fd);
  kernel.files.put(file);
  proc.mm.mmap(BASE, 64 * P, RW, MAP_SHARED | MAP_FIXED, fd);
  setInjection(kernel.files, file, INJECT_MKWRITE, { latencyUs: LATENCY_MS * 1000 });
  const sync = new SharedArrayBuffer(16);
  const base = {
    process: proc.describe(),
    base: BASE,
    pages: 64,
    rounds: 0,
    durationMs: 3 * LATENCY_MS,
    sync,
    stallMs: LATENCY_MS / 5,
  };
  const t0 = performance.now();
  const [, [m]] = await Promise.all([
    machine.run<FileFaultCpuResult>(
      task,
      { ...base, role: 'faulter', mkwrite: true } satisfies FileFaultCpuArgs,
      [0],
    ),
    machine.run<FileFaultCpuResult>(
      task,
      { ...base, role: 'mapper', touch: true } satisfies FileFaultCpuArgs,
      [1],
    ),
  ]);
  const tookMs = performance.now() - t0;
  if (process.env.FILE_FAULT_VERBOSE) console.log({ maps: m.count, longestMs: m.longestMs, tookMs });
  assert.ok(tookMs >= LATENCY_MS, `the page_mkwrite latency was served (${Math.round(tookMs)} ms)`);
  // Each munmap shoots down the page it touched: it would wait for a CPU asleep online.
  assert.ok(m.count >= 10, `munmaps beside the sleeping page_mkwrite: ${m.count}`);
  assert.ok(m.longestMs < LATENCY_MS / 2, `the longest mmap/touch/munmap took ${Math.round(m.longestMs)} ms`);
  setInjection(kernel.files, file, INJECT_MKWRITE, { latencyUs: 0 });
  assert.equal(proc.mm.mmu().load32(BASE), 1, 'the write landed');
  const pfn = findGetPage(kernel.files, file, 0);
  assert.ok(pfn !== 0 && kernel.mem.testFlag(pfn, PG_DIRTY), 'page_mkwrite dirtied the page');
  kernel.mem.putPage(pfn);
  proc.close(fd);
  finish(kernel, proc);
});
