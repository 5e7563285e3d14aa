/**
 * Open file descriptions (Linux's struct file): what open() makes and a descriptor names. One
 * kernel-wide arena of records, shared by every CPU; a description is shared by every descriptor
 * dup() made from it and by the child of a fork, so they share its file position and flags.
 *
 *   record (64 bytes; words are Int32 unless named F64)
 *   +-----------+------+-------+--------+--------+--------------+--------------------------+-------+
 *   | POS (F64) | FILE | FLAGS | REFCNT | WB_ERR | POS_LOCK (2) | RA: PREV START SIZE (F64) | spare |
 *   +-----------+------+-------+--------+--------+--------------+--------------------------+-------+
 *     words 0-1    2      3       4        5        6-7            8-13                       14-15
 *
 * Guards: FILE and FLAGS are written before the id is handed out (by `open`; FILE once more by
 * `rebind`, still before; FLAGS: f_flags, the access mode and the status flags open kept;
 * fcntl(F_SETFL) does not exist yet). POS is guarded by
 * POS_LOCK (Linux's f_pos_lock, a sleeping lock: read and write hold it across their copies, which
 * may fault). REFCNT is atomic: one per descriptor naming the description in any descriptor table,
 * one per holder of an `fget`-style reference, one for the creator until it puts it; the last put
 * puts the file and frees the record. WB_ERR is the errseq cursor sampled at open (f_wb_err,
 * src/fs/errseq.ts), moved on by fsync under POS_LOCK (Linux moves it under f_lock). RA is the
 * readahead state (f_ra, src/fs/readahead.ts: three Float64 slots) the page cache reads and
 * writes without a lock: a hint that racing readers may overwrite, as Linux's.
 */

import { assert } from '../assert.js';
import { WAIT_MUTEX } from '../cpu/waits.js';
import { EINVAL, ENOMEM } from '../errno.js';
import { LOCK_SLEEPS, WRITE } from '../lockhooks.js';
import { Arena, type ArenaDescriptor, type FailureInjector } from '../shm/arena.js';
import { EXCLUSIVE_WORDS, exclusiveLock, exclusiveUnlock } from '../sync/exclusive.js';
import { lockClass } from '../sync/lockclass.js';
import { MUTEX_SPINS } from '../sync/mutex.js';
import { blockingInReadSection, rcuCpu } from '../sync/rcu.js';
import { errseqSample } from './errseq.js';
import { FILE_WB_ERR, type FileTable } from './file-table.js';
import { initReadahead, RA_SLOTS } from './readahead.js';

// open(2) flags (x86_64 values).
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_LARGEFILE = 0o100000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;
export const O_SYNC = 0o4010000;
export const O_PATH = 0o10000000;
export const O_TMPFILE = 0o20200000;
/** Flags that act at open only and are not kept in f_flags (O_CLOEXEC is the descriptor's). */
const OPEN_ONLY = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC;

/** The f_pos lock of every description (class f_pos_lock: outermost, before i_rwsem). */
export const fPosLockClass = lockClass('f_pos_lock');

const RECORD_BYTES = 64;
const POS_F64 = 0;
const FILE = 2;
const FLAGS = 3;
const REFCNT = 4;
/** Word offset of the errseq cursor (writeback's check in fsync). */
export const OF_WB_ERR = 5;
const POS_LOCK = 6;
/** Float64 slot of the readahead state (RA_SLOTS of them: words 8-13). */
const RA_F64 = 4;
/** The f_pos lock's kind for the validator: a sleeping exclusive lock (a mutex). */
const POS_LOCK_MODE = WRITE | LOCK_SLEEPS;
if (POS_LOCK + EXCLUSIVE_WORDS > RA_F64 * 2) throw new Error('open-file: POS_LOCK overlaps RA');
if ((RA_F64 + RA_SLOTS) * 8 > RECORD_BYTES) throw new Error('open-file: RA past the record');

export interface OpenFileTableOptions {
  capacity?: number;
  maxCapacity?: number;
  injector?: FailureInjector;
}

export class OpenFileTable {
  readonly arena: Arena;
  /** The file table every description's FILE names a record of. */
  readonly files: FileTable;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly i32Per: number;
  private readonly f64Per: number;

  static create(files: FileTable, options: OpenFileTableOptions = {}): OpenFileTable {
    const capacity = options.capacity ?? 64;
    const arena = Arena.create({
      name: 'open_file',
      recordBytes: RECORD_BYTES,
      capacity,
      maxCapacity: options.maxCapacity ?? Math.max(capacity, 1 << 16),
      injector: options.injector,
    });
    return new OpenFileTable(arena, files);
  }

  static attach(desc: ArenaDescriptor, files: FileTable): OpenFileTable {
    return new OpenFileTable(Arena.attach(desc), files);
  }

  private constructor(arena: Arena, files: FileTable) {
    if (arena.recordBytes !== RECORD_BYTES) throw new Error('open-file table: wrong record size');
    this.arena = arena;
    this.files = files;
    this.i32 = arena.i32;
    this.f64 = arena.f64;
    this.i32Per = arena.i32PerRecord;
    this.f64Per = arena.f64PerRecord;
  }

  describe(): ArenaDescriptor {
    return this.arena.describe();
  }

