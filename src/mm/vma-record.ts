/**
 * VMA records: one fixed-size record per VMA in an Arena (shared memory), addressed by handle.
 * The maple tree maps [vm_start, vm_end - 1] to the handle; every CPU reads the same record.
 *
 * VMA_FIELDS is the one definition of a VMA's fields: the record layout, the accessors, the
 * transaction's slots (VmaTxn), the merge state (MergeState), the plain-value form (VmaFields) and
 * the merge rule of each field are derived from it, so adding a field is one edit here.
 *
 *   record (64 bytes): the Float64 fields first, then the Int32 fields, then the lock words
 *   +----------+----------+----------+      Float64 slots     Int32 words
 *   | START    | END      | PGOFF    |      0 START           6 FLAGS    (VM_* bits)
 *   +------+------+------+------+----+      1 END             7 FILE     (FileTable id, 0 = none)
 *   |FLAGS |FILE  |ANON  |NKIND |NID |      2 PGOFF           8 ANON     (anon_vma id, 0 = none)
 *   +------+------+------+------+----+                        9 NAME_KIND (NAME_*)
 *   |STATE |LKSEQ |REFCNT|LKDEP |SP  |                        10 NAME_ID (special-name id)
 *   +------+------+------+------+----+                        then STATE, LOCK_SEQ, REFCNT, LOCKDEP_ID
 *
 * START/END/PGOFF are page-aligned byte addresses / a page offset (exact in doubles). The lock words
 * (LOCK_SEQ = the mm lock sequence at the last write lock, REFCNT = per-VMA reader count and
 * writer/detached bits) belong to the per-VMA lock layer; STATE tells a lockless reader whether the
 * record is still in the tree. Invariants: START < END, both multiples of 4096; a record is ATTACHED
 * exactly while the tree maps its range to it.
 */
import { DEBUG } from '../assert.js';
import { Arena, type ArenaDescriptor, type FailureInjector } from '../shm/arena.js';

export const VMA_RECORD_BYTES = 64;

/**
 * How two VMAs' values of a field decide a merge (is_mergeable_vma and friends): `range` (start,
 * end: must abut), `offset` (pgoff: must be contiguous), `flags` (equal but for VM_IGNORE_MERGE),
 * `anon` (anon_vma: compatible, one may be unset), `equal` (must be equal).
 */
export type MergeRule = 'range' | 'offset' | 'flags' | 'anon' | 'equal';

/** The fields of a VMA, in record order (Float64 fields first). */
export const VMA_FIELDS = [
  { name: 'start', type: 'f64', merge: 'range' },
  { name: 'end', type: 'f64', merge: 'range' },
  { name: 'pgoff', type: 'f64', merge: 'offset' },
  { name: 'flags', type: 'i32', merge: 'flags' },
  { name: 'file', type: 'i32', merge: 'equal' },
  { name: 'anon', type: 'i32', merge: 'anon' },
  { name: 'nameKind', type: 'i32', merge: 'equal' },
  { name: 'nameId', type: 'i32', merge: 'equal' },
] as const satisfies ReadonlyArray<{ name: string; type: 'f64' | 'i32'; merge: MergeRule }>;

type FieldSpec = (typeof VMA_FIELDS)[number];
export type VmaFieldName = FieldSpec['name'];
/** A VMA's fields as plain values (layout seeding, merge proposals, views, tests). */
export type VmaFields = { [F in FieldSpec as F['name']]: number };
/** One typed column per field (a transaction's slots). */
export type VmaColumns = {
  [F in FieldSpec as F['name']]: F['type'] extends 'f64'
    ? Float64Array<ArrayBuffer>
    : Int32Array<ArrayBuffer>;
};

