/**
 * The inode hash (docs/fs.md, "Opening files"; Linux's inode_hashtable and inode_hash_lock): host
 * files' records by (st_dev, st_ino), so that every open of one host file, on any CPU and in any
 * process, finds the one record and therefore the one page cache. Kernel-wide: the bucket heads
 * and the lock live in one SharedArrayBuffer that travels in the file table's descriptor; the
 * chains go through the file records themselves (Linux's i_hash), so an insert allocates nothing.
 *
 *   hash words (Int32)                          a hashed record's words (from its INODE base)
 *   +------+----------+---------+-------+        +------+--------+--------+--------+--------+--------+
 *   | LOCK | SEQ      | WAITERS | COUNT | WAITS |  | NEXT | DEV_LO | DEV_HI | INO_LO | INO_HI | HASHED |
 *   | (2)  | (unhash) |         |       |       |  +------+--------+--------+--------+--------+--------+
 *   +------+----------+---------+-------+-------+
 *   | HEADS: BUCKETS record ids (0 = end) |
 *
 * Guards: HEADS, COUNT, every record's NEXT, key and HASHED are written under LOCK (class
 * `inode_hash`, a spinlock and a leaf: taken with no lock held, by open and by a record's release,
 * and nothing is taken under it). A record's key is written before it is linked and never changes
 * while it is hashed. SEQ moves (atomically, under LOCK) at every unhash; WAITERS counts the CPUs
 * sleeping on SEQ (atomics), so an unhash notifies only when someone waits; WAITS counts the
 * lookups that met a dying record (a statistic, atomics).
 *
 * The hash holds no reference to a record (Linux's hash does not hold i_count either). A record
 * whose reference count went to 0 is dying: it stays hashed until its release (writeback of its
 * dirty pages, closing its host descriptors) is done, then `remove` unlinks it, exactly once, just
 * before its record is freed. A lookup that meets a dying record does not revive it (the reference
 * is a get-unless-zero): it waits for the unhash and looks again (`waitForUnhash`), so the next
 * open makes a new record that reads the bytes the dying one wrote back.
 */
import { assert } from '../assert.js';
import { currentCpu } from '../cpu/current.js';
import { beginWait, endWait, hangError, WAIT_SEQCOUNT, WAIT_SLICE_MS, waitTooLong } from '../cpu/waits.js';
import { lockClass } from '../sync/lockclass.js';
import { rcuBlockBegin, rcuBlockEnd } from '../sync/rcu.js';
import { SpinLock } from '../sync/spinlock.js';

/** The inode hash's lock (a leaf spinlock: docs/locking.md). */
export const inodeHashClass = lockClass('inode_hash');

/** Buckets (a power of two). */
const BUCKETS = 1024;
const LOCK = 0;
const SEQ = 2;
const WAITERS = 3;
const COUNT = 4;
const WAITS = 5;
const HEADS = 8;
/** Bytes of the hash's buffer. */
export const INODE_HASH_BYTES = (HEADS + BUCKETS) * 4;

// A record's words, from the base the file table gives (INODE_WORDS of them).
const NEXT = 0;
const DEV_LO = 1;
const DEV_HI = 2;
const INO_LO = 3;
const INO_HI = 4;
const HASHED = 5;
/** Words each file record keeps for the hash. */
export const INODE_WORDS = 6;

/** A host file's identity: st_dev and st_ino, each as two 32-bit halves (low, high). */
export interface InodeKey {
  devLo: number;
  devHi: number;
  inoLo: number;
  inoHi: number;
}

/** The key of `dev` and `ino` (fstat's, as bigints: inode numbers may pass 2^53). */
export function inodeKey(dev: bigint, ino: bigint): InodeKey {
  return {
    devLo: Number(BigInt.asIntN(32, dev)),
    devHi: Number(BigInt.asIntN(32, dev >> 32n)),
    inoLo: Number(BigInt.asIntN(32, ino)),
    inoHi: Number(BigInt.asIntN(32, ino >> 32n)),
  };
}

function bucketOf(k: InodeKey): number {
  let h = Math.imul(k.inoLo ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ k.inoHi ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ k.devLo ^ (h >>> 13), 0x27d4eb2f);
  h ^= k.devHi ^ (h >>> 16);
  return h & (BUCKETS - 1);
}

