/**
 * VMA records: one fixed-size record per VMA in an Arena (shared memory), addressed by handle.
 * The maple tree maps [vm_start, vm_end - 1] to the handle; every CPU reads the same record.
 *
 *   record (64 bytes)                       Float64 slots     Int32 words
 *   +----------+----------+----------+      0 START           6 FLAGS    (VM_* bits)
 *   | START    | END      | PGOFF    |      1 END             7 FILE     (FileTable id, 0 = none)
 *   +------+------+------+------+----+      2 PGOFF           8 ANON     (anon_vma id, 0 = none)
 *   |FLAGS |FILE  |ANON  |NKIND |NID |                        9 NAME_KIND (NAME_*)
 *   +------+------+------+------+----+                        10 NAME_ID (special-name id)
 *   |STATE |LKSEQ |REFCNT|SPARE0|SP1 |                        11 STATE   (DETACHED/ATTACHED)
 *   +------+------+------+------+----+                        12 LOCK_SEQ, 13 REFCNT, 14-15 spare
 *
 * START/END/PGOFF are page-aligned byte addresses / a page offset (exact in doubles). The lock words
 * (LOCK_SEQ = the mm lock sequence at the last write lock, REFCNT = per-VMA reader count and
 * writer/detached bits) are reserved for the per-VMA lock layer; STATE tells a lockless reader
 * whether the record is still in the tree. Invariants: START < END, both multiples of 4096; a
 * record is ATTACHED exactly while the tree maps its range to it.
 */
import { Arena, type ArenaDescriptor, type FailureInjector } from '../shm/arena.js';

export const VMA_RECORD_BYTES = 64;

const START = 0;
const END = 1;
const PGOFF = 2;
const FLAGS = 6;
const FILE = 7;
const ANON = 8;
const NAME_KIND = 9;
const NAME_ID = 10;
const STATE = 11;
/** Word offsets (from the record's first Int32 word) of the per-VMA lock words. */
export const VMA_LOCK_SEQ_WORD = 12;
export const VMA_REFCNT_WORD = 13;

export const VMA_DETACHED = 0;
export const VMA_ATTACHED = 1;

/** How /proc/PID/maps names a VMA. */
export const NAME_ANON = 0;
/** A file of the FileTable (FILE holds its id): test files, the executable, libraries, shmem. */
export const NAME_FILE = 1;
/** A kernel-named special mapping ([stack], [vdso], [vvar], ...): NAME_ID indexes SPECIAL_NAMES. */
export const NAME_SPECIAL = 2;

/** The names of special mappings, one table for every CPU and process (NAME_ID = position). */
export const SPECIAL_NAMES: readonly string[] = [
  '[stack]',
  '[vdso]',
  '[vvar]',
  '[vvar_vclock]',
  '[vsyscall]',
  '[sigpage]',
  '[uprobes]',
];
export const SPECIAL_STACK = 0;

/** The NAME_ID of a special mapping's name; throws for a name the kernel does not use. */
export function specialNameId(name: string): number {
  const id = SPECIAL_NAMES.indexOf(name);
  if (id < 0) throw new RangeError(`unknown special mapping name ${name}`);
  return id;
}

/** A VMA's fields as plain values (used off the hot path: layout seeding, views, tests). */
export interface VmaFields {
  start: number;
  end: number;
  pgoff: number;
  flags: number;
  file: number;
  anon: number;
  nameKind: number;
  nameId: number;
}

export class VmaArena {
  readonly arena: Arena;
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;
  private readonly f64Per: number;
  private readonly i32Per: number;

  static create(capacity: number, maxCapacity: number, injector?: FailureInjector, poison = true): VmaArena {
    return new VmaArena(
      Arena.create({ name: 'vma', recordBytes: VMA_RECORD_BYTES, capacity, maxCapacity, injector, poison }),
    );
  }

  static attach(desc: ArenaDescriptor): VmaArena {
    return new VmaArena(Arena.attach(desc));
  }

  private constructor(arena: Arena) {
    if (arena.recordBytes !== VMA_RECORD_BYTES) throw new Error('vma arena: wrong record size');
    this.arena = arena;
    this.f64 = arena.f64;
    this.i32 = arena.i32;
    this.f64Per = arena.f64PerRecord;
    this.i32Per = arena.i32PerRecord;
  }

  describe(): ArenaDescriptor {
    return this.arena.describe();
  }

  /** A zeroed, DETACHED record, or 0 when allocation fails. */
  alloc(): number {
    return this.arena.alloc();
  }

  start(h: number): number {
    return this.f64[h * this.f64Per + START];
  }
  end(h: number): number {
    return this.f64[h * this.f64Per + END];
  }
  pgoff(h: number): number {
    return this.f64[h * this.f64Per + PGOFF];
  }
  flags(h: number): number {
    return this.i32[h * this.i32Per + FLAGS];
  }
  file(h: number): number {
    return this.i32[h * this.i32Per + FILE];
  }
  anon(h: number): number {
    return this.i32[h * this.i32Per + ANON];
  }
  nameKind(h: number): number {
    return this.i32[h * this.i32Per + NAME_KIND];
  }
  nameId(h: number): number {
    return this.i32[h * this.i32Per + NAME_ID];
  }
  state(h: number): number {
    return Atomics.load(this.i32, h * this.i32Per + STATE);
  }
  /** All records' Int32 words (record h starts at h * (VMA_RECORD_BYTES / 4)): lock views use it. */
  get words(): Int32Array {
    return this.i32;
  }

  setRange(h: number, start: number, end: number, pgoff: number): void {
    const b = h * this.f64Per;
    this.f64[b + START] = start;
    this.f64[b + END] = end;
    this.f64[b + PGOFF] = pgoff;
  }
  setFlags(h: number, flags: number): void {
    this.i32[h * this.i32Per + FLAGS] = flags;
  }
  setIdentity(h: number, file: number, anon: number, nameKind: number, nameId: number): void {
    const b = h * this.i32Per;
    this.i32[b + FILE] = file;
    this.i32[b + ANON] = anon;
    this.i32[b + NAME_KIND] = nameKind;
    this.i32[b + NAME_ID] = nameId;
  }
  setState(h: number, state: number): void {
    Atomics.store(this.i32, h * this.i32Per + STATE, state);
  }
}
