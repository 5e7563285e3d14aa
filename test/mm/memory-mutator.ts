/**
 * The mutator of the memory race (memory-race.ts): random syscalls on the parent's window, each
 * with its outcome predicted from the model (Linux's rules: what it returns, which slots it
 * changes and how) and published around the call with the slot seqlock (memory-model.ts):
 *
 *   munmap                      slots unmapped (their incarnations end)
 *   mmap MAP_FIXED [POPULATE]   fresh zero incarnations, the prot asked for, flags cleared
 *   mprotect                    the mapped run from the first slot up to a hole (ENOMEM if there
 *                               is one; nothing when the first slot is unmapped)
 *   madvise DONTNEED            fresh zero incarnations; FREE: the incarnations become lazy (they
 *                               may read 0); DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK: slot flags;
 *                               every mapped slot of the range, ENOMEM if the range has a hole
 *   madvise POPULATE_READ/WRITE on writable runs: no slot changes (and no seqlock bump: accesses
 *                               racing with it are checked exactly)
 *   mremap MAYMOVE|FIXED        incarnations move from [p, p + n) to [q, q + n) (per VMA, holes
 *                               left as they are at the destination, Linux 6.17's multi-VMA move);
 *                               with DONTUNMAP (single VMA) the source gets fresh incarnations;
 *                               EFAULT, nothing changed, when the first slot is unmapped
 *   mremap shrink               the tail unmapped; grow in place (no MAYMOVE): fresh tail with the
 *                               VMA's prot and flags, or ENOMEM when the space after is taken
 *   fork                        see memory-pages.ts (ChildImage); at most two children live, each
 *                               checked at the fork and again before it exits; a third of the
 *                               forks are a live child's (a grandchild sharing pages three ways)
 *   pin                         a longterm GUP pin, write or read-only (at most four live):
 *                               no slot changes; the slot keeps mapping the pinned frame while
 *                               its incarnation lives (checked at checkpoints)
 * and, every few calls, the scratch range remapped and poisoned through this CPU's Mmu (mmu-race's
 * refillScratch), so that a frame freed from the window is soon reused and poisoned.
 *
 * Records of ended incarnations are reused only after every accessor finished an operation (see
 * MemoryModel), and a fork first waits for the accessors' in-flight operations to finish.
 */

