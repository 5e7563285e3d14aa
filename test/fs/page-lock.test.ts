/**
 * The page lock and writeback waits (src/fs/page-lock.ts): the bits and their misuse on one CPU;
 * on worker CPUs, mutual exclusion under contention (so sleepers are woken through the hashed wait
 * words), a writeback wait ended from another CPU and visible to the watchdog meanwhile, and a wait
 * on a page lock nobody releases failing with the watchdog's report instead of hanging.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VmAssertionError } from '../../src/assert.js';
import { cpuWaits, WAIT_WRITEBACK } from '../../src/cpu/waits.js';
import {
  endPageWriteback,
  lockPage,
  pageLocked,
  setPageWriteback,
  trylockPage,
  trylockPageFlags,
  unlockPage,
  waitOnPageWriteback,
} from '../../src/fs/page-lock.js';
import { Machine } from '../../src/machine/machine.js';
import { PhysMem } from '../../src/mem/frames.js';
import {
  I32_PER_PAGE,
  KIND_FILE,
  PG_DIRTY,
  PG_LOCKED,
  PG_UPTODATE,
  PG_WRITEBACK,
} from '../../src/mem/page.js';
import { lockStatRows } from '../../src/sync/lockstat.js';
import type { PageLockArgs } from './tasks/page-lock.js';

const TASK = new URL('./tasks/page-lock.js', import.meta.url);

test('lock, trylock, unlock and writeback bits on one CPU; misuse throws and changes nothing', () => {
  const mem = PhysMem.create({ frames: 16 });
  const pfn = mem.allocFrame(KIND_FILE, 1, 0);
  lockPage(mem, pfn);
  assert.ok(pageLocked(mem, pfn) && mem.testFlag(pfn, PG_LOCKED));
  assert.equal(trylockPage(mem, pfn), false, 'held: trylock fails');
  unlockPage(mem, pfn);
  assert.equal(pageLocked(mem, pfn), false);
  assert.throws(() => unlockPage(mem, pfn), VmAssertionError);
  assert.equal(pageLocked(mem, pfn), false);
  assert.equal(trylockPage(mem, pfn), true);
  setPageWriteback(mem, pfn);
  assert.throws(() => setPageWriteback(mem, pfn), VmAssertionError);
  unlockPage(mem, pfn);
  assert.ok(mem.testFlag(pfn, PG_WRITEBACK), 'writeback outlives the page lock');
  endPageWriteback(mem, pfn);
  assert.throws(() => endPageWriteback(mem, pfn), VmAssertionError);
  waitOnPageWriteback(mem, pfn);
  assert.equal(mem.flags[pfn], 0);
  mem.putPage(pfn);
});

test('trylockPageFlags: the flags the lock found (up to date, dirty), or -1 leaving the lock as it was', () => {
  const mem = PhysMem.create({ frames: 16 });
  const pfn = mem.allocFrame(KIND_FILE, 1, 0);
  mem.setFlag(pfn, PG_UPTODATE);
  assert.equal(trylockPageFlags(mem, pfn), PG_UPTODATE, 'free: the flags before, PG_LOCKED clear');
  assert.equal(mem.flags[pfn], PG_UPTODATE | PG_LOCKED);
  assert.equal(trylockPageFlags(mem, pfn), -1, 'held: fails');
  assert.equal(mem.flags[pfn], PG_UPTODATE | PG_LOCKED, 'and changes nothing');
  mem.setFlag(pfn, PG_DIRTY);
  unlockPage(mem, pfn);
  assert.equal(trylockPageFlags(mem, pfn), PG_UPTODATE | PG_DIRTY);
  unlockPage(mem, pfn);
  mem.clearFlag(pfn, PG_UPTODATE | PG_DIRTY);
  mem.putPage(pfn);
});

test('two CPUs increment a page word under its lock: no increment lost', async () => {
  const mem = PhysMem.create({ frames: 16 });
  const pfn = mem.allocFrame(KIND_FILE, 1, 0);
  const machine = await Machine.start({ cpus: 2 });
  try {
    // A loaded host may run the two CPUs one after the other: rerun (bounded, more rounds each
    // time) until they contended at least once; every run must lose no increment.
    let contended = false;
    let total = 0;
    for (let attempt = 0, rounds = 20_000; attempt < 5 && !contended; attempt++, rounds *= 2) {
      const args: PageLockArgs = {
        op: 'count',
        mem: mem.describe(),
        pfn,
        rounds,
        sync: new SharedArrayBuffer(8),
      };
      await machine.run<number>(TASK, args);
      total += 2 * rounds;
      assert.equal(mem.i32[pfn * I32_PER_PAGE], total);
      assert.equal(pageLocked(mem, pfn), false);
      const row = lockStatRows([0, 1]).find((r) => r.name === 'page_lock');
      contended = row !== undefined && row.contentions > 0;
    }
    assert.ok(contended, 'the CPUs contended for the page lock');
  } finally {
    await machine.stop();
  }
  mem.putPage(pfn);
});

test('a writeback wait sleeps, shows in the CPU wait words, and ends when another CPU ends writeback', async () => {
  const mem = PhysMem.create({ frames: 16 });
  const pfn = mem.allocFrame(KIND_FILE, 1, 0);
  lockPage(mem, pfn);
  setPageWriteback(mem, pfn);
  unlockPage(mem, pfn);
  const machine = await Machine.start({ cpus: 1 });
  try {
    const sync = new SharedArrayBuffer(8);
    const waited = machine.run<number>(TASK, {
      op: 'writeback',
      mem: mem.describe(),
      pfn,
      rounds: 0,
      sync,
    } satisfies PageLockArgs);
    let seen = false;
    for (let i = 0; i < 200 && !seen; i++) {
      await new Promise((r) => setTimeout(r, 5));
      seen = cpuWaits().some((w) => w.cpu === 0 && w.kind === WAIT_WRITEBACK && w.detail === pfn);
    }
    assert.ok(seen, 'cpu 0 is reported waiting on writeback of the pfn');
    await new Promise((r) => setTimeout(r, 30));
    endPageWriteback(mem, pfn);
    const [ms] = await waited;
    assert.ok(ms >= 25, `waited ${ms} ms, until writeback ended`);
  } finally {
    await machine.stop();
  }
  mem.putPage(pfn);
});

test('a page lock nobody releases: the waiter fails with the watchdog report', async () => {
  const mem = PhysMem.create({ frames: 16 });
  const pfn = mem.allocFrame(KIND_FILE, 1, 0);
  lockPage(mem, pfn);
  const machine = await Machine.start({ cpus: 1, watchdogMs: 300 });
  try {
    await assert.rejects(
      machine.run(TASK, {
        op: 'lock',
        mem: mem.describe(),
        pfn,
        rounds: 0,
        sync: new SharedArrayBuffer(8),
      } satisfies PageLockArgs),
      (e: Error) =>
        /watchdog: cpu 0 waited more than 300 ms on the page lock of pfn/.test(e.message) &&
        /page lock/.test(e.message),
    );
  } finally {
    await machine.stop();
  }
  unlockPage(mem, pfn);
  mem.putPage(pfn);
});
