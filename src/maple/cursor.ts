/**
 * A cursor iterates a window forwards (`find`) or backwards (`findRev`) from a position, one
 * entry per call, at O(1) amortised cost: it keeps its Walker between calls and re-walks from the
 * root only when the tree's SEQ word moved (a change retired nodes it may hold) or when the
 * position is not next to where it stands. Each call is a read: run it inside an RCU read section
 * or under the writer lock. Holding a cursor across sections is fine; its path is re-checked.
 */
import type { RangeOut } from './api.js';
import { SEQ } from './header.js';
import { MAX_INDEX, type NodeViews } from './layout.js';
import { Walker } from './read.js';

export class MapleCursor {
  private readonly walker: Walker;
  /** Next index to look at; MAX_INDEX + 1 past the end, -1 before the start. */
  private index: number;
  /** SEQ when the walker was last positioned from the root; -1 when it never was. */
  private seq = -1;

  constructor(
    views: NodeViews,
    private readonly header: Int32Array,
    index: number,
  ) {
    this.walker = new Walker(views, header);
    this.index = index;
  }

  /** The position the next call starts from. */
  get position(): number {
    return this.index;
  }

  reset(index: number): void {
    if (!(index >= -1 && index <= MAX_INDEX + 1 && Math.floor(index) === index)) {
      throw new RangeError(`EINVAL: cursor position ${index}`);
    }
    this.index = index;
  }

  /** First entry with last >= position and first <= max; moves past it. 0 when there is none. */
  find(max: number, out: RangeOut): number {
    if (this.index > MAX_INDEX) return 0;
    this.stand();
    const w = this.walker;
    for (;;) {
      if (w.first > max) return 0;
      if (w.value !== 0) {
        out.first = w.first;
        out.last = w.last;
        out.value = w.value;
        this.index = w.last + 1;
        return w.value;
      }
      if (!w.step()) {
        this.index = MAX_INDEX + 1;
        return 0;
      }
      this.index = w.first;
    }
  }

  /** Last entry with first <= position and last >= min; moves before it. 0 when there is none. */
  findRev(min: number, out: RangeOut): number {
    if (this.index < 0) return 0;
    this.stand();
    const w = this.walker;
    for (;;) {
      if (w.last < min) return 0;
      if (w.value !== 0) {
        out.first = w.first;
        out.last = w.last;
        out.value = w.value;
        this.index = w.first - 1;
        return w.value;
      }
      if (!w.stepBack()) {
        this.index = -1;
        return 0;
      }
      this.index = w.last;
    }
  }

  /** Puts the walker on the slot holding `index`, stepping if it stands next to it. */
  private stand(): void {
    const w = this.walker;
    const seq = Atomics.load(this.header, SEQ);
    if (seq === this.seq) {
      if (this.index >= w.first && this.index <= w.last) {
        if (w.reload()) return;
      } else if (this.index === w.last + 1 && w.step()) return;
      else if (this.index === w.first - 1 && w.stepBack()) return;
    }
    this.seq = seq;
    w.seek(this.index);
  }
}
