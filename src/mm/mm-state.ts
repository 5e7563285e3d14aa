/**
 * The per-address-space scalars of struct mm_struct, in shared memory so that every CPU running
 * in the process sees one value. Each word names the lock a writer holds; readers hold at least
 * the read side of the same lock unless the word says otherwise.
 *
 *   Int32 words                                           Float64 slots (from byte 64)
 *   0  MAP_COUNT    mm->map_count        mmap_lock (W)    0 BRK        mm->brk (the requested break)   mmap_lock (W)
 *   1  DEF_FLAGS    mm->def_flags        mmap_lock (W)    1 START_BRK  mm->start_brk                   set at creation
 *   2  SHMEM_COUNT  shmem objects made   mmap_lock (W)    2 LOCKED_VM  mm->locked_vm, pages            mmap_lock (W)
 *   3  GATE_FLAGS   [vsyscall] VM_* or 0 set at creation
 *   4  MM_ID        the id i_mmap entries name it by (mm-registry.ts)   set at creation
 *   5  USERS        mm_users: attached Process handles (atomic)
 *   6  ANNOUNCED    1 once its descriptor went out to every CPU (mm-registry.ts; compare-exchange)
 *   8  PAGE_TABLE_LOCK (spinlock, 2 words): mm->page_table_lock; taken under mmap_lock (R) to
 *      fill empty PMD entries (a fault's page tables) and to give a VMA its anon_vma (anon_vma_prepare)
 *  10  WRITE_PROTECT_SEQ (seqcount, 2 words): mm->write_protect_seq; written by fork (dup_mmap)
 *      under mmap_lock (W) around its copy of the page tables; read without any lock by GUP-fast
 *      pins, which give up while it is odd or when it moved (gup.ts)
 *
 * LOCKED_VM is a running counter: every commit adds the change of the VM_LOCKED VMAs' size (see
 * VmaTxn.lockedDelta), and the invariant checker compares it with a recount.
 */
import { lockClass } from '../sync/lockclass.js';
import { SeqCount } from '../sync/seqcount.js';
import { SpinLock } from '../sync/spinlock.js';

const MAP_COUNT = 0;
const DEF_FLAGS = 1;
const SHMEM_COUNT = 2;
const GATE_FLAGS = 3;
const MM_ID = 4;
const USERS = 5;
const ANNOUNCED = 6;
const PTL = 8;
const WRITE_PROTECT_SEQ = 10;
const F64_BYTE = 64;
const BRK = 0;
const START_BRK = 1;
const LOCKED_VM = 2;
const BYTES = F64_BYTE + 8 * 8;

export const pageTableLockClass = lockClass('page_table_lock');
export const writeProtectSeqClass = lockClass('write_protect_seq');

export interface MmStateDescriptor {
  buffer: SharedArrayBuffer;
}

export class MmState {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  /** mm->page_table_lock. */
  readonly ptl: SpinLock;
  /** mm->write_protect_seq: fork's page-table copy against GUP-fast pins (see the file comment). */
  readonly writeProtectSeq: SeqCount;

  static create(startBrk: number, mmId: number): MmState {
    const s = new MmState({ buffer: new SharedArrayBuffer(BYTES) });
    s.i32[MM_ID] = mmId;
    s.f64[BRK] = startBrk;
    s.f64[START_BRK] = startBrk;
    return s;
  }

  static attach(desc: MmStateDescriptor): MmState {
    return new MmState(desc);
  }

  private constructor(desc: MmStateDescriptor) {
    this.i32 = new Int32Array(desc.buffer, 0, F64_BYTE >> 2);
    this.f64 = new Float64Array(desc.buffer, F64_BYTE, 8);
    this.ptl = SpinLock.at(this.i32, PTL, pageTableLockClass);
    this.writeProtectSeq = SeqCount.at(this.i32, WRITE_PROTECT_SEQ, writeProtectSeqClass);
  }

  describe(): MmStateDescriptor {
    return { buffer: this.i32.buffer as SharedArrayBuffer };
  }

  get mapCount(): number {
    return this.i32[MAP_COUNT];
  }
  set mapCount(n: number) {
    this.i32[MAP_COUNT] = n;
  }
  get defFlags(): number {
    return this.i32[DEF_FLAGS];
  }
  set defFlags(flags: number) {
    this.i32[DEF_FLAGS] = flags;
  }
  get shmemCount(): number {
    return this.i32[SHMEM_COUNT];
  }
  set shmemCount(n: number) {
    this.i32[SHMEM_COUNT] = n;
  }
  get gateFlags(): number {
    return this.i32[GATE_FLAGS];
  }
  set gateFlags(flags: number) {
    this.i32[GATE_FLAGS] = flags;
  }
  get brk(): number {
    return this.f64[BRK];
  }
  set brk(b: number) {
    this.f64[BRK] = b;
  }
  get startBrk(): number {
    return this.f64[START_BRK];
  }
  get lockedVm(): number {
    return this.f64[LOCKED_VM];
  }
  set lockedVm(pages: number) {
    this.f64[LOCKED_VM] = pages;
  }
  /** The address space's id (mm-registry.ts; never 0). */
  get mmId(): number {
    return this.i32[MM_ID];
  }
  /** Marks the address space announced; true for the one caller that changed it. */
  markAnnounced(): boolean {
    return Atomics.compareExchange(this.i32, ANNOUNCED, 0, 1) === 0;
  }
  /** Plain: the word only goes from 0 to 1, and a stale 0 costs markAnnounced's compare-exchange. */
  get announced(): boolean {
    return this.i32[ANNOUNCED] === 1;
  }
  /** mmget / mmput: attached users; returns the count after the change. */
  addUser(delta: number): number {
    return Atomics.add(this.i32, USERS, delta) + delta;
  }
  get users(): number {
    return Atomics.load(this.i32, USERS);
  }
}
