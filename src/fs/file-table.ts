/**
 * The file table: every file an address space can map, as one shared record per file identity
 * (an inode, in Linux's terms), usable from every CPU. A file id is the record's arena handle
 * (0 = no file); VMA records store it. Shared anonymous memory gets a shmem object here too.
 *
 *   file record (576 bytes; words are Int32 unless named F64)
 *   +--------+-------+-----------+-------------+--------+---------+---------+---------+
 *   | SIZE_LO | SIZE_HI | FLAGS | PLACEMENT | SHMEM_INDEX | REFCNT | NAMELEN | SIZE_SEQ |  words 0-7
 *   +--------+-------+-----------+-------------+--------+---------+---------+---------+
 *   | BACKING | HOST_FD | CACHE_ROOT | CACHE_HEIGHT | NRPAGES | WB_ERR | I_PAGES (2)   |  words 8-15
 *   +------------------------------------+--------------------------------------------+
 *   | I_RWSEM (8 words) | INVALIDATE_LOCK (8 words) | I_MMAP (8 words) | reverse map (7) |   |  words 16-46
 *   |                                                              SIZE_PAGES (word 47) ---+  |
 *   +------------------------------------------------------------------------------------+
 *   | INJECT: per operation (INJECT_OPS of them) LATENCY_US, FAIL_NEXT                    |  words 48-63
 *   +------------------------------------------------------------------------------------+
 *   | NAME: UTF-8, at most NAME_MAX_BYTES                                                 |  words 64-127
 *   +------------------------------------------------------------------------------------+
 *   | INODE: the inode hash's words (INODE_WORDS) | HOST_FD_RO | HOST_WRITABLE | spare     |  words 128-143
 *   +------------------------------------------------------------------------------------+
 *
 * The page-cache words (BACKING ... I_PAGES, I_MMAP, INJECT) belong to src/fs's page cache,
 * backing and injection (docs/fs.md); their guards are stated where they are used. BACKING is
 * written once, before the id is handed out.
 *
 * The table also owns what every file's page cache shares (docs/fs.md): the kernel-wide arena of
 * page-index nodes (`cacheNodes`, src/fs/page-index.ts), the arena of reverse-map entries
 * (`iMmapEntries`, src/fs/i-mmap.ts: its words 40-44 of each record) and the PhysMem its pages come from
 * (`mem`, absent for a table made without one: such files cannot cache pages). Both travel in the
 * descriptor, so whichever CPU puts a file's last reference can free its cache: before the record
 * is freed, `put` calls the release hook src/fs/page-cache.ts registers when it loads
 * (`setFileReleaseHook`; a record that still caches pages with no hook registered is a bug).
 * Guards: FLAGS, PLACEMENT, SHMEM_INDEX, NAME and BACKING are written once, before the id is
 * handed out (so any holder of a reference reads them without a lock). A host file's record is
 * shared by every open of the host file (src/fs/inode-hash.ts: INODE, guarded by the inode hash's
 * lock): HOST_FD, HOST_WRITABLE and HOST_FD_RO are written before the record is hashed, and once
 * more at most, under the inode hash's lock, when an open for writing finds the record's host
 * descriptor read-only (`upgradeHostFdLocked`: the read-only one is kept in HOST_FD_RO, still open
 * for whoever loaded it, until the release closes both); HOST_FD is read with `Atomics.load`. SIZE (i_size, two Int32
 * halves) is written under I_RWSEM held for write (write, ftruncate: src/kernel/file-syscalls.ts)
 * inside a write section of SIZE_SEQ, a raw seqcount (Linux's i_size_seqcount of 32-bit SMP: a
 * Float64 store is not tear-free in the JS memory model), so `size` reads it from any CPU without
 * a lock, and a holder of I_RWSEM reads a stable value. SIZE_PAGES, written in the same section,
 * is round_up(size) in pages (-1 from 2^31 pages on), one word a fault reads with one atomic load
 * (`sizePages`) instead of the four of the seqcount. REFCNT is atomic: one reference
 * per VMA record naming the file, per open file description (src/fs/open-file.ts), and one for
 * whoever created it until they put it. When REFCNT reaches 0 the release of the file's backing
 * kind runs after the page cache's (`setBackingRelease`: a host file closes its host descriptor), then
 * the record is freed.
 */

