/**
 * The free frames of a PhysMem (frames.ts), kept like Linux's page allocator keeps them: a zone
 * free list under a spinlock, and per-CPU page lists ("pcp") in front of it, so the common
 * allocation and free touch only the calling CPU's row and take no shared lock. Frames are pfns
 * here; their descriptors and bytes are PhysMem's business.
 *
 *   control (Int32, with a Float64 view for the counters), one page-aligned SharedArrayBuffer:
 *   word 0      line 0: ZONE_LOCK (2 words), ZONE_COUNT, BUMP           written under the zone lock
 *   word 16     line 1: DRAIN_GEN                                       read by every take and give
 *   word 32     line 2: FRAMES PCP_HIGH PCP_BATCH POISON ZONE_CLASS     written once at creation
 *   word 64     HOMES: per CPU id, HEAD and COUNT of its home list       written under the zone lock
 *   PCP_BASE    rows, one per CPU id, PCP_ROW words (1 KiB) each:
 *               COUNT SEEN_GEN | Float64 counters: allocs frees failures refills drains, net
 *               frames per kind | pfns (a stack: the last given is the first taken)
 *   NEXT        one word per pfn: the next pfn of the home list it is on (NO_PFN ends a list)
 *
 *   take:  this CPU's row --empty--> refill: zone lock, up to pcpBatch pfns from this CPU's home
 *          list, then the other CPUs' home lists, then from BUMP (never-used frames) --nothing-->
 *          0, and DRAIN_GEN++ (a drain request)
 *   give:  push on this CPU's row --above pcpHigh--> zone lock, the pcpBatch oldest go on this
 *          CPU's home list
 *
 * The zone's free frames are split into home lists, one per CPU, each holding the frames that CPU
 * gave back (Linux's pcp lists get the same effect by growing when a CPU frees a lot): a CPU
 * reuses its own frames, whose bytes and descriptors are still in its caches, instead of the ones
 * another CPU just freed (zeroing a 4 KiB frame last written by the other core measured 2.5 times
 * as long: 560 ns against 220 ns). Any CPU may take from any home list under the zone lock, so no
 * frame is stranded there. Never-used frames leave BUMP in runs that end on a multiple of 16
 * pfns where they can, so that one CPU's frames share no descriptor cache line with another's.
 *
 * Who touches what: a row only by its own CPU, with plain accesses (`drainAll` excepted, when no
 * CPU runs a task); HOMES, NEXT, ZONE_COUNT and BUMP only under the zone lock (lock class
 * `zone_lock`, a leaf: nothing is taken under it, it is held for a walk of at most pcpBatch
 * links); DRAIN_GEN with atomics (a plain read on the fast path: a stale value only delays a
 * drain).
 *
 * Drain requests: a row has no lock, so another CPU cannot empty it (Linux takes the remote pcp
 * lock in drain_all_pages). Instead, a CPU that finds memory exhausted bumps DRAIN_GEN and fails;
 * every CPU compares DRAIN_GEN with its row's SEEN_GEN at its next take or give and, if it moved,
 * gives its whole row to the zone. Until then up to pcpHigh frames per CPU can be stranded.
 */
import { VmAssertionError } from '../assert.js';
import { currentCpu, MAX_CPUS } from '../cpu/current.js';
import { cpuWaits, STATUS_RUNNING } from '../cpu/waits.js';
import { lockClass } from '../sync/lockclass.js';
import { SpinLock } from '../sync/spinlock.js';
import {
  FIRST_PFN,
  KIND_ANON,
  KIND_FILE,
  KIND_OTHER,
  KIND_PAGETABLE,
  KINDS,
  NO_PFN,
  pageAligned,
} from './page.js';

