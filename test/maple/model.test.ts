/**
 * Model-based test: fast-check command sequences run against MapleTree and the plain RangeModel,
 * starting from a bulk-loaded tree of random shape, comparing every read (load, next, prev, gap
 * search with alignment and windows, cursor iteration both ways, batch iteration) and checking
 * validate() and the full contents after every write.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { rangeOut } from '../../src/maple/api.js';
import { MAX_INDEX } from '../../src/maple/layout.js';
import { immediateReclaimer } from '../../src/maple/reclaim.js';
import { MapleTree } from '../../src/maple/tree.js';
import { assertSame, batchEntries, bulkArgs, type Entry, prng, RangeModel, randomRanges } from './model.js';

type Cmd = fc.Command<RangeModel, MapleTree>;

/** Indices near 0 (where the initial entries live) and near the top of the index space. */
const index = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 4000 }) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_INDEX - 64, max: MAX_INDEX }) },
);
const length = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 12 }) },
  { weight: 2, arbitrary: fc.integer({ min: 13, max: 3000 }) },
);
const value = fc.integer({ min: 1, max: 0x7fffffff });

function clampLast(first: number, len: number): number {
  return Math.min(MAX_INDEX, first + len - 1);
}

class Store implements Cmd {
  constructor(
    readonly first: number,
    readonly len: number,
    readonly value: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    const last = clampLast(this.first, this.len);
    assert.equal(tree.store(this.first, last, this.value), 0);
    model.store(this.first, last, this.value);
    assertSame(tree, model, this.toString());
  }
  toString(): string {
    return `store(${this.first}, +${this.len}, ${this.value})`;
  }
}

class Insert implements Cmd {
  constructor(
    readonly first: number,
    readonly len: number,
    readonly value: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    const last = clampLast(this.first, this.len);
    assert.equal(tree.insert(this.first, last, this.value), model.insert(this.first, last, this.value));
    assertSame(tree, model, this.toString());
  }
  toString(): string {
    return `insert(${this.first}, +${this.len}, ${this.value})`;
  }
}

class Erase implements Cmd {
  constructor(readonly index: number) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    assert.equal(tree.erase(this.index), model.erase(this.index));
    assertSame(tree, model, this.toString());
  }
  toString(): string {
    return `erase(${this.index})`;
  }
}

class Load implements Cmd {
  constructor(readonly index: number) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    const out = rangeOut();
    const value = tree.load(this.index, out);
    assert.deepEqual({ ...out, value }, model.load(this.index));
  }
  toString(): string {
    return `load(${this.index})`;
  }
}

class NextPrev implements Cmd {
  constructor(
    readonly index: number,
    readonly span: number,
    readonly forward: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    const out = rangeOut();
    let expected: Entry | undefined;
    let value: number;
    if (this.forward) {
      const max = Math.min(MAX_INDEX, this.index + this.span);
      value = tree.next(this.index, max, out);
      expected = model.next(this.index, max);
    } else {
      const min = Math.max(0, this.index - this.span);
      value = tree.prev(this.index, min, out);
      expected = model.prev(this.index, min);
    }
    if (expected === undefined) assert.equal(value, 0);
    else assert.deepEqual({ ...out, value }, expected);
  }
  toString(): string {
    return `${this.forward ? 'next' : 'prev'}(${this.index}, ±${this.span})`;
  }
}

class Gap implements Cmd {
  constructor(
    readonly min: number,
    readonly span: number,
    readonly size: number,
    readonly align: number,
    readonly highest: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    const max = Math.min(MAX_INDEX, this.min + this.span);
    const got = this.highest
      ? tree.gapHighest(this.min, max, this.size, this.align)
      : tree.gapLowest(this.min, max, this.size, this.align);
    const want = this.highest
      ? model.gapHighest(this.min, max, this.size, this.align)
      : model.gapLowest(this.min, max, this.size, this.align);
    assert.equal(got, want);
  }
  toString(): string {
    return `gap${this.highest ? 'Highest' : 'Lowest'}(${this.min}, +${this.span}, size ${this.size}, align ${this.align})`;
  }
}