import { assert, DEBUG, VmAssertionError } from '../assert.js';
import { EINVAL, ENAMETOOLONG, ENOMEM, VmError } from '../errno.js';
import { PhysMem, type PhysMemDescriptor } from '../mem/frames.js';
import { PAGE_SIZE } from '../mem/page.js';
import { Arena, type ArenaDescriptor, type FailureInjector, POISON_WORD } from '../shm/arena.js';
import { lockClass } from '../sync/lockclass.js';
import {
  RWSEM_WORDS,
  RwSem,
  rwsemDownRead,
  rwsemDownWrite,
  rwsemState,
  rwsemUpRead,
  rwsemUpWrite,
} from '../sync/rwsem.js';
import { INODE_HASH_BYTES, INODE_WORDS, InodeHash } from './inode-hash.js';

/** How get_unmapped_area places a mapping of the file (fs->f_op->get_unmapped_area). */
export const PLACE_GENERIC = 0;
/** ext4 and other THP-capable file systems: thp_get_unmapped_area (2 MiB alignment). */
export const PLACE_THP = 1;
/** shmem/tmpfs: shmem_get_unmapped_area (2 MiB alignment only when the mount uses huge pages). */
export const PLACE_SHMEM = 2;

/** Lock classes of every file's locks (docs/locking.md: i_rwsem is outermost, invalidateLock under mmap_lock). */
export const iRwsemClass = lockClass('i_rwsem');
export const invalidateLockClass = lockClass('invalidate_lock');
export const iMmapClass = lockClass('i_mmap');

const RECORD_BYTES = 576;
const SIZE_LO = 0;
const SIZE_HI = 1;
const FLAGS = 2;
const PLACEMENT = 3;
const SHMEM_INDEX = 4;
const REFCNT = 5;
const NAME_LEN = 6;
const SIZE_SEQ = 7;
/** round_up(i_size) in pages, or -1 (too many for an Int32: read `size` instead). */
const SIZE_PAGES = 47;
/** Word offsets of the page-cache fields in a record (docs/fs.md; users: src/fs). */
export const FILE_BACKING = 8;
export const FILE_HOST_FD = 9;
export const FILE_CACHE_ROOT = 10;
export const FILE_CACHE_HEIGHT = 11;
export const FILE_NRPAGES = 12;
export const FILE_WB_ERR = 13;
/** The i_pages spinlock (xa_lock): 2 words. */
export const FILE_I_PAGES = 14;
const I_RWSEM = 16;
const INVALIDATE_LOCK = I_RWSEM + RWSEM_WORDS;
const I_MMAP = INVALIDATE_LOCK + RWSEM_WORDS;
/** The i_mmap rwsem's first word (src/fs/i-mmap.ts takes it without a lock object). */
export const I_MMAP_LOCK_WORD = I_MMAP;
/** The reverse map's words (src/fs/i-mmap.ts): list head and tail, entries, commit windows, their waiters. */
export const FILE_I_MMAP_HEAD = 40;
export const FILE_I_MMAP_TAIL = 41;
export const FILE_I_MMAP_COUNT = 42;
export const FILE_I_MMAP_COMMITS = 43;
export const FILE_I_MMAP_WAITERS = 44;
/** Injection words: INJECT_OPS pairs (latency in microseconds, count of next calls that fail). */
export const FILE_INJECT = 48;
export const INJECT_OPS = 8;
const NAME_WORD = 64;
/** Longest name a file may have (bytes of UTF-8). */
export const NAME_MAX_BYTES = 256;
/** The inode hash's words of a record (src/fs/inode-hash.ts). */
const INODE = NAME_WORD + NAME_MAX_BYTES / 4;
/** A host file's read-only host descriptor an upgrade retired (-1: none), closed at the release. */
export const FILE_HOST_FD_RO = INODE + INODE_WORDS;
/** 1 when HOST_FD is open for writing. */
const HOST_WRITABLE = FILE_HOST_FD_RO + 1;
if ((HOST_WRITABLE + 1) * 4 > RECORD_BYTES) throw new Error('file-table: words past the record');