export const ZONE_LOCK = 0; // SpinLock.WORDS (2) words
export const ZONE_COUNT = 2;
export const BUMP = 3;
export const DRAIN_GEN = 16;
const FRAMES = 32;
const PCP_HIGH = 33;
const PCP_BATCH = 34;
const POISON = 35;
const ZONE_CLASS = 36;
/** HOMES + 2 * cpu: the head of CPU cpu's home list; + 1: how many frames it holds. */
export const HOMES = 64;
export const H_HEAD = 0;
export const H_COUNT = 1;
/** First word of CPU 0's row; row `cpu` starts at PCP_BASE + cpu * PCP_ROW. */
export const PCP_BASE = HOMES + 2 * MAX_CPUS;
export const PCP_ROW = 256;
export const P_COUNT = 0;
const P_SEEN_GEN = 1;
/** First Int32 word of a row's Float64 counters (exact past 2^31). */
const P_COUNTERS = 2;
const F_BASE = P_COUNTERS >> 1;
const F_ALLOCS = 0;
const F_FREES = 1;
const F_FAILURES = 2;
const F_REFILLS = 3;
const F_DRAINS = 4;
/** Net frames of kind k this CPU took minus gave, at F_KIND + k (KIND_FREE unused). */
const F_KIND = 5;
const F_END = F_KIND + KINDS;
export const P_SLOTS = 32;
/** Most pfns a row holds: pcpHigh + 1 at the moment a give takes it above pcpHigh. */
export const PCP_SLOTS = PCP_ROW - P_SLOTS;
/** NEXT + pfn: the pfn after `pfn` on its home list. */
export const NEXT = PCP_BASE + MAX_CPUS * PCP_ROW;
/** Never-used frames leave BUMP in runs ending on a multiple of this (a descriptor cache line). */
const FRESH_ALIGN = 16;

/** Frame counts by kind, and the allocator's figures. Exact when no CPU runs, approximate otherwise. */
export interface PhysMemStats {
  /** Allocatable frames (frames - FIRST_PFN). */
  usable: number;
  free: number;
  anon: number;
  file: number;
  pagetable: number;
  /** Always 1: the zero page. */
  zero: number;
  other: number;
  /** Where the free frames are: the zone's home lists, CPU rows, never used (free = zone + cached + untouched). */
  zone: number;
  cached: number;
  untouched: number;
  allocs: number;
  frees: number;
  /** Allocations that returned 0 (injected, or memory exhausted). */
  failures: number;
  /** Batches moved from the zone to a row, and back. */
  refills: number;
  drains: number;
}

function rowOf(cpu: number): number {
  if (cpu < 0) throw new Error('this worker is not a vmspace CPU: start it with Machine.start()');
  return PCP_BASE + cpu * PCP_ROW;
}

export class Zone {
  readonly frames: number;
  readonly pcpHigh: number;
  readonly pcpBatch: number;
  readonly poison: boolean;
  /** The control words (frames-check.ts walks them). */
  readonly control: Int32Array;
  private readonly counters: Float64Array;
  private readonly lock: SpinLock;

  /** A new control buffer for `frames` frames, configured; `new Zone(buffer)` views it. */
  static buffer(frames: number, high: number, batch: number, poison: boolean): SharedArrayBuffer {
    const buffer = pageAligned((NEXT + frames) * 4);
    const c = new Int32Array(buffer, 0, NEXT + frames);
    c[BUMP] = FIRST_PFN;
    c[FRAMES] = frames;
    c[PCP_HIGH] = high;
    c[PCP_BATCH] = batch;
    c[POISON] = poison ? 1 : 0;
    c[ZONE_CLASS] = lockClass('zone_lock');
    return buffer;
  }

  constructor(buffer: SharedArrayBuffer) {
    this.control = new Int32Array(buffer, 0, buffer.byteLength >> 2);
    this.counters = new Float64Array(buffer, 0, buffer.byteLength >> 3);
    const c = this.control;
    this.frames = c[FRAMES];
    this.pcpHigh = c[PCP_HIGH];
    this.pcpBatch = c[PCP_BATCH];
    this.poison = c[POISON] !== 0;
    this.lock = SpinLock.at(c, ZONE_LOCK, c[ZONE_CLASS]);
  }

