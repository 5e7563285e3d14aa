/**
 * read() copies runs of pages in consecutive frames with one move (src/mem/mmu.ts copyOutFrom):
 * on two worker CPUs, one pread()s a file into a window the other keeps unmapping and remapping
 * (shootdowns under the copies, and frames no longer consecutive after a while), then reuses the
 * freed frames for a scratch range it fills and checks. A read that no remap overlapped put the
 * file's bytes in every page (a run copied into the wrong frames fails here: seen by making the
 * run ignore consecutiveness), no read writes a frame through a stale translation (the scratch
 * stays intact, and the debug poison of freed frames at reuse; a smoke check: the window of such
 * a bug is microseconds wide), and every count is back to zero.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE } from '../../src/mm/vm-flags.js';
import { finish, P, poke, RW, setup } from './file-syscalls-util.js';
import { fileByte, PAGES, type ReadRemapArgs, type ReadRemapResult, WINDOW } from './tasks/read-remap.js';

const task = new URL('./tasks/read-remap.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
});

test('pread into a window another CPU remaps: never a write through a stale translation; undisturbed reads are the file', async () => {
  const { kernel, proc } = setup();
  const fd = proc.memfdCreate('remap');
  const data = new Uint8Array(PAGES * P);
  for (let k = 0; k < PAGES; k++) for (let i = 0; i < P; i++) data[k * P + i] = fileByte(k, i);
  const src = proc.mm.mmap(0, PAGES * P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  poke(proc, src, data);
  assert.equal(proc.write(fd, src, PAGES * P), PAGES * P);
  proc.mm.munmap(src, PAGES * P);
  proc.mm.mmap(WINDOW, PAGES * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  poke(proc, WINDOW, new Uint8Array(PAGES * P)); // every page present, in consecutive frames
  proc.mm.mmuOffline(); // this thread only waits now: its shootdowns must not wait for it
  const base = {
    process: proc.describe(),
    fd,
    sync: new SharedArrayBuffer((2 + PAGES) * 4),
    seed: Number(process.env.VMSPACE_SEED ?? 4077),
    durationMs: 1000,
  };
  const [[r], [m]] = await Promise.all([
    machine.run<ReadRemapResult>(task, { ...base, role: 'reader' } satisfies ReadRemapArgs, [0]),
    machine.run<ReadRemapResult>(task, { ...base, role: 'remapper' } satisfies ReadRemapArgs, [1]),
  ]);
  if (process.env.READ_REMAP_VERBOSE) console.log(r, m);
  assert.equal(r.error, '', r.error);
  assert.equal(m.error, '', m.error);
  assert.ok(r.reads[0] > 20, `only ${r.reads[0]} whole reads`);
  assert.ok(m.calls > 10, `only ${m.calls} remaps`);
  assert.ok(r.checked > 0, 'no read was left alone by the remapper');
  finish(kernel, proc);
});
