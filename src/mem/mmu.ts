/**
 * One CPU's view of one address space (docs/mem.md, "TLB and shootdown"): loads, stores, bulk
 * copies and page views through a direct-mapped software TLB of TLB_ENTRIES slots, refilled from
 * the page tables by a lock-free walk under RCU, and, when the walk finds no usable entry, by the
 * miss handler (the mm layer's fault path).
 *
 *   slot s = vpn & 511     tags[s] (shared row, see tlb.ts) = floor(addr / 2 MiB) or INVALID_TAG
 *                          words[s] (local) = pfn * 1024, the frame's index in PhysMem.i32
 *                          perms[s] (local) = 1 if stores may use it (PTE WRITE and DIRTY), else 0
 *
 * Fast path (a hit, aligned, inside one page): a countdown of this object's field, the tag load
 * and compare, a sign test, the perms load for stores, and the access: no atomic operation, no
 * shared write, no allocation. The sign test keeps out the addresses in [-2^52, -2^52 + 2 MiB),
 * whose tag is INVALID_TAG: without it they would hit an empty slot and reach its stale frame. Everything else (misses, unaligned or page-crossing accesses, faults) is the slow path.
 *
 * Permissions: every access needs PRESENT | USER; a store needs WRITE, and a TLB entry is
 * writable only when the PTE is also DIRTY (so the first store to a clean page goes to the miss
 * handler, which marks it dirty: the software TLB never writes PTEs). The entry format has no NX
 * bit: an instruction fetch needs what a load needs. ACCESSED is not set by the TLB.
 *
 * Values: little-endian (the host's typed arrays; checked at load). load8/load16 are zero-extended,
 * load32 sign-extended (an int32); load64 returns hi * 2^32 + (lo >>> 0), exact within +-2^53, and
 * leaves the exact halves in `lo32` / `hi32`; store64 takes the two halves. Addresses are integers:
 * the fast path does not check them (a non-integer in a page the TLB holds accesses that page) but
 * for their sign; the slow path faults (SEGV_MAPERR) on any outside [0, 2^47) or not an integer.
 */
import { VmAssertionError } from '../assert.js';
import { currentCpu } from '../cpu/current.js';
import { rcuQuiescent, rcuReadLock, rcuReadUnlock } from '../sync/rcu.js';
import type { PhysMem } from './frames.js';
import type { PageTables } from './pgtable.js';
import type { PhysMove } from './phys-memory.js';
import {
  hugeSubpage,
  PAGE_SIZE,
  PMD_SIZE,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITE,
  PUD_SIZE,
  USER_ADDR_LIMIT,
} from './pte.js';
import {
  type AccessKind,
  FAULT_SEGV_MAPERR,
  INVALID_TAG,
  MemoryFault,
  QUIESCE_EVERY,
  TLB_ENTRIES,
  type TlbDomain,
} from './tlb.js';

/**
 * The fault path, handed down by the mm layer: 0 = the translation is now present, or a FAULT_*
 * code. It is called with the Mmu online and no translation in use: it may take spinlocks whose
 * holders never wait for a shootdown, and shoot down itself (a shootdown's writer counts as
 * acknowledged), but it must call the Mmu's `offline()` before it may wait for anything else
 * (mmap_lock, whose holder may be shooting down and waiting for this CPU; I/O).
 */
export interface MissHandler {
  onMiss(addr: number, write: boolean, exec: boolean): number;
}

const NO_HANDLER: MissHandler = { onMiss: () => FAULT_SEGV_MAPERR };

/**
 * The miss handler's hint (this thread's: each CPU is one thread): the page-table entry a fault
 * installed for `page` (setMissHint). The Mmu's round after a handler that left a hint for the
 * faulting page takes the entry from it instead of walking first; the walk after its tag store
 * still checks it (see miss), so a hint that went stale costs only another round.
 */
const missHint = { page: -1, entry: 0 };

/**
 * Tells this CPU's Mmu that the fault in progress installed `entry` (a present PTE, as stored)
 * for the page at `page`. Called by the fault path after it set the entry, PTL held or not.
 */
export function setMissHint(page: number, entry: number): void {
  missHint.page = page;
  missHint.entry = entry | 0;
}
/**
 * Module-local copies of the sizes the fast paths divide by: V8 folds a module's own const into
 * the code (a division by a power of two becomes a multiplication), but loads an imported binding
 * through its module cell at every use, and divides by what it loaded (measured below, at load32).
 */