export const VMA_FIELD_COUNT = VMA_FIELDS.length;
const F64_COUNT = VMA_FIELDS.filter((f) => f.type === 'f64').length;
/** Per field: 1 if it is a Float64 field, and its slot (Float64) or word (Int32) in the record. */
const FIELD_IS_F64 = new Uint8Array(VMA_FIELDS.map((f) => (f.type === 'f64' ? 1 : 0)));
const FIELD_OFFSET = new Int32Array(
  VMA_FIELDS.map((f, i) => (f.type === 'f64' ? i : 2 * F64_COUNT + (i - F64_COUNT))),
);
if (VMA_FIELDS.some((f, i) => (f.type === 'f64') !== i < F64_COUNT)) {
  throw new Error('VMA_FIELDS: the Float64 fields must come first');
}
/**
 * Copy and compare functions generated once from VMA_FIELDS: straight-line code with fixed
 * property names, as fast as hand-written copies (a loop over computed names costs V8 keyed
 * accesses: measured 50% more per mmap+munmap). Each takes the field columns (a VmaTxn, anything
 * with one typed array per field) or a VmaFields object; records are addressed by their Float64
 * slot base `fb` and Int32 word base `ib`.
 */
type Columns = VmaColumns;
type RecordViews = { f64: Float64Array; i32: Int32Array };
interface VmaCopiers {
  /** cols[*][s] = f.* */
  fromFields(cols: Columns, s: number, f: VmaFields): void;
  /** cols[*][dst] = cols[*][src] */
  fromSlot(cols: Columns, dst: number, src: number): void;
  /** cols[*][s] = record */
  fromRecord(cols: Columns, s: number, r: RecordViews, fb: number, ib: number): void;
  /** record = cols[*][s] */
  toRecord(cols: Columns, s: number, r: RecordViews, fb: number, ib: number): void;
  /** Whether cols[*][s] differs from the record in a field that is not the range. */
  differsFromRecord(cols: Columns, s: number, r: RecordViews, fb: number, ib: number): boolean;
  /** f.* = cols[*][s] */
  toFields(f: VmaFields, cols: Columns, s: number): void;
  /** dst.* = src.* */
  copyFields(dst: VmaFields, src: VmaFields): void;
  /** Whether every `equal`-rule field of cols[*][s] equals f's. */
  equalFieldsMatch(cols: Columns, s: number, f: VmaFields): boolean;
  /** f.* = 0 */
  clear(f: VmaFields): void;
}

function generateCopiers(): VmaCopiers {
  const rec = (i: number): string =>
    FIELD_IS_F64[i] === 1 ? `r.f64[fb + ${FIELD_OFFSET[i]}]` : `r.i32[ib + ${FIELD_OFFSET[i]}]`;
  const each = (line: (name: string, i: number) => string): string =>
    VMA_FIELDS.map((f, i) => line(f.name, i)).join('\n');
  const nonRange = VMA_FIELDS.flatMap((f, i) =>
    f.merge === 'range' ? [] : [`c.${f.name}[s] !== ${rec(i)}`],
  );
  const equal = VMA_FIELDS.flatMap((f) => (f.merge === 'equal' ? [`c.${f.name}[s] === f.${f.name}`] : []));
  const make = <T>(params: string, body: string): T => new Function(...params.split(','), body) as T;
  return {
    fromFields: make(
      'c,s,f',
      each((n) => `c.${n}[s] = f.${n};`),
    ),
    fromSlot: make(
      'c,d,s',
      each((n) => `c.${n}[d] = c.${n}[s];`),
    ),
    fromRecord: make(
      'c,s,r,fb,ib',
      each((n, i) => `c.${n}[s] = ${rec(i)};`),
    ),
    toRecord: make(
      'c,s,r,fb,ib',
      each((n, i) => `${rec(i)} = c.${n}[s];`),
    ),
    differsFromRecord: make('c,s,r,fb,ib', `return ${nonRange.join(' || ') || 'false'};`),
    toFields: make(
      'f,c,s',
      each((n) => `f.${n} = c.${n}[s];`),
    ),
    copyFields: make(
      'd,s',
      each((n) => `d.${n} = s.${n};`),
    ),
    equalFieldsMatch: make('c,s,f', `return ${equal.join(' && ') || 'true'};`),
    clear: make(
      'f',
      each((n) => `f.${n} = 0;`),
    ),
  };
}