class Iterate implements Cmd {
  constructor(
    readonly start: number,
    readonly span: number,
    readonly reverse: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    const out = rangeOut();
    const cursor = tree.cursor(this.start);
    const seen: Entry[] = [];
    if (this.reverse) {
      const min = Math.max(0, this.start - this.span);
      for (let v = cursor.findRev(min, out); v !== 0; v = cursor.findRev(min, out))
        seen.push({ ...out, value: v });
      const want = model.entries.filter((e) => e.first <= this.start && e.last >= min).reverse();
      assert.deepEqual(seen, want);
    } else {
      const max = Math.min(MAX_INDEX, this.start + this.span);
      for (let v = cursor.find(max, out); v !== 0; v = cursor.find(max, out)) seen.push({ ...out, value: v });
      const want = model.entries.filter((e) => e.last >= this.start && e.first <= max);
      assert.deepEqual(seen, want);
    }
  }
  toString(): string {
    return `iterate${this.reverse ? 'Rev' : ''}(${this.start}, ±${this.span})`;
  }
}

class Batch implements Cmd {
  constructor(
    readonly start: number,
    readonly span: number,
    readonly capacity: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: RangeModel, tree: MapleTree): void {
    const max = Math.min(MAX_INDEX, this.start + this.span);
    const want = model.entries.filter((e) => e.last >= this.start && e.first <= max);
    assert.deepEqual(batchEntries(tree, this.capacity, this.start, max), want);
  }
  toString(): string {
    return `batch(${this.start}, +${this.span}, capacity ${this.capacity})`;
  }
}

const commands = [
  fc.tuple(index, length, value).map(([f, l, v]) => new Store(f, l, v) as Cmd),
  fc.tuple(index, length).map(([f, l]) => new Store(f, l, 0) as Cmd),
  fc.tuple(index, length, value).map(([f, l, v]) => new Insert(f, l, v) as Cmd),
  index.map((i) => new Erase(i) as Cmd),
  index.map((i) => new Load(i) as Cmd),
  fc
    .tuple(index, fc.integer({ min: 0, max: 5000 }), fc.boolean())
    .map(([i, s, f]) => new NextPrev(i, s, f) as Cmd),
  fc
    .tuple(
      index,
      fc.integer({ min: 0, max: 6000 }),
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom(1, 1, 2, 4, 8, 16, 3),
      fc.boolean(),
    )
    .map(([m, s, z, a, h]) => new Gap(m, s, z, a, h) as Cmd),
  fc
    .tuple(index, fc.integer({ min: 0, max: 4000 }), fc.boolean())
    .map(([i, s, r]) => new Iterate(i, s, r) as Cmd),
  fc
    .tuple(index, fc.integer({ min: 0, max: 4000 }), fc.integer({ min: 1, max: 40 }))
    .map(([i, s, c]) => new Batch(i, s, c) as Cmd),
];

test('maple tree matches the reference model (fast-check commands)', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 21, max: 700 })),
      fc.integer(),
      fc.commands(commands, { maxCommands: 80, size: 'max' }),
      (initial, seed, cmds) => {
        const tree = MapleTree.create({ reclaimer: immediateReclaimer, poison: true, capacity: 256 });
        const model = new RangeModel();
        model.entries = randomRanges(initial, prng(seed), 0, 4, 3);
        assert.equal(tree.bulkLoad(bulkArgs(model.entries)), 0);
        assertSame(tree, model, 'after bulk load');
        fc.modelRun(() => ({ model, real: tree }), cmds);
        tree.destroy();
        assert.equal(tree.arena.live, 0, 'nodes leaked');
      },
    ),
    { numRuns: 250 },
  );
});
