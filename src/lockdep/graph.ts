/**
 * The lock dependency graph, shared by every CPU. A node is a lock class with its subclass
 * (`node = classId * SUBCLASSES + subclass`); an edge A -> B says "B was acquired while A was
 * held", with the kinds in which that happened:
 *
 *   kind = (A held shared ? S : E) | (B acquired as a recursive read ? R : N)
 *   EN = 0   ER = 1   SN = 2   SR = 3          (bit `1 << kind` in an edge's KINDS)
 *
 * A cycle is a possible deadlock only if it is *strong*: no edge that acquires its lock as a
 * recursive read (-(*R)->) is followed by an edge that holds that lock shared (-(S*)->), because
 * two holders of a recursive read side never wait for each other. A rwsem's read side is not
 * recursive (a queued writer makes later readers wait), so rwsem reads are N.
 *
 *   global 'lockdep.graph' (Int32):
 *   control:        LOCK  EDGES  (2 pad)
 *   heads[NODES]:   slot + 1 of the first edge out of each node (0: none)
 *   slots[SLOTS]:   open-addressed hash table of edges, SLOT_WORDS each:
 *   +-----+-------+------+-----+----------------+---------------+
 *   | KEY | KINDS | NEXT | pad | STACK x 4 kinds | SEEN x 4 kinds |
 *   +-----+-------+------+-----+----------------+---------------+
 *   KEY = from * NODES + to + 1 (0: empty); NEXT = slot + 1 of the next edge out of `from`;
 *   STACK[k] = stack-log id where kind k was first seen; SEEN[k] = cpu | SEEN_WRITE if the
 *   acquisition was a write.
 *
 * Invariants: an edge is never removed (until `clear`) and at most half the slots are used; its
 * fields are written before KEY (new edge) or before its KINDS bit (new kind) is published, so
 * lock-free readers (`has`) never see a half-made edge; writers and cycle searches hold LOCK.
 */
import { sharedGlobal } from '../shm/globals.js';
import { MAX_CLASSES } from '../sync/lockclass.js';
import { lockWord, unlockWord } from './wordlock.js';

/** Subclasses per class (0..SUBCLASSES-1), for legitimate nesting of one class. */
export const SUBCLASSES = 8;
export const NODES = MAX_CLASSES * SUBCLASSES;

export const KIND_SHARED = 2;
export const KIND_RECURSIVE = 1;
/** Kinds whose first lock is held exclusively (EN, ER). */
const EXCLUSIVE_KINDS = 0b0011;
/** Kinds whose second lock is acquired non-recursively (EN, SN). */
const NONRECURSIVE_KINDS = 0b0101;

/** In SEEN: the acquisition was a write. */
export const SEEN_WRITE = 0x100;

const SLOTS = 16384;
const MAX_EDGES = SLOTS / 2;
const MASK = SLOTS - 1;
const SLOT_WORDS = 12;
const KEY = 0;
const KINDS = 1;
const NEXT = 2;
const STACK = 4;
const SEEN = 8;
const LOCK = 0;
const EDGES = 1;
const CONTROL_WORDS = 4;

const words = new Int32Array(sharedGlobal('lockdep.graph', (CONTROL_WORDS + NODES + SLOTS * SLOT_WORDS) * 4));
const control = words.subarray(0, CONTROL_WORDS);
const heads = words.subarray(CONTROL_WORDS, CONTROL_WORDS + NODES);
const slots = words.subarray(CONTROL_WORDS + NODES);

/** One edge of a dependency chain as the search found it. */
export interface Step {
  from: number;
  to: number;
  kind: number;
  /** Stack-log id of where this kind of the edge was first seen. */
  stack: number;
  /** cpu | SEEN_WRITE. */
  seen: number;
}

export function kindOf(heldShared: boolean, recursiveRead: boolean): number {
  return (heldShared ? KIND_SHARED : 0) | (recursiveRead ? KIND_RECURSIVE : 0);
}

