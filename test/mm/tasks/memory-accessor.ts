/**
 * Task: one accessor CPU of the memory race (test/mm/memory-race.ts). Flat out, through its Mmu on
 * the parent process: a store of a fresh pattern into a random word of its lane of a random slot,
 * or a load of a random word (of its lane mostly), each checked against the shared model
 * (tasks/memory-model.ts):
 *
 *   stable (GEN[p] even and unchanged across the access): the slot's state decides everything.
 *     unmapped: the access faults with SEGV_MAPERR; PROT_NONE, or a store to PROT_READ: SEGV_ACCERR;
 *     otherwise it must not fault, a store's pattern becomes the word's model, and a load of its
 *     own lane returns exactly the model (0 or the model for a lazily freed incarnation; any
 *     well-formed value for a WILD word); a load of another lane, whose owner may be storing,
 *     returns a well-formed value.
 *   racing a syscall on the slot: a fault is legal; a load returns a well-formed value; a store
 *     that did not fault landed in one of the incarnations the slot held meanwhile: the word
 *     becomes WILD in each (MemoryModel.markOccupants) until this accessor stores there again.
 *
 * Between operations it honours the mutator's pauses (checkpoints) with its Mmu offline.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import type { Mmu } from '../../../src/mem/mmu.js';
import { MemoryFault } from '../../../src/mem/tlb.js';
import { PROT_NONE, PROT_WRITE } from '../../../src/mm/vm-flags.js';
import { rcuBlockBegin, rcuBlockEnd, rcuQuiescent } from '../../../src/sync/rcu.js';
import {
  C_DONE,
  C_ERRORS,
  C_OPS,
  C_PAUSE,
  C_PAUSED,
  C_READY,
  C_STOP,
  describeValue,
  MemoryModel,
  type MemoryModelBuffers,
  P,
  pattern,
  SLOTS,
  WILD,
  WINDOW,
  WORDS,
  wellFormed,
} from './memory-model.js';
import { Rng } from './vma-race.js';

export interface AccessorArgs {
  process: ProcessDescriptor;
  model: MemoryModelBuffers;
  /** This accessor's lane: words w with w % accessors === lane. */
  lane: number;
  seed: number;
  /** Bound on a pause (ms). */
  giveUpMs: number;
  /** Bound on the whole run (ms): the mutator stops the accessors long before. */
  limitMs: number;
}

export interface AccessorResult {
  loads: number;
  stores: number;
  /** MemoryFaults taken (expected ones included). */
  faults: number;
  /** Accesses with the slot's state stable, checked exactly (or against the fault expected). */
  stable: number;
  /** Stores that raced a syscall on their slot and did not fault (their word became WILD). */
  racyStores: number;
  /** Of those, the ones whose slot history overflowed the ring (the word became WILD everywhere). */
  overflows: number;
  /** Loads of a lazily freed word that returned 0. */
  lazyZeros: number;
  pauses: number;
  error: string;
}

const NO_FAULT = 0;
const MAPERR = 1;
const ACCERR = 2;
const OTHER = 3;

