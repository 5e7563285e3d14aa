/**
 * PhysMem: the machine's physical memory. Frames of 4 KiB in one SharedArrayBuffer, a page
 * descriptor per frame (page.ts), and an allocator shaped like Linux's: a zone free list under a
 * spinlock plus per-CPU page lists ("pcp"), so the common allocation and free touch only this
 * CPU's row and no shared lock.
 *
 *   memory (frames * 4 KiB)          pages (struct of arrays)       control (Int32 + Float64 view)
 *   +--------+--------+--------+--   REFCOUNT [pfn]                 line 0: zone lock, ZONE_COUNT, BUMP
 *   | pfn 0  | pfn 1  | pfn 2  |     MAPCOUNT [pfn]                 line 1: DRAIN_GEN
 *   | (none) | zero   | ...    |     FLAGS    [pfn]                 line 2: configuration
 *   +--------+--------+--------+--   OWNER, INDEX, KIND [pfn]       rows: one per CPU id (1 KiB each)
 *                                                                   zone stack: pfns, ZONE_COUNT used
 *
 *   allocFrame:  this CPU's row --empty--> refill: zone lock, take pcpBatch from the zone stack,
 *                then from BUMP (never-used frames) --nothing--> 0 (and ask every CPU to drain)
 *   last put:    push on this CPU's row --above pcpHigh--> zone lock, move the pcpBatch oldest back
 *
 * A per-CPU row is read and written only by its CPU (plain accesses), except by `drainAll` when no
 * CPU runs a task; the zone stack, ZONE_COUNT and BUMP only under the zone lock (class `zone_lock`,
 * a leaf: nothing is taken under it). Frames are zeroed when allocated (a never-used frame is
 * still zero and is not touched); with poisoning on (debug mode) a freed frame is filled with the
 * arenas' poison and allocation checks that nobody wrote to it meanwhile.
 *
 * Memory freed into another CPU's row is not lost but can be stranded there: when allocation finds
 * the zone empty it returns 0 and bumps DRAIN_GEN, and every CPU empties its row into the zone at
 * its next allocation or free (Linux drains remote lists synchronously; here a row has no lock).
 * Rows hold at most pcpHigh frames each, and the default pcpHigh scales with the memory size.
 *
 * Invariants (checked by `check()` when no CPU runs): every frame from FIRST_PFN below BUMP is
 * either in use (KIND not free, REFCOUNT > 0) or on exactly one free list (the zone stack or one
 * row) with a free descriptor; frames from BUMP on are untouched; the per-kind counts of `stats()`
 * equal the descriptors' kinds; the zero page is zero.
 */
import { DEBUG, VmAssertionError } from '../assert.js';
import { currentCpu, MAX_CPUS } from '../cpu/current.js';
import { cpuWaits, STATUS_RUNNING } from '../cpu/waits.js';
import { EINVAL, VmError } from '../errno.js';
import { lockHooks } from '../lockhooks.js';
import { FailureInjector } from '../shm/arena.js';
import { lockClass } from '../sync/lockclass.js';
import { SpinLock } from '../sync/spinlock.js';
import { checkFrames } from './frames-check.js';
import {
  BUMP,
  DRAIN_GEN,
  describeFrame,
  F_ALLOCS,
  F_BASE,
  F_DRAINS,
  F_FAILURES,
  F_FREES,
  F_KIND,
  F_REFILLS,
  FRAMES,
  firstBadByte,
  P_COUNT,
  P_SEEN_GEN,
  P_SLOTS,
  PCP_BASE,
  PCP_BATCH,
  PCP_HIGH,
  PCP_ROW,
  PCP_SLOTS,
  POISON,
  POISON_F64,
  STACK,
  ZONE_CLASS,
  ZONE_COUNT,
  ZONE_LOCK,
} from './frames-layout.js';
import {
  F64_PER_PAGE,
  FIRST_PFN,
  GUP_PIN_COUNTING_BIAS,
  initialFlags,
  KIND_ANON,
  KIND_FILE,
  KIND_FREE,
  KIND_OTHER,
  KIND_PAGETABLE,
  KIND_ZERO,
  KINDS,
  MAX_FRAMES,
  NO_PFN,
  PAGE_FIELDS,
  PAGE_SIZE,
  PG_LOCKED,
  PG_STALE,
  PG_UPTODATE,
  PG_WRITEBACK,
  PG_ZERO,
  ZERO_PFN,
} from './page.js';

