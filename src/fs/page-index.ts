/**
 * The page index of a file (Linux's xarray, mapping->i_pages): a radix tree from page index to
 * pfn, 64 slots (6 bits of the index) per node, nodes in the file table's kernel-wide arena
 * `cache_node` (FileTable.cacheNodes). Keys are page indexes below 2^32 (MAX_PAGE_INDEX + 1).
 *
 *   file record: CACHE_ROOT (node handle, 0 = empty), CACHE_HEIGHT (levels), NRPAGES (present keys)
 *
 *   node (CACHE_NODE_BYTES): words 0..63 SLOTS | SHIFT | COUNT | FILE | (pad)
 *     SLOTS[k]: at SHIFT > 0 the child node covering digit k (0: none); at SHIFT 0 a pfn (0: none)
 *     SHIFT:    6 * level above the leaves (the root's is the largest), fixed for the node's life
 *     COUNT:    non-zero slots
 *     FILE:     the file whose index the node belongs to (checks)
 *
 * Guards: CACHE_ROOT, CACHE_HEIGHT, NRPAGES and every node's SLOTS and COUNT are written under the
 * file's `i_pages` spinlock (FILE_I_PAGES, class 'i_pages', the innermost lock: nothing is taken
 * under it but arena locks); CACHE_ROOT and SLOTS with Atomics.store, so readers need no lock:
 * inside an RCU read section they load the root and each slot with Atomics.load, and a node they
 * reached stays allocated until they leave it, because a node leaves the tree by one store of 0
 * into its parent (or of another root) and goes back to the arena only after a grace period
 * (rcuDeferFree). A new node is filled before the one store that publishes it.
 *
 * Shape invariants (checkPageIndex, debug): a child's SHIFT is its parent's - 6; COUNT = non-zero
 * slots; no node but the root is empty; the root is as low as it can be (SHIFT 0, or a slot other
 * than 0 in use, or more than one slot in use); NRPAGES = present keys; with the PhysMem, every
 * present pfn is a KIND_FILE frame with OWNER = the file, INDEX = its key and a reference.
 */
import { assert, VmAssertionError } from '../assert.js';
import { WAIT_SPIN } from '../cpu/waits.js';
import { EEXIST, ENOMEM } from '../errno.js';
import { LOCK_ATOMIC, WRITE } from '../lockhooks.js';
import { KIND_FILE } from '../mem/page.js';
import { exclusiveLock, exclusiveUnlock } from '../sync/exclusive.js';
import { lockClass } from '../sync/lockclass.js';
import { rcuDeferFree } from '../sync/rcu.js';
import { SPINLOCK_SPINS } from '../sync/spinlock.js';
import {
  FILE_CACHE_HEIGHT,
  FILE_CACHE_ROOT,
  FILE_I_PAGES,
  FILE_NRPAGES,
  type FileTable,
} from './file-table.js';

/** The largest page index a file may have (2^32 - 1: files up to 16 TiB). */
export const MAX_PAGE_INDEX = 0xffffffff;

export const NODE_SLOTS = 64;
const BITS = 6;
const SLOT_MASK = NODE_SLOTS - 1;
const SHIFT = 64;
const COUNT = 65;
const FILE = 66;
/** The root shift that covers every key below 2^32 (6 levels). */
const TOP_SHIFT = 30;
const MAX_LEVELS = TOP_SHIFT / BITS + 1;

/** The i_pages lock class (xa_lock): the innermost lock of docs/locking.md. */
export const iPagesClass = lockClass('i_pages');
const I_PAGES_MODE = WRITE | LOCK_ATOMIC;

// Per-thread scratch (each CPU is one thread): nodes allocated before an insert changes anything,
// and the path of an erase. No allocation per operation.
// An insert needs at most 2 * (MAX_LEVELS - 1) nodes: growth to the top and a new path from it.
const fresh = new Int32Array(2 * MAX_LEVELS);
const pathNode = new Int32Array(MAX_LEVELS + 1);
const pathDigit = new Int32Array(MAX_LEVELS + 1);
/** First key under each node of a gang lookup's path (up to 2^32: Float64). */
const pathBase = new Float64Array(MAX_LEVELS + 1);

