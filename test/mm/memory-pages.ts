/**
 * Page checks of the memory race (memory-race.ts), run on the mutator's CPU while the accessors
 * stand still or do not touch the space checked: the parent's slots against the shared model at a
 * checkpoint, and a fork child's slots against the image of the parent taken at the fork.
 *
 * ChildImage: what a child must hold, taken around `fork` while the accessors keep storing:
 *   - before the fork, every accessor has finished the operation it was in when the last syscall
 *     returned (the caller waits for OPS to move), so no store in flight raced a syscall: each
 *     lands in the incarnation its slot holds, and only SSEQ[a][p] can tell it happened;
 *   - then, per slot, the slot's state and its record's words are copied, and SSEQ is copied;
 *   - after the fork, a lane whose SSEQ[a][p] moved, or was odd, may hold a store that reached the
 *     shared page before fork write-protected it (the child sees it) or after (it does not): its
 *     words become WILD in the image. Every other word must read in the child exactly as copied:
 *     the child's data is the parent's at the fork, whatever the parent does afterwards.
 * MADV_DONTFORK slots are unmapped in the child, MADV_WIPEONFORK slots zero-filled. A child's own
 * fork (a grandchild) copies the child's image exactly: nobody but the mutator runs in a child.
 */
import type { Mmu } from '../../src/mem/mmu.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import { PROT_NONE, PROT_WRITE } from '../../src/mm/vm-flags.js';
import {
  describeValue,
  FL_DONTFORK,
  FL_WIPE,
  MAX_ACCESSORS,
  type MemoryModel,
  P,
  SLOTS,
  WILD,
  WINDOW,
  WORDS,
  wellFormed,
} from './tasks/memory-model.js';

export interface PageCounts {
  /** Slots whose every word was read and checked (or whose fault was checked). */
  pages: number;
  /** Lanes of child slots left unchecked (an accessor stored there during the fork). */
  unstableLanes: number;
}

/**
 * Checks slot p through `mmu`: unmapped (`mapped` false): a load faults with SEGV_MAPERR;
 * PROT_NONE: SEGV_ACCERR; PROT_READ: loads work, a store faults with SEGV_ACCERR; otherwise every
 * word equals data[base + w] (WILD: any well-formed value; `lazy`: or 0). Throws on a mismatch.
 */
export function checkSlot(
  mmu: Mmu,
  what: string,
  p: number,
  mapped: boolean,
  prot: number,
  data: Int32Array,
  base: number,
  lazy: boolean,
): void {
  const page = WINDOW + p * P;
  if (!mapped || prot === PROT_NONE) {
    expectFault(() => mmu.load32(page), mapped ? 'SEGV_ACCERR' : 'SEGV_MAPERR', `${what}: load of slot ${p}`);
    return;
  }
  for (let w = 0; w < WORDS; w++) {
    const v = mmu.load32(page + w * 4);
    const e = data[base + w];
    if (e === WILD ? wellFormed(v) : v === e || (lazy && v === 0)) continue;
    throw new Error(
      `${what}: slot ${p} word ${w} (0x${(page + w * 4).toString(16)}) reads ${describeValue(v)}, expected ${e === WILD ? 'a well-formed value' : describeValue(e)}`,
    );
  }
  if ((prot & PROT_WRITE) === 0) {
    expectFault(() => mmu.store32(page, 0x3fffffff), 'SEGV_ACCERR', `${what}: store to read-only slot ${p}`);
  }
}

function expectFault(access: () => unknown, code: string, what: string): void {
  try {
    access();
  } catch (e) {
    if (!(e instanceof MemoryFault)) throw e;
    if (e.code !== code) throw new Error(`${what}: ${e.code}, expected ${code}`);
    return;
  }
  throw new Error(`${what}: no fault, expected ${code}`);
}

/** The parent's whole window against the model (a checkpoint: no accessor runs). */
export function checkParent(mmu: Mmu, m: MemoryModel, counts: PageCounts): void {
  for (let p = 0; p < SLOTS; p++) {
    const rec = m.rec[p];
    checkSlot(mmu, 'parent', p, rec !== 0, m.prot[p], m.model, rec * WORDS, m.lazy[rec] !== 0);
    counts.pages++;
  }
}