export const DEFAULT_FRAMES = 65_536;
const PCP_HIGH_DEFAULT = 128;
const PCP_BATCH_DEFAULT = 32;
const REFCOUNT_MAX = 0x7fffffff;
/** Local alias: V8 folds a module-local const (see src/sync/exclusive.ts). */
const hooks = lockHooks;

export interface PhysMemSpec {
  /** Frames including pfn 0 (none) and pfn 1 (the zero page): FIRST_PFN..frames-1 are allocatable. Default 65536 (256 MiB, committed by the OS as frames are first used). */
  frames?: number;
  /** Fails the chosen allocation (shared with other allocators of a subsystem). */
  injector?: FailureInjector;
  /** Poison freed frames and check the poison on reuse (default: on in debug mode). */
  poison?: boolean;
  /** Most frames a CPU's row keeps (0: every free goes to the zone). Default: min(128, usable / 256). */
  pcpHigh?: number;
  /** Frames moved between a row and the zone at once. Default: pcpHigh / 4, 1..32. */
  pcpBatch?: number;
}

export interface PhysMemDescriptor {
  memory: SharedArrayBuffer;
  pages: SharedArrayBuffer;
  control: SharedArrayBuffer;
  injector: SharedArrayBuffer | null;
}

/** Frame counts by KIND, and the allocator's figures. Exact when no CPU runs, approximate otherwise. */
export interface PhysMemStats {
  /** Allocatable frames (frames - FIRST_PFN). */
  usable: number;
  free: number;
  anon: number;
  file: number;
  pagetable: number;
  zero: number;
  other: number;
  /** Free frames: on the zone stack, in CPU rows, never used (free = zone + cached + untouched). */
  zone: number;
  cached: number;
  untouched: number;
  allocs: number;
  frees: number;
  /** Allocations that returned 0 (injected or out of memory). */
  failures: number;
  /** Batches moved from the zone to a row, and back. */
  refills: number;
  drains: number;
}

/** Buffers of a size in whole pages are reserved page-aligned this way (see src/shm/arena.ts). */
function pageAligned(bytes: number): SharedArrayBuffer {
  const rounded = Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
  return new SharedArrayBuffer(rounded, { maxByteLength: rounded });
}

function rowOf(cpu: number): number {
  if (cpu < 0) throw new Error('this worker is not a vmspace CPU: start it with Machine.start()');
  return PCP_BASE + cpu * PCP_ROW;
}

function checkCount(what: string, value: number, min: number, max: number): void {
  if (!(Number.isInteger(value) && value >= min && value <= max)) {
    throw new VmError(EINVAL, `PhysMem: ${what} ${value} is not in ${min}..${max}`);
  }
}

export class PhysMem {
  /** Frames, pfn 0 and the zero page included. */
  readonly frames: number;
  /** Views over all frames: frame `pfn` is bytes [pfn * PAGE_SIZE, +PAGE_SIZE). */
  readonly bytes: Uint8Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  /** The descriptor fields, indexed by pfn (page.ts says who may write which). */
  readonly refcount: Int32Array;
  readonly mapcount: Int32Array;
  readonly flags: Int32Array;
  readonly owner: Int32Array;
  readonly index: Int32Array;
  readonly kind: Int32Array;
  /** The same six views, indexed by the field constants (REFCOUNT, ..., KIND). */
  readonly fields: readonly Int32Array[];
  readonly injector: FailureInjector | null;
  readonly poison: boolean;
  readonly pcpHigh: number;
  readonly pcpBatch: number;
  private readonly control: Int32Array;
  private readonly counters: Float64Array;
  private readonly zoneLock: SpinLock;
  private readonly desc: PhysMemDescriptor;

