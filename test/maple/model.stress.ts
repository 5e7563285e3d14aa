/**
 * Long seeded model run: millions of random operations (stores, inserts, erases, loads, next/prev,
 * gap searches with alignment and windows, cursor walks both ways, batch walks) on trees of thousands of
 * entries, against a sorted-array model; validate() and the full contents are compared every few
 * thousand operations. Bounded by time (MAPLE_STRESS_MS, default 12 s); prints the failing seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EBUSY, EEXIST } from '../../src/errno.js';
import { rangeOut } from '../../src/maple/api.js';
import { MAX_INDEX } from '../../src/maple/layout.js';
import { immediateReclaimer } from '../../src/maple/reclaim.js';
import { MapleTree } from '../../src/maple/tree.js';
import { batchEntries, bulkArgs, prng, randomRanges, treeEntries } from './model.js';

/** Disjoint entries in parallel sorted arrays; binary search, splice. */
class SortedModel {
  first: number[] = [];
  last: number[] = [];
  value: number[] = [];

  /** Index of the first entry with last >= x. */
  private from(x: number): number {
    let lo = 0;
    let hi = this.last.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.last[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  store(f: number, l: number, v: number): void {
    const i = this.from(f);
    let j = i;
    while (j < this.first.length && this.first[j] <= l) j++;
    const pieces: [number, number, number][] = [];
    if (j > i && this.first[i] < f) pieces.push([this.first[i], f - 1, this.value[i]]);
    if (v !== 0) pieces.push([f, l, v]);
    if (j > i && this.last[j - 1] > l) pieces.push([l + 1, this.last[j - 1], this.value[j - 1]]);
    this.first.splice(i, j - i, ...pieces.map((p) => p[0]));
    this.last.splice(i, j - i, ...pieces.map((p) => p[1]));
    this.value.splice(i, j - i, ...pieces.map((p) => p[2]));
  }

  occupied(f: number, l: number): boolean {
    const i = this.from(f);
    return i < this.first.length && this.first[i] <= l;
  }

  load(x: number): [number, number, number] {
    const i = this.from(x);
    if (i < this.first.length && this.first[i] <= x) return [this.first[i], this.last[i], this.value[i]];
    return [i > 0 ? this.last[i - 1] + 1 : 0, i < this.first.length ? this.first[i] - 1 : MAX_INDEX, 0];
  }

  next(x: number, max: number): number {
    const i = this.from(x);
    return i < this.first.length && this.first[i] <= max ? i : -1;
  }

  prev(x: number, min: number): number {
    let j = this.from(x);
    if (j === this.first.length || this.first[j] > x) j--;
    return j >= 0 && this.last[j] >= min ? j : -1;
  }

  /** Gaps intersecting [min, max], ascending: [first, last] pairs clipped to the window. */
  gaps(min: number, max: number): number[] {
    const out: number[] = [];
    let i = this.from(min);
    let at = i > 0 ? this.last[i - 1] + 1 : 0;
    for (;;) {
      const end = i < this.first.length ? this.first[i] - 1 : MAX_INDEX;
      if (at > max) break;
      if (end >= at && end >= min) out.push(Math.max(at, min), Math.min(end, max));
      if (i >= this.first.length) break;
      at = this.last[i] + 1;
      i++;
    }
    return out;
  }

  gapLowest(min: number, max: number, size: number, align: number): number {
    const g = this.gaps(min, max);
    for (let k = 0; k < g.length; k += 2) {
      const start = g[k] % align === 0 ? g[k] : g[k] + (align - (g[k] % align));
      if (start <= g[k + 1] - size + 1) return start;
    }
    return -EBUSY;
  }

  gapHighest(min: number, max: number, size: number, align: number): number {
    const g = this.gaps(min, max);
    for (let k = g.length - 2; k >= 0; k -= 2) {
      const top = g[k + 1] - size + 1;
      if (top < g[k]) continue;
      const start = top - (top % align);
      if (start >= g[k]) return start;
    }
    return -EBUSY;
  }
}

function runSeed(seed: number, operations: number, deadline: number): number {
  const random = prng(seed);
  const span = 20_000 + Math.floor(random() * 200_000);
  const tree = MapleTree.create({ reclaimer: immediateReclaimer, poison: seed % 4 === 0, capacity: 1024 });
  const model = new SortedModel();
  const initial = randomRanges(
    Math.floor(random() * 4000),
    random,
    0,
    1 + Math.floor(random() * 40),
    Math.floor(random() * 40),
  );
  for (const e of initial) model.store(e.first, e.last, e.value);
  assert.equal(tree.bulkLoad(bulkArgs(initial)), 0);
  const out = rangeOut();
  const at = () => (random() < 0.02 ? MAX_INDEX - Math.floor(random() * 100) : Math.floor(random() * span));
  const length = () => (random() < 0.05 ? Math.floor(random() * span * 0.3) : Math.floor(random() * 50));
  let n = 0;
  for (; n < operations; n++) {
    if ((n & 1023) === 0 && Date.now() > deadline) break;
    const what = `seed ${seed} op ${n}`;
    const f = at();
    const l = Math.min(MAX_INDEX, f + length());
    const kind = random();
    if (kind < 0.2) {
      const v = random() < 0.3 ? 0 : 1 + Math.floor(random() * 0x7ffffffe);
      assert.equal(tree.store(f, l, v), 0, what);
      model.store(f, l, v);
    } else if (kind < 0.4) {
      const v = 1 + Math.floor(random() * 1000);
      const want = model.occupied(f, l) ? -EEXIST : 0;
      assert.equal(tree.insert(f, l, v), want, what);
      if (want === 0) model.store(f, l, v);
    } else if (kind < 0.55) {
      const [first, last, value] = model.load(f);
      assert.equal(tree.erase(f), value, what);
      if (value !== 0) model.store(first, last, 0);
    } else if (kind < 0.7) {
      const value = tree.load(f, out);
      assert.deepEqual([out.first, out.last, value], model.load(f), what);
    } else if (kind < 0.8) {
      const forward = random() < 0.5;
      const bound = forward ? l : Math.max(0, f - (l - f));
      const value = forward ? tree.next(f, bound, out) : tree.prev(f, bound, out);
      const i = forward ? model.next(f, bound) : model.prev(f, bound);
      if (i < 0) assert.equal(value, 0, what);
      else
        assert.deepEqual([out.first, out.last, value], [model.first[i], model.last[i], model.value[i]], what);
    } else if (kind < 0.93) {
      const size = 1 + Math.floor(random() * 60);
      const align = [1, 1, 2, 4, 8, 16, 64, 3][Math.floor(random() * 8)];
      const max = Math.min(MAX_INDEX, f + Math.floor(random() * 3000));
      const highest = random() < 0.5;
      const got = highest ? tree.gapHighest(f, max, size, align) : tree.gapLowest(f, max, size, align);
      const want = highest ? model.gapHighest(f, max, size, align) : model.gapLowest(f, max, size, align);
      assert.equal(
        got,
        want,
        `${what}: gap ${highest ? 'highest' : 'lowest'} [${f}, ${max}] ${size}/${align}: ${got} vs ${want}`,
      );
    } else {
      const forward = random() < 0.5;
      const cursor = tree.cursor(f);
      let i = forward ? model.next(f, MAX_INDEX) : model.prev(f, 0);
      for (let steps = 0; steps < 20; steps++) {
        const value = forward ? cursor.find(MAX_INDEX, out) : cursor.findRev(0, out);
        if (i < 0 || i >= model.first.length) {
          assert.equal(value, 0, what);
          break;
        }
        assert.deepEqual([out.first, out.last, value], [model.first[i], model.last[i], model.value[i]], what);
        i += forward ? 1 : -1;
      }
      if (forward) {
        const max = Math.min(MAX_INDEX, f + Math.floor(random() * 3000));
        const want: number[][] = [];
        for (let j = model.next(f, max); j >= 0 && j < model.first.length && model.first[j] <= max; j++) {
          want.push([model.first[j], model.last[j], model.value[j]]);
        }
        const got = batchEntries(tree, 1 + Math.floor(random() * 8), f, max);
        assert.deepEqual(
          got.map((e) => [e.first, e.last, e.value]),
          want,
          `${what}: batches [${f}, ${max}]`,
        );
      }
    }
    if (n % 4000 === 3999) check(tree, model, what);
  }
  check(tree, model, `seed ${seed} end`);
  tree.destroy();
  assert.equal(tree.arena.live, 0, `seed ${seed}: leaked`);
  return n;
}

function check(tree: MapleTree, model: SortedModel, what: string): void {
  tree.validate();
  const entries = treeEntries(tree);
  const want = model.first.map((first, i) => [first, model.last[i], model.value[i]]);
  assert.deepEqual(
    entries.map((e) => [e.first, e.last, e.value]),
    want,
    what,
  );
  assert.deepEqual(
    batchEntries(tree, 61).map((e) => [e.first, e.last, e.value]),
    want,
    `${what} (nextBatch)`,
  );
}

test('millions of random operations across seeds match the sorted-array model', () => {
  const ms = Number(process.env.MAPLE_STRESS_MS ?? 12_000);
  const deadline = Date.now() + ms;
  const first = Number(process.env.MAPLE_SEED ?? Date.now() % 1_000_000);
  let total = 0;
  let seeds = 0;
  for (let seed = first; Date.now() < deadline; seed++, seeds++) total += runSeed(seed, 400_000, deadline);
  console.log(`maple model stress: ${total} operations over ${seeds} seeds from ${first}`);
  assert.ok(total > 100_000);
});