/** Seqcount rounds of an i_size read before it reports a writer that never finishes. */
const SIZE_READ_ROUNDS = 1 << 20;

/** A page-index node (src/fs/page-index.ts): 64 slots and a header, rounded to whole cache lines. */
export const CACHE_NODE_BYTES = 320;
/** Most page-index nodes of one table (reserved, committed as used): 2^17 nodes, 40 MiB. */
const CACHE_NODES_MAX = 1 << 17;
/** A reverse-map entry (src/fs/i-mmap.ts), and the most of them: one per file-backed VMA. */
export const I_MMAP_ENTRY_BYTES = 16;
const I_MMAP_ENTRIES_MAX = 1 << 20;

/**
 * What `put` calls for a record whose last reference is gone, before the record is freed (the
 * page cache's release: src/fs/page-cache.ts registers it when it loads).
 */
export type FileReleaseHook = (files: FileTable, id: number) => void;
let releaseHook: FileReleaseHook | null = null;

/** Registers the release hook (once per thread, by src/fs/page-cache.ts at load). */
export function setFileReleaseHook(hook: FileReleaseHook): void {
  releaseHook = hook;
}

const F_WRITABLE = 1;
const F_SYNC_UNSUPPORTED = 2;
/** The file system's `fault` callback takes the file's i_rwsem for read (Jan Kara's pattern; the lab's inversion). */
const F_FAULT_TAKES_I_RWSEM = 4;

export interface FileSpec {
  size: number;
  /** Opened for writing (FMODE_WRITE); MAP_SHARED + PROT_WRITE needs it. */
  writable: boolean;
  /** Display name (maps view and traces). */
  name: string;
  placement?: number;
  /** The file system supports MAP_SYNC (FOP_MMAP_SYNC) but not on this file (non-DAX ext4). */
  syncUnsupported?: boolean;
  /**
   * FAULT_TAKES_I_RWSEM: the file system's `fault` callback takes this file's i_rwsem for read (the
   * pattern Jan Kara warned about; the lab's inversion experiment). Off for every real backing.
   */
  faultTakesIRwsem?: boolean;
}

/**
 * What a backing kind does when its file's last reference goes (src/fs registers one per kind that
 * holds something outside the record: src/fs/host-backing.ts closes the host descriptor). Runs on
 * the CPU that put the last reference, with no lock held; the record is freed after it returns.
 */
export type BackingRelease = (files: FileTable, id: number) => void;

/** FILE_BACKING value of files that hold nothing outside the record (memory; src/fs/backing.ts). */
/** FILE_BACKING 0: BACKING_MEM of backing.ts (it imports this file), which has no release. */
const BACKING_NONE = 0;
/** Per-thread: every module that registers is loaded on every CPU that can put the last reference. */
const releases: (BackingRelease | undefined)[] = [];

/** Registers the release of backing kind `kind` (called once per thread, when the module loads). */
export function setBackingRelease(kind: number, release: BackingRelease): void {
  assert(Number.isInteger(kind) && kind >= BACKING_NONE && kind < 16, `setBackingRelease: bad kind ${kind}`);
  releases[kind] = release;
}

/**
 * Linux's delayed fput, per thread: inside a deferral section (the mm syscall entry, which puts
 * the files of removed VMAs under mmap_lock held for write), a last put queues the file; the
 * section's end releases the queue holding no lock, so a release's I/O (closing a host
 * descriptor, writing back cached pages) never runs under mmap_lock. Sections nest.
 */
const deferral = { depth: 0, tables: [] as FileTable[], ids: [] as number[] };

