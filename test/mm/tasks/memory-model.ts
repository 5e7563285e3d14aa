/**
 * The shared model of the memory race (test/mm/memory-race.ts): what every page of the window
 * must hold, kept in shared memory by the mutator (which changes the mappings) and the accessors
 * (which store into them), so that each side can check the other's effects.
 *
 * Terms. A SLOT is one page of the window (WINDOW + p * P). An INCARNATION is one page's worth of
 * data with its own life: it starts zero-filled (mmap, MADV_DONTNEED, a DONTUNMAP source, a grown
 * tail), moves between slots with mremap, and ends when it is unmapped or discarded. Each live
 * incarnation has a RECORD: the expected value of each of its 1024 words (MODEL), its serial
 * number (the pattern tag) and whether MADV_FREE made it lazily freeable (LAZY).
 *
 * Who writes what:
 *   GEN[p]      the mutator, Atomics.add: odd while a syscall that may change slot p runs (a
 *               seqlock). Each even value names one state of the slot: REC (0 = unmapped), PROT,
 *               FLAGS (FL_DONTFORK, FL_WIPE), written while GEN is odd.
 *   HIST[p][k]  the mutator: the record of the slot's state with GEN = 2k, in a ring of HIST_LEN,
 *               written BEFORE the bump to odd (so a reader that saw a GEN sees its history).
 *   MODEL       word w of every record belongs to accessor LANE w % accessors: only that accessor
 *               writes it (a pattern it stored, or WILD when it cannot know whether its store
 *               landed there); the mutator zeroes a record before publishing it.
 *   SSEQ[a][p]  accessor a, odd while it stores into slot p (fork's snapshot test for the slot).
 *   OPS[a]      accessor a's finished operations (the mutator's grace periods: a record freed at
 *               time t is reused only once every accessor finished an operation after t, so no
 *               accessor still writes WILD into it).
 *
 * Values. An accessor stores pattern(serial, seq) = (serial & 0x3fff) << 16 | seq, seq in
 * 1..0xffff: positive and below 2^30, never 0. The mutator's poison (negative), the children's
 * patterns (bit 30 set) and freed-frame poison (0x6b6b6b6b, bit 30 set) are never well formed,
 * so a load that returns one of them is a stale or foreign translation whatever the slot's state.
 */

export const P = 4096;
export const WORDS = P / 4;
/** Window slots; the window straddles a 2 MiB boundary, so it spans two PTE tables. */
export const SLOTS = 64;
export const WINDOW = 0x200000000 - (SLOTS / 2) * P;
export const HIST_LEN = 16;
/** Records in the pool: every slot's incarnation, plus those waiting for their grace period. */
export const RECORDS = 8 * SLOTS;
export const MAX_ACCESSORS = 4;
/** The model's "any well-formed value" (a racy store may or may not have landed). */
export const WILD = -1;

/** Slot flags: MADV_DONTFORK / MADV_WIPEONFORK in force. */
export const FL_DONTFORK = 1;
export const FL_WIPE = 2;

/** Control words. */
export const C_READY = 0;
export const C_STOP = 1;
/** Checkpoint number while the mutator wants the accessors paused, else 0. */
export const C_PAUSE = 2;
export const C_ERRORS = 3;
/** Per accessor: the checkpoint it is paused for; whether it is done; its finished operations. */
export const C_PAUSED = 4;
export const C_DONE = C_PAUSED + MAX_ACCESSORS;
export const C_OPS = C_DONE + MAX_ACCESSORS;
const CONTROL_WORDS = C_OPS + MAX_ACCESSORS;

export interface MemoryModelBuffers {
  accessors: number;
  control: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  hist: SharedArrayBuffer;
  sseq: SharedArrayBuffer;
  model: SharedArrayBuffer;
  records: SharedArrayBuffer;
}

/** Slot arrays inside `slots`. */
const S_GEN = 0;
const S_REC = 1;
const S_PROT = 2;
const S_FLAGS = 3;
/** Record arrays inside `records`. */
const R_SERIAL = 0;
const R_LAZY = 1;