/** What a fork child must hold (see the file comment), and the child's own stores since. */
export class ChildImage {
  readonly mapped = new Uint8Array(SLOTS);
  readonly prot = new Int32Array(SLOTS);
  readonly lazy = new Uint8Array(SLOTS);
  /** MADV_WIPEONFORK, which a child's VMA keeps: the slot is zero in the child's own children. */
  readonly wipe = new Uint8Array(SLOTS);
  readonly data = new Int32Array(SLOTS * WORDS);
  /** The parent's model and its SSEQ before the fork (null for the image of a child's child). */
  private m: MemoryModel | null = null;
  private readonly sseq = new Int32Array(MAX_ACCESSORS * SLOTS);
  /** The child's own stores so far (the low bits of its values). */
  private stores = 0;

  /** Before the parent's fork (the accessors' in-flight operations finished; see the file comment). */
  static ofParent(m: MemoryModel): ChildImage {
    const c = new ChildImage();
    c.m = m;
    for (let i = 0; i < m.accessors * SLOTS; i++) c.sseq[i] = Atomics.load(m.sseq, i);
    for (let p = 0; p < SLOTS; p++) {
      const rec = m.rec[p];
      const flags = m.flags[p];
      if (rec === 0 || (flags & FL_DONTFORK) !== 0) continue;
      c.mapped[p] = 1;
      c.prot[p] = m.prot[p];
      if ((flags & FL_WIPE) !== 0) {
        c.wipe[p] = 1;
        continue;
      }
      c.lazy[p] = m.lazy[rec];
      c.data.set(m.model.subarray(rec * WORDS, (rec + 1) * WORDS), p * WORDS);
    }
    return c;
  }

  /**
   * The image of a fork of this child (only this CPU uses the child, so the copy is exact): its
   * slots as they are, zero where MADV_WIPEONFORK is in force (MADV_DONTFORK slots never reached
   * the child).
   */
  forkOf(): ChildImage {
    const c = new ChildImage();
    c.mapped.set(this.mapped);
    c.prot.set(this.prot);
    c.wipe.set(this.wipe);
    for (let p = 0; p < SLOTS; p++) {
      if (this.mapped[p] === 0 || this.wipe[p] !== 0) continue;
      c.lazy[p] = this.lazy[p];
      c.data.set(this.data.subarray(p * WORDS, (p + 1) * WORDS), p * WORDS);
    }
    return c;
  }

  /** After the fork: lanes stored into meanwhile become WILD. Returns how many. */
  settle(): number {
    const m = this.m;
    if (m === null) return 0;
    let unstable = 0;
    for (let a = 0; a < m.accessors; a++) {
      for (let p = 0; p < SLOTS; p++) {
        const s = this.sseq[a * SLOTS + p];
        if ((s & 1) === 0 && Atomics.load(m.sseq, a * SLOTS + p) === s) continue;
        unstable++;
        for (let w = a; w < WORDS; w += m.accessors) this.data[p * WORDS + w] = WILD;
      }
    }
    return unstable;
  }

  /** Every slot of the child through its Mmu (on this CPU: nobody else uses the child). */
  check(mmu: Mmu, what: string, counts: PageCounts): void {
    for (let p = 0; p < SLOTS; p++) {
      checkSlot(mmu, what, p, this.mapped[p] !== 0, this.prot[p], this.data, p * WORDS, this.lazy[p] !== 0);
      counts.pages++;
    }
  }

  /**
   * The child stores `count` values of its own (bit 30 set: never well formed in the parent)
   * into its writable slots and records them: the parent must never see them, and the child must
   * keep them whatever the parent does. Returns the stores made.
   */
  scribble(mmu: Mmu, tag: number, count: number, pick: (n: number) => number): number {
    let made = 0;
    for (let k = 0; k < count; k++) {
      const p = pick(SLOTS);
      if (this.mapped[p] === 0 || (this.prot[p] & PROT_WRITE) === 0) continue;
      const w = pick(WORDS);
      this.stores = this.stores === 0xffff ? 1 : this.stores + 1;
      const v = 0x40000000 | ((tag & 0x3fff) << 16) | this.stores;
      mmu.store32(WINDOW + p * P + w * 4, v);
      this.data[p * WORDS + w] = v;
      made++;
    }
    return made;
  }
}