/** Enters a deferral section. */
export function fileReleaseDefer(): void {
  deferral.depth++;
}

/** Leaves a deferral section; leaving the outermost releases what was queued. Preconditions: no lock held then. */
export function fileReleaseFlush(): void {
  assert(deferral.depth > 0, 'fileReleaseFlush without fileReleaseDefer');
  if (--deferral.depth !== 0) return;
  if (deferral.ids.length === 0) return; // the common case: an array length store is a runtime call
  // Bounded by the queue, which only this thread fills (a release queues nothing: depth is 0).
  for (let i = 0; i < deferral.ids.length; i++) deferral.tables[i].releaseNow(deferral.ids[i]);
  deferral.tables.length = 0;
  deferral.ids.length = 0;
}

export interface FileTableOptions {
  capacity?: number;
  maxCapacity?: number;
  /** Fails the chosen record or page-index node allocation. */
  injector?: FailureInjector;
  /** Where cached pages come from; without it the table's files cannot cache pages. */
  mem?: PhysMem;
}

export interface FileTableDescriptor {
  records: ArenaDescriptor;
  cacheNodes: ArenaDescriptor;
  iMmapEntries: ArenaDescriptor;
  mem: PhysMemDescriptor | null;
  inodeHash: SharedArrayBuffer;
}

export class FileTable {
  readonly arena: Arena;
  /** The page-index nodes of every file of the table (src/fs/page-index.ts). */
  readonly cacheNodes: Arena;
  /** The reverse-map entries of every file of the table (src/fs/i-mmap.ts). */
  readonly iMmapEntries: Arena;
  /** The frames cached pages live in (null: this table's files cannot cache pages). */
  readonly mem: PhysMem | null;
  /** Host files' records by (st_dev, st_ino) (src/fs/inode-hash.ts; open looks them up). */
  readonly inodes: InodeHash;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly i32Per: number;

  static create(options: FileTableOptions = {}): FileTable {
    const capacity = options.capacity ?? 64;
    const records = Arena.create({
      name: 'file',
      recordBytes: RECORD_BYTES,
      capacity,
      maxCapacity: options.maxCapacity ?? Math.max(capacity, 1 << 16),
      injector: options.injector,
    });
    const nodes = Arena.create({
      name: 'cache_node',
      recordBytes: CACHE_NODE_BYTES,
      capacity: 64,
      maxCapacity: CACHE_NODES_MAX,
      injector: options.injector,
    });
    const entries = Arena.create({
      name: 'i_mmap_entry',
      recordBytes: I_MMAP_ENTRY_BYTES,
      capacity: 64,
      maxCapacity: I_MMAP_ENTRIES_MAX,
      injector: options.injector,
    });
    return new FileTable(
      records,
      nodes,
      entries,
      options.mem ?? null,
      new SharedArrayBuffer(INODE_HASH_BYTES),
    );
  }

  /** The same table on this CPU; `mem`, if it views the descriptor's PhysMem, is used as it is. */
  static attach(desc: FileTableDescriptor, mem?: PhysMem): FileTable {
    const same = mem !== undefined && desc.mem !== null && mem.describe().memory === desc.mem.memory;
    const phys = desc.mem === null ? null : same ? (mem as PhysMem) : PhysMem.attach(desc.mem);
    return new FileTable(
      Arena.attach(desc.records),
      Arena.attach(desc.cacheNodes),
      Arena.attach(desc.iMmapEntries),
      phys,
      desc.inodeHash,
    );
  }