function hashSlot(key: number): number {
  let x = Math.imul(key ^ (key >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) & MASK;
}

/** Lock-free: whether edge from -> to has been seen in `kind`. */
export function hasDependency(from: number, to: number, kind: number): boolean {
  const key = from * NODES + to + 1;
  for (let s = hashSlot(key); ; s = (s + 1) & MASK) {
    const k = Atomics.load(slots, s * SLOT_WORDS + KEY);
    if (k === key) return (Atomics.load(slots, s * SLOT_WORDS + KINDS) & (1 << kind)) !== 0;
    if (k === 0) return false;
  }
}

/**
 * Records from -> to in `kind` (first seen at `stack` by `seen`) and, when `search` is set and
 * the kind is new, looks for a strong path to -> ... -> from that closes a cycle through it.
 * Returns that path (the existing chain), or null.
 */
export function addDependency(
  from: number,
  to: number,
  kind: number,
  stack: number,
  seen: number,
  search: boolean,
): Step[] | null {
  if (from === to) throw new Error(`lockdep: self-dependency of node ${from}`);
  lockWord(control, LOCK);
  try {
    if (!insert(from, to, kind, stack, seen)) return null;
    return search ? strongPath(to, from, kind) : null;
  } finally {
    unlockWord(control, LOCK);
  }
}

/** Called with LOCK held; false when the kind was already there. */
function insert(from: number, to: number, kind: number, stack: number, seen: number): boolean {
  const key = from * NODES + to + 1;
  let s = hashSlot(key);
  while (slots[s * SLOT_WORDS + KEY] !== 0 && slots[s * SLOT_WORDS + KEY] !== key) s = (s + 1) & MASK;
  const at = s * SLOT_WORDS;
  if (slots[at + KEY] === key) {
    if ((slots[at + KINDS] & (1 << kind)) !== 0) return false;
    slots[at + STACK + kind] = stack;
    slots[at + SEEN + kind] = seen;
    Atomics.or(slots, at + KINDS, 1 << kind);
    return true;
  }
  if (control[EDGES] >= MAX_EDGES) {
    throw new Error(
      `lockdep: dependency graph full (${MAX_EDGES} edges); raise SLOTS in src/lockdep/graph.ts`,
    );
  }
  slots[at + STACK + kind] = stack;
  slots[at + SEEN + kind] = seen;
  slots[at + NEXT] = heads[from];
  Atomics.store(slots, at + KINDS, 1 << kind);
  Atomics.store(slots, at + KEY, key);
  Atomics.store(heads, from, s + 1);
  control[EDGES]++;
  return true;
}

// Breadth-first search state (this CPU's own memory): a state is node * 2 + (arrived by an R edge).
const marks = new Uint32Array(NODES * 2);
const parentState = new Int32Array(NODES * 2);
const parentSlot = new Int32Array(NODES * 2);
const parentKind = new Uint8Array(NODES * 2);
const queue = new Int32Array(NODES * 2);
let generation = 0;

/**
 * Shortest strong path start -> ... -> target, where the first edge follows a new edge of `kind`
 * into `start` and the last is followed by that new edge out of `target` (so the whole cycle is
 * strong). Called with LOCK held.
 */
function strongPath(start: number, target: number, kind: number): Step[] | null {
  if (++generation === 0xffffffff) {
    marks.fill(0);
    generation = 1;
  }
  const gen = generation;
  const first = start * 2 + (kind & KIND_RECURSIVE);
  const closingForbidsR = (kind & KIND_SHARED) !== 0;
  marks[first] = gen;
  parentState[first] = -1;
  queue[0] = first;
  let tail = 1;
  for (let head = 0; head < tail; head++) {
    const state = queue[head];
    const node = state >> 1;
    const arrivedByR = state & 1;
    if (node === target && !(arrivedByR === 1 && closingForbidsR)) return pathTo(state);
    for (let e = heads[node]; e !== 0; e = slots[(e - 1) * SLOT_WORDS + NEXT]) {
      const at = (e - 1) * SLOT_WORDS;
      let allowed = slots[at + KINDS];
      if (arrivedByR === 1) allowed &= EXCLUSIVE_KINDS;
      if (allowed === 0) continue;
      const preferred = allowed & NONRECURSIVE_KINDS;
      const used = lowestBit(preferred !== 0 ? preferred : allowed);
      const to = (slots[at + KEY] - 1) & (NODES - 1);
      const next = to * 2 + (used & KIND_RECURSIVE);
      if (marks[to * 2] === gen || marks[next] === gen) continue;
      marks[next] = gen;
      parentState[next] = state;
      parentSlot[next] = e - 1;
      parentKind[next] = used;
      queue[tail++] = next;
    }
  }
  return null;
}

function lowestBit(bits: number): number {
  return 31 - Math.clz32(bits & -bits);
}

function pathTo(state: number): Step[] {
  const steps: Step[] = [];
  for (let s = state; parentState[s] !== -1; s = parentState[s]) {
    const at = parentSlot[s] * SLOT_WORDS;
    const kind = parentKind[s];
    const key = slots[at + KEY] - 1;
    steps.push({
      from: Math.floor(key / NODES),
      to: key & (NODES - 1),
      kind,
      stack: slots[at + STACK + kind],
      seen: slots[at + SEEN + kind],
    });
  }
  return steps.reverse();
}

export interface Dependency {
  from: number;
  to: number;
  /** Bitmask of kinds (1 << EN/ER/SN/SR). */
  kinds: number;
}

/** Every recorded edge (a snapshot). */
export function dependencies(): Dependency[] {
  const out: Dependency[] = [];
  for (let s = 0; s < SLOTS; s++) {
    const key = Atomics.load(slots, s * SLOT_WORDS + KEY) - 1;
    if (key < 0) continue;
    out.push({ from: Math.floor(key / NODES), to: key & (NODES - 1), kinds: slots[s * SLOT_WORDS + KINDS] });
  }
  return out;
}

export function dependencyCount(): number {
  return Atomics.load(control, EDGES);
}

/** Forgets every edge (no CPU may be validating meanwhile). */
export function clearDependencies(): void {
  lockWord(control, LOCK);
  heads.fill(0);
  slots.fill(0);
  control[EDGES] = 0;
  unlockWord(control, LOCK);
}
