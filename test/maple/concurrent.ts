/**
 * Runs the churn scenario (tasks/churn.ts) on a Machine: one CPU writes, one reads, for a while;
 * then checks the tree on the main thread and that every node comes back after teardown.
 */
import assert from 'node:assert/strict';
import type { Machine } from '../../src/machine/machine.js';
import { rangeOut } from '../../src/maple/api.js';
import { MapleTree } from '../../src/maple/tree.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import {
  type ChurnArgs,
  type ChurnResult,
  initialEntries,
  isStable,
  REGION,
  shapeFirst,
  stableValue,
} from './tasks/churn.js';

const task = new URL('./tasks/churn.js', import.meta.url);

export async function runChurn(
  machine: Machine,
  seed: number,
  ms: number,
): Promise<[ChurnResult, ChurnResult]> {
  const tree = MapleTree.create({
    name: `test.maple.churn.${seed}`,
    capacity: 1024,
    maxCapacity: 1 << 18,
    poison: true,
  });
  const base = {
    tree: tree.describe(),
    sync: new SharedArrayBuffer(8),
    regions: 3000,
    zoneFirst: 1500,
    zoneLast: 1800,
    seed,
    iterations: 50_000_000,
    deadlineMs: Date.now() + ms,
  };
  const writer: ChurnArgs = { ...base, role: 'writer' };
  const reader: ChurnArgs = { ...base, role: 'reader' };
  assert.equal(tree.bulkLoad(initialEntries(writer)), 0);
  const [[wrote], [read]] = await Promise.all([
    machine.run<ChurnResult>(task, writer, [0]),
    machine.run<ChurnResult>(task, reader, [1]),
  ]);
  const shape = tree.validate();
  const out = rangeOut();
  for (let r = 0; r < base.regions; r++) {
    if (!isStable(writer, r)) continue;
    assert.equal(tree.load(r * REGION + 500, out), stableValue(r), `seed ${seed}: stable region ${r}`);
    assert.equal(out.first, shapeFirst(r, 1023));
  }
  assert.ok(shape.height >= 3, `seed ${seed}: height ${shape.height}`);
  tree.destroy();
  rcuBarrier();
  assert.equal(tree.arena.live, 0, `seed ${seed}: nodes leaked`);
  return [wrote, read];
}