export class InodeHash {
  readonly buffer: SharedArrayBuffer;
  private readonly w: Int32Array;
  private readonly hashLock: SpinLock;
  private readonly rec: Int32Array;
  private readonly i32Per: number;
  private readonly base: number;
  /** Most records that can ever be hashed (the file arena's capacity): bounds every chain walk. */
  private readonly maxChain: number;

  /**
   * The hash in `buffer` (INODE_HASH_BYTES; all zeros for a new one) over the file records in
   * `records`, `i32Per` words each, whose hash words start at word `base` of each.
   */
  constructor(
    buffer: SharedArrayBuffer,
    records: Int32Array,
    i32Per: number,
    base: number,
    maxRecords: number,
  ) {
    assert(buffer.byteLength === INODE_HASH_BYTES, 'inode hash: wrong buffer size');
    assert(base + INODE_WORDS <= i32Per, 'inode hash: words past the record');
    this.buffer = buffer;
    this.w = new Int32Array(buffer);
    this.hashLock = SpinLock.at(this.w, LOCK, inodeHashClass);
    this.rec = records;
    this.i32Per = i32Per;
    this.base = base;
    this.maxChain = maxRecords + 1;
  }

  /** Clears record `id`'s hash words (a new record: not hashed). */
  initRecord(id: number): void {
    this.rec.fill(0, id * this.i32Per + this.base, id * this.i32Per + this.base + INODE_WORDS);
  }

  /** Takes the hash's lock. Preconditions: no lock held (it is a leaf, and open holds none). */
  lock(): void {
    this.hashLock.lock();
  }
  unlock(): void {
    this.hashLock.unlock();
  }

  /** The record hashed under `k`, dying or not, or 0. Preconditions: the lock held. */
  findLocked(k: InodeKey): number {
    const r = this.rec;
    // Bounded: a chain holds each hashed record at most once.
    let id = this.w[HEADS + bucketOf(k)];
    for (let steps = 0; id !== 0; steps++) {
      assert(steps < this.maxChain, 'inode hash: a chain loops');
      const b = id * this.i32Per + this.base;
      if (
        r[b + INO_LO] === k.inoLo &&
        r[b + INO_HI] === k.inoHi &&
        r[b + DEV_LO] === k.devLo &&
        r[b + DEV_HI] === k.devHi
      )
        return id;
      id = r[b + NEXT];
    }
    return 0;
  }

  /**
   * Hashes record `id` under `k`. Preconditions: the lock held; no record is hashed under `k`
   * (findLocked gave 0); `id` is not hashed and is complete (whoever finds it may use it at once).
   */
  insertLocked(id: number, k: InodeKey): void {
    const r = this.rec;
    const b = id * this.i32Per + this.base;
    assert(r[b + HASHED] === 0, `inode hash: file ${id} hashed twice`);
    const head = HEADS + bucketOf(k);
    r[b + DEV_LO] = k.devLo;
    r[b + DEV_HI] = k.devHi;
    r[b + INO_LO] = k.inoLo;
    r[b + INO_HI] = k.inoHi;
    r[b + NEXT] = this.w[head];
    r[b + HASHED] = 1;
    this.w[head] = id;
    this.w[COUNT]++;
  }

  /**
   * Unhashes record `id` if it is hashed (the release of a record, once: only then is it freed);
   * wakes the lookups waiting for a dying record. Returns whether it was hashed. Preconditions:
   * the last reference to `id` was put; no lock held.
   */
  remove(id: number): boolean {
    const r = this.rec;
    const b = id * this.i32Per + this.base;
    this.lock();
    const hashed = r[b + HASHED] !== 0;
    if (hashed) {
      this.unlinkLocked(id, b);
      Atomics.add(this.w, SEQ, 1);
    }
    this.unlock();
    if (hashed && Atomics.load(this.w, WAITERS) !== 0) Atomics.notify(this.w, SEQ);
    return hashed;
  }