/** Takes the file's i_pages spinlock. */
export function lockIPages(files: FileTable, id: number): void {
  exclusiveLock(
    files.words,
    files.word(id, FILE_I_PAGES),
    iPagesClass,
    0,
    SPINLOCK_SPINS,
    WAIT_SPIN,
    I_PAGES_MODE,
  );
}

export function unlockIPages(files: FileTable, id: number): void {
  exclusiveUnlock(files.words, files.word(id, FILE_I_PAGES), iPagesClass);
}

/** The smallest root shift whose node covers `index`. */
function shiftFor(index: number): number {
  let shift = 0;
  while (shift < TOP_SHIFT && index >>> shift > SLOT_MASK) shift += BITS;
  return shift;
}

/**
 * The word of `files.cacheNodes.i32` holding the leaf slot of `index`, or -1 when no leaf node
 * covers it. Preconditions: an RCU read section or the file's i_pages lock; 0 <= index <= MAX_PAGE_INDEX.
 * The slot's value, loaded with Atomics.load, is the pfn (0: none); a leaf node holding a present
 * pfn is never unlinked, so re-loading the slot tells whether the entry is still there.
 */
export function pageIndexSlot(files: FileTable, id: number, index: number): number {
  const nodes = files.cacheNodes.i32;
  const per = files.cacheNodes.i32PerRecord;
  let node = Atomics.load(files.words, files.word(id, FILE_CACHE_ROOT));
  if (node === 0) return -1;
  let shift = nodes[node * per + SHIFT];
  if (shift < TOP_SHIFT && index >>> shift > SLOT_MASK) return -1;
  for (let level = 0; level < MAX_LEVELS; level++) {
    const at = node * per + ((index >>> shift) & SLOT_MASK);
    if (shift === 0) return at;
    node = Atomics.load(nodes, at);
    if (node === 0) return -1;
    shift -= BITS;
  }
  throw new VmAssertionError(`page index of file ${id}: deeper than ${MAX_LEVELS} levels`);
}

/**
 * The leaf slot word of `index` + 1, given `at`, the one of `index` (from pageIndexSlot, >= 0): a
 * leaf's slots are consecutive words, so inside one leaf it is `at` + 1 without a walk; from a
 * leaf's last slot it is pageIndexSlot's answer for the next leaf. Preconditions: as
 * pageIndexSlot, in the same RCU read section or i_pages hold as `at`; index + 1 <= MAX_PAGE_INDEX.
 */
export function pageIndexSlotAfter(files: FileTable, id: number, index: number, at: number): number {
  const next = index + 1;
  return next % NODE_SLOTS !== 0 ? at + 1 : pageIndexSlot(files, id, next);
}

/** The pfn cached at `index` (0: none). Preconditions: as pageIndexSlot. */
export function pageIndexLookup(files: FileTable, id: number, index: number): number {
  const at = pageIndexSlot(files, id, index);
  return at < 0 ? 0 : Atomics.load(files.cacheNodes.i32, at);
}

/**
 * The smallest present index >= `from`, or -1 (the gang lookup of writeback, truncate and release).
 * Preconditions: an RCU read section or the i_pages lock. Under RCU a concurrent insert may be
 * missed and an erased entry still seen: callers re-check each page under its lock.
 */
export function pageIndexNextPresent(files: FileTable, id: number, from: number): number {
  const nodes = files.cacheNodes.i32;
  const per = files.cacheNodes.i32PerRecord;
  const root = Atomics.load(files.words, files.word(id, FILE_CACHE_ROOT));
  if (root === 0 || from > MAX_PAGE_INDEX) return -1;
  let node = root;
  let shift = nodes[root * per + SHIFT];
  let base = 0;
  let depth = 0;
  let index = from;
  // Each round descends, or leaves a node whose remaining slots are empty (advancing `index`
  // past it): bounded by the slots of the tree, which is at most every node of the arena.
  for (let round = 0; round < 1 << 24; round++) {
    const span = 2 ** shift;
    let digit = Math.floor((index - base) / span);
    let child = 0;
    for (; digit < NODE_SLOTS; digit++) {
      child = Atomics.load(nodes, node * per + digit);
      if (child !== 0) break;
    }
    if (child === 0) {
      if (depth === 0) return -1;
      index = base + NODE_SLOTS * span;
      depth--;
      node = pathNode[depth];
      base = pathBase[depth];
      shift += BITS;
      continue;
    }
    const start = base + digit * span;
    if (shift === 0) return start;
    if (start > index) index = start;
    pathNode[depth] = node;
    pathBase[depth] = base;
    depth++;
    node = child;
    base = start;
    shift -= BITS;
  }
  throw new VmAssertionError(`page index of file ${id}: nextPresent did not finish`);
}