export const vmaCopy: VmaCopiers = generateCopiers();

/** A zeroed VmaFields (scratch objects are made once per module, never per call). */
export function vmaFields(): VmaFields {
  return Object.fromEntries(VMA_FIELDS.map((f) => [f.name, 0])) as VmaFields;
}

/** Sets every field of `f` to 0; returns it. */
export function clearVmaFields(f: VmaFields): VmaFields {
  vmaCopy.clear(f);
  return f;
}

/** The index of a field in VMA_FIELDS. */
export function vmaFieldIndex(name: VmaFieldName): number {
  return VMA_FIELDS.findIndex((f) => f.name === name);
}

const START = FIELD_OFFSET[vmaFieldIndex('start')];
const END = FIELD_OFFSET[vmaFieldIndex('end')];
const PGOFF = FIELD_OFFSET[vmaFieldIndex('pgoff')];
const FLAGS = FIELD_OFFSET[vmaFieldIndex('flags')];
const FILE = FIELD_OFFSET[vmaFieldIndex('file')];
const ANON = FIELD_OFFSET[vmaFieldIndex('anon')];
const NAME_KIND = FIELD_OFFSET[vmaFieldIndex('nameKind')];
const NAME_ID = FIELD_OFFSET[vmaFieldIndex('nameId')];
/** The first word after the fields: STATE, then the per-VMA lock words. */
const STATE = 2 * F64_COUNT + (VMA_FIELD_COUNT - F64_COUNT);
/** Word offsets (from the record's first Int32 word) of the per-VMA lock words. */
export const VMA_LOCK_SEQ_WORD = STATE + 1;
export const VMA_REFCNT_WORD = STATE + 2;
/**
 * The record's i_mmap entry (src/fs/i-mmap.ts; 0 = none: an anonymous VMA), after the lock
 * layer's LOCKDEP_ID. Written by the VMA commit under mmap_lock (W) and the file's i_mmap (W).
 */
const RMAP = STATE + 4;
if (RMAP >= VMA_RECORD_BYTES / 4) throw new Error('VMA_FIELDS: the record is full');

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

export class VmaArena {
  readonly arena: Arena;
  private readonly f64: Float64Array;
  private readonly i32: Int32Array;
  private readonly f64Per: number;
  private readonly i32Per: number;
  private readonly recordViews: RecordViews;

  static create(capacity: number, maxCapacity: number, injector?: FailureInjector, poison = DEBUG): VmaArena {
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
    this.recordViews = { f64: this.f64, i32: this.i32 };
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
  /** The record views and bases the generated copiers (vmaCopy) take. */
  get views(): RecordViews {
    return this.recordViews;
  }
  /** Record h's first Float64 slot and first Int32 word. */
  f64Base(h: number): number {
    return h * this.f64Per;
  }
  i32Base(h: number): number {
    return h * this.i32Per;
  }

  /** Field `i` (an index into VMA_FIELDS) of record h. */
  field(h: number, i: number): number {
    return FIELD_IS_F64[i] === 1
      ? this.f64[h * this.f64Per + FIELD_OFFSET[i]]
      : this.i32[h * this.i32Per + FIELD_OFFSET[i]];
  }
  setField(h: number, i: number, v: number): void {
    if (FIELD_IS_F64[i] === 1) this.f64[h * this.f64Per + FIELD_OFFSET[i]] = v;
    else this.i32[h * this.i32Per + FIELD_OFFSET[i]] = v;
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
  /** The record's i_mmap entry (0 = none). */
  rmapEntry(h: number): number {
    return this.i32[h * this.i32Per + RMAP];
  }
  setRmapEntry(h: number, e: number): void {
    this.i32[h * this.i32Per + RMAP] = e;
  }
  setState(h: number, state: number): void {
    Atomics.store(this.i32, h * this.i32Per + STATE, state);
  }
  /** setState of a record no other CPU can reach yet (not in the tree): a plain store. */
  setStateUnpublished(h: number, state: number): void {
    this.i32[h * this.i32Per + STATE] = state;
  }
}