  private unlinkLocked(id: number, b: number): void {
    const r = this.rec;
    const k: InodeKey = {
      devLo: r[b + DEV_LO],
      devHi: r[b + DEV_HI],
      inoLo: r[b + INO_LO],
      inoHi: r[b + INO_HI],
    };
    let at = HEADS + bucketOf(k);
    let words = this.w;
    // Bounded as findLocked's walk; `at` is the link (in `words`) that names the current record.
    for (let steps = 0; words[at] !== id; steps++) {
      assert(words[at] !== 0 && steps < this.maxChain, `inode hash: file ${id} is not on its chain`);
      at = words[at] * this.i32Per + this.base + NEXT;
      words = r;
    }
    words[at] = r[b + NEXT];
    r[b + NEXT] = 0;
    r[b + HASHED] = 0;
    this.w[COUNT]--;
  }

  /**
   * The unhash sequence, counting the caller as a waiter: call with the lock held after finding a
   * dying record, then unlock and `waitForUnhash(seq, id)`.
   */
  prepareWaitLocked(): number {
    Atomics.add(this.w, WAITERS, 1);
    Atomics.add(this.w, WAITS, 1);
    return Atomics.load(this.w, SEQ);
  }

  /**
   * Sleeps until some record was unhashed since `seq` (prepareWaitLocked's), then stops counting
   * the caller as a waiter. Bounded by the watchdog's limit: a dying record's release takes no lock
   * its opener could hold. Preconditions: no lock held; `id` the dying record (for the report).
   */
  waitForUnhash(seq: number, id: number): void {
    const cpu = currentCpu();
    const wasOnline = rcuBlockBegin();
    beginWait(cpu, WAIT_SEQCOUNT, inodeHashClass, 0, id);
    try {
      for (;;) {
        if (Atomics.load(this.w, SEQ) !== seq) return;
        if (Atomics.wait(this.w, SEQ, seq, WAIT_SLICE_MS) === 'timed-out' && waitTooLong(cpu, 0, id))
          throw hangError(cpu, `the release of file ${id} (inode hash)`);
      }
    } finally {
      Atomics.sub(this.w, WAITERS, 1);
      endWait(cpu);
      rcuBlockEnd(wasOnline);
    }
  }

  /** Whether record `id` is hashed (a snapshot; exact under the lock). */
  hashed(id: number): boolean {
    return Atomics.load(this.rec, id * this.i32Per + this.base + HASHED) !== 0;
  }

  /**
   * The whole-structure check (tests, debug): under the lock, every chained record is marked
   * hashed, sits in its key's bucket, once, and no two share a key; COUNT is the chained total.
   * Throws VmAssertionError naming the first violation; returns the records chained.
   */
  check(): number {
    this.lock();
    try {
      const r = this.rec;
      const keys = new Set<string>();
      let total = 0;
      for (let bucket = 0; bucket < BUCKETS; bucket++) {
        let id = this.w[HEADS + bucket];
        for (let steps = 0; id !== 0; steps++) {
          assert(steps < this.maxChain, `inode hash: bucket ${bucket} loops`);
          const b = id * this.i32Per + this.base;
          const k: InodeKey = {
            devLo: r[b + DEV_LO],
            devHi: r[b + DEV_HI],
            inoLo: r[b + INO_LO],
            inoHi: r[b + INO_HI],
          };
          assert(r[b + HASHED] === 1, `inode hash: file ${id} chained but not marked hashed`);
          assert(bucketOf(k) === bucket, `inode hash: file ${id} in bucket ${bucket}, not its key's`);
          const name = `${k.devHi}:${k.devLo}:${k.inoHi}:${k.inoLo}`;
          assert(!keys.has(name), `inode hash: two records of inode ${name}`);
          keys.add(name);
          total++;
          id = r[b + NEXT];
        }
      }
      assert(total === this.w[COUNT], `inode hash: COUNT ${this.w[COUNT]}, ${total} chained`);
      return total;
    } finally {
      this.unlock();
    }
  }

  /** Lookups that met a dying record and waited for its unhash (a statistic). */
  get waits(): number {
    return Atomics.load(this.w, WAITS);
  }

  /** Records hashed (a snapshot; 0 once every host file was released). */
  get count(): number {
    return Atomics.load(this.w, COUNT);
  }
}