/** Nodes an insert of `index` must add (none when the leaf exists). Preconditions: i_pages held. */
function nodesNeeded(files: FileTable, id: number, index: number): number {
  const nodes = files.cacheNodes.i32;
  const per = files.cacheNodes.i32PerRecord;
  const want = shiftFor(index);
  const root = files.words[files.word(id, FILE_CACHE_ROOT)];
  if (root === 0) return want / BITS + 1;
  let shift = nodes[root * per + SHIFT];
  let count = 0;
  if (want > shift) {
    count = (want - shift) / BITS;
    // The new top nodes link the old root under digit 0; the key leaves that chain where its digit is not 0.
    for (let s = want; s > shift; s -= BITS) {
      if (((index >>> s) & SLOT_MASK) !== 0) return count + s / BITS;
    }
  }
  let node = root;
  for (; shift > 0; shift -= BITS) {
    const child = nodes[node * per + ((index >>> shift) & SLOT_MASK)];
    if (child === 0) return count + shift / BITS;
    node = child;
  }
  return count;
}

/** Allocates `n` zeroed nodes into `fresh`; all or none. */
function allocNodes(files: FileTable, n: number): boolean {
  assert(n <= fresh.length, 'pageIndexInsert: more nodes than a path can need');
  const arena = files.cacheNodes;
  for (let k = 0; k < n; k++) {
    const h = arena.alloc();
    if (h === 0) {
      while (k > 0) arena.free(fresh[--k]);
      return false;
    }
    fresh[k] = h;
  }
  return true;
}

/**
 * Inserts `pfn` at `index`: 0, -EEXIST (a page is cached there; nothing changed) or -ENOMEM (a
 * node could not be allocated; nothing changed). Preconditions: the file's i_pages lock held;
 * 0 <= index <= MAX_PAGE_INDEX; pfn > 0.
 */
export function pageIndexInsertLocked(files: FileTable, id: number, index: number, pfn: number): number {
  assert(pfn > 0 && index >= 0 && index <= MAX_PAGE_INDEX, 'pageIndexInsert: bad index or pfn');
  const slot = pageIndexSlot(files, id, index);
  if (slot >= 0 && files.cacheNodes.i32[slot] !== 0) return -EEXIST;
  const needed = nodesNeeded(files, id, index);
  if (needed !== 0 && !allocNodes(files, needed)) return -ENOMEM;
  const nodes = files.cacheNodes.i32;
  const per = files.cacheNodes.i32PerRecord;
  const rootAt = files.word(id, FILE_CACHE_ROOT);
  let used = 0;
  let root = files.words[rootAt];
  const want = shiftFor(index);
  if (root === 0) {
    root = initNode(files, id, fresh[used++], want);
  } else {
    // Grow: new top nodes, each holding the previous root under digit 0, published by one store.
    let top = root;
    for (let s = nodes[root * per + SHIFT] + BITS; s <= want; s += BITS) {
      const n = initNode(files, id, fresh[used++], s);
      nodes[n * per] = top;
      nodes[n * per + COUNT] = 1;
      top = n;
    }
    root = top;
  }
  // Descend, building the missing part of the path below its first missing slot before linking it.
  let node = root;
  let shift = nodes[root * per + SHIFT];
  let link = -1;
  let linkTo = 0;
  for (; shift > 0; shift -= BITS) {
    const at = node * per + ((index >>> shift) & SLOT_MASK);
    let child = nodes[at];
    if (child === 0) {
      child = initNode(files, id, fresh[used++], shift - BITS);
      nodes[node * per + COUNT]++;
      if (link < 0) {
        link = at;
        linkTo = child;
      } else nodes[at] = child;
    }
    node = child;
  }
  assertEqualUsed(used, needed);
  Atomics.store(nodes, node * per + (index & SLOT_MASK), pfn);
  nodes[node * per + COUNT]++;
  if (link >= 0) Atomics.store(nodes, link, linkTo);
  if (root !== files.words[rootAt]) publishRoot(files, id, root);
  Atomics.store(files.words, files.word(id, FILE_NRPAGES), files.words[files.word(id, FILE_NRPAGES)] + 1);
  return 0;
}