import { EFAULT, ENOMEM } from '../../src/errno.js';
import type { Process } from '../../src/kernel/process.js';
import { rangeOut } from '../../src/maple/api.js';
import { unpinUserPages } from '../../src/mm/gup.js';
import {
  MADV_DOFORK,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_KEEPONFORK,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { mmapReadLock, mmapReadUnlock } from '../../src/mm/vma-lock.js';
import { Rng } from '../../src/rng.js';
import { ChildImage, type PageCounts } from './memory-pages.js';
import {
  C_DONE,
  C_ERRORS,
  C_OPS,
  FL_DONTFORK,
  FL_WIPE,
  HIST_LEN,
  MAX_ACCESSORS,
  type MemoryModel,
  P,
  RECORDS,
  SLOTS,
  WINDOW,
  WORDS,
} from './tasks/memory-model.js';
import { refillScratch } from './tasks/mmu-race.js';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const RW = PROT_READ | PROT_WRITE;
const PROTS = [RW, RW, RW, RW, PROT_READ, PROT_NONE];
const MAX_PINS = 4;

export interface MutatorCounts {
  /** Calls by name (mremap and madvise by kind). */
  calls: Record<string, number>;
  /** Milliseconds spent in them, by name. */
  ms: Record<string, number>;
  /** Calls in all (forks included). */
  total: number;
  /** Calls whose predicted result was an errno (ENOMEM, EFAULT). */
  errnos: number;
  forks: number;
  /** Children checked (at the fork and again before exit). */
  childChecks: number;
  childStores: number;
  /** Waits for the accessors before a fork or a record reuse. */
  graceWaits: number;
  poisonFills: number;
  incarnations: number;
  pages: PageCounts;
}

/** A write, longterm pin of one page taken through GUP, and the incarnation it was taken on. */
export interface Pin {
  /** The incarnation's serial (its record is reused once it ends). */
  serial: number;
  pfn: number;
}

interface LiveChild {
  proc: Process;
  image: ChildImage;
  tag: number;
}

export class Mutator {
  readonly counts: MutatorCounts = {
    calls: {},
    ms: {},
    total: 0,
    errnos: 0,
    forks: 0,
    childChecks: 0,
    childStores: 0,
    graceWaits: 0,
    poisonFills: 0,
    incarnations: 0,
    pages: { pages: 0, unstableLanes: 0 },
  };
  readonly children: LiveChild[] = [];
  /** At most MAX_PINS live pins (the oldest is dropped for a new one). */
  readonly pins: Pin[] = [];
  private readonly rng: Rng;
  private readonly out = rangeOut();
  // Records: free, and ended ones waiting for every accessor to finish an operation.
  private readonly freeRecs: number[] = [];
  private readonly waiting: number[] = [];
  private serial = 0;
  // The planned change of one call: the new state of each slot it touches.
  private readonly nextRec = new Int32Array(SLOTS);
  private readonly nextProt = new Int32Array(SLOTS);
  private readonly nextFlags = new Int32Array(SLOTS);
  private readonly touched: number[] = [];
  private readonly ended: number[] = [];

  constructor(
    private readonly proc: Process,
    private readonly m: MemoryModel,
    seed: number,
    private readonly giveUpMs: number,
  ) {
    this.rng = new Rng(seed * 31 + 7);
    for (let r = RECORDS - 1; r >= 1; r--) this.freeRecs.push(r);
  }

  /** One random call (or fork); throws when an outcome differs from the prediction. */
  step(): void {
    const rng = this.rng;
    const p = rng.below(SLOTS);
    const n = 1 + rng.below(Math.min(8, SLOTS - p));
    const r = rng.below(100);
    if (r < 8) this.munmap(p, n);
    else if (r < 24) this.mmap(p, n, PROTS[rng.below(PROTS.length)], rng.below(4) === 0);
    else if (r < 36) this.mprotect(p, n, PROTS[rng.below(PROTS.length)]);
    else if (r < 46) this.madvise(p, n, MADV_DONTNEED);
    else if (r < 50) this.madvise(p, n, MADV_FREE);
    else if (r < 54)
      this.madvise(p, n, [MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK][rng.below(4)]);
    else if (r < 58) this.populate(p, n, rng.below(2) === 0 ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
    else if (r < 72) this.move(p, n, rng.below(4) === 0);
    else if (r < 78) this.shrink(p, n);
    else if (r < 84) this.grow(p, n);
    else if (r < 87) this.fork();
    else if (r < 90) this.pin(p, rng.below(2) === 0);
    else this.mmap(p, n, RW, false);
    // A live child writes now and then too: its copy-on-write faults race the accessors' on the
    // frames the two processes still share.
    if (this.children.length !== 0 && rng.below(4) === 0)
      this.scribble(this.children[rng.below(this.children.length)], 4);
  }

  /** The starting layout: the whole window mapped read-write (before the accessors start). */
  mapWindow(): void {
    for (let p = 0; p < SLOTS; p += 8) this.mmap(p, 8, RW, false);
  }

  /** Every few calls: the scratch range remapped and poisoned (frames freed from the window reused). */
  poison(): void {
    const t0 = performance.now();
    refillScratch(this.proc.mm, -(1 + this.counts.poisonFills));
    this.proc.mm.mmu().offline();
    this.counts.poisonFills++;
    this.time('poison', t0);
  }

  // ---- the calls -----------------------------------------------------------------------------

  private munmap(p: number, n: number): void {
    for (let i = p; i < p + n; i++) this.plan(i, 0, 0, 0);
    this.call('munmap', 0, () => this.proc.mm.sysMunmap(WINDOW + p * P, n * P));
  }

  private mmap(p: number, n: number, prot: number, populate: boolean): void {
    for (let i = p; i < p + n; i++) this.plan(i, this.newRecord(), prot, 0);
    const flags = ANON | (populate ? MAP_POPULATE : 0);
    this.call(populate ? 'mmap populate' : 'mmap', WINDOW + p * P, () =>
      this.proc.mm.sysMmap(WINDOW + p * P, n * P, prot, flags, -1, 0),
    );
  }

  private mprotect(p: number, n: number, prot: number): void {
    const m = this.m;
    let i = p;
    for (; i < p + n && m.rec[i] !== 0; i++) this.plan(i, m.rec[i], prot, m.flags[i]);
    this.call('mprotect', i === p + n ? 0 : -ENOMEM, () =>
      this.proc.mm.sysMprotect(WINDOW + p * P, n * P, prot),
    );
  }

  private madvise(p: number, n: number, advice: number): void {
    const m = this.m;
    let hole = false;
    for (let i = p; i < p + n; i++) {
      const rec = m.rec[i];
      if (rec === 0) hole = true;
      else if (advice === MADV_DONTNEED) this.plan(i, this.newRecord(), m.prot[i], m.flags[i]);
      else if (advice === MADV_FREE) {
        m.lazy[rec] = 1;
        this.plan(i, rec, m.prot[i], m.flags[i]);
      } else this.plan(i, rec, m.prot[i], adviseFlags(m.flags[i], advice));
    }
    const name =
      advice === MADV_DONTNEED ? 'madvise DONTNEED' : advice === MADV_FREE ? 'madvise FREE' : 'madvise flags';
    this.call(name, hole ? -ENOMEM : 0, () => this.proc.mm.sysMadvise(WINDOW + p * P, n * P, advice));
  }

  /** MADV_POPULATE_* over a writable mapped run: pages faulted in, nothing in the model changes. */
  private populate(p: number, n: number, advice: number): void {
    let end = p;
    while (end < p + n && this.m.rec[end] !== 0 && this.m.prot[end] === RW) end++;
    if (end === p) return;
    this.call('madvise POPULATE', 0, () => this.proc.mm.sysMadvise(WINDOW + p * P, (end - p) * P, advice));
  }

  private move(p: number, n: number, dontunmap: boolean): void {
    const m = this.m;
    const q = this.rng.below(SLOTS - n + 1);
    if (q < p + n && q + n > p) return;
    const oneVma = m.rec[p] !== 0 && this.vmaEnd(WINDOW + p * P) >= WINDOW + (p + n) * P;
    if (dontunmap && !oneVma) return;
    const name = dontunmap ? 'mremap DONTUNMAP' : 'mremap move';
    if (m.rec[p] === 0) {
      this.call(name, -EFAULT, () =>
        this.proc.mm.sysMremap(WINDOW + p * P, n * P, n * P, MREMAP_MAYMOVE | MREMAP_FIXED, WINDOW + q * P),
      );
      return;
    }
    for (let i = 0; i < n; i++) {
      const src = p + i;
      if (m.rec[src] === 0) continue;
      this.plan(q + i, m.rec[src], m.prot[src], m.flags[src]);
      this.plan(
        src,
        dontunmap ? this.newRecord() : 0,
        dontunmap ? m.prot[src] : 0,
        dontunmap ? m.flags[src] : 0,
      );
    }
    const flags = MREMAP_MAYMOVE | MREMAP_FIXED | (dontunmap ? MREMAP_DONTUNMAP : 0);
    this.call(name, WINDOW + q * P, () =>
      this.proc.mm.sysMremap(WINDOW + p * P, n * P, n * P, flags, WINDOW + q * P),
    );
  }

  private shrink(p: number, n: number): void {
    if (n < 2) return;
    const keep = 1 + this.rng.below(n - 1);
    const mapped = this.m.rec[p] !== 0;
    if (mapped) for (let i = p + keep; i < p + n; i++) this.plan(i, 0, 0, 0);
    this.call('mremap shrink', mapped ? WINDOW + p * P : -EFAULT, () =>
      this.proc.mm.sysMremap(WINDOW + p * P, n * P, keep * P, 0, 0),
    );
  }

  /** Grows the tail [p, vma end) of p's VMA in place by 1..4 pages inside the window. */
  private grow(p: number, _n: number): void {
    const m = this.m;
    if (m.rec[p] === 0) return;
    const end = (this.vmaEnd(WINDOW + p * P) - WINDOW) / P;
    const by = 1 + this.rng.below(4);
    if (end + by > SLOTS) return;
    let free = true;
    for (let i = end; i < end + by; i++) if (m.rec[i] !== 0) free = false;
    if (free)
      for (let i = end; i < end + by; i++) this.plan(i, this.newRecord(), m.prot[end - 1], m.flags[end - 1]);
    this.call('mremap grow', free ? WINDOW + p * P : -ENOMEM, () =>
      this.proc.mm.sysMremap(WINDOW + p * P, (end - p) * P, (end - p + by) * P, 0, 0),
    );
  }

  /**
   * pin_user_pages(FOLL_LONGTERM, with FOLL_WRITE on a writable slot or without on a readable
   * one), as a device would: GUP faults the page in for writing, or unshares it (a copy when a
   * child or the zero page shares it), and the content stays; no seqlock bump, so the accessors'
   * racing accesses are checked exactly. While the incarnation lives, its slot must keep mapping
   * the pinned frame (checked at every checkpoint): across mprotect, fork (the child gets a
   * copy), mremap and later writes, as cow.c's R/W and R/O longterm pin cases say.
   */
  private pin(p: number, write: boolean): void {
    const m = this.m;
    const prot = m.prot[p];
    if (m.rec[p] === 0 || (write ? prot !== RW : prot === PROT_NONE)) return;
    if (this.pins.length >= MAX_PINS) this.unpin(this.pins.shift() as Pin);
    const t0 = performance.now();
    const got = this.proc.mm.pinUserPages(WINDOW + p * P, 1, { write, longterm: true });
    const name = write ? 'pin' : 'pin read-only';
    this.time(name, t0);
    this.count(name);
    if (!Array.isArray(got) || got.length !== 1) throw new Error(`pin of slot ${p}: ${String(got)}`);
    this.pins.push({ serial: m.serial[m.rec[p]], pfn: got[0] });
  }

  unpin(pin: Pin): void {
    unpinUserPages(this.proc.kernel.mem, [pin.pfn]);
    this.count('unpin');
  }

  /** fork, the child checked against its image, a few stores of its own; the oldest of three exits. */
  fork(): void {
    if (this.children.length >= 2) this.retire(this.children.shift() as LiveChild);
    if (this.children.length !== 0 && this.rng.below(3) === 0) {
      this.forkChild(this.children[this.rng.below(this.children.length)]);
      return;
    }
    let t0 = performance.now();
    this.waitForAccessors();
    this.time('fork wait', t0);
    const image = ChildImage.ofParent(this.m);
    t0 = performance.now();
    const proc = this.proc.fork();
    this.time('fork', t0);
    t0 = performance.now();
    this.count('fork');
    this.counts.forks++;
    this.counts.pages.unstableLanes += image.settle();
    const child = { proc, image, tag: this.counts.forks };
    const mmu = proc.mm.mmu();
    image.check(mmu, `child ${child.tag} at fork`, this.counts.pages);
    this.scribble(child, 16);
    this.counts.childChecks++;
    this.children.push(child);
    this.time('fork check', t0);
  }

  /**
   * A live child forks in turn: the grandchild must hold the child's image exactly (pages now
   * shared three ways while the parent's accessors keep faulting), checked like any child.
   */
  private forkChild(parent: LiveChild): void {
    const image = parent.image.forkOf();
    const t0 = performance.now();
    const proc = parent.proc.fork();
    this.time('fork of a child', t0);
    this.count('fork of a child');
    this.counts.forks++;
    const child = { proc, image, tag: this.counts.forks };
    image.check(proc.mm.mmu(), `child ${child.tag} (of child ${parent.tag}) at fork`, this.counts.pages);
    this.scribble(child, 16);
    this.counts.childChecks++;
    this.children.push(child);
  }

  /** `count` stores of the child's own into its writable slots (ChildImage.scribble). */
  private scribble(child: LiveChild, count: number): void {
    const mmu = child.proc.mm.mmu();
    this.counts.childStores += child.image.scribble(mmu, child.tag, count, (k) => this.rng.below(k));
  }

  /** A child checked once more (the parent has run on since the fork), then exits. */
  retire(child: LiveChild): void {
    const t0 = performance.now();
    child.image.check(child.proc.mm.mmu(), `child ${child.tag} before exit`, this.counts.pages);
    this.counts.childChecks++;
    child.proc.detach();
    child.proc.exit();
    this.time('child exit', t0);
  }

  // ---- the plan of one call and the slot seqlock ------------------------------------------

  /** Slot i's state after the call; the incarnation it holds now ends unless the call keeps it. */
  private plan(i: number, rec: number, prot: number, flags: number): void {
    if (this.touched.indexOf(i) < 0) {
      this.touched.push(i);
      const old = this.m.rec[i];
      if (old !== 0) this.ended.push(old);
    }
    this.nextRec[i] = rec;
    this.nextProt[i] = prot;
    this.nextFlags[i] = flags;
  }

  /**
   * Publishes the planned states (history, GEN odd, state), runs the call, ends the seqlock and
   * retires the incarnations no slot holds any more. Throws when the result is not `expected`.
   */
  private call(name: string, expected: number, syscall: () => number): void {
    const m = this.m;
    const touched = this.touched;
    for (const i of touched) {
      Atomics.store(m.hist, i * HIST_LEN + (((m.gen[i] + 2) >>> 1) % HIST_LEN), this.nextRec[i]);
      Atomics.add(m.gen, i, 1);
      Atomics.store(m.rec, i, this.nextRec[i]);
      Atomics.store(m.prot, i, this.nextProt[i]);
      Atomics.store(m.flags, i, this.nextFlags[i]);
    }
    const t0 = performance.now();
    const got = syscall();
    this.time(name, t0);
    for (const i of touched) Atomics.add(m.gen, i, 1);
    for (const rec of this.ended) if (!this.held(rec)) this.endRecord(rec);
    touched.length = 0;
    this.ended.length = 0;
    this.count(name);
    if (expected < 0) this.counts.errnos++;
    if (got !== expected) throw new Error(`${name}: returned ${got}, the model predicts ${expected}`);
  }

  private held(rec: number): boolean {
    for (let i = 0; i < SLOTS; i++) if (this.m.rec[i] === rec) return true;
    return false;
  }

  private time(name: string, t0: number): void {
    this.counts.ms[name] = (this.counts.ms[name] ?? 0) + performance.now() - t0;
  }

  private count(name: string): void {
    this.counts.calls[name] = (this.counts.calls[name] ?? 0) + 1;
    this.counts.total++;
  }

  // ---- records and grace periods --------------------------------------------------------------

  /** A zeroed record for a new incarnation (fresh serial). */
  private newRecord(): number {
    if (this.freeRecs.length === 0) this.reclaim();
    const rec = this.freeRecs.pop() as number;
    this.m.model.fill(0, rec * WORDS, (rec + 1) * WORDS);
    this.m.lazy[rec] = 0;
    this.m.serial[rec] = ++this.serial;
    this.counts.incarnations++;
    return rec;
  }

  private endRecord(rec: number): void {
    this.waiting.push(rec);
    for (let a = 0; a < MAX_ACCESSORS; a++) this.waiting.push(Atomics.load(this.m.control, C_OPS + a));
  }

  /** Moves the waiting records whose grace period is over to the free list (waits for the oldest). */
  private reclaim(): void {
    const w = this.waiting;
    const entry = 1 + MAX_ACCESSORS;
    if (w.length === 0) throw new Error('the record pool is exhausted');
    let k = 0;
    for (; k < w.length; k += entry) {
      if (!this.passed(w, k + 1)) {
        if (k !== 0) break;
        this.counts.graceWaits++;
        this.waitUntil(() => this.passed(w, k + 1), 'a grace period of the model records');
      }
      this.freeRecs.push(w[k]);
    }
    w.splice(0, k);
  }

  private passed(snap: number[], at: number): boolean {
    const c = this.m.control;
    for (let a = 0; a < this.m.accessors; a++) {
      if (Atomics.load(c, C_DONE + a) === 0 && Atomics.load(c, C_OPS + a) === snap[at + a]) return false;
    }
    return true;
  }

  /** Every accessor finishes the operation it is in (none started before the last call returned). */
  private waitForAccessors(): void {
    const snap: number[] = [0];
    for (let a = 0; a < MAX_ACCESSORS; a++) snap.push(Atomics.load(this.m.control, C_OPS + a));
    this.counts.graceWaits++;
    this.waitUntil(() => this.passed(snap, 1), 'the accessors before a fork');
  }

  private waitUntil(done: () => boolean, what: string): void {
    const c = this.m.control;
    const deadline = Date.now() + this.giveUpMs;
    for (let spins = 0; !done(); spins++) {
      if (Atomics.load(c, C_ERRORS) !== 0) throw new Error(`an accessor failed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`waited more than ${this.giveUpMs} ms for ${what}`);
      // The accessors may be waiting for a core (CPUs share them with other work): let them run.
      if (spins >= 64) Atomics.wait(c, C_ERRORS, 0, 0.2);
    }
  }

  /** The end of the VMA containing addr (0 if none), read under mmap_lock. */
  private vmaEnd(addr: number): number {
    const mm = this.proc.mm;
    mmapReadLock(mm.locks);
    try {
      const h = mm.index.load(addr, this.out);
      return h === 0 ? 0 : mm.arena.end(h);
    } finally {
      mmapReadUnlock(mm.locks);
    }
  }
}

function adviseFlags(flags: number, advice: number): number {
  if (advice === MADV_DONTFORK) return flags | FL_DONTFORK;
  if (advice === MADV_DOFORK) return flags & ~FL_DONTFORK;
  if (advice === MADV_WIPEONFORK) return flags | FL_WIPE;
  return flags & ~FL_WIPE;
}