const PAGE = PAGE_SIZE;
const REGION = PMD_SIZE;
const MASK = TLB_ENTRIES - 1;
const OFF = PAGE - 1;
const K_READ = 0;
const K_WRITE = 1;
const K_EXEC = 2;
const KIND_NAMES: readonly AccessKind[] = ['read', 'write', 'exec'];
/** Walk-and-handle rounds of one miss before it is reported as a livelock. */
const MAX_MISS_ROUNDS = 64;
/** Below this many bytes a copy loops instead of making a subarray for TypedArray.set. */
const SMALL_COPY = 64;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
  throw new Error('vmspace needs a little-endian host');

export class Mmu {
  // The fields the constructor assigns are `declare`d: an ES2022 class field is first defined as
  // undefined, and V8 then widens the field's type when the typed array is stored, so every fast-
  // path access checked the array's map again (seen in the optimised code of a load loop).
  declare readonly mem: PhysMem;
  declare readonly pt: PageTables;
  declare readonly domain: TlbDomain;
  declare readonly cpu: number;
  declare handler: MissHandler;
  /** The halves of the last load64. */
  lo32 = 0;
  hi32 = 0;
  /**
   * Grows each time this CPU acknowledges a shootdown or goes offline: a page view or base taken
   * at epoch e may be used while `epoch === e` (see pageBase).
   */
  epoch = 0;
  /** Fast-path accesses left before the next look at the shootdown generation. */
  private budget = QUIESCE_EVERY;
  private online = false;
  private ackedGen = 0;
  declare private readonly tags: Int32Array;
  private readonly words = new Int32Array(TLB_ENTRIES);
  private readonly perms = new Uint8Array(TLB_ENTRIES);
  declare private readonly u8: Uint8Array;
  declare private readonly u16: Uint16Array;
  declare private readonly i32: Int32Array;
  declare private readonly f32: Float32Array;
  declare private readonly f64: Float64Array;
  declare private readonly entries: Uint32Array;
  declare private readonly move: PhysMove;
  /** Scratch for the slow path's values (8 bytes, aligned views). */
  private readonly sb = new Uint8Array(8);
  private readonly si32 = new Int32Array(this.sb.buffer);
  private readonly su16 = new Uint16Array(this.sb.buffer);
  private readonly sf32 = new Float32Array(this.sb.buffer);
  private readonly sf64 = new Float64Array(this.sb.buffer);

  /** This CPU's Mmu for the address space (`pt`, `domain`); online at once. One per CPU and domain. */
  constructor(mem: PhysMem, pt: PageTables, domain: TlbDomain, handler: MissHandler = NO_HANDLER) {
    this.mem = mem;
    this.pt = pt;
    this.domain = domain;
    this.handler = handler;
    this.cpu = currentCpu();
    domain.markUsed(this.cpu);
    this.tags = domain.row(this.cpu);
    this.tags.fill(INVALID_TAG);
    const buf = mem.bytes.buffer;
    this.u8 = mem.bytes;
    this.u16 = new Uint16Array(buf, 0, mem.bytes.length >> 1);
    this.i32 = mem.i32;
    this.f32 = new Float32Array(buf, 0, mem.bytes.length >> 2);
    this.f64 = mem.f64;
    this.entries = pt.entries;
    this.move = mem.move;
    this.goOnline();
  }

  // ---- fast paths ------------------------------------------------------------------------------
  //
  // Each access spells the hit test out (countdown, slot, tag, sign, alignment, and for stores the
  // write permission) instead of calling a shared helper: measured, a helper returning the frame's
  // word (readHit/writeHit) cost 5% per load (6.98-7.00 ns against 6.61-6.64 for a TLB hit).