function assertEqualUsed(used: number, needed: number): void {
  if (used !== needed) throw new VmAssertionError(`pageIndexInsert: used ${used} nodes, counted ${needed}`);
}

function initNode(files: FileTable, id: number, h: number, shift: number): number {
  const b = h * files.cacheNodes.i32PerRecord;
  files.cacheNodes.i32[b + SHIFT] = shift;
  files.cacheNodes.i32[b + FILE] = id;
  return h;
}

function publishRoot(files: FileTable, id: number, root: number): void {
  const height =
    root === 0 ? 0 : files.cacheNodes.i32[root * files.cacheNodes.i32PerRecord + SHIFT] / BITS + 1;
  files.words[files.word(id, FILE_CACHE_HEIGHT)] = height;
  Atomics.store(files.words, files.word(id, FILE_CACHE_ROOT), root);
}

/**
 * Clears the slot of `index` and returns what it held (0: nothing), leaving the tree's shape and
 * counts for pageIndexFinishEraseLocked: reclaim clears first, checks that nobody took a
 * reference meanwhile, and then either finishes or puts the pfn back (pageIndexRestoreLocked).
 * Preconditions: i_pages held.
 */
export function pageIndexClearLocked(files: FileTable, id: number, index: number): number {
  const slot = pageIndexSlot(files, id, index);
  if (slot < 0) return 0;
  const old = files.cacheNodes.i32[slot];
  if (old !== 0) Atomics.store(files.cacheNodes.i32, slot, 0);
  return old;
}

/** Puts back what pageIndexClearLocked took. Preconditions: i_pages held since that clear. */
export function pageIndexRestoreLocked(files: FileTable, id: number, index: number, pfn: number): void {
  const slot = pageIndexSlot(files, id, index);
  assert(slot >= 0 && files.cacheNodes.i32[slot] === 0, 'pageIndexRestore: the slot changed');
  Atomics.store(files.cacheNodes.i32, slot, pfn);
}

/**
 * Finishes the erase of a cleared `index`: counts, emptied nodes unlinked and freed after a grace
 * period, the root lowered while only its slot 0 is used. Preconditions: i_pages held since
 * pageIndexClearLocked returned a pfn for `index`.
 */
export function pageIndexFinishEraseLocked(files: FileTable, id: number, index: number): void {
  const nodes = files.cacheNodes.i32;
  const per = files.cacheNodes.i32PerRecord;
  const root = files.words[files.word(id, FILE_CACHE_ROOT)];
  assert(root !== 0, 'pageIndexFinishErase: empty index');
  let depth = 0;
  let node = root;
  for (let shift = nodes[root * per + SHIFT]; ; shift -= BITS) {
    pathNode[depth] = node;
    pathDigit[depth] = (index >>> shift) & SLOT_MASK;
    depth++;
    if (shift === 0) break;
    node = nodes[node * per + ((index >>> shift) & SLOT_MASK)];
    assert(node !== 0, 'pageIndexFinishErase: the key has no leaf');
  }
  assert(nodes[node * per + pathDigit[depth - 1]] === 0, 'pageIndexFinishErase: the slot was not cleared');
  const nrAt = files.word(id, FILE_NRPAGES);
  Atomics.store(files.words, nrAt, files.words[nrAt] - 1);
  // Empty nodes leave bottom-up: their parent's slot is cleared, then they are freed after a grace period.
  for (let d = depth - 1; d >= 0; d--) {
    const n = pathNode[d];
    if (--nodes[n * per + COUNT] !== 0) break;
    if (d === 0) {
      publishRoot(files, id, 0);
    } else {
      Atomics.store(nodes, pathNode[d - 1] * per + pathDigit[d - 1], 0);
    }
    rcuDeferFree(files.cacheNodes, n);
  }
  shrinkRootLocked(files, id);
}

/** Erases `index`: the pfn it held (the cache's reference passes to the caller), or 0. Preconditions: i_pages held. */
export function pageIndexEraseLocked(files: FileTable, id: number, index: number): number {
  const old = pageIndexClearLocked(files, id, index);
  if (old !== 0) pageIndexFinishEraseLocked(files, id, index);
  return old;
}

