/**
 * Arenas: fixed-size records in SharedArrayBuffer, addressed by integer handles, usable from every
 * CPU. Every shared record type of vmspace (maple nodes, VMA records, ...) lives in one.
 *
 *   records SAB (max capacity reserved)             control words (Int32, shared)
 *   +----------+----------+----------+-- ...        LOCK FREE_HEAD BUMP CAPACITY LIVE HIGH_WATER
 *   | handle 0 | handle 1 | handle 2 |              FAILURES ALLOCS FREES POISON MAX_CAPACITY
 *   | (null)   | record   | record   |
 *   +----------+----------+----------+-- ...        state bytes: FREE(0) / LIVE(1) per handle
 *
 * Invariants: handle 0 is never handed out (it is "null"); a handle is LIVE from `alloc` to `free`
 * and on the free list otherwise; LIVE == ALLOCS - FREES; growth doubles CAPACITY inside a buffer
 * reserved for MAX_CAPACITY (pages are committed by the OS when first touched), so every view stays
 * valid on every CPU; capacity never exceeds MAX_CAPACITY, and past it `alloc` returns 0 (the
 * caller turns that into ENOMEM). Views are fixed-length: in Node 20, indexing a length-tracking
 * view of a growable SharedArrayBuffer costs ~27 ns instead of ~2 ns.
 *
 * The free list, the state bytes, growth and accounting are serialised by a spinlock word
 * (compareExchange + store, about 17 ns uncontended: the only atomics of an alloc or a free);
 * readers of the statistics use Atomics.load. A freed record is poisoned (every word POISON_WORD) when poisoning is on, so a reader that wrongly keeps a
 * freed record sees poison, and an allocation checks that nobody wrote to a freed record.
 *
 * Failure injection: a `FailureInjector` (shared by all arenas of a subsystem) fails the Nth next
 * allocation, so tests can drive every ENOMEM path.
 */
import { assert, DEBUG, VmAssertionError } from '../assert.js';
import { EINVAL, VmError } from '../errno.js';
import { lockHooks } from '../lockhooks.js';

const LOCK = 0;
const FREE_HEAD = 1;
const BUMP = 2;
const CAPACITY = 3;
const LIVE = 4;
const HIGH_WATER = 5;
const FAILURES = 6;
const ALLOCS = 7;
const FREES = 8;
const POISON = 9;
const MAX_CAPACITY = 10;
const CONTROL_WORDS = 16;
const MAX_RESERVATION = 2 ** 32;
assert(MAX_CAPACITY < CONTROL_WORDS, 'arena: control words overflow CONTROL_WORDS');

const STATE_FREE = 0;
const STATE_LIVE = 1;
/** Transient, under the lock: a live handle that freeBatch has checked. */
const STATE_FREEING = 2;

/** The word a poisoned record is filled with. */
export const POISON_WORD = 0x6b6b6b6b;

/**
 * The records' buffer: the whole maximum, reserved up front (the OS commits pages only when
 * touched). Created growable (with no room to grow) because V8 reserves a growable buffer's
 * memory page-aligned, so records whose size is a multiple of 64 bytes start on a cache line and
 * no two records share one; a plain buffer comes from malloc (measured: 16 bytes past a line).
 * Views over it must still be fixed-length (see above).
 */
function recordsBuffer(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(bytes, { maxByteLength: bytes });
}

/** Shared countdown: `failAfter(n)` lets n allocations succeed, then fails the next one, once. */
export class FailureInjector {
  readonly words: Int32Array;
  /**
   * A new, disarmed injector, or (given its buffer) another view of an existing one, left as it
   * is: an injector armed with `failAfter(0)` must stay armed when an arena attaches to it.
   */
  constructor(buffer?: SharedArrayBuffer) {
    this.words = new Int32Array(buffer ?? new SharedArrayBuffer(8));
    if (buffer === undefined) this.words[0] = -1;
  }
  failAfter(successes: number): void {
    Atomics.store(this.words, 1, 0);
    Atomics.store(this.words, 0, successes);
  }
  disarm(): void {
    Atomics.store(this.words, 0, -1);
  }
  /** How many injected failures happened since the last `failAfter`. */
  get injected(): number {
    return Atomics.load(this.words, 1);
  }
  /** Called by `alloc`: true when this allocation must fail. */
  shouldFail(): boolean {
    if (Atomics.load(this.words, 0) < 0) return false;
    if (Atomics.sub(this.words, 0, 1) !== 0) return false;
    Atomics.store(this.words, 0, -1);
    Atomics.add(this.words, 1, 1);
    return true;
  }
}

