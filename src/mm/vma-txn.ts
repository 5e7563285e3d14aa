/**
 * VmaTxn: the working set of one address-space operation. Every syscall runs Linux's VMA
 * algorithm against the transaction, never against the tree: VMAs it touches are *loaded* into
 * slots (copies of their records), split/merged/changed there, and the result is *committed* to
 * the records and the RangeIndex in one step after every allocation it needs has succeeded. So an
 * injected allocation failure changes nothing, and errors that Linux reports after partial work
 * (mprotect over a hole, ...) commit exactly the work done before them.
 *
 *   slots (stable ids)             order (live slots sorted by start)   covered (original ranges
 *   +----+------+-----+-----+      [s3, s0, s7, ...]                    of loaded records, merged)
 *   |id  |start |end  |...  |                                           [c0s,c0e) [c1s,c1e) ...
 *   |    |origin (record handle, 0 = new)|
 *
 * Reads see the overlay: a query asks both the live slots and the tree, skipping tree entries in
 * covered intervals (those records are represented by slots, changed or removed). Invariants: live
 * slots never overlap at commit; every loaded record has exactly one slot (live or dead); a slot's
 * origin is unique.
 */
import { assert } from '../assert.js';
import { ENOMEM } from '../errno.js';
import type { FileTable } from '../fs/file-table.js';
import {
  iMmapAlloc,
  iMmapCommitBeginLocked,
  iMmapCommitEnd,
  iMmapFree,
  iMmapLinkLocked,
  iMmapLockWrite,
  iMmapUnlinkLocked,
  iMmapUnlockWrite,
} from '../fs/i-mmap.js';
import { type RangeIndex, type RangeOut, rangeOut } from '../maple/api.js';
import { PAGE_SIZE, VM_LOCKED } from './vm-flags.js';
import { type MmLocks, vmaMarkAttached, vmaMarkDetached, vmaStartWrite } from './vma-lock.js';
import {
  VMA_ATTACHED,
  VMA_DETACHED,
  VMA_FIELDS,
  type VmaArena,
  type VmaColumns,
  type VmaFields,
  vmaCopy,
  vmaFieldIndex,
} from './vma-record.js';

const LIMIT = 2 ** 53 - 1;

/** Releases a record that left the tree (RCU-deferred once the RCU layer frees it). */
export type VmaFreeFn = (handle: number) => void;

/** Reference counts of the identities VMA records name (a file id, an anon_vma id; 0 = none). */
export interface IdentityRefs {
  readonly files: { get(id: number): void; put(id: number): void };
  readonly anonVmas: { get(id: number): void; put(id: number): void };
}

/**
 * What the commit keeps the files' reverse maps with (src/fs/i-mmap.ts): the file table, this
 * address space's id, and its announcement to the other CPUs (mm-registry.ts), made before its
 * first entry is linked.
 */
export interface VmaRmap {
  readonly files: FileTable;
  readonly mmId: number;
  announce(): void;
}

/** Whether a commit's page-table work changes a page table (PageTableWork, see VmaTxn.apply). */
export interface PageTableChanges {
  hasWork(): boolean;
}

/** A transaction's slots: one typed column per VMA field, named as VMA_FIELDS names them. */
export interface VmaTxn extends VmaColumns {}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the interface above
export class VmaTxn {
  readonly arena: VmaArena;
  readonly index: RangeIndex;
  private readonly freeRecord: VmaFreeFn;
  private readonly out: RangeOut = rangeOut();

  private cap = 0;
  /** The columns by field index (the same arrays as the named columns). */
  private cols: Array<Float64Array<ArrayBuffer> | Int32Array<ArrayBuffer>> = [];
  private origin = new Int32Array(0);
  private live = new Uint8Array(0);
  /** Per live slot of a loaded record: 1 when a field other than the range differs (set by prepare). */
  private fieldsChanged = new Uint8Array(0);
  private nSlots = 0;

  private order = new Int32Array(0);
  private nOrder = 0;

  private covStart = new Float64Array(16);
  private covEnd = new Float64Array(16);
  private nCov = 0;

  private loaded = new Int32Array(16);
  private nLoaded = 0;
  private slotOfHandle = new Int32Array(0);
  private stampOfHandle = new Int32Array(0);
  private generation = 1;

  /**
   * A file reference the syscall entry lends the commit (sysMmap's fget; 0 = none; reset() leaves
   * it): the first record that takes a reference to that file takes this one instead, and the
   * entry puts it only if no record did (Linux's mmap: vma->vm_file = get_file(file), then
   * fput(file); here one get and one put fewer). Set only around one syscall by its entry, which
   * holds the reference meanwhile.
   */
  lentFile = 0;

