/**
 * The layout of a PhysMem's control buffer (frames.ts) and the byte checks its allocator and its
 * whole-structure check (frames-check.ts) share.
 *
 *   word 0     line 0: ZONE_LOCK (2 words), ZONE_COUNT, BUMP          written under the zone lock
 *   word 16    line 1: DRAIN_GEN                                      read by every alloc and free
 *   word 32    line 2: FRAMES PCP_HIGH PCP_BATCH POISON ZONE_CLASS    written once at creation
 *   word 64    rows, one per CPU id, PCP_ROW words (1 KiB) each:
 *              COUNT SEEN_GEN | Float64 counters (allocs frees failures refills drains, net per kind) | pfns
 *   STACK      the zone's free stack: ZONE_COUNT pfns
 */
import { MAX_CPUS } from '../cpu/current.js';
import { POISON_WORD } from '../shm/arena.js';
import { F64_PER_PAGE, I32_PER_PAGE, KIND_NAMES, PAGE_SIZE } from './page.js';

// Control words. Line 0 is written under the zone lock; line 1 is read by every allocation and
// free and written only when memory runs out; line 2 is written once at creation.
export const ZONE_LOCK = 0; // SpinLock.WORDS (2) words
export const ZONE_COUNT = 2;
export const BUMP = 3;
export const DRAIN_GEN = 16;
export const FRAMES = 32;
export const PCP_HIGH = 33;
export const PCP_BATCH = 34;
export const POISON = 35;
export const ZONE_CLASS = 36;
/** First word of CPU 0's row; row `cpu` starts at PCP_BASE + cpu * PCP_ROW. */
export const PCP_BASE = 64;
export const PCP_ROW = 256;
// A row: Int32 words COUNT and SEEN_GEN, Float64 counters from word P_COUNTERS (exact past 2^31),
// the cached pfns from word P_SLOTS (a stack: the last freed is the first allocated).
export const P_COUNT = 0;
export const P_SEEN_GEN = 1;
export const P_COUNTERS = 2;
/** The counters as Float64 indexes from a row's first Float64. */
export const F_BASE = P_COUNTERS >> 1;
export const F_ALLOCS = 0;
export const F_FREES = 1;
export const F_FAILURES = 2;
export const F_REFILLS = 3;
export const F_DRAINS = 4;
/** Net frames of kind k this CPU allocated minus freed, at F_KIND + k (KIND_FREE unused). */
export const F_KIND = 5;
export const P_SLOTS = 32;
/** Most frames a row can hold: pcpHigh + 1 (a row is drained when a free takes it above pcpHigh). */
export const PCP_SLOTS = PCP_ROW - P_SLOTS;
export const STACK = PCP_BASE + MAX_CPUS * PCP_ROW;

/** The byte a poisoned frame is filled with (POISON_WORD's bytes). */
export const POISON_BYTE = POISON_WORD & 0xff;
/** A Float64 whose 8 bytes are all poison bytes (0x6b): a normal number, so `===` compares bits. */
export const POISON_F64 = new Float64Array(new Int32Array([POISON_WORD, POISON_WORD]).buffer)[0];

/** The views the byte checks and reports read. */
export interface FrameViews {
  readonly bytes: Uint8Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly refcount: Int32Array;
  readonly mapcount: Int32Array;
  readonly flags: Int32Array;
  readonly owner: Int32Array;
  readonly index: Int32Array;
  readonly kind: Int32Array;
}

/**
 * The first byte of frame `pfn` that is not poison (`stale`) or not zero (a never-used frame), as
 * an offset into the frame; -1 when the frame is intact. Poison is compared as Float64 (a normal
 * number: equal values have equal bits), zero as Int32 (-0 would equal 0); the byte is found only
 * once a word differs.
 */
export function firstBadByte(mem: FrameViews, pfn: number, stale: boolean): number {
  let word = -1;
  if (stale) {
    const f = mem.f64;
    const start = pfn * F64_PER_PAGE;
    for (let i = start; i < start + F64_PER_PAGE; i++) {
      if (f[i] !== POISON_F64) {
        word = i - start;
        break;
      }
    }
    if (word < 0) return -1;
    const at = pfn * PAGE_SIZE + word * 8;
    for (let b = 0; b < 7; b++) if (mem.bytes[at + b] !== POISON_BYTE) return word * 8 + b;
    return word * 8 + 7;
  }
  const w = mem.i32;
  const start = pfn * I32_PER_PAGE;
  for (let i = start; i < start + I32_PER_PAGE; i++) {
    if (w[i] !== 0) {
      word = i - start;
      break;
    }
  }
  if (word < 0) return -1;
  const at = pfn * PAGE_SIZE + word * 4;
  for (let b = 0; b < 3; b++) if (mem.bytes[at + b] !== 0) return word * 4 + b;
  return word * 4 + 3;
}

/** `refcount 1 mapcount 0 flags 0x10 kind anon owner 3 index 0` (error messages). */
export function describeFrame(mem: FrameViews, pfn: number): string {
  const kind = mem.kind[pfn];
  return (
    `refcount ${mem.refcount[pfn]} mapcount ${mem.mapcount[pfn]} flags 0x${(mem.flags[pfn] >>> 0).toString(16)} ` +
    `kind ${KIND_NAMES[kind] ?? kind} owner ${mem.owner[pfn]} index ${mem.index[pfn]}`
  );
}