  static create(spec: PhysMemSpec = {}): PhysMem {
    const frames = spec.frames ?? DEFAULT_FRAMES;
    checkCount('frames', frames, FIRST_PFN + 1, MAX_FRAMES);
    const usable = frames - FIRST_PFN;
    const high = spec.pcpHigh ?? Math.min(PCP_HIGH_DEFAULT, Math.floor(usable / (4 * MAX_CPUS)));
    checkCount('pcpHigh', high, 0, PCP_SLOTS - 1);
    const batch = spec.pcpBatch ?? Math.max(1, Math.min(PCP_BATCH_DEFAULT, high >> 2));
    checkCount('pcpBatch', batch, 1, Math.max(1, high));
    const control = pageAligned((STACK + frames) * 4);
    const c = new Int32Array(control, 0, STACK + frames);
    c[BUMP] = FIRST_PFN;
    c[FRAMES] = frames;
    c[PCP_HIGH] = high;
    c[PCP_BATCH] = batch;
    c[POISON] = (spec.poison ?? DEBUG) ? 1 : 0;
    c[ZONE_CLASS] = lockClass('zone_lock');
    const mem = new PhysMem({
      memory: pageAligned(frames * PAGE_SIZE),
      pages: pageAligned(PAGE_FIELDS * fieldStride(frames) * 4),
      control,
      injector: spec.injector ? (spec.injector.words.buffer as SharedArrayBuffer) : null,
    });
    mem.refcount[ZERO_PFN] = 1;
    mem.flags[ZERO_PFN] = PG_ZERO | PG_UPTODATE;
    mem.kind[ZERO_PFN] = KIND_ZERO;
    return mem;
  }

  /** Views of a PhysMem created on another CPU (or this one). */
  static attach(desc: PhysMemDescriptor): PhysMem {
    return new PhysMem(desc);
  }

  private constructor(desc: PhysMemDescriptor) {
    this.desc = desc;
    this.control = new Int32Array(desc.control, 0, desc.control.byteLength >> 2);
    this.counters = new Float64Array(desc.control, 0, desc.control.byteLength >> 3);
    const c = this.control;
    this.frames = c[FRAMES];
    this.pcpHigh = c[PCP_HIGH];
    this.pcpBatch = c[PCP_BATCH];
    this.poison = c[POISON] !== 0;
    this.zoneLock = SpinLock.at(c, ZONE_LOCK, c[ZONE_CLASS]);
    const bytes = this.frames * PAGE_SIZE;
    this.bytes = new Uint8Array(desc.memory, 0, bytes);
    this.i32 = new Int32Array(desc.memory, 0, bytes >> 2);
    this.f64 = new Float64Array(desc.memory, 0, bytes >> 3);
    const stride = fieldStride(this.frames) * 4;
    const fields: Int32Array[] = [];
    for (let f = 0; f < PAGE_FIELDS; f++) fields.push(new Int32Array(desc.pages, f * stride, this.frames));
    [this.refcount, this.mapcount, this.flags, this.owner, this.index, this.kind] = fields;
    this.fields = fields;
    this.injector = desc.injector ? new FailureInjector(desc.injector) : null;
  }

  describe(): PhysMemDescriptor {
    return { ...this.desc };
  }

  /**
   * A zeroed frame with REFCOUNT 1, KIND `kind` (anon, file, pagetable or other), OWNER/INDEX as
   * given and FLAGS PG_ANON / PG_PAGETABLE for those kinds; or 0 (NO_PFN) when memory is exhausted
   * or a failure is injected.
   */
  allocFrame(kind: number, owner: number, index: number): number {
    if (hooks.on) hooks.v.mightAlloc('frame');
    if (kind <= KIND_FREE || kind >= KINDS || kind === KIND_ZERO || (kind | 0) !== kind) {
      throw new VmError(EINVAL, `allocFrame: kind ${kind} is not anon, file, pagetable or other`);
    }
    const row = rowOf(currentCpu());
    const c = this.control;
    if (this.injector?.shouldFail()) {
      this.counters[(row >> 1) + F_BASE + F_FAILURES]++;
      return NO_PFN;
    }
    if (c[row + P_SEEN_GEN] !== c[DRAIN_GEN]) this.answerDrain(row);
    let count = c[row + P_COUNT];
    if (count === 0) {
      count = this.refill(row);
      if (count === 0) return this.exhausted(row);
    }
    count--;
    const pfn = c[row + P_SLOTS + count];
    c[row + P_COUNT] = count;
    this.prepare(pfn, kind, owner, index);
    const at = (row >> 1) + F_BASE;
    this.counters[at + F_ALLOCS]++;
    this.counters[at + F_KIND + kind]++;
    return pfn;
  }