  /** Net change of the VMA count (splits +1, merges and unmaps -1). */
  mapCountDelta = 0;
  private newHandles = new Int32Array(16);
  private eraseStart = new Float64Array(16);
  private eraseEnd = new Float64Array(16);
  private eraseStart2 = new Float64Array(16);
  private eraseEnd2 = new Float64Array(16);
  private nErase = 0;
  /** New records prepare() allocated (-1: not prepared). */
  private prepared = -1;
  /**
   * The reverse-map work prepare() planned (docs/fs.md, "The reverse map"): entries to link (file,
   * record, new entry) and records to unlink (file, record), and the files whose records change
   * (each gets a commit window, `windows` of them open between apply() and closeRmapWindows()).
   */
  private linkFile = new Int32Array(16);
  private linkVma = new Int32Array(16);
  private linkEntry = new Int32Array(16);
  private nLink = 0;
  private unlinkFile = new Int32Array(16);
  private unlinkVma = new Int32Array(16);
  private nUnlink = 0;
  private touched = new Int32Array(16);
  /**
   * Per touched file: 1 when it needs a commit window whatever the page tables do (a record that
   * stays linked changes its range, offset or file), and after openRmapWindows, 1 when its window
   * is open (see apply).
   */
  private touchedWindow = new Uint8Array(16);
  private nTouched = 0;
  private windows = 0;
  /** This CPU's transaction has announced the address space (VmaRmap.announce) once already. */
  private announced = false;
  /** Identities whose references the commit drops after writing every record (nOldFiles, nOldAnons of them). */
  private oldFiles = new Int32Array(16);
  private oldAnons = new Int32Array(16);
  private nOldFiles = 0;
  private nOldAnons = 0;

  /**
   * With `locks` (an AddressSpace), commit write-locks every record it changes or removes before
   * publishing anything, and attaches/detaches records through the per-VMA lock layer; without
   * (the pure-layer tests), it only sets the records' STATE. With `refs`, every record holds a
   * reference to the file and the anon_vma it names: commit takes and drops them as records are
   * created, changed and removed.
   */
  constructor(
    arena: VmaArena,
    index: RangeIndex,
    freeRecord: VmaFreeFn,
    private readonly locks: MmLocks | null = null,
    private readonly refs: IdentityRefs | null = null,
    private readonly rmap: VmaRmap | null = null,
  ) {
    this.arena = arena;
    this.index = index;
    this.freeRecord = freeRecord;
    this.growSlots(32);
  }

  /** Forgets everything: a fresh, empty transaction. */
  reset(): void {
    if (this.prepared >= 0) this.unprepare();
    // Only after an internal error: a window left open would stall every walker of its file (and
    // the references set aside would leak).
    if (this.windows !== 0 || this.nOldFiles + this.nOldAnons !== 0) this.closeRmapWindows();
    this.nSlots = 0;
    this.nOrder = 0;
    this.nCov = 0;
    this.nLoaded = 0;
    this.mapCountDelta = 0;
    this.generation++;
  }

  // ---- queries -------------------------------------------------------------------------------

  /** find_vma: the first VMA with end > addr, or -1. */
  findFrom(addr: number): number {
    if (addr > LIMIT) return -1;
    const o = this.orderFirstEndAbove(addr);
    const overlay = o < this.nOrder ? this.order[o] : -1;
    const out = this.out;
    // Tree entries starting at or after the overlay candidate cannot win: stop the search there.
    const max = overlay >= 0 ? this.start[overlay] - 1 : LIMIT;
    let q = addr;
    for (;;) {
      if (q > max || this.index.next(q, max, out) === 0) return overlay;
      const c = this.coveredAt(out.first);
      if (c < 0) break;
      q = this.covEnd[c];
    }
    if (overlay >= 0 && this.start[overlay] < out.first) return overlay;
    return this.load(out.value);
  }

  /**
   * findFrom(addr) when the caller already knows the tree's answer: record `h` (0 = none) is the
   * first VMA ending above addr in the tree. Only a transaction that loaded nothing yet can take
   * it as is; otherwise this is findFrom.
   */
  findFromKnown(addr: number, h: number): number {
    if (this.nOrder !== 0 || this.nCov !== 0) return this.findFrom(addr);
    return h === 0 ? -1 : this.load(h);
  }

  /** The last VMA with start < addr, or -1. */
  findBefore(addr: number): number {
    if (addr > LIMIT + 1) addr = LIMIT + 1;
    const o = this.orderLastStartBelow(addr);
    const overlay = o >= 0 ? this.order[o] : -1;
    const out = this.out;
    if (addr <= 0) return overlay;
    const min = overlay >= 0 ? this.end[overlay] : 0;
    let q = addr - 1;
    for (;;) {
      if (q < min || this.index.prev(q, min, out) === 0) return overlay;
      const c = this.coveredAt(out.first);
      if (c < 0) break;
      if (this.covStart[c] === 0) return overlay;
      q = this.covStart[c] - 1;
    }
    if (overlay >= 0 && this.start[overlay] > out.first) return overlay;
    return this.load(out.value);
  }

  /** vma_lookup: the VMA containing addr, or -1. */
  vmaAt(addr: number): number {
    const s = this.findFrom(addr);
    return s >= 0 && this.start[s] <= addr ? s : -1;
  }

  /** The VMA right after `slot` (not necessarily adjacent), or -1. */
  nextOf(slot: number): number {
    return this.findFrom(this.end[slot]);
  }

  /** The VMA right before `slot`, or -1. */
  prevOf(slot: number): number {
    return this.findBefore(this.start[slot]);
  }

  /** find_vma_intersection: the first VMA meeting [start, end), or -1. */
  intersecting(start: number, end: number): number {
    const s = this.findFrom(start);
    return s >= 0 && this.start[s] < end ? s : -1;
  }

  isLive(slot: number): boolean {
    return this.live[slot] === 1;
  }

  // ---- mutations -----------------------------------------------------------------------------

