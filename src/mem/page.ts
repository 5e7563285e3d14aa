/**
 * The page descriptor: constants shared by the frame allocator (frames.ts), the page tables and
 * the mm layer above. A descriptor is one Int32 per field per frame, struct-of-arrays
 * (`PhysMem.refcount[pfn]`, ... or `PhysMem.fields[REFCOUNT][pfn]`), in shared memory.
 *
 *   field      Linux            written by
 *   REFCOUNT   page_ref         atomics only (get/put/pin/unpin; the allocator stores 1 at allocation)
 *   MAPCOUNT   _mapcount + 1    atomics only (incMapcount/decMapcount)
 *   FLAGS      page->flags      atomics only (Atomics.or/and), except by the allocator while the frame is private
 *   OWNER      page->mapping    plain: set at allocation; later only under the page lock
 *   INDEX      page->index      plain: as OWNER
 *   KIND       (accounting)     plain: set at allocation, reset at free
 *
 * A free frame's descriptor is all zero except FLAGS, which may hold PG_STALE.
 *
 * Also here: the checks of a frame's bytes (poison, zero) and of its descriptor for messages.
 */
import { POISON_WORD } from '../shm/arena.js';

/** Bytes per frame, and its log2. */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** Int32 words and Float64 slots per frame: frame `pfn` starts at `pfn * I32_PER_PAGE` of `PhysMem.i32`. */
export const I32_PER_PAGE = PAGE_SIZE >> 2;
export const F64_PER_PAGE = PAGE_SIZE >> 3;

/** "No frame": what a failed allocation returns; never a frame. */
export const NO_PFN = 0;
/** The shared zero page: always zero, never handed out by the allocator, never freed. */
export const ZERO_PFN = 1;
/** The first frame the allocator hands out. */
export const FIRST_PFN = 2;
/**
 * Most frames a PhysMem may have: a page-table entry keeps the pfn in its 20 high bits
 * (docs/mem.md), so pfns are below 2^20 (4 GiB of frames).
 */
export const MAX_FRAMES = 1 << 20;

/** Linux's GUP_PIN_COUNTING_BIAS: a pin adds this much to REFCOUNT (small folios). */
export const GUP_PIN_COUNTING_BIAS = 1024;

// Descriptor fields: indexes of `PhysMem.fields`.
export const REFCOUNT = 0;
export const MAPCOUNT = 1;
export const FLAGS = 2;
export const OWNER = 3;
export const INDEX = 4;
export const KIND = 5;
export const PAGE_FIELDS = 6;
export const FIELD_NAMES: readonly string[] = ['refcount', 'mapcount', 'flags', 'owner', 'index', 'kind'];

// FLAGS bits (Linux's PG_* names).
/** The page lock bit (the sleeping lock over it belongs to the fault path, not to the allocator). */
export const PG_LOCKED = 1 << 0;
export const PG_REFERENCED = 1 << 1;
export const PG_UPTODATE = 1 << 2;
export const PG_DIRTY = 1 << 3;
/** An anonymous page (Linux keeps it in the low bit of `mapping`); set by allocation of KIND_ANON. */
export const PG_ANON = 1 << 4;
/** PageAnonExclusive: mapped by exactly one process, may be written without COW. */
export const PG_ANON_EXCLUSIVE = 1 << 5;
/** A page-table page; set by allocation of KIND_PAGETABLE. */
export const PG_PAGETABLE = 1 << 6;
/** The zero page (only pfn ZERO_PFN). */
export const PG_ZERO = 1 << 7;
export const PG_MLOCKED = 1 << 8;
export const PG_WRITEBACK = 1 << 9;
/** A page-cache page whose access starts the next readahead window (src/fs/page-cache.ts). */
export const PG_READAHEAD = 1 << 10;
/**
 * Allocator-internal, on free frames only: the frame was handed out before, so its bytes are stale
 * (poison when poisoning is on) and allocation must zero them. A never-used frame lacks it: its
 * bytes are still the zeros the OS gave.
 */
export const PG_STALE = 1 << 30;
const FLAG_BITS: readonly [number, string][] = [
  [PG_LOCKED, 'locked'],
  [PG_REFERENCED, 'referenced'],
  [PG_UPTODATE, 'uptodate'],
  [PG_DIRTY, 'dirty'],
  [PG_ANON, 'anon'],
  [PG_ANON_EXCLUSIVE, 'anon_exclusive'],
  [PG_PAGETABLE, 'pagetable'],
  [PG_ZERO, 'zero'],
  [PG_MLOCKED, 'mlocked'],
  [PG_WRITEBACK, 'writeback'],
  [PG_READAHEAD, 'readahead'],
  [PG_STALE, 'stale'],
];

// KIND values: what a frame is used for (accounting; the counts of PhysMem.stats()).
export const KIND_FREE = 0;
export const KIND_ANON = 1;
export const KIND_FILE = 2;
export const KIND_PAGETABLE = 3;
export const KIND_ZERO = 4;
export const KIND_OTHER = 5;
export const KINDS = 6;
export const KIND_NAMES: readonly string[] = ['free', 'anon', 'file', 'pagetable', 'zero', 'other'];

/** The FLAGS an allocation of `kind` starts with. */
export function initialFlags(kind: number): number {
  return kind === KIND_ANON ? PG_ANON : kind === KIND_PAGETABLE ? PG_PAGETABLE : 0;
}

/** `"dirty|anon"` for a FLAGS word (reports and tests; unknown bits as hex). */
export function formatFlags(flags: number): string {
  const names: string[] = [];
  let rest = flags;
  for (const [bit, name] of FLAG_BITS) {
    if ((flags & bit) === 0) continue;
    names.push(name);
    rest &= ~bit;
  }
  if (rest !== 0) names.push(`0x${(rest >>> 0).toString(16)}`);
  return names.length === 0 ? '0' : names.join('|');
}

/**
 * A SharedArrayBuffer of `bytes` rounded up to whole pages, reserved page-aligned: created growable
 * with no room to grow, as src/shm/arena.ts does (V8 reserves those page-aligned; a plain one comes
 * from malloc, off a cache line). Views over it must be fixed-length (a length-tracking view of a
 * growable buffer is an order of magnitude slower to index).
 */
export function pageAligned(bytes: number): SharedArrayBuffer {
  const rounded = Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
  return new SharedArrayBuffer(rounded, { maxByteLength: rounded });
}

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
