/**
 * GUP and user copies under dropped locks (issue 12, item 2 and its "Must hold"), on real worker
 * CPUs, under each fault-locking design: gets, pins (read and write, fast and slow) and user
 * copies (Mmu.copyIn, pwrite from the range) of a window of mappings of two slow host files on
 * CPU 0, while CPU 1 munmaps, maps anew, mprotects, mremaps, drops and reclaims the same range.
 * Every page returned or copied is a page the window mapped, with the access asked for, at some
 * instant of the call, never a freed or reused frame (poisoning on, checked twice while held); a
 * short count or EFAULT only where the page was unmapped or inaccessible at some instant; no
 * deadlock check of the validator moves, no I/O under mmap_lock but under `global` (where it is
 * the design); the files are intact and nothing leaks (gup-slow-race.ts). Each design runs 1.2 s,
 * or on a loaded machine longer (at most 9.6 s), until CPU 1 made 100 operations and CPU 0 400
 * calls. The long seeded run is gup-slow.stress.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { FAULT_DESIGNS } from '../../src/mm/fault-design.js';
import { assertGupSlowRace, runGupSlowRace } from './gup-slow-race.js';

const SEED = Number(process.env.VMSPACE_SEED ?? 20_261_208);
const DURATION_MS = 1200;
let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 30_000 });
});
after(async () => {
  await machine.stop();
});

FAULT_DESIGNS.forEach((design, i) => {
  test(`${design}: GUP and user copies over a slow file racing munmap/mmap/mprotect/mremap/reclaim on another CPU return only pages the mapping had at some instant of the call`, async () => {
    const s = await runGupSlowRace(machine, design, SEED + i, DURATION_MS, false, { ops: 100, calls: 400 });
    if (process.env.GUP_VERBOSE) console.log(JSON.stringify(s));
    assertGupSlowRace(s, 400);
  });
});

test('control: a mutator that announces each new mapping before making it is caught (an old page returned, or a stop at a page announced as mapped)', async () => {
  const s = await runGupSlowRace(machine, 'vma-lock', SEED + 7, 800, true);
  if (process.env.GUP_VERBOSE) console.log(JSON.stringify(s));
  // Either a page of the old mapping, or a stop at a page the lie says is mapped already.
  assert.match(s.gupper.error, /was not mapped there|but it was mapped with \w+ access all along/);
});