  /** A free pfn for a frame of `kind` (counted), from this CPU's row; NO_PFN when memory is exhausted. */
  take(kind: number): number {
    const cpu = currentCpu();
    const row = rowOf(cpu);
    const c = this.control;
    if (c[row + P_SEEN_GEN] !== c[DRAIN_GEN]) this.answerDrain(row, cpu);
    let count = c[row + P_COUNT];
    if (count === 0) {
      count = this.refill(row, cpu);
      if (count === 0) return this.exhausted(row);
    }
    count--;
    c[row + P_COUNT] = count;
    const at = (row >> 1) + F_BASE;
    this.counters[at + F_ALLOCS]++;
    this.counters[at + F_KIND + kind]++;
    return c[row + P_SLOTS + count];
  }

  /** Counts an allocation that failed before `take` (an injected failure). */
  countFailure(): void {
    this.counters[(rowOf(currentCpu()) >> 1) + F_BASE + F_FAILURES]++;
  }

  /** A freed frame of `kind` goes on this CPU's row; above pcpHigh the oldest pcpBatch go to the zone. */
  give(pfn: number, kind: number): void {
    const cpu = currentCpu();
    const row = rowOf(cpu);
    const c = this.control;
    const count = c[row + P_COUNT] + 1;
    c[row + P_SLOTS + count - 1] = pfn;
    c[row + P_COUNT] = count;
    const at = (row >> 1) + F_BASE;
    this.counters[at + F_FREES]++;
    this.counters[at + F_KIND + kind]--;
    if (c[row + P_SEEN_GEN] !== c[DRAIN_GEN]) this.answerDrain(row, cpu);
    else if (count > this.pcpHigh) this.drainRow(row, cpu, this.pcpBatch);
  }

  /** Gives this CPU's whole row to the zone; returns how many frames. */
  drainCpu(): number {
    const cpu = currentCpu();
    const row = rowOf(cpu);
    const count = this.control[row + P_COUNT];
    if (count > 0) this.drainRow(row, cpu, count);
    return count;
  }