  load8(addr: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0)
      return this.u8[this.words[s] * 4 + (addr & OFF)];
    this.slowRead(addr, 1, K_READ);
    return this.sb[0];
  }

  load16(addr: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 1) === 0)
      return this.u16[this.words[s] * 2 + ((addr & OFF) >> 1)];
    this.slowRead(addr, 2, K_READ);
    return this.su16[0];
  }

  load32(addr: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 3) === 0)
      return this.i32[this.words[s] + ((addr & OFF) >> 2)];
    this.slowRead(addr, 4, K_READ);
    return this.si32[0];
  }

  /** An instruction fetch (faults say 'exec'; it needs the same permissions as a load). */
  fetch32(addr: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 3) === 0)
      return this.i32[this.words[s] + ((addr & OFF) >> 2)];
    this.slowRead(addr, 4, K_EXEC);
    return this.si32[0];
  }

  load64(addr: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 7) === 0) {
      const w = this.words[s] + ((addr & OFF) >> 2);
      this.lo32 = this.i32[w];
      this.hi32 = this.i32[w + 1];
    } else {
      this.slowRead(addr, 8, K_READ);
      this.lo32 = this.si32[0];
      this.hi32 = this.si32[1];
    }
    return this.hi32 * 4294967296 + (this.lo32 >>> 0);
  }

  loadF32(addr: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 3) === 0)
      return this.f32[this.words[s] + ((addr & OFF) >> 2)];
    this.slowRead(addr, 4, K_READ);
    return this.sf32[0];
  }

  loadF64(addr: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 7) === 0)
      return this.f64[this.words[s] / 2 + ((addr & OFF) >> 3)];
    this.slowRead(addr, 8, K_READ);
    return this.sf64[0];
  }

  store8(addr: number, value: number): void {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && this.perms[s] !== 0) {
      this.u8[this.words[s] * 4 + (addr & OFF)] = value;
      return;
    }
    this.sb[0] = value;
    this.slowWrite(addr, 1);
  }

  store16(addr: number, value: number): void {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 1) === 0 && this.perms[s] !== 0) {
      this.u16[this.words[s] * 2 + ((addr & OFF) >> 1)] = value;
      return;
    }
    this.su16[0] = value;
    this.slowWrite(addr, 2);
  }

  store32(addr: number, value: number): void {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 3) === 0 && this.perms[s] !== 0) {
      this.i32[this.words[s] + ((addr & OFF) >> 2)] = value;
      return;
    }
    this.si32[0] = value;
    this.slowWrite(addr, 4);
  }

  /** Stores the 64-bit value hi * 2^32 + (lo >>> 0) (two 32-bit halves, little-endian). */
  store64(addr: number, lo: number, hi: number): void {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 7) === 0 && this.perms[s] !== 0) {
      const w = this.words[s] + ((addr & OFF) >> 2);
      this.i32[w] = lo;
      this.i32[w + 1] = hi;
      return;
    }
    this.si32[0] = lo;
    this.si32[1] = hi;
    this.slowWrite(addr, 8);
  }

  storeF32(addr: number, value: number): void {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 3) === 0 && this.perms[s] !== 0) {
      this.f32[this.words[s] + ((addr & OFF) >> 2)] = value;
      return;
    }
    this.sf32[0] = value;
    this.slowWrite(addr, 4);
  }

  storeF64(addr: number, value: number): void {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (addr & 7) === 0 && this.perms[s] !== 0) {
      this.f64[this.words[s] / 2 + ((addr & OFF) >> 3)] = value;
      return;
    }
    this.sf64[0] = value;
    this.slowWrite(addr, 8);
  }

  // ---- bulk copies and page views ---------------------------------------------------------------

  /** copy_to_user: src into user memory at addr; the bytes NOT copied (0 = all), stopping at the first fault. */
  copyOut(addr: number, src: Uint8Array): number {
    const n = src.length;
    let done = 0;
    while (done < n) {
      const a = addr + done;
      const s = this.translate(a, K_WRITE);
      if (s < 0) break;
      const off = a & OFF;
      const chunk = Math.min(PAGE - off, n - done);
      const at = this.words[s] * 4 + off;
      if (chunk === n) this.u8.set(src, at);
      else if (chunk < SMALL_COPY) for (let i = 0; i < chunk; i++) this.u8[at + i] = src[done + i];
      else this.u8.set(src.subarray(done, done + chunk), at);
      done += chunk;
    }
    return n - done;
  }

  /** copy_from_user: user memory at addr into dst; the bytes NOT copied (0 = all), stopping at the first fault. */
  copyIn(addr: number, dst: Uint8Array): number {
    const n = dst.length;
    let done = 0;
    while (done < n) {
      const a = addr + done;
      const s = this.translate(a, K_READ);
      if (s < 0) break;
      const off = a & OFF;
      const chunk = Math.min(PAGE - off, n - done);
      const at = this.words[s] * 4 + off;
      if (chunk < SMALL_COPY) for (let i = 0; i < chunk; i++) dst[done + i] = this.u8[at + i];
      else dst.set(this.u8.subarray(at, at + chunk), done);
      done += chunk;
    }
    return n - done;
  }

  /**
   * copyOut from physical memory (read() from the page cache): `len` bytes of `mem.bytes` at
   * `srcAt` into user memory at addr; the bytes NOT copied, stopping at the first fault. Both sides
   * live in the one buffer, so each chunk is one copyFrames: nothing is allocated. A chunk spans
   * the user pages after the first that the TLB holds writable in the frames right after its frame
   * (writableRunAfter), so a source and a destination contiguous in PhysMem move in one call. When
   * the chunk's two ranges overlap (a destination mapping the source's own frames), it is cut at
   * the first page boundary of either side, so bytes move in the order of a copy page by page.
   */
  copyOutFrom(addr: number, srcAt: number, len: number): number {
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const s = this.translate(a, K_WRITE);
      if (s < 0) break;
      const off = a & OFF;
      const at = this.words[s] * 4 + off;
      const from = srcAt + done;
      let chunk = Math.min(PAGE - off + this.writableRunAfter(a, s, len - done - (PAGE - off)), len - done);
      if (at < from + chunk && from < at + chunk)
        chunk = Math.min(PAGE - off, PAGE - (from & OFF), len - done);
      this.copyFrames(at, from, chunk);
      done += chunk;
    }
    return len - done;
  }

  /** copyIn into physical memory (write() into the page cache): as copyOutFrom, the other way. */
  copyInTo(addr: number, dstAt: number, len: number): number {
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const s = this.translate(a, K_READ);
      if (s < 0) break;
      const off = a & OFF;
      const chunk = Math.min(PAGE - off, len - done);
      this.copyFrames(dstAt + done, this.words[s] * 4 + off, chunk);
      done += chunk;
    }
    return len - done;
  }

  /**
   * `len` bytes inside the frames from byte `from` to byte `to`. Whole aligned words copy as words
   * (Int32Array elements: each one tear-free, so a CPU racing the copy with a store or a load of
   * that word sees it whole, old or new, as an aligned word is on hardware); anything else by
   * `mem.move` (a memmove, faster, but its bytes land in no particular order).
   */
  private copyFrames(to: number, from: number, len: number): void {
    // >>> 2, not >> 2: byte offsets reach 2^32 (4 GiB of frames); the low bits test is exact either way.
    if (((to | from | len) & 3) === 0) this.i32.copyWithin(to >>> 2, from >>> 2, (from + len) >>> 2);
    else this.move(to, from, len);
  }

  /**
   * The byte offset in `mem.bytes` of the frame mapping addr's page, for an emulator's own fast
   * paths (`mem.i32[base / 4 + k]`); throws MemoryFault. Valid while `epoch` stays what it was
   * after this call: the epoch moves only when this CPU acknowledges a shootdown (at any later
   * access, quiesce or offline), after which the frame may belong to someone else.
   */
  pageBase(addr: number, write: boolean): number {
    const s = this.translate(addr, write ? K_WRITE : K_READ);
    if (s < 0) throw new MemoryFault(s, addr, write ? 'write' : 'read');
    return this.words[s] * 4;
  }

  /** pageBase as a 4 KiB Uint8Array view (allocates the view; the same validity rule). */
  pageView(addr: number, write: boolean): Uint8Array {
    return new Uint8Array(this.u8.buffer, this.pageBase(addr, write), PAGE);
  }

  /**
   * Bytes, up to `want` rounded up to whole pages (0 when `want` <= 0), of the pages right after
   * addr's (slot `s`, just translated for a write) that the TLB holds writable, each in the frame
   * right after the previous one's. Only hits count, and the run stops before the budget would
   * reach its quiescent point: nothing here may acknowledge a shootdown, so every page of the run
   * stays translated until the caller's copy is done. Each page takes one budget step, as its
   * translate would.
   */
  private writableRunAfter(addr: number, s: number, want: number): number {
    let bytes = 0;
    let word = this.words[s];
    let page = addr - (addr & OFF) + PAGE;
    // Bounded: each round takes a budget step, or leaves.
    while (bytes < want && this.budget > 1) {
      const t = (page / PAGE) & MASK;
      if (this.tags[t] !== Math.floor(page / REGION) || this.perms[t] === 0 || this.words[t] !== word + 1024)
        break;
      this.budget--;
      word += 1024;
      page += PAGE;
      bytes += PAGE;
    }
    return bytes;
  }

  // ---- quiescent points -------------------------------------------------------------------------

  /** A quiescent point: acknowledges any shootdown started so far (syscall and fault entry call it). */
  quiesce(): void {
    this.budget = QUIESCE_EVERY;
    if (!this.online) {
      this.goOnline();
      return;
    }
    const gen = this.domain.generation();
    if (gen !== this.ackedGen) {
      this.ackedGen = gen;
      this.epoch++;
      this.domain.acknowledge(this.cpu, gen);
    }
  }

  /**
   * Leaves the address space (idle, blocking, switching to another one): shootdowns stop waiting
   * for this CPU. The next access comes back online by itself.
   */
  offline(): void {
    if (!this.online) return;
    this.online = false;
    this.epoch++;
    this.budget = 1;
    this.domain.acknowledge(this.cpu, 0);
  }

  /** Shootdown from this CPU (see TlbDomain.shootdown); this CPU's views are invalid afterwards. */
  shootdown(startVpn: number, endVpn: number): void {
    this.domain.shootdown(startVpn, endVpn);
    this.epoch++;
  }

  /** Every slot invalid (this CPU's row only; no shootdown). */
  flushLocal(): void {
    this.tags.fill(INVALID_TAG);
  }

  private tick(): void {
    this.quiesce();
  }

  /**
   * Online again: publish an acknowledgement, then load GEN once more. A shootdown that read our
   * ACK as idle did its clears before its GEN increment, which (seq-cst order) precedes that second
   * load, so our later tag reads see them.
   */
  private goOnline(): void {
    const g = this.domain.generation();
    this.domain.acknowledge(this.cpu, g);
    const g2 = this.domain.generation();
    if (g2 !== g) this.domain.acknowledge(this.cpu, g2);
    this.ackedGen = g2;
    this.online = true;
    this.epoch++;
    this.budget = QUIESCE_EVERY;
  }

  // ---- slow path --------------------------------------------------------------------------------

  /** Reads `size` bytes at addr into the scratch (any alignment, across pages); throws MemoryFault. */
  private slowRead(addr: number, size: number, kind: number): void {
    const last = addr + size - 1;
    for (;;) {
      const s1 = this.mustTranslate(addr, kind, addr);
      const s2 = this.mustTranslate(last, kind, Math.max(addr, last - (last & OFF)));
      // Translating the second page may have passed a quiescent point: re-check the first.
      if (this.tags[s1] !== Math.floor(addr / REGION)) continue;
      // An aligned word is one load (a CPU storing it meanwhile is seen whole, as on hardware).
      if (size === 4 && (addr & 3) === 0) {
        this.si32[0] = this.i32[this.words[s1] + ((addr & OFF) >> 2)];
        return;
      }
      for (let i = 0; i < size; i++) {
        const a = addr + i;
        const s = a <= addr + (OFF - (addr & OFF)) ? s1 : s2;
        this.sb[i] = this.u8[this.words[s] * 4 + (a & OFF)];
      }
      return;
    }
  }

  /** Writes the scratch's first `size` bytes at addr: both pages are translated first, so a fault writes nothing. */
  private slowWrite(addr: number, size: number): void {
    const last = addr + size - 1;
    for (;;) {
      const s1 = this.mustTranslate(addr, K_WRITE, addr);
      const s2 = this.mustTranslate(last, K_WRITE, Math.max(addr, last - (last & OFF)));
      if (this.tags[s1] !== Math.floor(addr / REGION) || this.perms[s1] === 0) continue;
      // An aligned word is one store (a CPU loading it meanwhile sees it whole, as on hardware).
      if (size === 4 && (addr & 3) === 0) {
        this.i32[this.words[s1] + ((addr & OFF) >> 2)] = this.si32[0];
        return;
      }
      for (let i = 0; i < size; i++) {
        const a = addr + i;
        const s = a <= addr + (OFF - (addr & OFF)) ? s1 : s2;
        this.u8[this.words[s] * 4 + (a & OFF)] = this.sb[i];
      }
      return;
    }
  }

  /** translate, throwing MemoryFault at `report` (the first byte of the access in the faulting page). */
  private mustTranslate(addr: number, kind: number, report: number): number {
    const s = this.translate(addr, kind);
    if (s < 0) throw new MemoryFault(s, report, KIND_NAMES[kind]);
    return s;
  }

  /** addr's slot with a usable entry, or a FAULT_* code. */
  private translate(addr: number, kind: number): number {
    if (--this.budget === 0) this.tick();
    const s = (addr / PAGE) & MASK;
    if (this.tags[s] === Math.floor(addr / REGION) && addr >= 0 && (kind !== K_WRITE || this.perms[s] !== 0))
      return s;
    return this.miss(addr, kind);
  }

  /**
   * The miss: a quiescent point, then walk (under RCU, every level read atomically); a usable entry
   * is installed (words and perms, then the tag with Atomics.store) and the walk repeated: if the
   * entry changed meanwhile the slot is cleared again (the store-then-reload pairs with a
   * shootdown's PTE-store-then-clear, so a refill racing with a shootdown cannot leave a stale
   * tag behind). Without a usable entry, the miss handler runs (see callHandler) and the walk
   * is retried (the quiescent point at its top brings the Mmu back online if the handler took it
   * offline); when the handler left a hint for the page (setMissHint), the retry starts from the
   * hinted entry instead of a first walk: the walk after the tag store is what makes the refill
   * safe, and it runs either way.
   */
  private miss(addr: number, kind: number): number {
    if (!(addr >= 0 && addr < USER_ADDR_LIMIT && Number.isInteger(addr))) return FAULT_SEGV_MAPERR;
    const write = kind === K_WRITE;
    const s = (addr / PAGE) & MASK;
    const tag = Math.floor(addr / REGION);
    const page = addr - (addr & OFF);
    let hinted = false;
    for (let round = 0; round < MAX_MISS_ROUNDS; round++) {
      this.quiesce();
      rcuReadLock();
      const e = hinted ? missHint.entry : this.walk(addr);
      hinted = false;
      const usable =
        (e & (PTE_PRESENT | PTE_USER)) === (PTE_PRESENT | PTE_USER) && (!write || (e & PTE_WRITE) !== 0);
      let stable = false;
      if (usable) {
        this.words[s] = (e >>> 12) * 1024;
        this.perms[s] = (e & (PTE_WRITE | PTE_DIRTY)) === (PTE_WRITE | PTE_DIRTY) ? 1 : 0;
        Atomics.store(this.tags, s, tag);
        stable = this.walk(addr) === e;
        if (!stable) Atomics.store(this.tags, s, INVALID_TAG);
      }
      rcuReadUnlock();
      if (stable && (!write || this.perms[s] !== 0)) return s;
      if (stable || !usable) {
        // Missing, not permitted, or a clean writable page: the fault path decides.
        missHint.page = -1;
        const r = this.callHandler(addr, write, kind === K_EXEC);
        if (r < 0) return r;
        hinted = missHint.page === page;
      }
    }
    throw new VmAssertionError(
      `Mmu: ${KIND_NAMES[kind]} at 0x${addr.toString(16)} still has no usable translation after ${MAX_MISS_ROUNDS} rounds of the miss handler`,
    );
  }

  /**
   * Runs the miss handler online: most faults never block, and going offline and back cost four
   * atomic operations on the shared domain per fault (a tenth of a fault's time, measured). The
   * handler takes this Mmu offline itself before anything that may wait for a CPU that may wait
   * for a shootdown (mmap_lock, I/O: see MissHandler). The epoch moves: the handler may acknowledge
   * shootdowns (its own included), so page bases taken before are stale.
   */
  private callHandler(addr: number, write: boolean, exec: boolean): number {
    this.epoch++;
    rcuQuiescent();
    return this.handler.onMiss(addr, write, exec);
  }

  /** lookupPte with the leaf read atomically too (the refill's re-check needs a seq-cst load). */
  private walk(addr: number): number {
    const pmd = this.pt.findPmdTable(addr);
    if (pmd === 0) return 0;
    const e = this.entries;
    const x = Atomics.load(e, (pmd << 9) | ((addr % PUD_SIZE) >>> 21));
    if (x === 0) return 0;
    if ((x & PTE_HUGE) !== 0) return hugeSubpage(x, addr);
    return Atomics.load(e, ((x >>> 12) << 9) | (((addr % REGION) >>> 12) & 511));
  }
}
