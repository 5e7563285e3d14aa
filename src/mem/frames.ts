/**
 * PhysMem: the machine's physical memory. Frames of 4 KiB in one SharedArrayBuffer, a page
 * descriptor per frame (page.ts: struct of arrays, one Int32Array per field), and the frame
 * allocator: the free frames are kept by a Zone (zone.ts: home lists per CPU under `zone_lock`,
 * per-CPU lists in front of it), and PhysMem adds what a frame's life needs on top: zeroing,
 * descriptor set-up and reset, references and pins, map counts, flags, poisoning.
 *
 *   memory (frames * 4 KiB)             pages (struct of arrays)      zone.ts (control buffer)
 *   +--------+--------+--------+--      REFCOUNT [pfn]                zone lock, home lists, BUMP
 *   | pfn 0  | pfn 1  | pfn 2  |        MAPCOUNT [pfn]                DRAIN_GEN
 *   | (none) | zero   | ...    |        FLAGS    [pfn]                one row per CPU id: counters,
 *   +--------+--------+--------+--      OWNER, INDEX, KIND [pfn]      up to pcpHigh free pfns
 *
 *   allocFrame: injector? -> zone.take (this CPU's row; refill from the zone) -> check the free
 *               descriptor (and the poison) -> zero the frame if it was used before -> descriptor
 *               -> REFCOUNT = 1 (an atomic store, after the other fields)
 *   putPage:    REFCOUNT-- (atomic) -> at 0: not mapped, not locked -> reset the descriptor ->
 *               poison -> zone.give (this CPU's row; the oldest to the zone above pcpHigh)
 *
 * Invariants (`check()`, frames-check.ts, when no CPU runs): a frame from FIRST_PFN below BUMP is
 * either in use (KIND anon/file/pagetable/other, REFCOUNT > 0, MAPCOUNT >= 0) or on exactly one
 * free list (a home list or one row) with a free descriptor; frames from BUMP on were never
 * used (descriptor and bytes zero); the counts of `stats()` equal the descriptors'; the zero page
 * (pfn 1) is KIND_ZERO, REFCOUNT >= 1 and all zero; pfn 0 is never used.
 *
 * Frames are zeroed when allocated: a frame used before (PG_STALE) is filled with zeros; a never
 * used one is still the zeros the OS gave (not touched, so not committed). With poisoning on
 * (default in debug mode, `npm test`) a freed frame is filled with the arenas' poison byte, 0x6b,
 * and allocation checks every byte first, throwing with the pfn and the byte if one changed.
 */
import { DEBUG, debugAssert, VmAssertionError } from '../assert.js';
import { MAX_CPUS } from '../cpu/current.js';
import { EINVAL, VmError } from '../errno.js';
import { lockHooks } from '../lockhooks.js';
import { FailureInjector } from '../shm/arena.js';
import { checkFrames } from './frames-check.js';
import {
  describeFrame,
  F64_PER_PAGE,
  FIRST_PFN,
  firstBadByte,
  GUP_PIN_COUNTING_BIAS,
  initialFlags,
  KIND_FREE,
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
  POISON_F64,
  pageAligned,
  ZERO_PFN,
} from './page.js';
import { allocPhysMemory, type PhysMove, physMove } from './phys-memory.js';
import { PCP_SLOTS, type PhysMemStats, Zone } from './zone.js';

export type { PhysMemStats } from './zone.js';

export const DEFAULT_FRAMES = 65_536;
const PCP_HIGH_DEFAULT = 128;
const PCP_BATCH_DEFAULT = 32;
const REFCOUNT_MAX = 0x7fffffff;
/** Local alias: V8 folds a module-local const (see src/sync/exclusive.ts). */
const hooks = lockHooks;

export interface PhysMemSpec {
  /**
   * Frames, pfn 0 (none) and pfn 1 (the zero page) included: FIRST_PFN..frames-1 are allocatable.
   * Default 65536 (256 MiB, reserved at once, committed by the OS as frames are first used).
   */
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
  /** The frames' bytes (phys-memory.ts); `memory` is its buffer. */
  wasm: WebAssembly.Memory;
  memory: SharedArrayBuffer;
  pages: SharedArrayBuffer;
  control: SharedArrayBuffer;
  injector: SharedArrayBuffer | null;
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
  /**
   * memmove(dst, src, len) of bytes inside the frames (this thread's instance, phys-memory.ts):
   * what bulk copies between frames use, a plain memmove where `bytes.copyWithin` copies with
   * relaxed atomics. Racing accesses to the bytes it moves see them in no particular order.
   */
  readonly move: PhysMove;
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
  /** The free frames (zone.ts). */
  private readonly zone: Zone;
  private readonly desc: PhysMemDescriptor;