  /** Every CPU's row to the zone; throws while another CPU runs a task (rows have no lock). */
  drainAll(): number {
    const me = currentCpu();
    for (const w of cpuWaits()) {
      if (w.cpu !== me && w.status === STATUS_RUNNING) {
        throw new Error(`PhysMem.drainAll: cpu ${w.cpu} is running a task (its frame list has no lock)`);
      }
    }
    let moved = 0;
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
      const row = PCP_BASE + cpu * PCP_ROW;
      const count = this.control[row + P_COUNT];
      if (count > 0) this.drainRow(row, cpu, count);
      moved += count;
    }
    return moved;
  }

  stats(): PhysMemStats {
    const c = this.control;
    const sum = new Float64Array(F_END);
    let cached = 0;
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
      const row = PCP_BASE + cpu * PCP_ROW;
      cached += Atomics.load(c, row + P_COUNT);
      for (let k = 0; k < F_END; k++) sum[k] += this.counters[(row >> 1) + F_BASE + k];
    }
    const usable = this.frames - FIRST_PFN;
    const anon = sum[F_KIND + KIND_ANON];
    const file = sum[F_KIND + KIND_FILE];
    const pagetable = sum[F_KIND + KIND_PAGETABLE];
    const other = sum[F_KIND + KIND_OTHER];
    return {
      usable,
      free: usable - anon - file - pagetable - other,
      anon,
      file,
      pagetable,
      zero: 1,
      other,
      zone: Atomics.load(c, ZONE_COUNT),
      cached,
      untouched: this.frames - Atomics.load(c, BUMP),
      allocs: sum[F_ALLOCS],
      frees: sum[F_FREES],
      failures: sum[F_FAILURES],
      refills: sum[F_REFILLS],
      drains: sum[F_DRAINS],
    };
  }

  /**
   * The row is empty: up to pcpBatch pfns, from this CPU's home list, then the other CPUs' (memory
   * stays compact), then from BUMP. The row is filled so that they are taken in that order (the
   * home list's most recently given first: the warmest). Returns how many.
   */
  private refill(row: number, cpu: number): number {
    const c = this.control;
    const want = this.pcpBatch;
    this.lock.lock();
    let got = this.popHome(cpu, row, 0, want);
    for (let k = 1; k < MAX_CPUS && got < want && c[ZONE_COUNT] > 0; k++) {
      got += this.popHome((cpu + k) % MAX_CPUS, row, got, want - got);
    }
    if (got < want) got += this.popFresh(row, got, want - got);
    this.lock.unlock();
    // Taken from the top: reverse, so that the first popped is the first taken.
    for (let i = 0, j = got - 1; i < j; i++, j--) {
      const t = c[row + P_SLOTS + i];
      c[row + P_SLOTS + i] = c[row + P_SLOTS + j];
      c[row + P_SLOTS + j] = t;
    }
    c[row + P_COUNT] = got;
    if (got > 0) this.counters[(row >> 1) + F_BASE + F_REFILLS]++;
    return got;
  }

  /**
   * Moves up to `n` pfns from CPU `home`'s list into row slots from `at`; returns how many.
   * Preconditions: the zone lock held.
   */
  private popHome(home: number, row: number, at: number, n: number): number {
    const c = this.control;
    const h = HOMES + 2 * home;
    const k = Math.min(n, c[h + H_COUNT]);
    let pfn = c[h + H_HEAD];
    for (let i = 0; i < k; i++) {
      c[row + P_SLOTS + at + i] = pfn;
      pfn = c[NEXT + pfn];
    }
    c[h + H_HEAD] = k === c[h + H_COUNT] ? NO_PFN : pfn;
    c[h + H_COUNT] -= k;
    c[ZONE_COUNT] -= k;
    return k;
  }

  /**
   * Moves up to `n` never-used pfns (ascending, from BUMP) into row slots from `at`, stopping at a
   * multiple of FRESH_ALIGN when that leaves some; returns how many. Preconditions: the zone lock.
   */
  private popFresh(row: number, at: number, n: number): number {
    const c = this.control;
    const bump = c[BUMP];
    let fresh = Math.min(n, this.frames - bump);
    const aligned = bump + fresh - ((bump + fresh) % FRESH_ALIGN);
    if (aligned > bump) fresh = aligned - bump;
    for (let j = 0; j < fresh; j++) c[row + P_SLOTS + at + j] = bump + j;
    c[BUMP] = bump + fresh;
    return fresh;
  }

  /** Moves the `n` oldest pfns of a row (the bottom of its stack) to CPU `home`'s list. */
  private drainRow(row: number, home: number, n: number): void {
    const c = this.control;
    const count = c[row + P_COUNT];
    const h = HOMES + 2 * home;
    this.lock.lock();
    if (c[ZONE_COUNT] + n > this.frames - FIRST_PFN) {
      this.lock.unlock();
      throw new VmAssertionError('PhysMem: the zone would hold more frames than exist');
    }
    let head = c[h + H_HEAD];
    for (let i = 0; i < n; i++) {
      const pfn = c[row + P_SLOTS + i];
      c[NEXT + pfn] = head;
      head = pfn;
    }
    c[h + H_HEAD] = head;
    c[h + H_COUNT] += n;
    c[ZONE_COUNT] += n;
    this.lock.unlock();
    if (n < count) c.copyWithin(row + P_SLOTS, row + P_SLOTS + n, row + P_SLOTS + count);
    c[row + P_COUNT] = count - n;
    this.counters[(row >> 1) + F_BASE + F_DRAINS]++;
  }

  /** Another CPU ran out of memory since this row last looked: the zone gets everything cached. */
  private answerDrain(row: number, cpu: number): void {
    const c = this.control;
    c[row + P_SEEN_GEN] = Atomics.load(c, DRAIN_GEN);
    const count = c[row + P_COUNT];
    if (count > 0) this.drainRow(row, cpu, count);
  }

  private exhausted(row: number): number {
    const c = this.control;
    this.counters[(row >> 1) + F_BASE + F_FAILURES]++;
    c[row + P_SEEN_GEN] = Atomics.add(c, DRAIN_GEN, 1) + 1;
    return NO_PFN;
  }
}