  private constructor(
    arena: Arena,
    cacheNodes: Arena,
    iMmapEntries: Arena,
    mem: PhysMem | null,
    inodeHash: SharedArrayBuffer,
  ) {
    if (arena.recordBytes !== RECORD_BYTES) throw new Error('file table: wrong record size');
    if (cacheNodes.recordBytes !== CACHE_NODE_BYTES) throw new Error('file table: wrong cache node size');
    this.arena = arena;
    this.cacheNodes = cacheNodes;
    this.iMmapEntries = iMmapEntries;
    this.mem = mem;
    this.i32 = arena.i32;
    this.u8 = new Uint8Array(arena.i32.buffer, arena.i32.byteOffset, arena.i32.byteLength);
    this.i32Per = arena.i32PerRecord;
    this.inodes = new InodeHash(inodeHash, arena.i32, this.i32Per, INODE, arena.maxCapacity);
  }

  describe(): FileTableDescriptor {
    return {
      records: this.arena.describe(),
      cacheNodes: this.cacheNodes.describe(),
      iMmapEntries: this.iMmapEntries.describe(),
      mem: this.mem === null ? null : this.mem.describe(),
      inodeHash: this.inodes.buffer,
    };
  }

  /**
   * Registers a file; returns its id holding one reference (the caller's). Throws ENOMEM when full.
   * `backing` (FILE_BACKING, src/fs/backing.ts) and `hostFd` are for src/fs's open paths: a host
   * file's record owns `hostFd` from here on (its release closes it).
   */
  add(spec: FileSpec, backing = BACKING_NONE, hostFd = -1): number {
    if (!(Number.isSafeInteger(spec.size) && spec.size >= 0))
      throw new VmError(EINVAL, `file ${spec.name}: bad size`);
    const name = new TextEncoder().encode(spec.name);
    if (name.length > NAME_MAX_BYTES)
      throw new VmError(ENAMETOOLONG, `file name longer than ${NAME_MAX_BYTES} bytes`);
    const id = this.arena.alloc();
    if (id === 0) throw new VmError(ENOMEM, 'file table full');
    let flags = spec.writable ? F_WRITABLE : 0;
    if (spec.syncUnsupported === true) flags |= F_SYNC_UNSUPPORTED;
    if (spec.faultTakesIRwsem === true) flags |= F_FAULT_TAKES_I_RWSEM;
    this.init(id, spec.size, flags, spec.placement ?? PLACE_GENERIC, -1);
    this.u8.set(name, (id * this.i32Per + NAME_WORD) * 4);
    this.i32[id * this.i32Per + NAME_LEN] = name.length;
    this.i32[id * this.i32Per + FILE_BACKING] = backing;
    this.i32[id * this.i32Per + FILE_HOST_FD] = hostFd;
    return id;
  }

  /**
   * Completes a host file's record once its host descriptor is open: HOST_FD (open for writing
   * when `writable`) and SIZE. The record then owns `hostFd`. Preconditions: the caller made `id`
   * with `add(spec, backing)` (HOST_FD -1) and has not handed it out or hashed it yet (nobody else
   * can read the words).
   */
  setHost(id: number, hostFd: number, size: number, writable: boolean): void {
    const b = id * this.i32Per;
    assert(this.i32[b + FILE_HOST_FD] === -1, 'setHost: the record has a host descriptor');
    assert(
      Number.isSafeInteger(size) && size >= 0 && Number.isInteger(hostFd) && hostFd >= 0,
      'setHost: bad values',
    );
    Atomics.store(this.i32, b + FILE_HOST_FD, hostFd);
    this.i32[b + HOST_WRITABLE] = writable ? 1 : 0;
    this.storeSize(id, size);
  }

  /** Whether the record's host descriptor is open for writing. */
  hostWritable(id: number): boolean {
    return Atomics.load(this.i32, id * this.i32Per + HOST_WRITABLE) !== 0;
  }

