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
 */

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