export default function run(_cpu: number, args: AccessorArgs): AccessorResult {
  const proc = Process.attach(args.process);
  const m = new MemoryModel(args.model);
  const res: AccessorResult = {
    loads: 0,
    stores: 0,
    faults: 0,
    stable: 0,
    racyStores: 0,
    overflows: 0,
    lazyZeros: 0,
    pauses: 0,
    error: '',
  };
  Atomics.add(m.control, C_READY, 1);
  try {
    new Accessor(proc.mm.mmu(), m, args, res).loop();
  } catch (error) {
    res.error = `accessor ${args.lane}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
  } finally {
    if (res.error !== '') Atomics.add(m.control, C_ERRORS, 1);
    proc.detach();
    Atomics.store(m.control, C_DONE + args.lane, 1);
    Atomics.notify(m.control, C_DONE + args.lane);
  }
  return res;
}

class Accessor {
  private readonly rng: Rng;
  private readonly a: number;
  private readonly lanes: number;
  /** Words in this accessor's lane. */
  private readonly laneWords: number;
  private seq = 0;
  private paused = 0;

  constructor(
    private readonly mmu: Mmu,
    private readonly m: MemoryModel,
    private readonly args: AccessorArgs,
    private readonly res: AccessorResult,
  ) {
    this.rng = new Rng(args.seed * 7919 + args.lane + 1);
    this.a = args.lane;
    this.lanes = m.accessors;
    this.laneWords = Math.floor((WORDS - 1 - this.a) / this.lanes) + 1;
  }

  loop(): void {
    const ctl = this.m.control;
    const limit = Date.now() + this.args.limitMs;
    for (let n = 0; Atomics.load(ctl, C_STOP) === 0 && this.res.error === ''; n++) {
      const pause = Atomics.load(ctl, C_PAUSE);
      if (pause !== 0 && pause !== this.paused) this.pause(pause);
      const p = this.rng.below(SLOTS);
      const k = this.rng.next();
      const own = this.a + this.lanes * ((k >>> 8) % this.laneWords);
      if ((k & 1) === 0) this.store(p, own);
      else if ((k & 6) !== 0) this.load(p, own);
      else this.load(p, (k >>> 8) % WORDS);
      Atomics.add(ctl, C_OPS + this.a, 1);
      if ((n & 255) === 0) {
        rcuQuiescent();
        if (Date.now() > limit) throw new Error(`not stopped within ${this.args.limitMs} ms`);
      }
    }
  }

  private store(p: number, w: number): void {
    const m = this.m;
    const s = this.a * SLOTS + p;
    Atomics.add(m.sseq, s, 1);
    const g1 = Atomics.load(m.gen, p);
    const rec = Atomics.load(m.rec, p);
    const prot = Atomics.load(m.prot, p);
    this.seq = this.seq === 0xffff ? 1 : this.seq + 1;
    const v = pattern(m.serial[rec], this.seq);
    const addr = WINDOW + p * P + w * 4;
    let fault = NO_FAULT;
    try {
      this.mmu.store32(addr, v);
    } catch (e) {
      fault = faultKind(e);
      this.res.faults++;
    }
    const g2 = Atomics.load(m.gen, p);
    this.res.stores++;
    if (g1 === g2 && (g1 & 1) === 0) {
      this.res.stable++;
      const want = rec === 0 ? MAPERR : (prot & PROT_WRITE) === 0 ? ACCERR : NO_FAULT;
      if (fault !== want)
        this.fail(`store of ${describeValue(v)}`, addr, rec, prot, faultMismatch(want, fault));
      else if (fault === NO_FAULT) m.model[rec * WORDS + w] = v;
    } else if (fault === NO_FAULT) {
      this.res.racyStores++;
      if (!m.markOccupants(p, g1, g2, w)) this.res.overflows++;
    }
    Atomics.add(m.sseq, s, 1);
  }

  private load(p: number, w: number): void {
    const m = this.m;
    const g1 = Atomics.load(m.gen, p);
    const rec = Atomics.load(m.rec, p);
    const prot = Atomics.load(m.prot, p);
    const addr = WINDOW + p * P + w * 4;
    let fault = NO_FAULT;
    let v = 0;
    try {
      v = this.mmu.load32(addr);
    } catch (e) {
      fault = faultKind(e);
      this.res.faults++;
    }
    const g2 = Atomics.load(m.gen, p);
    this.res.loads++;
    if (g1 !== g2 || (g1 & 1) !== 0) {
      if (fault === NO_FAULT && !wellFormed(v))
        this.fail('racing load', addr, rec, prot, `read ${describeValue(v)}`);
      return;
    }
    this.res.stable++;
    const want = rec === 0 ? MAPERR : prot === PROT_NONE ? ACCERR : NO_FAULT;
    if (fault !== want) {
      this.fail('load', addr, rec, prot, faultMismatch(want, fault));
      return;
    }
    if (fault !== NO_FAULT) return;
    const e = w % this.lanes === this.a ? m.model[rec * WORDS + w] : WILD;
    if (e === WILD ? wellFormed(v) : v === e) return;
    if (v === 0 && m.lazy[rec] !== 0) {
      this.res.lazyZeros++;
      return;
    }
    const expected = e === WILD ? 'a well-formed value' : describeValue(e);
    this.fail('load', addr, rec, prot, `read ${describeValue(v)}, expected ${expected}`);
  }

  private pause(pause: number): void {
    const ctl = this.m.control;
    this.mmu.offline();
    const deadline = Date.now() + this.args.giveUpMs;
    Atomics.store(ctl, C_PAUSED + this.a, pause);
    Atomics.notify(ctl, C_PAUSED + this.a);
    const wasOnline = rcuBlockBegin();
    try {
      while (Atomics.load(ctl, C_PAUSE) === pause && Atomics.load(ctl, C_STOP) === 0) {
        if (Date.now() > deadline)
          throw new Error(`paused for checkpoint ${pause} beyond ${this.args.giveUpMs} ms`);
        Atomics.wait(ctl, C_PAUSE, pause, 50);
      }
    } finally {
      rcuBlockEnd(wasOnline);
    }
    this.paused = pause;
    this.res.pauses++;
  }

  /** Records the first error: what the access was, the slot's state, and what it found. */
  private fail(what: string, addr: number, rec: number, prot: number, found: string): void {
    const m = this.m;
    const state = `record ${rec} (serial ${m.serial[rec]}), prot ${prot}, lazy ${m.lazy[rec]}`;
    const where = `slot ${(addr - WINDOW) >>> 12}, word ${(addr & (P - 1)) >>> 2}`;
    this.res.error = `${what} at 0x${addr.toString(16)} (${where}), ${state}: ${found}`;
  }
}

const FAULT_NAMES = ['no fault', 'SEGV_MAPERR', 'SEGV_ACCERR', 'another fault'];

function faultMismatch(want: number, got: number): string {
  return `expected ${FAULT_NAMES[want]}, got ${FAULT_NAMES[got]}`;
}

function faultKind(e: unknown): number {
  if (!(e instanceof MemoryFault)) throw e;
  return e.code === 'SEGV_MAPERR' ? MAPERR : e.code === 'SEGV_ACCERR' ? ACCERR : OTHER;
}