  /** A new VMA (not yet in the tree); the caller guarantees its range is free. */
  insert(f: VmaFields): number {
    const s = this.newSlot();
    vmaCopy.fromFields(this, s, f);
    this.origin[s] = 0;
    this.orderInsert(s);
    this.mapCountDelta++;
    return s;
  }

  /** A copy of `slot` (same identity, flags and range) not yet in order: callers set its range. */
  private duplicate(slot: number): number {
    const s = this.newSlot();
    vmaCopy.fromSlot(this, s, slot);
    this.origin[s] = 0;
    return s;
  }

  /** copy_vma's new VMA: a copy of `src` (flags, identity) over [start, end) at `pgoff`. */
  insertCopy(src: number, start: number, end: number, pgoff: number): number {
    const s = this.duplicate(src);
    this.start[s] = start;
    this.end[s] = end;
    this.pgoff[s] = pgoff;
    this.orderInsert(s);
    this.mapCountDelta++;
    return s;
  }

  /**
   * __split_vma: splits `slot` at `addr`. The new slot takes the lower part when `newBelow`,
   * else the upper part; `slot` keeps the other part. Returns the new slot.
   */
  split(slot: number, addr: number, newBelow: boolean): number {
    const start = this.start[slot];
    const end = this.end[slot];
    if (!(start < addr && addr < end)) throw new Error(`split: ${addr} is not inside [${start}, ${end})`);
    const s = this.duplicate(slot);
    const pages = (addr - start) / 4096;
    if (newBelow) {
      this.end[s] = addr;
      this.start[slot] = addr;
      this.pgoff[slot] += pages;
      this.orderReposition(slot);
    } else {
      this.start[s] = addr;
      this.pgoff[s] += pages;
      this.end[slot] = addr;
    }
    this.orderInsert(s);
    this.mapCountDelta++;
    return s;
  }

  /** Sets a slot's range (expand/shrink/move); the caller keeps slots from overlapping. */
  setRange(slot: number, start: number, end: number, pgoff: number): void {
    if (!(start < end)) throw new Error(`setRange: empty range [${start}, ${end})`);
    const moved = start !== this.start[slot];
    this.start[slot] = start;
    this.end[slot] = end;
    this.pgoff[slot] = pgoff;
    if (moved) this.orderReposition(slot);
  }

  /** Removes a VMA (unmapped, or merged into a neighbour). */
  remove(slot: number): void {
    if (this.live[slot] !== 1) throw new Error(`remove: slot ${slot} is not live`);
    this.live[slot] = 0;
    const i = this.orderIndexOf(slot);
    closeI32(this.order, i, this.nOrder);
    this.nOrder--;
    this.mapCountDelta--;
  }