  /**
   * alloc_file: a description of `file` with f_flags from `flags` (open-only flags dropped); it
   * takes a reference to the file and holds one for the caller. -EINVAL for a file that is not
   * live or an access mode that is not O_RDONLY, O_WRONLY or O_RDWR; -ENOMEM when the arena is
   * full. Either way nothing changed. Preconditions: the caller holds a reference to `file`.
   */
  open(file: number, flags: number): number {
    if (!this.files.isFile(file) || (flags & O_ACCMODE) === O_ACCMODE) return -EINVAL;
    const id = this.arena.alloc();
    if (id === 0) return -ENOMEM;
    this.files.get(file);
    const b = id * this.i32Per;
    this.f64[id * this.f64Per + POS_F64] = 0;
    this.i32[b + FILE] = file;
    this.i32[b + FLAGS] = flags & ~OPEN_ONLY;
    this.i32[b + OF_WB_ERR] = errseqSample(this.files.words, this.files.word(file, FILE_WB_ERR));
    initReadahead(this.f64, id * this.f64Per + RA_F64);
    Atomics.store(this.i32, b + REFCNT, 1);
    return id;
  }

  /**
   * Makes new description `id` name `file` instead (open found the host file's record in the
   * inode hash after it made `id`): the caller's reference to `file` becomes the description's,
   * f_wb_err is sampled from `file`, and the file it named is returned with its reference, now the
   * caller's to put. Preconditions: `id` was made by `open` and not handed out yet (nobody else can
   * read FILE); the caller holds a reference to `file`.
   */
  rebind(id: number, file: number): number {
    const b = id * this.i32Per;
    assert(
      Atomics.load(this.i32, b + REFCNT) === 1 && this.files.isFile(file),
      'rebind: not a new description',
    );
    const old = this.i32[b + FILE];
    this.i32[b + FILE] = file;
    this.i32[b + OF_WB_ERR] = errseqSample(this.files.words, this.files.word(file, FILE_WB_ERR));
    return old;
  }

  /** get_file: one more reference to a live description. */
  get(id: number): void {
    const old = Atomics.add(this.i32, id * this.i32Per + REFCNT, 1);
    if (old <= 0) throw new Error(`open file ${id}: get of a description with no reference (${old})`);
  }

  /**
   * fput: drops a reference; the last one puts the file (which may close a host descriptor) and
   * frees the record. Preconditions: no spinlock held (the file's release may do I/O).
   */
  put(id: number): void {
    const b = id * this.i32Per;
    const old = Atomics.sub(this.i32, b + REFCNT, 1);
    if (old > 1) return;
    if (old <= 0) throw new Error(`open file ${id}: put of a description with no reference (${old})`);
    if (Atomics.load(this.i32, b + POS_LOCK) !== 0)
      throw new Error(`open file ${id}: freed with f_pos_lock held`);
    const file = this.i32[b + FILE];
    this.arena.free(id);
    this.files.put(file);
  }

  /** Whether `id` names a live description. */
  isOpen(id: number): boolean {
    return Number.isInteger(id) && id > 0 && this.arena.isLive(id);
  }
  refs(id: number): number {
    return Atomics.load(this.i32, id * this.i32Per + REFCNT);
  }
  /** The file (inode) the description opened. */
  file(id: number): number {
    return this.i32[id * this.i32Per + FILE];
  }
  /** f_flags: the access mode (O_ACCMODE) and the status flags (O_APPEND, O_NONBLOCK, ...). */
  flags(id: number): number {
    return this.i32[id * this.i32Per + FLAGS];
  }
  /** FMODE_READ. */
  readable(id: number): boolean {
    return (this.flags(id) & O_ACCMODE) !== O_WRONLY;
  }
  /** FMODE_WRITE. */
  writable(id: number): boolean {
    return (this.flags(id) & O_ACCMODE) !== O_RDONLY;
  }

  /**
   * Takes the description's f_pos lock (fdget_pos): may sleep. Preconditions: a reference to `id`;
   * no lock held but those the lock order puts before f_pos_lock (none); not in an RCU read section.
   */
  lockPos(id: number): void {
    // Mutex.lock's two steps, on the record's words (a Mutex object per call would allocate).
    if (rcuCpu.depth !== 0) blockingInReadSection('f_pos_lock');
    exclusiveLock(
      this.i32,
      id * this.i32Per + POS_LOCK,
      fPosLockClass,
      0,
      MUTEX_SPINS,
      WAIT_MUTEX,
      POS_LOCK_MODE,
    );
  }

  unlockPos(id: number): void {
    exclusiveUnlock(this.i32, id * this.i32Per + POS_LOCK, fPosLockClass);
  }

  /** f_pos. Preconditions: the f_pos lock is held (or the caller alone can reach the description). */
  pos(id: number): number {
    return this.f64[id * this.f64Per + POS_F64];
  }

  /** Sets f_pos. Preconditions: the f_pos lock is held; `pos` is a safe integer >= 0. */
  setPos(id: number, pos: number): void {
    this.f64[id * this.f64Per + POS_F64] = pos;
  }

  /** The records' Float64 slots: the readahead state of `id` is at `raAt(id)` (readahead.ts). */
  get raState(): Float64Array {
    return this.f64;
  }
  raAt(id: number): number {
    return id * this.f64Per + RA_F64;
  }

  /** Word index of description `id`'s word `word` in `words` (OF_WB_ERR). */
  word(id: number, word: number): number {
    return id * this.i32Per + word;
  }
  /** The records' Int32 words (for the errseq cursor; see the header). */
  get words(): Int32Array {
    return this.i32;
  }

  /** Live descriptions (0 once every one was put). */
  get live(): number {
    return this.arena.live;
  }
}