export interface ArenaSpec {
  name: string;
  /** Bytes per record: a multiple of 8, so records can hold Float64 fields. */
  recordBytes: number;
  /** Records available at creation (growth adds more, up to `maxCapacity`). */
  capacity: number;
  /** Hard limit; defaults to `capacity` (no growth). */
  maxCapacity?: number;
  /** Poison freed records and verify the poison on reuse (default: on in debug mode, VMSPACE_DEBUG=1). */
  poison?: boolean;
  injector?: FailureInjector;
}

export interface ArenaDescriptor {
  name: string;
  recordBytes: number;
  control: SharedArrayBuffer;
  records: SharedArrayBuffer;
  state: SharedArrayBuffer;
  injector: SharedArrayBuffer | null;
}

export interface ArenaStats {
  name: string;
  live: number;
  highWater: number;
  failures: number;
  allocs: number;
  frees: number;
  capacity: number;
  bytes: number;
}

export class Arena {
  readonly name: string;
  readonly recordBytes: number;
  /** Int32 words per record: record `h` starts at word `h * i32PerRecord` of `i32`. */
  readonly i32PerRecord: number;
  /** Float64 slots per record: record `h` starts at slot `h * f64PerRecord` of `f64`. */
  readonly f64PerRecord: number;
  /** Views over all records up to the maximum capacity (so they never need to follow growth). */
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly injector: FailureInjector | null;
  private readonly control: Int32Array;
  private readonly state: Uint8Array;
  private readonly records: SharedArrayBuffer;
  private readonly stateBuffer: SharedArrayBuffer;

  static create(spec: ArenaSpec): Arena {
    if (spec.recordBytes <= 0 || spec.recordBytes % 8 !== 0) {
      throw new VmError(
        EINVAL,
        `arena ${spec.name}: recordBytes ${spec.recordBytes} is not a positive multiple of 8`,
      );
    }
    const max = spec.maxCapacity ?? spec.capacity;
    if (
      !(
        Number.isInteger(spec.capacity) &&
        Number.isInteger(max) &&
        spec.capacity >= 1 &&
        max >= spec.capacity &&
        max < 2 ** 31 - 1
      )
    ) {
      throw new VmError(EINVAL, `arena ${spec.name}: capacity ${spec.capacity} / max ${max} out of range`);
    }
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    if ((max + 1) * spec.recordBytes > MAX_RESERVATION) {
      throw new VmError(
        EINVAL,
        `arena ${spec.name}: ${max} records of ${spec.recordBytes} bytes exceed 4 GiB`,
      );
    }
    const records = recordsBuffer((max + 1) * spec.recordBytes);
    const state = new SharedArrayBuffer(max + 1);
    const words = new Int32Array(control);
    words[BUMP] = 1;
    words[CAPACITY] = spec.capacity;
    words[MAX_CAPACITY] = max;
    // Debug mode (VMSPACE_DEBUG=1, set by `npm test`): every arena poisons unless told otherwise.
    words[POISON] = (spec.poison ?? DEBUG) ? 1 : 0;
    return new Arena({
      name: spec.name,
      recordBytes: spec.recordBytes,
      control,
      records,
      state,
      injector: spec.injector ? (spec.injector.words.buffer as SharedArrayBuffer) : null,
    });
  }

  /** Views of an arena created on another CPU (or this one). */
  static attach(desc: ArenaDescriptor): Arena {
    return new Arena(desc);
  }

  private constructor(desc: ArenaDescriptor) {
    this.name = desc.name;
    this.recordBytes = desc.recordBytes;
    this.i32PerRecord = desc.recordBytes >> 2;
    this.f64PerRecord = desc.recordBytes >> 3;
    this.records = desc.records;
    this.stateBuffer = desc.state;
    this.i32 = new Int32Array(desc.records, 0, desc.records.byteLength >> 2);
    this.f64 = new Float64Array(desc.records, 0, desc.records.byteLength >> 3);
    this.control = new Int32Array(desc.control);
    this.state = new Uint8Array(desc.state);
    this.injector = desc.injector ? new FailureInjector(desc.injector) : null;
  }