  /** Takes a reference (atomic). The caller must already hold one, or a lock that keeps the frame in use. */
  getPage(pfn: number): void {
    const old = Atomics.add(this.refcount, pfn, 1);
    if (old <= 0) this.badRef(pfn, old, 1, 'getPage');
  }

  /** Linux's get_page_unless_zero (atomic): a reference unless the frame is free. Recheck what led you to it. */
  getPageUnlessZero(pfn: number): boolean {
    const r = this.refcount;
    let seen = Atomics.load(r, pfn);
    while (seen > 0 && seen < REFCOUNT_MAX) {
      const was = Atomics.compareExchange(r, pfn, seen, seen + 1);
      if (was === seen) return true;
      seen = was;
    }
    return false;
  }

  /** Drops a reference (atomic); the last one frees the frame into this CPU's row. */
  putPage(pfn: number): void {
    const old = Atomics.sub(this.refcount, pfn, 1);
    if (old > 1) return;
    if (old === 1 && pfn !== ZERO_PFN) this.release(pfn);
    else this.badRef(pfn, old, -1, 'putPage');
  }

  /**
   * A pin (FOLL_PIN): adds GUP_PIN_COUNTING_BIAS to REFCOUNT (atomic). False, changing nothing,
   * when the count would overflow. The caller must hold a reference or the page-table lock.
   */
  pinPage(pfn: number): boolean {
    const old = Atomics.add(this.refcount, pfn, GUP_PIN_COUNTING_BIAS);
    if (old > 0 && old <= REFCOUNT_MAX - GUP_PIN_COUNTING_BIAS) return true;
    Atomics.sub(this.refcount, pfn, GUP_PIN_COUNTING_BIAS);
    if (old <= 0) this.badRef(pfn, old, 0, 'pinPage');
    return false;
  }

  /** Drops a pin (atomic); like putPage, the last reference frees the frame. */
  unpinPage(pfn: number): void {
    const old = Atomics.sub(this.refcount, pfn, GUP_PIN_COUNTING_BIAS);
    if (old > GUP_PIN_COUNTING_BIAS) return;
    if (old === GUP_PIN_COUNTING_BIAS && pfn !== ZERO_PFN) this.release(pfn);
    else this.badRef(pfn, old, -GUP_PIN_COUNTING_BIAS, 'unpinPage');
  }

  /** Linux's folio_maybe_dma_pinned: REFCOUNT >= the bias (1024 plain references look pinned too). */
  maybeDmaPinned(pfn: number): boolean {
    return Atomics.load(this.refcount, pfn) >= GUP_PIN_COUNTING_BIAS;
  }

  refcountOf(pfn: number): number {
    return Atomics.load(this.refcount, pfn);
  }

  /** One more page-table entry maps the frame (atomic); returns the new count. The caller holds a reference. */
  incMapcount(pfn: number): number {
    if (Atomics.load(this.refcount, pfn) <= 0) {
      throw new VmAssertionError(`incMapcount of pfn ${pfn}, which is free`);
    }
    return Atomics.add(this.mapcount, pfn, 1) + 1;
  }

  /** One entry fewer maps it (atomic); returns the new count. */
  decMapcount(pfn: number): number {
    const old = Atomics.sub(this.mapcount, pfn, 1);
    if (old <= 0) {
      Atomics.add(this.mapcount, pfn, 1);
      throw new VmAssertionError(`decMapcount of pfn ${pfn}: mapcount ${old} would go negative`);
    }
    return old - 1;
  }

  mapcountOf(pfn: number): number {
    return Atomics.load(this.mapcount, pfn);
  }

  // FLAGS helpers: all atomic, because bits of one word are owned by different protocols (the page
  // lock, dirtying under a page-table lock, reclaim's referenced bit) and CPUs set them concurrently.
  setFlag(pfn: number, flag: number): void {
    Atomics.or(this.flags, pfn, flag);
  }

  clearFlag(pfn: number, flag: number): void {
    Atomics.and(this.flags, pfn, ~flag);
  }

  testFlag(pfn: number, flag: number): boolean {
    return (Atomics.load(this.flags, pfn) & flag) !== 0;
  }