  static create(spec: PhysMemSpec = {}): PhysMem {
    const frames = spec.frames ?? DEFAULT_FRAMES;
    checkCount('frames', frames, FIRST_PFN + 1, MAX_FRAMES);
    const usable = frames - FIRST_PFN;
    const high = spec.pcpHigh ?? Math.min(PCP_HIGH_DEFAULT, Math.floor(usable / (4 * MAX_CPUS)));
    checkCount('pcpHigh', high, 0, PCP_SLOTS - 1);
    const batch = spec.pcpBatch ?? Math.max(1, Math.min(PCP_BATCH_DEFAULT, high >> 2));
    checkCount('pcpBatch', batch, 1, Math.max(1, high));
    // Debug mode (VMSPACE_DEBUG=1, set by `npm test`) poisons unless told otherwise.
    const control = Zone.buffer(frames, high, batch, spec.poison ?? DEBUG);
    const wasm = allocPhysMemory(frames * PAGE_SIZE);
    const mem = new PhysMem({
      wasm,
      memory: wasm.buffer as SharedArrayBuffer,
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
    this.zone = new Zone(desc.control);
    this.frames = this.zone.frames;
    this.pcpHigh = this.zone.pcpHigh;
    this.pcpBatch = this.zone.pcpBatch;
    this.poison = this.zone.poison;
    const bytes = this.frames * PAGE_SIZE;
    this.bytes = new Uint8Array(desc.memory, 0, bytes);
    this.i32 = new Int32Array(desc.memory, 0, bytes >> 2);
    this.f64 = new Float64Array(desc.memory, 0, bytes >> 3);
    this.move = physMove(desc.wasm);
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
    return this.alloc(kind, owner, index, NO_PFN);
  }

  /**
   * allocFrame, but the frame's bytes are a copy of frame `src`'s instead of zeros (copy-on-write:
   * Linux allocates without __GFP_ZERO and copies, so the frame is written once, not twice).
   * Preconditions: the caller holds a reference to `src` (or a lock that keeps it in use).
   */
  allocFrameCopy(kind: number, owner: number, index: number, src: number): number {
    if (!(src >= ZERO_PFN && src < this.frames && (src | 0) === src)) {
      throw new VmError(EINVAL, `allocFrameCopy: source pfn ${src} is not a frame`);
    }
    return this.alloc(kind, owner, index, src);
  }

  /** allocFrame / allocFrameCopy: `src` NO_PFN zeroes the frame, else copies src into it. */
  private alloc(kind: number, owner: number, index: number, src: number): number {
    if (hooks.on) hooks.v.mightAlloc('frame');
    if (kind <= KIND_FREE || kind >= KINDS || kind === KIND_ZERO || (kind | 0) !== kind) {
      throw new VmError(EINVAL, `allocFrame: kind ${kind} is not anon, file, pagetable or other`);
    }
    if (this.injector?.shouldFail()) {
      this.zone.countFailure();
      return NO_PFN;
    }
    const pfn = this.zone.take(kind);
    if (pfn !== NO_PFN) this.prepare(pfn, kind, owner, index, src);
    return pfn;
  }

  /** Takes a reference (atomic). The caller holds one already, or a lock that keeps the frame in use. */
  getPage(pfn: number): void {
    const old = Atomics.add(this.refcount, pfn, 1);
    if (old <= 0) this.badRef(pfn, old, 1, 'getPage');
  }

  /**
   * Linux's get_page_unless_zero (atomic): a reference unless the frame is free, for lockless
   * lookups. The frame may have been freed and reused meanwhile: recheck what led to it.
   */
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

  /**
   * A pin unless the frame is free (Linux's try_grab_folio for FOLL_PIN, a compare-exchange loop),
   * for lockless lookups (GUP-fast): false on a free frame or when the count would overflow. Like
   * getPageUnlessZero, the frame may have been freed and reused meanwhile: recheck what led to it.
   */
  tryPinPage(pfn: number): boolean {
    const r = this.refcount;
    let seen = Atomics.load(r, pfn);
    while (seen > 0 && seen <= REFCOUNT_MAX - GUP_PIN_COUNTING_BIAS) {
      const was = Atomics.compareExchange(r, pfn, seen, seen + GUP_PIN_COUNTING_BIAS);
      if (was === seen) return true;
      seen = was;
    }
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

  /** Gives every frame of the calling CPU's list to the zone; returns how many. */
  drainCpuCache(): number {
    return this.zone.drainCpu();
  }

  /**
   * Gives every CPU's list to the zone, so that a leak check sees every free frame. Only while no
   * other CPU runs a task (throws otherwise): the lists have no lock. Returns how many frames.
   * In debug mode the whole structure is checked then (`check()`).
   */
  drainAll(): number {
    const moved = this.zone.drainAll();
    debugAssert(checkPhysMem, this);
    return moved;
  }

  stats(): PhysMemStats {
    return this.zone.stats();
  }

  /**
   * Whole-structure check (debug, and leak checks in tests), when no CPU runs: a description of
   * the first broken invariant, or undefined. Drain first (`drainAll`) to check the zone alone.
   */
  check(): string | undefined {
    return checkFrames(this, this.zone);
  }

  /**
   * A free frame leaves its free list: its descriptor must be free and its bytes untouched; then
   * its bytes become zero (`src` NO_PFN) or a copy of frame `src`.
   */
  private prepare(pfn: number, kind: number, owner: number, index: number, src: number): void {
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
    // The copy-on-write copy: a plain memmove (copyWithin on shared memory copies with relaxed
    // atomics: 625 against 480 ns a page into a cold frame here).
    if (src !== NO_PFN) this.move(pfn * PAGE_SIZE, src * PAGE_SIZE, PAGE_SIZE);
    else if ((flags & PG_STALE) !== 0) this.f64.fill(0, pfn * F64_PER_PAGE, (pfn + 1) * F64_PER_PAGE);
    this.flags[pfn] = initialFlags(kind);
    this.owner[pfn] = owner;
    this.index[pfn] = index;
    this.kind[pfn] = kind;
    Atomics.store(this.refcount, pfn, 1);
  }

  /** REFCOUNT reached 0: the frame goes to this CPU's list. */
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
    this.zone.give(pfn, kind);
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

  /** `refcount 1 mapcount 0 flags 0x10 kind anon owner 3 index 0` (error messages). */
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