export function wellFormed(v: number): boolean {
  return v >= 0 && v < 0x40000000;
}

export function pattern(serial: number, seq: number): number {
  return ((serial & 0x3fff) << 16) | (seq & 0xffff);
}

export function describeValue(v: number): string {
  if (v === 0) return '0';
  if (v < 0) return `0x${(v >>> 0).toString(16)} (poison)`;
  if (v >= 0x40000000) return `0x${v.toString(16)} (not an accessor pattern)`;
  return `0x${v.toString(16)} (serial tag ${v >>> 16}, seq ${v & 0xffff})`;
}

export class MemoryModel {
  readonly accessors: number;
  readonly control: Int32Array;
  readonly gen: Int32Array;
  readonly rec: Int32Array;
  readonly prot: Int32Array;
  readonly flags: Int32Array;
  readonly hist: Int32Array;
  readonly sseq: Int32Array;
  readonly model: Int32Array;
  readonly serial: Int32Array;
  readonly lazy: Int32Array;

  static create(accessors: number): MemoryModel {
    if (!(accessors >= 1 && accessors <= MAX_ACCESSORS)) throw new RangeError(`accessors: ${accessors}`);
    return new MemoryModel({
      accessors,
      control: new SharedArrayBuffer(CONTROL_WORDS * 4),
      slots: new SharedArrayBuffer(4 * SLOTS * 4),
      hist: new SharedArrayBuffer(SLOTS * HIST_LEN * 4),
      sseq: new SharedArrayBuffer(MAX_ACCESSORS * SLOTS * 4),
      model: new SharedArrayBuffer(RECORDS * WORDS * 4),
      records: new SharedArrayBuffer(2 * RECORDS * 4),
    });
  }

  constructor(readonly buffers: MemoryModelBuffers) {
    const b = buffers;
    this.accessors = b.accessors;
    this.control = new Int32Array(b.control);
    this.gen = new Int32Array(b.slots, S_GEN * SLOTS * 4, SLOTS);
    this.rec = new Int32Array(b.slots, S_REC * SLOTS * 4, SLOTS);
    this.prot = new Int32Array(b.slots, S_PROT * SLOTS * 4, SLOTS);
    this.flags = new Int32Array(b.slots, S_FLAGS * SLOTS * 4, SLOTS);
    this.hist = new Int32Array(b.hist);
    this.sseq = new Int32Array(b.sseq);
    this.model = new Int32Array(b.model);
    this.serial = new Int32Array(b.records, R_SERIAL * RECORDS * 4, RECORDS);
    this.lazy = new Int32Array(b.records, R_LAZY * RECORDS * 4, RECORDS);
  }

  /**
   * A store into slot p may have landed in any incarnation the slot held between GEN values g1
   * and g2 (read before and after the store): word w of each becomes WILD. Returns false when the
   * ring no longer holds that history (the store raced with more than HIST_LEN - 2 changes of the
   * slot): then word w of every record becomes WILD. Preconditions: called by word w's lane owner,
   * before its OPS count moves (the records it names are not reused before).
   */
  markOccupants(p: number, g1: number, g2: number, w: number): boolean {
    const lo = g1 & ~1;
    const hi = (g2 + 1) & ~1;
    if (hi - lo < 2 * (HIST_LEN - 2)) {
      for (let g = lo; g <= hi; g += 2) {
        const r = Atomics.load(this.hist, p * HIST_LEN + ((g >>> 1) % HIST_LEN));
        if (r !== 0) this.model[r * WORDS + w] = WILD;
      }
      // The ring entry of lo is overwritten before GEN reaches lo + 2 * HIST_LEN - 1.
      if (Atomics.load(this.gen, p) < lo + 2 * HIST_LEN - 2) return true;
    }
    for (let r = 1; r < RECORDS; r++) this.model[r * WORDS + w] = WILD;
    return false;
  }
}