  /** Sets `flag`; true if it was already set (PG_LOCKED: false means this CPU took the bit). */
  testAndSetFlag(pfn: number, flag: number): boolean {
    return (Atomics.or(this.flags, pfn, flag) & flag) !== 0;
  }

  testAndClearFlag(pfn: number, flag: number): boolean {
    return (Atomics.and(this.flags, pfn, ~flag) & flag) !== 0;
  }

  /** Moves every frame of the calling CPU's row to the zone; returns how many. */
  drainCpuCache(): number {
    const row = rowOf(currentCpu());
    const count = this.control[row + P_COUNT];
    if (count > 0) this.drainRow(row, count);
    return count;
  }

  /**
   * Moves every CPU's row to the zone, so a leak check sees every free frame. Only when no other
   * CPU runs a task (throws otherwise): the rows have no lock. Returns how many frames moved.
   */
  drainAll(): number {
    const me = currentCpu();
    for (const w of cpuWaits()) {
      if (w.cpu !== me && w.status === STATUS_RUNNING) {
        throw new Error(`PhysMem.drainAll: cpu ${w.cpu} is running a task (its frame cache has no lock)`);
      }
    }
    let moved = 0;
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
      const row = PCP_BASE + cpu * PCP_ROW;
      const count = this.control[row + P_COUNT];
      if (count > 0) this.drainRow(row, count);
      moved += count;
    }
    return moved;
  }

  stats(): PhysMemStats {
    const c = this.control;
    const f = this.counters;
    const sum = new Float64Array(F_KIND + KINDS);
    let cached = 0;
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
      const row = PCP_BASE + cpu * PCP_ROW;
      cached += Atomics.load(c, row + P_COUNT);
      for (let k = 0; k < F_KIND + KINDS; k++) sum[k] += f[(row >> 1) + F_BASE + k];
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
   * Whole-structure check (debug, and leak checks in tests), when no CPU runs: a description of
   * the first broken invariant, or undefined. Drain first (`drainAll`) to check the zone alone.
   */
  check(): string | undefined {
    return checkFrames(this, this.control, this.stats());
  }

  /** A free frame leaves its free list: its descriptor must be free and its bytes untouched. */
  private prepare(pfn: number, kind: number, owner: number, index: number): void {
    const flags = this.flags[pfn];
    if (
      this.refcount[pfn] !== 0 ||
      this.kind[pfn] !== KIND_FREE ||
      this.mapcount[pfn] !== 0 ||
      (flags & ~PG_STALE) !== 0
    ) {
      throw new VmAssertionError(
        `allocFrame: free pfn ${pfn} has a used descriptor (${this.describeFrame(pfn)})`,
      );
    }
    if (this.poison) {
      const bad = firstBadByte(this, pfn, (flags & PG_STALE) !== 0);
      if (bad >= 0) {
        throw new VmAssertionError(
          `allocFrame: pfn ${pfn} was written while free (byte ${bad} is not ${(flags & PG_STALE) !== 0 ? 'poison' : 'zero'})`,
        );
      }
    }
    if ((flags & PG_STALE) !== 0) this.f64.fill(0, pfn * F64_PER_PAGE, (pfn + 1) * F64_PER_PAGE);
    this.flags[pfn] = initialFlags(kind);
    this.owner[pfn] = owner;
    this.index[pfn] = index;
    this.kind[pfn] = kind;
    Atomics.store(this.refcount, pfn, 1);
  }

  /** REFCOUNT reached 0: the frame goes to this CPU's row, drained above pcpHigh. */
  private release(pfn: number): void {
    const flags = this.flags[pfn];
    if (this.mapcount[pfn] !== 0 || (flags & (PG_LOCKED | PG_WRITEBACK)) !== 0) {
      throw new VmAssertionError(`putPage: pfn ${pfn} freed while in use (${this.describeFrame(pfn)})`);
    }
    const kind = this.kind[pfn];
    this.kind[pfn] = KIND_FREE;
    this.owner[pfn] = 0;
    this.index[pfn] = 0;
    this.flags[pfn] = PG_STALE;
    if (this.poison) this.f64.fill(POISON_F64, pfn * F64_PER_PAGE, (pfn + 1) * F64_PER_PAGE);
    const row = rowOf(currentCpu());
    const c = this.control;
    const count = c[row + P_COUNT] + 1;
    c[row + P_SLOTS + count - 1] = pfn;
    c[row + P_COUNT] = count;
    const at = (row >> 1) + F_BASE;
    this.counters[at + F_FREES]++;
    this.counters[at + F_KIND + kind]--;
    if (c[row + P_SEEN_GEN] !== c[DRAIN_GEN]) this.answerDrain(row);
    else if (count > this.pcpHigh) this.drainRow(row, this.pcpBatch);
  }

  /** The row is empty: up to pcpBatch frames from the zone stack, then from BUMP. Returns how many. */
  private refill(row: number): number {
    const c = this.control;
    const want = this.pcpBatch;
    this.zoneLock.lock();
    const free = c[ZONE_COUNT];
    const take = Math.min(free, want);
    if (take > 0) {
      c.copyWithin(row + P_SLOTS, STACK + free - take, STACK + free);
      c[ZONE_COUNT] = free - take;
    }
    let got = take;
    const bump = c[BUMP];
    const frames = this.frames;
    // Never-used frames go in descending order, so they are handed out in ascending order.
    const fresh = Math.min(want - got, frames - bump);
    for (let j = 0; j < fresh; j++) c[row + P_SLOTS + got + j] = bump + fresh - 1 - j;
    got += fresh;
    c[BUMP] = bump + fresh;
    this.zoneLock.unlock();
    c[row + P_COUNT] = got;
    if (got > 0) this.counters[(row >> 1) + F_BASE + F_REFILLS]++;
    return got;
  }

  /** Moves the `n` oldest frames of a row (the bottom of its stack) to the zone. */
  private drainRow(row: number, n: number): void {
    const c = this.control;
    const count = c[row + P_COUNT];
    this.zoneLock.lock();
    const free = c[ZONE_COUNT];
    if (free + n > this.frames - FIRST_PFN) {
      this.zoneLock.unlock();
      throw new VmAssertionError('PhysMem: the zone would hold more frames than exist');
    }
    c.copyWithin(STACK + free, row + P_SLOTS, row + P_SLOTS + n);
    c[ZONE_COUNT] = free + n;
    this.zoneLock.unlock();
    if (n < count) c.copyWithin(row + P_SLOTS, row + P_SLOTS + n, row + P_SLOTS + count);
    c[row + P_COUNT] = count - n;
    this.counters[(row >> 1) + F_BASE + F_DRAINS]++;
  }

  /** Another CPU ran out of memory since this row last looked: give the zone everything cached. */
  private answerDrain(row: number): void {
    const c = this.control;
    c[row + P_SEEN_GEN] = Atomics.load(c, DRAIN_GEN);
    const count = c[row + P_COUNT];
    if (count > 0) this.drainRow(row, count);
  }

  private exhausted(row: number): number {
    const c = this.control;
    this.counters[(row >> 1) + F_BASE + F_FAILURES]++;
    c[row + P_SEEN_GEN] = Atomics.add(c, DRAIN_GEN, 1) + 1;
    return NO_PFN;
  }

  /** Undoes a reference change `delta` that found REFCOUNT `old`, then throws. */
  private badRef(pfn: number, old: number, delta: number, what: string): never {
    if (delta !== 0) Atomics.sub(this.refcount, pfn, delta);
    const why =
      pfn === ZERO_PFN && old + delta === 0
        ? 'the zero page is never freed'
        : old <= 0
          ? `refcount ${old}: the frame is free (use after free, or one put too many)`
          : `refcount ${old} is below the pin bias: not pinned`;
    throw new VmAssertionError(`${what} of pfn ${pfn}: ${why}`);
  }

  /** The descriptor of `pfn` in words (error messages). */
  describeFrame(pfn: number): string {
    return describeFrame(this, pfn);
  }
}

/** Words per descriptor field: rounded up to a cache line, so each field starts on one. */
function fieldStride(frames: number): number {
  return Math.ceil(frames / 16) * 16;
}

/** `PhysMem.check`, as a function for `debugAssert(checkPhysMem, mem)`. */
export function checkPhysMem(mem: PhysMem): string | undefined {
  return mem.check();
}