/** While the root's only child hangs under digit 0, that child becomes the root (the old one is freed after a grace period). */
function shrinkRootLocked(files: FileTable, id: number): void {
  const nodes = files.cacheNodes.i32;
  const per = files.cacheNodes.i32PerRecord;
  for (let level = 0; level < MAX_LEVELS; level++) {
    const root = files.words[files.word(id, FILE_CACHE_ROOT)];
    if (root === 0) return;
    const b = root * per;
    if (nodes[b + SHIFT] === 0 || nodes[b + COUNT] !== 1 || nodes[b] === 0) return;
    // Readers that loaded the old root still descend through its slot 0 until the grace period ends.
    publishRoot(files, id, nodes[b]);
    rcuDeferFree(files.cacheNodes, root);
  }
}

/**
 * Whole-index check (debug, tests): a description of the first broken invariant, or undefined.
 * Preconditions: nobody changes the index meanwhile. With `files.mem`, each pfn is checked too.
 */
export function checkPageIndex(files: FileTable, id: number): string | undefined {
  const nodes = files.cacheNodes.i32;
  const per = files.cacheNodes.i32PerRecord;
  const root = files.words[files.word(id, FILE_CACHE_ROOT)];
  const nr = files.words[files.word(id, FILE_NRPAGES)];
  if (root === 0) return nr === 0 ? undefined : `file ${id}: empty index but NRPAGES ${nr}`;
  const b = root * per;
  const height = files.words[files.word(id, FILE_CACHE_HEIGHT)];
  if (height !== nodes[b + SHIFT] / BITS + 1)
    return `file ${id}: CACHE_HEIGHT ${height}, root shift ${nodes[b + SHIFT]}`;
  if (nodes[b + SHIFT] !== 0 && nodes[b + COUNT] === 1 && nodes[b] !== 0)
    return `file ${id}: root could shrink`;
  const found = { leaves: 0, problem: undefined as string | undefined };
  checkNode(files, id, root, nodes[b + SHIFT], 0, true, found);
  if (found.problem !== undefined) return found.problem;
  return found.leaves === nr ? undefined : `file ${id}: ${found.leaves} present keys, NRPAGES ${nr}`;
}

function checkNode(
  files: FileTable,
  id: number,
  node: number,
  shift: number,
  base: number,
  isRoot: boolean,
  found: { leaves: number; problem: string | undefined },
): void {
  const nodes = files.cacheNodes.i32;
  const b = node * files.cacheNodes.i32PerRecord;
  if (!files.cacheNodes.isLive(node)) found.problem = `file ${id}: node ${node} is not live`;
  else if (nodes[b + SHIFT] !== shift)
    found.problem = `file ${id}: node ${node} shift ${nodes[b + SHIFT]}, expected ${shift}`;
  else if (nodes[b + FILE] !== id)
    found.problem = `file ${id}: node ${node} belongs to file ${nodes[b + FILE]}`;
  if (found.problem !== undefined) return;
  let count = 0;
  for (let k = 0; k < NODE_SLOTS && found.problem === undefined; k++) {
    const v = nodes[b + k];
    if (v === 0) continue;
    count++;
    const key = base + k * 2 ** shift;
    if (shift > 0) checkNode(files, id, v, shift - BITS, key, false, found);
    else {
      found.leaves++;
      found.problem = checkCachedPfn(files, id, key, v);
    }
  }
  if (found.problem !== undefined) return;
  if (count !== nodes[b + COUNT])
    found.problem = `file ${id}: node ${node} COUNT ${nodes[b + COUNT]}, ${count} slots used`;
  else if (count === 0 && !isRoot) found.problem = `file ${id}: node ${node} is empty`;
}

function checkCachedPfn(files: FileTable, id: number, key: number, pfn: number): string | undefined {
  const mem = files.mem;
  if (mem === null) return undefined;
  if (!(pfn > 0 && pfn < mem.frames)) return `file ${id}: key ${key} holds ${pfn}, not a pfn`;
  // INDEX is an Int32 field: keys from 2^31 on are stored wrapped.
  if (
    mem.kind[pfn] !== KIND_FILE ||
    mem.owner[pfn] !== id ||
    mem.index[pfn] >>> 0 !== key ||
    mem.refcount[pfn] < 1
  ) {
    return `file ${id}: key ${key} holds pfn ${pfn} (${mem.describeFrame(pfn)})`;
  }
  return undefined;
}
