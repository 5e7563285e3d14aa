/**
 * TLB shootdown on real worker CPUs (tasks/tlb-shootdown.ts): after `shootdown` returns, no CPU
 * reads the old frame through its old translation, so the frame can be reused at once; the same
 * run with a shootdown that only clears the tags and does not wait lets stale reads through; two
 * online CPUs shooting down at once never wait for each other (tasks/tlb-mutual.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Machine } from '../../src/machine/machine.js';
import { PhysMem } from '../../src/mem/frames.js';
import { KIND_ANON } from '../../src/mem/page.js';
import { PageTables } from '../../src/mem/pgtable.js';
import { makePte, PTE_DIRTY, PTE_USER, PTE_WRITE, pteIndex } from '../../src/mem/pte.js';
import { TlbDomain } from '../../src/mem/tlb.js';
import type { MutualArgs } from './tasks/tlb-mutual.js';
import type { ShootdownArgs, ShootdownResult } from './tasks/tlb-shootdown.js';

let machine: Machine;

before(async () => {
  machine = await Machine.start({ cpus: 2, watchdogMs: 20_000 });
});
after(async () => {
  await machine.stop();
});

async function race(mode: 'wait' | 'nowait', ms: number): Promise<[ShootdownResult, ShootdownResult]> {
  const mem = PhysMem.create({ frames: 64 });
  const pt = PageTables.create({ capacity: 16, name: `test.tlb.${mode}` });
  const addr = 0x5555_0000_0000;
  const frames: [number, number] = [mem.allocFrame(KIND_ANON, 0, 0), mem.allocFrame(KIND_ANON, 0, 1)];
  pt.setPte(pt.allocPte(addr), pteIndex(addr), makePte(frames[0], PTE_USER | PTE_WRITE | PTE_DIRTY));
  const base = {
    mode,
    mem: mem.describe(),
    pt: pt.describe(),
    tlb: TlbDomain.create().describe(),
    addr,
    frames,
    sync: new SharedArrayBuffer(16),
    deadlineMs: Date.now() + ms,
  };
  const task = new URL('./tasks/tlb-shootdown.js', import.meta.url);
  const [[wrote], [read]] = await Promise.all([
    machine.run<ShootdownResult>(task, { ...base, role: 'writer' } satisfies ShootdownArgs, [0]),
    machine.run<ShootdownResult>(task, { ...base, role: 'reader' } satisfies ShootdownArgs, [1]),
  ]);
  if (process.env.TLB_VERBOSE) console.log(mode, wrote, read);
  return [wrote, read];
}

test('after shootdown returns, no CPU reads the old frame, which is reused at once', async () => {
  const [wrote, read] = await race('wait', 1000);
  assert.ok(wrote.rounds > 1000, `only ${wrote.rounds} shootdowns`);
  assert.ok(read.loads > 1_000_000, `only ${read.loads} loads`);
  assert.equal(read.poison, 0, `${read.poison} loads saw the reused frame through a stale translation`);
});

test('a shootdown that does not wait for the acknowledgements lets a stale read through', async () => {
  const [, read] = await race('nowait', 1000);
  assert.ok(
    read.poison > 0,
    `no stale read in ${read.loads} loads: the test would not catch a broken shootdown`,
  );
});

test('two online CPUs shooting down at once each see the other acknowledge: no mutual wait', async () => {
  const mem = PhysMem.create({ frames: 64 });
  const pt = PageTables.create({ capacity: 16, name: 'test.tlb.mutual' });
  const addr = 0x5555_0000_0000;
  for (let c = 0; c < 2; c++) {
    const a = addr + c * 4096;
    pt.setPte(
      pt.allocPte(a),
      pteIndex(a),
      makePte(mem.allocFrame(KIND_ANON, 0, c), PTE_USER | PTE_WRITE | PTE_DIRTY),
    );
  }
  const tlb = TlbDomain.create();
  const args: MutualArgs = {
    mem: mem.describe(),
    pt: pt.describe(),
    tlb: tlb.describe(),
    addr,
    sync: new SharedArrayBuffer(8),
    ms: 800,
  };
  const rounds = await machine.run<number>(new URL('./tasks/tlb-mutual.js', import.meta.url), args);
  assert.ok(
    rounds.every((r) => r > 200),
    `shootdowns per CPU: ${rounds.join(', ')}`,
  );
  assert.equal(tlb.stats().online, 0);
});