  describe(): ArenaDescriptor {
    return {
      name: this.name,
      recordBytes: this.recordBytes,
      control: this.control.buffer as SharedArrayBuffer,
      records: this.records,
      state: this.stateBuffer,
      injector: this.injector ? (this.injector.words.buffer as SharedArrayBuffer) : null,
    };
  }

  /** A zeroed record's handle, or 0 when the arena is full or a failure is injected. */
  alloc(): number {
    if (lockHooks.on) lockHooks.v.mightAlloc(this.name);
    const c = this.control;
    if (this.injector?.shouldFail()) {
      Atomics.add(c, FAILURES, 1);
      return 0;
    }
    this.lock();
    let handle = c[FREE_HEAD];
    if (handle !== 0) {
      c[FREE_HEAD] = this.i32[handle * this.i32PerRecord];
    } else if (c[BUMP] <= c[CAPACITY] || this.grow()) {
      handle = c[BUMP]++;
    }
    if (handle !== 0) this.markLive(handle);
    Atomics.store(c, LOCK, 0);
    if (handle === 0) {
      Atomics.add(c, FAILURES, 1);
      return 0;
    }
    const start = handle * this.i32PerRecord;
    if (c[POISON] !== 0) this.checkPoison(handle, start);
    const i32 = this.i32;
    for (let i = start, end = start + this.i32PerRecord; i < end; i++) i32[i] = 0;
    return handle;
  }

  /**
   * Records for a caller that writes every word of each before using it: between `min` and `max`
   * handles (as many as the arena has up to `max`) are written to out[at..], under one lock
   * round trip, without zeroing (freed records keep their old words, or poison). Returns how many,
   * or 0 with nothing taken when fewer than `min` can be had. The failure injector sees the first
   * `min` records only: the rest are taken opportunistically and simply stop when the arena is full.
   */
  allocBatch(out: Int32Array, at: number, min: number, max: number): number {
    if (!(min >= 0 && max >= min && at >= 0 && at + max <= out.length)) {
      throw new RangeError(`arena ${this.name}: allocBatch(${at}, ${min}, ${max}) outside ${out.length}`);
    }
    if (max === 0) return 0;
    if (lockHooks.on) lockHooks.v.mightAlloc(this.name);
    const c = this.control;
    for (let k = 0; k < min && this.injector !== null; k++) {
      if (this.injector.shouldFail()) {
        Atomics.add(c, FAILURES, 1);
        return 0;
      }
    }
    this.lock();
    const highWater = c[HIGH_WATER];
    let got = 0;
    while (got < max) {
      let handle = c[FREE_HEAD];
      if (handle !== 0) c[FREE_HEAD] = this.i32[handle * this.i32PerRecord];
      else if (c[BUMP] <= c[CAPACITY] || this.grow()) handle = c[BUMP]++;
      else break;
      this.markLive(handle);
      out[at + got++] = handle;
    }
    if (got < min) {
      while (got > 0) this.unmarkLive(out[at + --got]);
      c[HIGH_WATER] = highWater;
      Atomics.store(c, LOCK, 0);
      Atomics.add(c, FAILURES, 1);
      return 0;
    }
    Atomics.store(c, LOCK, 0);
    if (c[POISON] !== 0) {
      for (let k = at; k < at + got; k++) this.checkPoison(out[k], out[k] * this.i32PerRecord);
    }
    return got;
  }

  /** Under the lock: undoes markLive of a handle that was never handed out (pushed back first). */
  private unmarkLive(handle: number): void {
    const c = this.control;
    this.state[handle] = STATE_FREE;
    c[LIVE]--;
    c[ALLOCS]--;
    this.i32[handle * this.i32PerRecord] = c[FREE_HEAD];
    c[FREE_HEAD] = handle;
  }

