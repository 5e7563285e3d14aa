/**
 * The preallocation bound: the most nodes the next n stores can take from a writer's reserve.
 * Replaced nodes go to the reclaimer and stay allocated until a grace period ends, which in a
 * batch under one lock (a commit under mmap_lock) is after the last store: so the bound is the
 * sum over the stores, each counted at the greatest height the tree can have by then.
 *
 * Facts the bound rests on (the writer asserts the first; docs/maple.md argues the rest):
 * - a store on a tree of h levels builds at most MAX_SPLIT nodes per level, plus a new root when
 *   the old one splits (the height grows by at most one level per store);
 * - per level, a store builds at most one node more than it replaces, so after t stores a level
 *   holds at most (its nodes now) + t nodes, and a new level at most t;
 * - a root splits only when its content exceeds a full node: 12 children, or 17 slots for a root
 *   leaf, whose content grows by at most 2 slots per store;
 * - a tree of height H >= 2 has >= 2 * 4^(H-2) leaves of >= 3 entries, and a store adds at most
 *   2 entries (it can cut one entry in two around the new one).
 * So the root at level H-1 can exist after t stores only if the level below its children held 12
 * nodes, the level below those 4 * 12, ...: comparing that with the level counts known in O(1)
 * (the root's children) and with the entry count gives the first store count at which the tree
 * can be H levels tall. Heights climb through those thresholds about once per 4x more stores.
 */
import { INTERNAL_MIN, INTERNAL_SLOTS, LEAF_MIN, LEAF_SLOTS } from './layout.js';

/** A level's content never needs more than this many new nodes (the writer asserts it). */
export const MAX_SPLIT = 3;

/** A root internal node splits when its content reaches this many children. */
const ROOT_SPLIT_CHILDREN = INTERNAL_SLOTS + 1;
/** A root leaf splits when its content reaches this many slots. */
const ROOT_SPLIT_SLOTS = LEAF_SLOTS + 1;
/** Slots and entries one store can add: it can cut a slot in two around the new one. */
const ADDED_PER_STORE = 2;
/** Slots of the root leaf the first store into an empty tree makes: gap, entry, gap. */
const FIRST_LEAF_SLOTS = 3;
/** Fewest entries of a non-root leaf: its slots, with no two gaps adjacent. */
const MIN_LEAF_ENTRIES = Math.ceil(LEAF_MIN / 2);

/** 4^k (the fewest children of k levels of non-root internal nodes), exact in a double up to k = 26. */
const FANOUT_POWERS = Array.from({ length: 27 }, (_, k) => INTERNAL_MIN ** k);

function fanout(levels: number): number {
  return levels < FANOUT_POWERS.length ? FANOUT_POWERS[levels] : Number.POSITIVE_INFINITY;
}

/** What the bound needs to know about the tree now. */
export interface TreeNow {
  /** Levels (0: empty). */
  height: number;
  /** Slots of the root (its children when internal). */
  rootCount: number;
  /** Entries. */
  entries: number;
}

/**
 * Nodes the next `stores` stores can take at most, or a number above `limit` as soon as the sum
 * passes it (the caller then reports ENOMEM without trying).
 */
export function reserveForStores(stores: number, now: TreeNow, limit: number): number {
  let need = 0;
  let done = 0;
  let height = now.height;
  let reached = 0;
  while (done < stores) {
    // After `taller` stores the tree may have height + 1 levels; the store before it may build
    // the new root.
    const taller = Math.max(reached + 1, storesToGrow(height + 1, now));
    const until = Math.min(stores, taller);
    need += MAX_SPLIT * height * (until - done);
    if (taller <= stores) need += 1;
    if (need > limit) return need;
    done = until;
    reached = taller;
    height++;
  }
  return need;
}

/** The fewest stores after which a tree that is `now` can have `height` (> now.height) levels. */
export function storesToGrow(height: number, now: TreeNow): number {
  return Math.max(byLevelCounts(height, now), byEntries(height, now.entries));
}

/**
 * From the level counts: `height` levels need the root below them to have split with 12
 * children, hence 12 * 4^j nodes j levels further down (non-root nodes have >= 4 children). The
 * counts known now are the root's level (1 node) and the level of its children (rootCount); a
 * level holds at most its nodes now plus one per store.
 */
function byLevelCounts(height: number, now: TreeNow): number {
  const grow = ROOT_SPLIT_CHILDREN * fanout(height - 1 - now.height);
  if (now.height >= 2) return grow - now.rootCount;
  if (now.height === 1) {
    if (height === 2) return Math.ceil((ROOT_SPLIT_SLOTS - now.rootCount) / ADDED_PER_STORE);
    return grow / INTERNAL_MIN - 1;
  }
  if (height === 1) return 1;
  if (height === 2) return 1 + Math.ceil((ROOT_SPLIT_SLOTS - FIRST_LEAF_SLOTS) / ADDED_PER_STORE);
  return grow / INTERNAL_MIN ** 2;
}

/** From the entries: `height` >= 2 levels hold >= 2 * 4^(height-2) leaves of 3 entries each. */
function byEntries(height: number, entries: number): number {
  const least = height === 1 ? 1 : 2 * MIN_LEAF_ENTRIES * fanout(height - 2);
  return Math.max(0, Math.ceil((least - entries) / ADDED_PER_STORE));
}
