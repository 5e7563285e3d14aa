/**
 * The deadlock rule of docs/mem.md ("Wiring", item 6) for the views: a CPU that blocks on
 * mmap_lock must have its Mmu offline, or a shootdown issued under mmap_lock (W) by another CPU
 * waits for an acknowledgement that never comes. Here CPU 0 has an online Mmu and reads its maps
 * (Process.maps -> AddressSpace.vmas, mmap_lock (R)) while the main thread holds mmap_lock (W) and
 * shoots down the page CPU 0 caches: the shootdown must return at once (it hung until the
 * watchdog when vmas() took the lock with the Mmu online).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cpuWaits, WAIT_READ } from '../../src/cpu/waits.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { mmapWriteLock, mmapWriteUnlock } from '../../src/mm/vma-lock.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import type { MapsReaderArgs } from './tasks/maps-reader.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 1, watchdogMs: 3000 });
});
after(async () => {
  await machine.stop();
});

function waitFor(done: () => boolean, what: string): void {
  const deadline = Date.now() + 10_000;
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    Atomics.wait(sleep, 0, 0, 1);
  }
}

test('a CPU blocked on mmap_lock in Process.maps() does not hold up a shootdown under mmap_lock (W)', async () => {
  const kernel = Kernel.create({ frames: 1024 });
  const proc = Process.create(kernel);
  const page = proc.mm.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const sync = new SharedArrayBuffer(8);
  const flags = new Int32Array(sync);
  const args: MapsReaderArgs = { process: proc.describe(), page, sync };
  const reader = machine.run<string>(new URL('./tasks/maps-reader.js', import.meta.url), args, [0]);
  waitFor(() => Atomics.load(flags, 0) === 1, 'CPU 0 to cache the page');
  let shootdownMs = -1;
  mmapWriteLock(proc.mm.locks);
  try {
    Atomics.store(flags, 1, 1);
    waitFor(() => cpuWaits().some((w) => w.cpu === 0 && w.kind === WAIT_READ), 'CPU 0 to block on mmap_lock');
    const t0 = Date.now();
    const vpn = page / PAGE_SIZE;
    proc.mm.tlb.shootdown(vpn, vpn + 1);
    shootdownMs = Date.now() - t0;
  } finally {
    mmapWriteUnlock(proc.mm.locks);
  }
  const [maps] = await reader;
  assert.ok(shootdownMs < 1000, `the shootdown took ${shootdownMs} ms`);
  assert.match(maps, new RegExp(`^${page.toString(16)}-${(page + PAGE_SIZE).toString(16)} rw-p`, 'm'));
  proc.detach();
  proc.exit();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
});