  /**
   * Frees handles[at..at+count) under one lock round trip. If any is not live (or appears twice),
   * throws and frees none of them.
   */
  freeBatch(handles: Int32Array, at: number, count: number): void {
    const c = this.control;
    this.lock();
    for (let k = 0; k < count; k++) {
      const handle = handles[at + k];
      if (handle >= 1 && handle < c[BUMP] && this.state[handle] === STATE_LIVE) {
        this.state[handle] = STATE_FREEING;
        continue;
      }
      for (let j = 0; j < k; j++) this.state[handles[at + j]] = STATE_LIVE;
      Atomics.store(c, LOCK, 0);
      throw new Error(`arena ${this.name}: freeBatch of handle ${handle}, which is not live`);
    }
    const poison = c[POISON] !== 0;
    for (let k = 0; k < count; k++) {
      const handle = handles[at + k];
      const start = handle * this.i32PerRecord;
      this.state[handle] = STATE_FREE;
      if (poison) this.i32.fill(POISON_WORD, start, start + this.i32PerRecord);
      this.i32[start] = c[FREE_HEAD];
      c[FREE_HEAD] = handle;
    }
    c[LIVE] -= count;
    c[FREES] += count;
    Atomics.store(c, LOCK, 0);
  }

  /** Under the lock: state and accounting of a handle being handed out. */
  private markLive(handle: number): void {
    const c = this.control;
    if (this.state[handle] !== STATE_FREE) {
      Atomics.store(c, LOCK, 0);
      throw new VmAssertionError(`arena ${this.name}: handle ${handle} handed out twice`);
    }
    this.state[handle] = STATE_LIVE;
    const live = ++c[LIVE];
    c[ALLOCS]++;
    if (live > c[HIGH_WATER]) c[HIGH_WATER] = live;
  }

  /** Returns a live record to the arena. Freeing a handle that is not live throws and changes nothing. */
  free(handle: number): void {
    const c = this.control;
    this.lock();
    if (!(handle >= 1 && handle < c[BUMP]) || this.state[handle] !== STATE_LIVE) {
      Atomics.store(c, LOCK, 0);
      const what =
        handle >= 1 && handle < Atomics.load(c, BUMP) ? 'double free of' : 'free of never allocated';
      throw new Error(`arena ${this.name}: ${what} handle ${handle}`);
    }
    this.state[handle] = STATE_FREE;
    c[LIVE]--;
    c[FREES]++;
    const start = handle * this.i32PerRecord;
    if (c[POISON] !== 0) this.i32.fill(POISON_WORD, start, start + this.i32PerRecord);
    this.i32[start] = c[FREE_HEAD];
    c[FREE_HEAD] = handle;
    Atomics.store(c, LOCK, 0);
  }

  isLive(handle: number): boolean {
    return handle >= 1 && handle < this.state.length && Atomics.load(this.state, handle) === STATE_LIVE;
  }

  /**
   * isLive of a handle the caller owns (only it may free the record, so no other CPU changes its
   * state now): a plain load.
   */
  isLiveOwned(handle: number): boolean {
    return handle >= 1 && handle < this.state.length && this.state[handle] === STATE_LIVE;
  }

  get live(): number {
    return Atomics.load(this.control, LIVE);
  }

  /** Most records the arena can ever hold. */
  get maxCapacity(): number {
    return this.control[MAX_CAPACITY];
  }

  stats(): ArenaStats {
    const c = this.control;
    return {
      name: this.name,
      live: Atomics.load(c, LIVE),
      highWater: Atomics.load(c, HIGH_WATER),
      failures: Atomics.load(c, FAILURES),
      allocs: Atomics.load(c, ALLOCS),
      frees: Atomics.load(c, FREES),
      capacity: Atomics.load(c, CAPACITY),
      bytes: (Atomics.load(c, CAPACITY) + 1) * this.recordBytes,
    };
  }

  private lock(): void {
    const c = this.control;
    while (Atomics.compareExchange(c, LOCK, 0, 1) !== 0) {
      // Held for a handful of plain accesses: spin without sleeping.
    }
  }

  /** Doubles the capacity (bounded by MAX_CAPACITY); called with the lock held. */
  private grow(): boolean {
    const c = this.control;
    const capacity = c[CAPACITY];
    const max = c[MAX_CAPACITY];
    if (capacity >= max) return false;
    Atomics.store(c, CAPACITY, Math.min(max, capacity * 2));
    return true;
  }

  private checkPoison(handle: number, start: number): void {
    // Word 0 holds the free-list link; the rest must still be poison.
    for (let i = start + 1; i < start + this.i32PerRecord; i++) {
      if (this.i32[i] !== POISON_WORD && this.i32[i] !== 0) {
        throw new VmAssertionError(`arena ${this.name}: record ${handle} was written after it was freed`);
      }
    }
  }
}