  /**
   * An open for writing found host file `id` with a read-only host descriptor: `hostFd` (open for
   * writing) becomes HOST_FD, owned by the record; the old one moves to HOST_FD_RO, still open for
   * any CPU that loaded it, until the release closes both. Preconditions: the inode hash's lock
   * held (it orders the upgrades: one at most per record); `id` hashed, with a reference held;
   * `hostWritable(id)` false.
   */
  upgradeHostFdLocked(id: number, hostFd: number): void {
    const b = id * this.i32Per;
    assert(
      this.i32[b + HOST_WRITABLE] === 0 && this.i32[b + FILE_HOST_FD_RO] === -1,
      'upgrade: done already',
    );
    assert(Number.isInteger(hostFd) && hostFd >= 0, 'upgrade: bad host descriptor');
    this.i32[b + FILE_HOST_FD_RO] = this.i32[b + FILE_HOST_FD];
    Atomics.store(this.i32, b + FILE_HOST_FD, hostFd);
    Atomics.store(this.i32, b + HOST_WRITABLE, 1);
  }

  /**
   * shmem_zero_setup: a new shmem object of `size` bytes numbered `index` (named anon_shared:index);
   * returns its id holding the caller's reference, or 0 when allocation fails.
   */
  addShmem(size: number, index: number): number {
    const id = this.arena.alloc();
    if (id !== 0) this.init(id, size, F_WRITABLE, PLACE_SHMEM, index);
    return id;
  }

  private init(id: number, size: number, flags: number, placement: number, shmemIndex: number): void {
    const b = id * this.i32Per;
    this.i32[b + SIZE_SEQ] = 0;
    this.storeSize(id, size);
    this.i32[b + FLAGS] = flags;
    this.i32[b + PLACEMENT] = placement;
    this.i32[b + SHMEM_INDEX] = shmemIndex;
    this.i32[b + NAME_LEN] = 0;
    this.i32[b + FILE_HOST_FD] = -1;
    this.i32[b + FILE_HOST_FD_RO] = -1;
    this.i32[b + HOST_WRITABLE] = 0;
    this.inodes.initRecord(id);
    Atomics.store(this.i32, b + REFCNT, 1);
  }

  /** get_file: one more reference to a live file. */
  get(id: number): void {
    const old = Atomics.add(this.i32, id * this.i32Per + REFCNT, 1);
    if (old <= 0) throw new Error(`file ${id}: get of a file with no reference (${old})`);
  }

  /**
   * A reference to `id` if it names a live file, for a scan that holds none (reclaim): false when
   * the record is free or being freed. Safe against a record freed meanwhile: a free record's
   * REFCNT is 0 (left by the last put) or poison, never a count this could raise.
   */
  tryGet(id: number): boolean {
    if (!this.arena.isLive(id)) return false;
    const at = id * this.i32Per + REFCNT;
    let seen = Atomics.load(this.i32, at);
    while (seen > 0 && seen !== POISON_WORD) {
      const was = Atomics.compareExchange(this.i32, at, seen, seen + 1);
      if (was === seen) return true;
      seen = was;
    }
    return false;
  }

  /**
   * fput: drops a reference; the last one releases the backing's state and frees the record, at
   * once or (inside a deferral section) when the section ends.
   */
  put(id: number): void {
    const old = Atomics.sub(this.i32, id * this.i32Per + REFCNT, 1);
    if (old === 1) {
      if (deferral.depth === 0) this.releaseNow(id);
      else {
        deferral.tables.push(this);
        deferral.ids.push(id);
      }
    } else if (old <= 0) throw new Error(`file ${id}: put of a file with no reference (${old})`);
  }

  /**
   * Releases the file's page cache (writing back dirty pages of a stored file), then its backing's
   * state, and frees the record. Preconditions: the last reference to `id`
   * was put (nobody else can reach the record); no lock held (the release may do I/O).
   */
  releaseNow(id: number): void {
    const b = id * this.i32Per;
    if (releaseHook !== null) releaseHook(this, id);
    assert(
      Atomics.load(this.i32, b + FILE_CACHE_ROOT) === 0 && Atomics.load(this.i32, b + FILE_NRPAGES) === 0,
      'file put: its page cache was not released (src/fs/page-cache.ts not loaded on this CPU?)',
    );
    // Every VMA naming the file holds a reference: none is left, so neither is a reverse-map entry;
    // a VMA commit puts its references only after closing its windows, so none is open either.
    assert(this.i32[b + FILE_I_MMAP_COUNT] === 0, 'file put: reverse-map entries left');
    assert(
      Atomics.load(this.i32, b + FILE_I_MMAP_COMMITS) === 0,
      'file put: a VMA commit window is still open on the file (its commit put its reference before closing it)',
    );
    const kind = this.i32[id * this.i32Per + FILE_BACKING];
    const release = releases[kind];
    if (release !== undefined) release(this, id);
    else if (kind !== BACKING_NONE)
      throw new VmAssertionError(`file ${id}: backing ${kind} has no release on this CPU (load its module)`);
    // Last: an open of the same host file waits for this (its new record reads what was written back).
    this.inodes.remove(id);
    this.arena.free(id);
  }