  /** Removes the first n of `slots` at once (one pass over the order; unmapping thousands stays linear). */
  removeMany(slots: Int32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const slot = slots[i];
      if (this.live[slot] !== 1) throw new Error(`removeMany: slot ${slot} is not live`);
      this.live[slot] = 0;
    }
    let kept = 0;
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      if (this.live[s] === 1) this.order[kept++] = s;
    }
    this.nOrder = kept;
    this.mapCountDelta -= n;
  }

  // ---- commit --------------------------------------------------------------------------------

  /**
   * Writes the transaction to the records and the tree: prepare, apply, then (no page-table work
   * goes with it) closeRmapWindows. On failure nothing changes and -ENOMEM is returned.
   */
  commit(): number {
    const r = this.prepare();
    if (r === 0) {
      this.apply();
      this.closeRmapWindows();
    }
    return r;
  }

  /**
   * The half of a commit that can fail: every new record is allocated and the tree preallocated
   * for the exact number of stores. 0, or -ENOMEM with nothing allocated. After 0, call apply() or
   * unprepare().
   */
  prepare(): number {
    this.checkOrder();
    const arena = this.arena;
    let fresh = 0;
    let stores = 0;
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      const h = this.origin[s];
      if (h === 0) fresh++;
      else this.fieldsChanged[s] = this.changed(s, h) ? 1 : 0;
      if (this.needsStore(s, h, arena)) stores++;
    }
    stores += this.collectErasures();
    if (this.newHandles.length < fresh) this.newHandles = new Int32Array(fresh * 2);
    for (let k = 0; k < fresh; k++) {
      const h = arena.alloc();
      if (h === 0) {
        for (let j = 0; j < k; j++) arena.arena.free(this.newHandles[j]);
        return -ENOMEM;
      }
      this.newHandles[k] = h;
    }
    if (this.rmap !== null && this.prepareRmap(this.rmap) < 0) {
      for (let j = 0; j < fresh; j++) arena.arena.free(this.newHandles[j]);
      return -ENOMEM;
    }
    if (stores > 0 && this.index.preallocate(stores) < 0) {
      for (let j = 0; j < fresh; j++) arena.arena.free(this.newHandles[j]);
      this.freePlannedEntries();
      return -ENOMEM;
    }
    this.prepared = fresh;
    return 0;
  }

  /** Gives back what prepare() allocated (the tree keeps its preallocation for the next writer). */
  unprepare(): void {
    for (let j = 0; j < this.prepared; j++) this.arena.arena.free(this.newHandles[j]);
    this.freePlannedEntries();
    this.prepared = -1;
  }

  // ---- the reverse map -----------------------------------------------------------------------

  /**
   * Plans the reverse-map work and allocates an entry per record that starts naming a file: a new
   * file-backed VMA, or a record whose file changes. 0, or -ENOMEM with no entry allocated.
   * Preconditions: the new records are allocated (newHandles, in order).
   */
  private prepareRmap(rmap: VmaRmap): number {
    const a = this.arena;
    this.nLink = 0;
    this.nUnlink = 0;
    this.nTouched = 0;
    for (let k = 0; k < this.nLoaded; k++) {
      const h = this.loaded[k];
      const s = this.slotOfHandle[h];
      const oldFile = a.file(h);
      const newFile = this.live[s] === 1 ? this.file[s] : 0;
      // A live record whose file changes is rewritten while linked: its files need windows.
      const stays = this.live[s] === 1;
      if (oldFile !== newFile) {
        if (oldFile !== 0) this.planUnlink(oldFile, h, stays);
        if (newFile !== 0) this.planLink(newFile, h, true);
      } else if (
        newFile !== 0 &&
        (this.start[s] !== a.start(h) || this.end[s] !== a.end(h) || this.pgoff[s] !== a.pgoff(h))
      ) {
        this.touch(newFile, true);
      }
    }
    let fresh = 0;
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      if (this.origin[s] !== 0) continue;
      const h = this.newHandles[fresh++];
      if (this.file[s] !== 0) this.planLink(this.file[s], h, false);
    }
    for (let k = 0; k < this.nLink; k++) {
      const e = iMmapAlloc(rmap.files);
      if (e === 0) {
        this.nLink = k;
        this.freePlannedEntries();
        return -ENOMEM;
      }
      this.linkEntry[k] = e;
    }
    return 0;
  }

  private planLink(file: number, h: number, changed: boolean): void {
    if (this.nLink === this.linkFile.length) {
      this.linkFile = grownI32(this.linkFile, this.nLink * 2);
      this.linkVma = grownI32(this.linkVma, this.nLink * 2);
      this.linkEntry = grownI32(this.linkEntry, this.nLink * 2);
    }
    this.linkFile[this.nLink] = file;
    this.linkVma[this.nLink] = h;
    this.linkEntry[this.nLink] = 0;
    this.nLink++;
    this.touch(file, changed);
  }

  private planUnlink(file: number, h: number, changed: boolean): void {
    if (this.nUnlink === this.unlinkFile.length) {
      this.unlinkFile = grownI32(this.unlinkFile, this.nUnlink * 2);
      this.unlinkVma = grownI32(this.unlinkVma, this.nUnlink * 2);
    }
    this.unlinkFile[this.nUnlink] = file;
    this.unlinkVma[this.nUnlink] = h;
    this.nUnlink++;
    this.touch(file, changed);
  }

  /**
   * Adds a file to the touched set, kept in increasing id: the order the windows open in
   * (src/fs/i-mmap.ts), `changed` when a record that stays linked changes (touchedWindow). A
   * linear insertion: a commit touches few files but at exit.
   */
  private touch(file: number, changed: boolean): void {
    let i = this.nTouched;
    while (i > 0 && this.touched[i - 1] > file) i--;
    if (i > 0 && this.touched[i - 1] === file) {
      if (changed) this.touchedWindow[i - 1] = 1;
      return;
    }
    if (this.nTouched === this.touched.length) {
      this.touched = grownI32(this.touched, this.nTouched * 2);
      const grown = new Uint8Array(this.nTouched * 2);
      grown.set(this.touchedWindow);
      this.touchedWindow = grown;
    }
    const t = this.touched;
    const c = this.touchedWindow;
    for (let k = this.nTouched; k > i; k--) {
      t[k] = t[k - 1];
      c[k] = c[k - 1];
    }
    t[i] = file;
    c[i] = changed ? 1 : 0;
    this.nTouched++;
  }

  /** Frees the entries prepare allocated and forgets the plan (nothing was linked). */
  private freePlannedEntries(): void {
    if (this.rmap !== null) {
      for (let k = 0; k < this.nLink; k++)
        if (this.linkEntry[k] !== 0) iMmapFree(this.rmap.files, this.linkEntry[k]);
    }
    this.nLink = 0;
    this.nUnlink = 0;
    this.nTouched = 0;
  }

  /**
   * Does every touched file's links and unlinks in one i_mmap (W) hold, opening a commit window on
   * it in that hold (src/fs/i-mmap.ts) unless it needs none (see apply). Preconditions: mmap_lock
   * held for write, the changed records write-locked, the new records written; prepare() planned
   * the work.
   */
  private openRmapWindows(rmap: VmaRmap, pageTables: boolean): void {
    if (this.nTouched === 0) return;
    const files = rmap.files;
    const a = this.arena;
    if (this.nLink !== 0 && !this.announced) {
      rmap.announce();
      this.announced = true; // an address space stays announced
    }
    for (let i = 0; i < this.nTouched; i++) {
      const f = this.touched[i];
      iMmapLockWrite(files, f);
      const window = pageTables || this.touchedWindow[i] === 1;
      if (window) {
        iMmapCommitBeginLocked(files, f);
        this.touchedWindow[i] = 1;
        this.windows++;
      }
      for (let k = 0; k < this.nUnlink; k++) {
        if (this.unlinkFile[k] !== f) continue;
        const h = this.unlinkVma[k];
        assert(
          window || this.live[this.slotOfHandle[h]] === 0,
          'i_mmap: a kept record unlinked without a window',
        );
        const e = a.rmapEntry(h);
        iMmapUnlinkLocked(files, f, e);
        iMmapFree(files, e);
        a.setRmapEntry(h, 0);
      }
      for (let k = 0; k < this.nLink; k++) {
        if (this.linkFile[k] !== f) continue;
        const h = this.linkVma[k];
        assert(
          window || (a.file(h) === f && a.start(h) < a.end(h)),
          'i_mmap: a record linked before it is written',
        );
        iMmapLinkLocked(files, f, this.linkEntry[k], rmap.mmId, h);
        a.setRmapEntry(this.linkVma[k], this.linkEntry[k]);
      }
      iMmapUnlockWrite(files, f);
    }
    this.nLink = 0;
    this.nUnlink = 0;
  }

  /**
   * Closes the commit windows apply() opened: after the records and the page-table work that
   * goes with them (zaps, mremap's moves, table frees), so a reverse-map walker sees all or none.
   * Then drops the references of the identities the commit took away from records (putOldRefs):
   * only now, because closing a window writes to its file's record, and another CPU may hold the
   * other references and put them meanwhile (a close of a memfd's descriptor, a fault's I/O
   * reference): a reference dropped before the window closed could be the next-to-last, and the
   * window's close then wrote to a record that CPU's last put had freed.
   */
  closeRmapWindows(): void {
    if (this.windows !== 0) {
      const files = (this.rmap as VmaRmap).files;
      for (let i = 0; i < this.nTouched; i++)
        if (this.touchedWindow[i] === 1) iMmapCommitEnd(files, this.touched[i]);
    }
    this.windows = 0;
    this.nTouched = 0;
    if (this.nOldFiles + this.nOldAnons !== 0) this.putOldRefs();
  }

  /**
   * The half of a commit that cannot fail; closeRmapWindows finishes it (after the page-table
   * work), closing the windows and dropping the removed identities' references. Preconditions:
   * prepare() returned 0.
   *
   * `pageTables` (null: assume they change) says, once the changed records are write-locked (no
   * fault is inside them then, and none enters before the unlock), whether the commit's
   * page-table work changes a page table (PageTableWork.hasWork: work recorded, and a table
   * besides the root to do it on). When it does not, a file whose records only come and go (new
   * records linked, removed ones unlinked) gets no commit window: a walker that finds a new record
   * finds it written (new records are written before they are linked), with no PTE under it (its
   * range had no VMA, and a range without one has no PTE while mmap_lock is write-held: munmap's
   * zap ends before its read lock is dropped), and none comes or goes before the commit's unlock;
   * a removed record had no PTE under it, and once unlinked is not found at all. A window is what
   * makes the rewrites of a record that stays linked, and page-table work, look whole to a walker.
   */
  apply(pageTables: PageTableChanges | null = null): void {
    if (this.prepared < 0) throw new Error('vma txn: apply without prepare');
    this.prepared = -1;
    if (this.locks !== null) this.writeLockChanged(this.locks);
    this.writeNewRecords();
    if (this.rmap !== null) this.openRmapWindows(this.rmap, pageTables === null || pageTables.hasWork());
    this.applyErasures();
    this.applyStores();
    this.releaseRemoved();
  }

  /** Writes the new records (not yet linked or published), taking their identities' references. */
  private writeNewRecords(): void {
    const arena = this.arena;
    let fresh = 0;
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      if (this.origin[s] !== 0) continue;
      const h = this.newHandles[fresh++];
      if (this.refs !== null) this.swapRefs(0, 0, s);
      vmaCopy.toRecord(this, s, arena.views, arena.f64Base(h), arena.i32Base(h));
    }
  }

  /** Appends the start and end of every VMA this transaction creates, moves or resizes. */
  changedEdges(out: number[]): void {
    const arena = this.arena;
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      const h = this.origin[s];
      if (h === 0 || this.start[s] !== arena.start(h) || this.end[s] !== arena.end(h)) {
        out.push(this.start[s], this.end[s]);
      }
    }
  }

  /** The change of mm->locked_vm (pages of VM_LOCKED VMAs) this transaction makes. */
  lockedDelta(): number {
    const a = this.arena;
    let pages = 0;
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      if ((this.flags[s] & VM_LOCKED) !== 0) pages += (this.end[s] - this.start[s]) / PAGE_SIZE;
    }
    for (let k = 0; k < this.nLoaded; k++) {
      const h = this.loaded[k];
      if ((a.flags(h) & VM_LOCKED) !== 0) pages -= (a.end(h) - a.start(h)) / PAGE_SIZE;
    }
    return pages;
  }

  /**
   * Publishes what a fault walk under mmap_lock held for read may change: a loaded VMA's anon_vma,
   * from none to one (anon_vma_prepare). A record another CPU gave one meanwhile keeps its own.
   * Preconditions: the mm's page_table_lock held; nothing else in the transaction changed.
   */
  commitAnonOnly(): void {
    const a = this.arena;
    if (this.nOrder !== this.nLoaded) throw new Error('vma txn: commitAnonOnly with VMAs added or removed');
    for (let k = 0; k < this.nLoaded; k++) {
      const h = this.loaded[k];
      const s = this.slotOfHandle[h];
      if (
        this.live[s] !== 1 ||
        this.start[s] !== a.start(h) ||
        this.end[s] !== a.end(h) ||
        this.flags[s] !== a.flags(h)
      ) {
        throw new Error('vma txn: commitAnonOnly with a VMA changed beyond its anon_vma');
      }
      if (this.anon[s] === a.anon(h) || a.anon(h) !== 0) continue;
      if (this.refs !== null) this.refs.anonVmas.get(this.anon[s]);
      a.setField(h, ANON_FIELD, this.anon[s]);
    }
  }

  /**
   * The ranges the commit clears before storing: the old ranges of removed or moved records and
   * the new ranges of new or moved VMAs, sorted and coalesced (also across holes the tree has
   * nothing in), so unmapping thousands of VMAs is a handful of stores. Returns their number.
   */
  private collectErasures(): number {
    // Nothing loaded: only new VMAs, which never overlap (checkOrder) and cover their own ranges.
    if (this.nLoaded === 0) {
      this.nErase = 0;
      return 0;
    }
    const arena = this.arena;
    let m = 0;
    for (let k = 0; k < this.nLoaded; k++) {
      const h = this.loaded[k];
      const s = this.slotOfHandle[h];
      if (this.live[s] === 0 || this.start[s] !== arena.start(h) || this.end[s] !== arena.end(h)) {
        m = this.pushErase(m, arena.start(h), arena.end(h));
      }
    }
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      const h = this.origin[s];
      if (h === 0 || this.start[s] !== arena.start(h) || this.end[s] !== arena.end(h)) {
        m = this.pushErase(m, this.start[s], this.end[s]);
      }
    }
    this.sortErasures(m);
    const es = this.eraseStart;
    const ee = this.eraseEnd;
    let n = 0;
    for (let k = 0; k < m; k++) {
      if (n > 0 && (es[k] <= ee[n - 1] || this.index.next(ee[n - 1], es[k] - 1, this.out) === 0)) {
        if (ee[k] > ee[n - 1]) ee[n - 1] = ee[k];
        continue;
      }
      es[n] = es[k];
      ee[n] = ee[k];
      n++;
    }
    this.nErase = this.subtractStores(n);
    return this.nErase;
  }

  /**
   * Drops from the n coalesced erase ranges the parts where a live VMA will be: stored by the
   * commit, or already in the tree (a record that only shrank keeps its entry, see needsStore).
   * A split or a merge then writes each range once, as Linux does. Returns the number of ranges
   * left to erase (possibly more pieces than n, each a gap between live VMAs). Readers never see
   * a hole where a VMA stays mapped.
   */
  private subtractStores(n: number): number {
    if (n === 0) return 0;
    let ds = this.eraseStart2;
    let de = this.eraseEnd2;
    let m = 0;
    let p = 0;
    for (let k = 0; k < n; k++) {
      let cur = this.eraseStart[k];
      const e = this.eraseEnd[k];
      while (cur < e) {
        while (p < this.nOrder && this.end[this.order[p]] <= cur) p++;
        const s = p < this.nOrder ? this.order[p] : -1;
        const gapEnd = s < 0 || this.start[s] >= e ? e : this.start[s];
        if (gapEnd > cur) {
          if (m === ds.length) {
            ds = grownF64(ds, m * 2);
            de = grownF64(de, m * 2);
          }
          ds[m] = cur;
          de[m] = gapEnd;
          m++;
        }
        if (gapEnd === e) break;
        cur = this.end[s];
      }
    }
    this.eraseStart2 = this.eraseStart;
    this.eraseEnd2 = this.eraseEnd;
    this.eraseStart = ds;
    this.eraseEnd = de;
    return m;
  }

  /**
   * Whether live slot s (record h, 0 = new) must be stored: a new VMA, or a record that grew or
   * moved. A record that only shrank (or kept its range) is already in the tree over its new
   * range; the rest of its old range is erased or overwritten by the commit.
   */
  private needsStore(s: number, h: number, arena: VmaArena): boolean {
    return h === 0 || this.start[s] < arena.start(h) || this.end[s] > arena.end(h);
  }

  private pushErase(m: number, start: number, end: number): number {
    if (m === this.eraseStart.length) {
      this.eraseStart = grownF64(this.eraseStart, m * 2);
      this.eraseEnd = grownF64(this.eraseEnd, m * 2);
    }
    this.eraseStart[m] = start;
    this.eraseEnd[m] = end;
    return m + 1;
  }

  /** Sorts the first m erase ranges by start (insertion sort: m is small except for huge unmaps). */
  private sortErasures(m: number): void {
    const es = this.eraseStart;
    const ee = this.eraseEnd;
    if (m > 64) {
      const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => es[a] - es[b]);
      const s2 = order.map((i) => es[i]);
      const e2 = order.map((i) => ee[i]);
      for (let i = 0; i < m; i++) {
        es[i] = s2[i];
        ee[i] = e2[i];
      }
      return;
    }
    for (let i = 1; i < m; i++) {
      const s = es[i];
      const e = ee[i];
      let j = i - 1;
      while (j >= 0 && es[j] > s) {
        es[j + 1] = es[j];
        ee[j + 1] = ee[j];
        j--;
      }
      es[j + 1] = s;
      ee[j + 1] = e;
    }
  }

  private applyErasures(): void {
    for (let k = 0; k < this.nErase; k++) {
      this.stored(this.index.store(this.eraseStart[k], this.eraseEnd[k] - 1, 0));
    }
  }

  private applyStores(): void {
    const arena = this.arena;
    let fresh = 0;
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      let h = this.origin[s];
      const isNew = h === 0;
      const store = this.needsStore(s, h, arena);
      if (isNew) h = this.newHandles[fresh++];
      // New records were written by writeNewRecords.
      if (
        !isNew &&
        (this.start[s] !== arena.start(h) || this.end[s] !== arena.end(h) || this.fieldsChanged[s] === 1)
      ) {
        if (this.refs !== null) this.swapRefs(arena.file(h), arena.anon(h), s);
        vmaCopy.toRecord(this, s, arena.views, arena.f64Base(h), arena.i32Base(h));
      }
      if (store) {
        if (isNew) this.attach(h);
        this.stored(this.index.store(this.start[s], this.end[s] - 1, h));
      }
    }
  }

  /**
   * A record's identities change from (oldFile, oldAnon) to slot s's: the new ones are taken now,
   * the old ones put once the commit is done with them (closeRmapWindows), so no identity that
   * another record takes over drops to zero in between, and none is freed under the commit.
   */
  private swapRefs(oldFile: number, oldAnon: number, s: number): void {
    const refs = this.refs as IdentityRefs;
    const file = this.file[s];
    const anon = this.anon[s];
    if (file !== oldFile) {
      if (file === this.lentFile && file !== 0) this.lentFile = 0;
      else if (file !== 0) refs.files.get(file);
      if (oldFile !== 0) this.pushOldFile(oldFile);
    }
    if (anon !== oldAnon) {
      if (anon !== 0) refs.anonVmas.get(anon);
      if (oldAnon !== 0) this.pushOldAnon(oldAnon);
    }
  }

  private pushOldFile(id: number): void {
    if (this.nOldFiles === this.oldFiles.length) this.oldFiles = grownI32(this.oldFiles, 2 * this.nOldFiles);
    this.oldFiles[this.nOldFiles++] = id;
  }

  private pushOldAnon(id: number): void {
    if (this.nOldAnons === this.oldAnons.length) this.oldAnons = grownI32(this.oldAnons, 2 * this.nOldAnons);
    this.oldAnons[this.nOldAnons++] = id;
  }

  /** Drops the references swapRefs and releaseRemoved set aside (none to drop without `refs`). */
  private putOldRefs(): void {
    const refs = this.refs;
    if (refs !== null) {
      for (let i = 0; i < this.nOldFiles; i++) refs.files.put(this.oldFiles[i]);
      for (let i = 0; i < this.nOldAnons; i++) refs.anonVmas.put(this.oldAnons[i]);
    }
    this.nOldFiles = 0;
    this.nOldAnons = 0;
  }

  private releaseRemoved(): void {
    const arena = this.arena;
    for (let k = 0; k < this.nLoaded; k++) {
      const h = this.loaded[k];
      if (this.live[this.slotOfHandle[h]] === 0) {
        this.detach(h);
        // A detached record cannot be read-locked, so no reader uses its identities after this.
        if (arena.file(h) !== 0) this.pushOldFile(arena.file(h));
        if (arena.anon(h) !== 0) this.pushOldAnon(arena.anon(h));
        this.freeRecord(h);
      }
    }
    // Their references are dropped once the commit is done with the identities: closeRmapWindows.
  }

  /** vma_start_write on every loaded record this commit changes or removes (mmap_lock is write-held). */
  private writeLockChanged(locks: MmLocks): void {
    const arena = this.arena;
    for (let k = 0; k < this.nLoaded; k++) {
      const h = this.loaded[k];
      const s = this.slotOfHandle[h];
      const moved = this.start[s] !== arena.start(h) || this.end[s] !== arena.end(h);
      if (this.live[s] === 0 || moved || this.fieldsChanged[s] === 1) vmaStartWrite(locks, h);
    }
  }

  /** A new record, about to be published: write-locked and attached first. */
  private attach(h: number): void {
    if (this.locks === null) {
      this.arena.setState(h, VMA_ATTACHED);
      return;
    }
    vmaStartWrite(this.locks, h);
    vmaMarkAttached(this.locks, h);
  }

  /** A record that left the tree: detached (readers that found it before fail) before it is freed. */
  private detach(h: number): void {
    if (this.locks === null) this.arena.setState(h, VMA_DETACHED);
    else vmaMarkDetached(this.locks, h);
  }

  /** Stores cannot fail after `preallocate` reserved room for them: a failure is a bug. */
  private stored(ret: number): void {
    if (ret < 0) throw new Error(`vma txn: index store failed after preallocation (${ret})`);
  }

  /** Whether slot s differs from record h in anything but its range. */
  private changed(s: number, h: number): boolean {
    const a = this.arena;
    return vmaCopy.differsFromRecord(this, s, a.views, a.f64Base(h), a.i32Base(h));
  }

  private checkOrder(): void {
    for (let k = 0; k < this.nOrder; k++) {
      const s = this.order[k];
      if (!(this.start[s] < this.end[s]))
        throw new Error(`vma txn: empty VMA [${this.start[s]}, ${this.end[s]})`);
      if (k > 0 && this.end[this.order[k - 1]] > this.start[s]) {
        throw new Error(`vma txn: overlapping VMAs at ${this.start[s].toString(16)}`);
      }
    }
  }

  // ---- loading -------------------------------------------------------------------------------

  /** The slot holding record `h`, loading it on first use. */
  load(h: number): number {
    this.ensureHandle(h);
    if (this.stampOfHandle[h] === this.generation) return this.slotOfHandle[h];
    const s = this.newSlot();
    const a = this.arena;
    vmaCopy.fromRecord(this, s, a.views, a.f64Base(h), a.i32Base(h));
    this.origin[s] = h;
    this.stampOfHandle[h] = this.generation;
    this.slotOfHandle[h] = s;
    if (this.nLoaded === this.loaded.length) this.loaded = grownI32(this.loaded, this.nLoaded * 2);
    this.loaded[this.nLoaded++] = h;
    this.cover(this.start[s], this.end[s]);
    this.orderInsert(s);
    return s;
  }

  private ensureHandle(h: number): void {
    if (h < this.slotOfHandle.length) return;
    const n = Math.max(h + 1, this.slotOfHandle.length * 2, 64);
    this.slotOfHandle = grownI32(this.slotOfHandle, n);
    this.stampOfHandle = grownI32(this.stampOfHandle, n);
  }

  /** Adds [s, e) to the covered intervals (merging with neighbours that touch it). */
  private cover(s: number, e: number): void {
    let i = 0;
    let hi = this.nCov;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (this.covEnd[mid] < s) i = mid + 1;
      else hi = mid;
    }
    let j = i;
    while (j < this.nCov && this.covStart[j] <= e) {
      s = Math.min(s, this.covStart[j]);
      e = Math.max(e, this.covEnd[j]);
      j++;
    }
    const delta = 1 - (j - i);
    if (this.nCov + delta > this.covStart.length) {
      this.covStart = grownF64(this.covStart, this.covStart.length * 2);
      this.covEnd = grownF64(this.covEnd, this.covEnd.length * 2);
    }
    moveF64(this.covStart, j, this.nCov, i + 1);
    moveF64(this.covEnd, j, this.nCov, i + 1);
    this.covStart[i] = s;
    this.covEnd[i] = e;
    this.nCov += delta;
  }

  /** Index of the covered interval containing addr, or -1. */
  private coveredAt(addr: number): number {
    let lo = 0;
    let hi = this.nCov;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.covEnd[mid] <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.nCov && this.covStart[lo] <= addr ? lo : -1;
  }

  // ---- slot storage and order ----------------------------------------------------------------

  private newSlot(): number {
    if (this.nSlots === this.cap) this.growSlots(this.cap * 2);
    const s = this.nSlots++;
    this.live[s] = 1;
    return s;
  }

  private growSlots(cap: number): void {
    const named = this as unknown as Record<string, Float64Array<ArrayBuffer> | Int32Array<ArrayBuffer>>;
    this.cols = VMA_FIELDS.map((f, i) => {
      const old = this.cols[i];
      const col =
        f.type === 'f64'
          ? grownF64((old ?? EMPTY_F64) as Float64Array<ArrayBuffer>, cap)
          : grownI32((old ?? EMPTY_I32) as Int32Array<ArrayBuffer>, cap);
      named[f.name] = col;
      return col;
    });
    this.origin = grownI32(this.origin, cap);
    const live = new Uint8Array(cap);
    live.set(this.live);
    this.live = live;
    this.fieldsChanged = new Uint8Array(cap);
    this.order = grownI32(this.order, cap);
    this.cap = cap;
  }

  /** First order position whose slot ends above addr. */
  private orderFirstEndAbove(addr: number): number {
    let lo = 0;
    let hi = this.nOrder;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.end[this.order[mid]] <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Last order position whose slot starts below addr (-1 if none). */
  private orderLastStartBelow(addr: number): number {
    let lo = 0;
    let hi = this.nOrder;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.start[this.order[mid]] < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  private orderInsert(s: number): void {
    const i = this.orderLastStartBelow(this.start[s]) + 1;
    const order = this.order;
    for (let k = this.nOrder; k > i; k--) order[k] = order[k - 1];
    order[i] = s;
    this.nOrder++;
  }

  private orderIndexOf(s: number): number {
    const guess = this.orderLastStartBelow(this.start[s]) + 1;
    if (guess < this.nOrder && this.order[guess] === s) return guess;
    for (let i = 0; i < this.nOrder; i++) if (this.order[i] === s) return i;
    throw new Error(`vma txn: slot ${s} is not in order`);
  }

  private orderReposition(s: number): void {
    const i = this.orderIndexOf(s);
    closeI32(this.order, i, this.nOrder);
    this.nOrder--;
    this.orderInsert(s);
  }
}

/*
 * The slot arrays are short (a syscall loads a handful of VMAs): plain loops move their elements,
 * as a typed array's copyWithin call costs more than the few elements it moves.
 */

/** a[i, n - 1) := a[i + 1, n): closes the hole at i of the first n elements. */
function closeI32(a: Int32Array, i: number, n: number): void {
  for (let k = i; k < n - 1; k++) a[k] = a[k + 1];
}

/** a[to, to + (n - from)) := a[from, n), in place (either direction). */
function moveF64(a: Float64Array, from: number, n: number, to: number): void {
  if (to < from) for (let k = from; k < n; k++) a[k - from + to] = a[k];
  else if (to > from) for (let k = n - 1; k >= from; k--) a[k - from + to] = a[k];
}

const EMPTY_F64 = new Float64Array(0);
const EMPTY_I32 = new Int32Array(0);
const ANON_FIELD = vmaFieldIndex('anon');

function grownF64(a: Float64Array<ArrayBuffer>, n: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}

function grownI32(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}
