/**
 * A punch racing reclaim's put-back (src/fs/truncate.ts): reclaim takes a page out of the index
 * under i_pages, finds a new reference, and puts it back; a punch whose lockless scan passed the
 * empty slot must still remove the page before it returns. Before truncate looked at its range
 * again under i_pages, the page came back behind the scan: its old data cached after the punch
 * (caught by truncate's own check: 'a page of the range came back under invalidate_lock').
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pageIndexLookup } from '../../src/fs/page-index.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_PRIVATE } from '../../src/mm/vm-flags.js';
import { finish, poke, RW, setup } from './file-syscalls-util.js';
import { P, PAGE, PAGES, type PutbackArgs } from './tasks/reclaim-putback.js';

const task = new URL('./tasks/reclaim-putback.js', import.meta.url);
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
});

test('a punch whose scan passed a page reclaim took out and put back still removes it', async () => {
  const { kernel, proc } = setup();
  const fd = proc.memfdCreate('putback');
  // Only page PAGE is cached: the punch's scan finds nothing else to remove (a removal would wait
  // for i_pages, i.e. for the put-back, and then see the page).
  proc.ftruncate(fd, PAGES * P);
  const src = proc.mm.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  poke(proc, src, new Uint8Array(P).fill(0x5a));
  assert.equal(proc.pwrite(fd, src, P, PAGE * P), P);
  proc.mm.munmap(src, P);
  proc.mm.mmuOffline();
  const file = proc.mm.fds.fget(fd);
  proc.mm.files.put(file); // the descriptor keeps it
  const files = proc.mm.files;
  for (let k = 0; k < PAGES; k++)
    assert.equal(pageIndexLookup(files, file, k) !== 0, k === PAGE, `page ${k}`);
  const base = { process: proc.describe(), fd, file, sync: new SharedArrayBuffer(4) };
  const [[reclaimer], [puncher]] = await Promise.all([
    machine.run<string>(task, { ...base, role: 'reclaimer' } satisfies PutbackArgs, [0]),
    machine.run<string>(task, { ...base, role: 'puncher' } satisfies PutbackArgs, [1]),
  ]);
  assert.equal(reclaimer, '');
  assert.equal(puncher, '');
  for (let k = 0; k < PAGES; k++)
    assert.equal(pageIndexLookup(files, file, k), 0, `page ${k} left after the punch`);
  finish(kernel, proc);
});