  /** Whether `id` names a live file. */
  isFile(id: number): boolean {
    return Number.isInteger(id) && id > 0 && this.arena.isLive(id);
  }

  refs(id: number): number {
    return Atomics.load(this.i32, id * this.i32Per + REFCNT);
  }
  /**
   * i_size_read: the size in bytes (pages at or past round_up(size) fault with SIGBUS), from any
   * CPU without a lock (a seqcount read of the two halves; stable while I_RWSEM is held).
   */
  size(id: number): number {
    const w = this.i32;
    const b = id * this.i32Per;
    // Bounded: a writer's section is two stores, so a reader retries only while one is running.
    for (let round = 0; round < SIZE_READ_ROUNDS; round++) {
      const seq = Atomics.load(w, b + SIZE_SEQ);
      if ((seq & 1) !== 0) continue;
      const lo = Atomics.load(w, b + SIZE_LO);
      const hi = Atomics.load(w, b + SIZE_HI);
      if (Atomics.load(w, b + SIZE_SEQ) === seq) return hi * 4294967296 + (lo >>> 0);
    }
    throw new VmAssertionError(`file ${id}: i_size kept changing for ${SIZE_READ_ROUNDS} reads`);
  }

  /**
   * Pages of i_size, round_up(size) / 4096 (a fault at or past it is SIGBUS): one atomic load of
   * SIZE_PAGES, a value the size had at some instant like `size`'s; stable under I_RWSEM.
   */
  sizePages(id: number): number {
    const pages = Atomics.load(this.i32, id * this.i32Per + SIZE_PAGES);
    return pages >= 0 ? pages : Math.ceil(this.size(id) / PAGE_SIZE);
  }

  /**
   * i_size_write: sets the size. Preconditions: I_RWSEM held for write (the one writer; checked in
   * debug mode: the check allocates), `size` a safe integer >= 0.
   */
  setSizeLocked(id: number, size: number): void {
    assert(Number.isSafeInteger(size) && size >= 0, 'setSizeLocked: bad size');
    if (DEBUG) assert(this.iRwsemHeldForWrite(id), 'setSizeLocked: i_rwsem is not held for write');
    this.storeSize(id, size);
  }

  /** The seqcount write section around the two halves (writers are serialised by the caller). */
  private storeSize(id: number, size: number): void {
    const w = this.i32;
    const b = id * this.i32Per;
    const seq = Atomics.add(w, b + SIZE_SEQ, 1);
    assert((seq & 1) === 0, 'i_size: two writers at once');
    Atomics.store(w, b + SIZE_LO, (size % 4294967296) | 0);
    Atomics.store(w, b + SIZE_HI, Math.floor(size / 4294967296));
    const pages = Math.ceil(size / PAGE_SIZE);
    Atomics.store(w, b + SIZE_PAGES, pages <= 0x7fffffff ? pages : -1);
    Atomics.add(w, b + SIZE_SEQ, 1);
  }
  writable(id: number): boolean {
    return (this.i32[id * this.i32Per + FLAGS] & F_WRITABLE) !== 0;
  }
  syncUnsupported(id: number): boolean {
    return (this.i32[id * this.i32Per + FLAGS] & F_SYNC_UNSUPPORTED) !== 0;
  }
  /** FAULT_TAKES_I_RWSEM (FileSpec.faultTakesIRwsem). */
  faultTakesIRwsem(id: number): boolean {
    return (this.i32[id * this.i32Per + FLAGS] & F_FAULT_TAKES_I_RWSEM) !== 0;
  }
  placement(id: number): number {
    return this.i32[id * this.i32Per + PLACEMENT];
  }
  /** A shmem object's creation index N, else -1. */
  shmemIndex(id: number): number {
    return this.i32[id * this.i32Per + SHMEM_INDEX];
  }
  /** The display name (a shmem object's is anon_shared:N). */
  name(id: number): string {
    const n = this.shmemIndex(id);
    if (n >= 0) return `anon_shared:${n}`;
    const at = (id * this.i32Per + NAME_WORD) * 4;
    // Copied out: TextDecoder does not read shared memory.
    return new TextDecoder().decode(this.u8.slice(at, at + this.i32[id * this.i32Per + NAME_LEN]));
  }
  /** FILE_BACKING: where the bytes live (BACKING_* of src/fs/backing.ts). */
  backing(id: number): number {
    return this.i32[id * this.i32Per + FILE_BACKING];
  }
  /** A host file's host descriptor (node:fs), valid until the record is released. */
  hostFd(id: number): number {
    return Atomics.load(this.i32, id * this.i32Per + FILE_HOST_FD);
  }
  /** The file's i_rwsem (outermost lock of the read/write path). */
  iRwsem(id: number): RwSem {
    return RwSem.at(this.i32, id * this.i32Per + I_RWSEM, iRwsemClass);
  }
  /** inode_lock / inode_lock_shared without a lock object (the read/write path). */
  iRwsemLock(id: number, write: boolean): void {
    if (write) rwsemDownWrite(this.i32, id * this.i32Per + I_RWSEM, iRwsemClass);
    else rwsemDownRead(this.i32, id * this.i32Per + I_RWSEM, iRwsemClass);
  }
  iRwsemUnlock(id: number, write: boolean): void {
    if (write) rwsemUpWrite(this.i32, id * this.i32Per + I_RWSEM, iRwsemClass);
    else rwsemUpRead(this.i32, id * this.i32Per + I_RWSEM, iRwsemClass);
  }
  private iRwsemHeldForWrite(id: number): boolean {
    return rwsemState(this.i32, id * this.i32Per + I_RWSEM).writer;
  }
  /** The file's invalidate lock (mapping->invalidate_lock). */
  invalidateLock(id: number): RwSem {
    return RwSem.at(this.i32, id * this.i32Per + INVALIDATE_LOCK, invalidateLockClass);
  }
  /** filemap_invalidate_lock_shared without a lock object (the page cache's miss path). */
  invalidateLockShared(id: number): void {
    rwsemDownRead(this.i32, id * this.i32Per + INVALIDATE_LOCK, invalidateLockClass);
  }
  invalidateUnlockShared(id: number): void {
    rwsemUpRead(this.i32, id * this.i32Per + INVALIDATE_LOCK, invalidateLockClass);
  }
  /** Pages in the file's cache (FILE_NRPAGES; a statistic unless i_pages is held). */
  nrpages(id: number): number {
    return Atomics.load(this.i32, id * this.i32Per + FILE_NRPAGES);
  }

  /** The file's i_mmap lock (mapping->i_mmap_rwsem): guards its reverse-map entries. */
  iMmap(id: number): RwSem {
    return RwSem.at(this.i32, id * this.i32Per + I_MMAP, iMmapClass);
  }
  /** Word index of record `id`'s word `word` in `i32` (the page-cache fields above). */
  word(id: number, word: number): number {
    return id * this.i32Per + word;
  }
  /** The records' Int32 words (for src/fs's page cache, backing and injection; see docs/fs.md). */
  get words(): Int32Array {
    return this.i32;
  }

  /** Live file records (0 once every reference was put). */
  get live(): number {
    return this.arena.live;
  }
}
