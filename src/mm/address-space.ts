/**
 * AddressSpace: one process's virtual address space (struct mm_struct). It owns the VMA records
 * (an Arena), the RangeIndex of VMAs keyed by [vm_start, vm_end - 1] with `mmap_lock` as its
 * external writer lock, the per-mm state the syscalls use (map_count, brk, def_flags, locked_vm)
 * and one reusable VmaTxn through which every syscall reads and changes VMAs.
 *
 * Raw syscalls (`sys*`) return a result or a negative errno, as the kernel does; the public
 * methods throw VmError instead. Every syscall takes mmap_lock for writing; a failed call leaves
 * the space unchanged except where Linux documents partial effects (see docs/mm.md).
 */
import { check, EINVAL } from '../errno.js';
import { FileTable } from '../fs/file-ref.js';
import { lockdepAssertNoneHeld } from '../lockdep/index.js';
import type { RangeIndex } from '../maple/api.js';
import type { FailureInjector } from '../shm/arena.js';
import { rcuBarrier, rcuDeferFree } from '../sync/rcu.js';
import type { RwSem } from '../sync/rwsem.js';
import { defaultConfig, type MmConfig } from './config.js';
import { Placement } from './placement.js';
import { PmdState, PTE_TABLE } from './pmd-state.js';
import { type VmaView, vmaViews } from './proc-maps.js';
import { cint, ulong } from './syscalls/args.js';
import { sysBrk } from './syscalls/brk.js';
import { sysMadvise } from './syscalls/madvise.js';
import { sysMlock2, sysMlockall, sysMunlock, sysMunlockall } from './syscalls/mlock.js';
import { sysMmap } from './syscalls/mmap.js';
import { sysMprotect } from './syscalls/mprotect.js';
import { sysMremap } from './syscalls/mremap.js';
import { sysMsync } from './syscalls/msync.js';
import { sysMunmap } from './syscalls/munmap.js';
import { sysTouch } from './syscalls/touch.js';
import { PMD_SIZE, VM_LOCKED } from './vm-flags.js';
import { MergeState, VmaLayer } from './vma.js';
import { MmLocks, mmapWriteLock, mmapWriteUnlock } from './vma-lock.js';
import { VmaArena, type VmaFields } from './vma-record.js';
import { VmaTxn } from './vma-txn.js';

export interface AddressSpaceOptions {
  config?: Partial<MmConfig>;
  /** The VMA index; the maple tree in production, a reference index in tests. */
  index: RangeIndex;
  files?: FileTable;
  /** Shared with the index's node arena so tests can fail the k-th allocation of a syscall. */
  injector?: FailureInjector;
  vmaCapacity?: number;
  /** Free VMA records after an RCU grace period (default) or at once (single-threaded tools). */
  rcuFree?: boolean;
  /** Build over the VMA records and locks of an address space shared by another CPU (src/mm/shared-mm.ts). */
  shared?: { arena: VmaArena; locks: MmLocks };
}

/** A raw syscall's body: the address space and up to six integer arguments; result or -errno. */
type SyscallBody = (
  mm: AddressSpace,
  a: number,
  b: number,
  c: number,
  d: number,
  e: number,
  f: number,
) => number;

/** sysTouch with its flag as an integer argument. */
function touchSyscall(mm: AddressSpace, addr: number, len: number, write: number): number {
  return sysTouch(mm, addr, len, write !== 0);
}

export class AddressSpace {
  readonly config: MmConfig;
  readonly files: FileTable;
  readonly arena: VmaArena;
  readonly index: RangeIndex;
  /** mmap_lock: writers (all syscalls here) hold it for write; it is the tree's external lock. */
  readonly mmapLock: RwSem;
  /** mmap_lock, the lock sequence and the per-VMA locks (src/mm/vma-lock.ts). */
  readonly locks: MmLocks;
  readonly txn: VmaTxn;
  readonly layer: VmaLayer;
  readonly placement: Placement;
  /** Scratch merge states (struct vma_merge_struct) reused by every call. */
  readonly ms = new MergeState();
  /** Which 2 MiB regions have page tables or huge pages (decides THP faults). */
  readonly pmd = new PmdState();

  /** mm->map_count. */
  mapCount = 0;
  /** mm->brk (the exact requested break) and mm->start_brk. */
  curBrk: number;
  readonly startBrk: number;
  /** mm->def_flags: VM_LOCKED / VM_LOCKONFAULT after mlockall(MCL_FUTURE). */
  defFlags = 0;
  /** Names of special mappings ([stack], [vdso], ...) indexed by NAME_SPECIAL ids. */
  readonly specialNames: string[] = [];
  /** VMAs beyond the index's range (e.g. [vsyscall] at 0xffffffffff600000): shown, never changed. */
  readonly outsideVmas: Array<{ start: bigint; end: bigint; flags: number; name: string }> = [];
  private nextAnonId = 1;
  private fileMark = 0;
  /** Between begin() and end(): mmap_lock is held for write and a transaction is open. */
  private txnOpen = false;

  constructor(options: AddressSpaceOptions) {
    this.config = defaultConfig(options.config);
    this.files = options.files ?? new FileTable();
    this.index = options.index;
    const capacity = options.vmaCapacity ?? 256;
    this.arena =
      options.shared?.arena ??
      VmaArena.create(capacity, Math.max(capacity, this.config.maxMapCount + 16), options.injector);
    this.locks = options.shared?.locks ?? MmLocks.create(this.arena);
    this.mmapLock = this.locks.mmapLock;
    const useRcu = options.rcuFree ?? true;
    const arena = this.arena;
    this.txn = new VmaTxn(
      arena,
      this.index,
      useRcu ? (h) => rcuDeferFree(arena.arena, h) : (h) => arena.arena.free(h),
      this.locks,
    );
    this.layer = new VmaLayer(this.txn, this.config.maxMapCount);
    this.placement = new Placement(this.index, arena, this.config);
    this.layer.onUnmap = (starts, ends, floor, ceiling) => this.unmapPageTables(starts, ends, floor, ceiling);
    this.curBrk = this.config.startBrk;
    this.startBrk = this.config.startBrk;
  }

  // ---- transaction plumbing used by the syscalls ---------------------------------------------

  /** Takes mmap_lock for write and opens an empty transaction. */
  begin(): void {
    mmapWriteLock(this.locks);
    this.txnOpen = true;
    this.pmd.begin();
    this.txn.reset();
    this.layer.mapCountBase = this.mapCount;
    this.fileMark = this.files.mark();
  }

  /** Commits the transaction (0 or -ENOMEM, in which case nothing changed) and opens a new one. */
  commit(): number {
    this.splitHugeAcrossVmas();
    const r = this.txn.commit();
    if (r < 0) {
      this.files.rollback(this.fileMark);
      this.pmd.rollback();
    } else {
      this.mapCount += this.txn.mapCountDelta;
      this.pmd.begin();
    }
    this.txn.reset();
    this.layer.mapCountBase = this.mapCount;
    this.fileMark = this.files.mark();
    return r;
  }

  /** Commits and releases mmap_lock; returns `ret`, or -ENOMEM if the commit failed. */
  end(ret: number): number {
    const r = this.commit();
    this.txnOpen = false;
    mmapWriteUnlock(this.locks);
    return r < 0 ? r : ret;
  }

  /**
   * Runs a raw syscall: it returns holding no lock (checked by the validator), and if it throws (an
   * internal error, never an errno) its uncommitted work and mmap_lock are dropped first.
   */
  private syscall(name: string, run: SyscallBody, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0): number {
    try {
      return run(this, a, b, c, d, e, f);
    } catch (error) {
      throw this.abandon(error);
    } finally {
      lockdepAssertNoneHeld(name);
    }
  }

  /** Drops a failed syscall's uncommitted work and mmap_lock; the space stays as its last commit left it. */
  private abandon(error: unknown): unknown {
    if (this.txnOpen) {
      this.txn.reset();
      this.files.rollback(this.fileMark);
      this.pmd.rollback();
      this.txnOpen = false;
      mmapWriteUnlock(this.locks);
    }
    return error;
  }

  /** mm->locked_vm in pages: the size of the VM_LOCKED VMAs (as the transaction stands). */
  lockedPages(): number {
    const t = this.txn;
    let pages = 0;
    for (let v = t.findFrom(0); v >= 0; v = t.nextOf(v)) {
      if ((t.flags[v] & VM_LOCKED) !== 0) pages += (t.end[v] - t.start[v]) / 4096;
    }
    return pages;
  }

  /** Unmapping zaps the range and frees the page tables of free_pgtables' gathered groups. */
  private unmapPageTables(starts: number[], ends: number[], floor: number, ceiling: number): void {
    const pmd = this.pmd;
    for (let i = 0; i < starts.length; i++) pmd.zap(starts[i], ends[i]);
    let i = 0;
    while (i < starts.length) {
      let j = i;
      while (j + 1 < starts.length && starts[j + 1] <= ends[j] + PMD_SIZE) j++;
      pmd.freeRange(starts[i], ends[j], floor, j + 1 < starts.length ? starts[j + 1] : ceiling);
      i = j + 1;
    }
  }

  /** A huge page mapping cannot straddle VMAs: a boundary inside one splits it into a table. */
  private splitHugeAcrossVmas(): void {
    if (this.pmd.hugeCount === 0) return;
    const t = this.txn;
    for (const r of this.pmd.hugeRegions()) {
      const v = t.vmaAt(r);
      if (v < 0 || t.end[v] < r + PMD_SIZE) this.pmd.set(r, PTE_TABLE);
    }
  }

  /** A new anon_vma identity (anon_vma_alloc). */
  newAnonVma(): number {
    return this.nextAnonId++;
  }

  /** The id of a special mapping name, registering it on first use. */
  specialNameId(name: string): number {
    const i = this.specialNames.indexOf(name);
    if (i >= 0) return i;
    this.specialNames.push(name);
    return this.specialNames.length - 1;
  }

  /** Adds a VMA as it is (process start-up layout); its range must be free. */
  insertVma(f: VmaFields): void {
    this.begin();
    if (this.txn.intersecting(f.start, f.end) >= 0) {
      this.end(0);
      throw new Error(`insertVma: [${f.start.toString(16)}, ${f.end.toString(16)}) is not free`);
    }
    if (f.anon >= this.nextAnonId) this.nextAnonId = f.anon + 1;
    this.txn.insert(f);
    check(this.end(0), 'insertVma');
  }

  /** Unmaps everything and returns every record to the arena (after the RCU grace period). */
  destroy(): void {
    this.begin();
    const first = this.txn.findFrom(0);
    if (first >= 0) this.layer.unmapRange(first, 0, 2 ** 53);
    check(this.end(0), 'destroy');
    rcuBarrier();
  }

  // ---- raw syscalls: result or -errno ---------------------------------------------------------

  sysMmap(addr: number, len: number, prot: number, flags: number, fd: number, offset: number): number {
    return this.syscall('syscall mmap', sysMmap, addr, len, prot, flags, fd, offset);
  }
  sysMunmap(addr: number, len: number): number {
    return this.syscall('syscall munmap', sysMunmap, addr, len);
  }
  sysMprotect(addr: number, len: number, prot: number): number {
    return this.syscall('syscall mprotect', sysMprotect, addr, len, prot);
  }
  sysMremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr: number): number {
    return this.syscall('syscall mremap', sysMremap, oldAddr, oldLen, newLen, flags, newAddr);
  }
  sysBrk(addr: number): number {
    return this.syscall('syscall brk', sysBrk, addr);
  }
  sysMadvise(addr: number, len: number, advice: number): number {
    return this.syscall('syscall madvise', sysMadvise, addr, len, advice);
  }
  sysMlock2(addr: number, len: number, flags: number): number {
    return this.syscall('syscall mlock2', sysMlock2, addr, len, flags);
  }
  sysMunlock(addr: number, len: number): number {
    return this.syscall('syscall munlock', sysMunlock, addr, len);
  }
  sysMlockall(flags: number): number {
    return this.syscall('syscall mlockall', sysMlockall, flags);
  }
  sysMunlockall(): number {
    return this.syscall('syscall munlockall', sysMunlockall);
  }
  sysMsync(addr: number, len: number, flags: number): number {
    return this.syscall('syscall msync', sysMsync, addr, len, flags);
  }
  /** The traces' fault stand-in: accesses every page of [addr, addr + len) that can be accessed. */
  sysTouch(addr: number, len: number, write: boolean): number {
    return this.syscall('syscall touch', touchSyscall, addr, len, write ? 1 : 0);
  }

  // ---- public API: throws VmError -------------------------------------------------------------

  mmap(addr: number, len: number, prot: number, flags: number, fd = -1, offset = 0): number {
    const a = ulong(addr);
    const l = ulong(len);
    const p = ulong(prot);
    const f = ulong(flags);
    const d = cint(fd);
    const o = ulong(offset);
    const bad = Number.isNaN(a + l + p + f + d + o);
    return check(bad ? -EINVAL : this.sysMmap(a, l, p, f, d, o), 'mmap');
  }
  munmap(addr: number, len: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    check(Number.isNaN(a + l) ? -EINVAL : this.sysMunmap(a, l), 'munmap');
  }
  mprotect(addr: number, len: number, prot: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    const p = ulong(prot);
    check(Number.isNaN(a + l + p) ? -EINVAL : this.sysMprotect(a, l, p), 'mprotect');
  }
  mremap(oldAddr: number, oldLen: number, newLen: number, flags: number, newAddr = 0): number {
    const a = ulong(oldAddr);
    const ol = ulong(oldLen);
    const nl = ulong(newLen);
    const f = ulong(flags);
    const na = ulong(newAddr);
    return check(Number.isNaN(a + ol + nl + f + na) ? -EINVAL : this.sysMremap(a, ol, nl, f, na), 'mremap');
  }
  /** brk never fails: it returns the new break, or the old one when the request is refused. */
  brk(addr: number): number {
    const a = ulong(addr);
    return this.sysBrk(Number.isNaN(a) ? 0 : a);
  }
  madvise(addr: number, len: number, advice: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    const v = cint(advice);
    check(Number.isNaN(a + l + v) ? -EINVAL : this.sysMadvise(a, l, v), 'madvise');
  }
  mlock(addr: number, len: number, flags = 0): void {
    const a = ulong(addr);
    const l = ulong(len);
    const f = cint(flags);
    check(Number.isNaN(a + l + f) ? -EINVAL : this.sysMlock2(a, l, f), 'mlock');
  }
  munlock(addr: number, len: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    check(Number.isNaN(a + l) ? -EINVAL : this.sysMunlock(a, l), 'munlock');
  }
  mlockall(flags: number): void {
    const f = cint(flags);
    check(Number.isNaN(f) ? -EINVAL : this.sysMlockall(f), 'mlockall');
  }
  munlockall(): void {
    check(this.sysMunlockall(), 'munlockall');
  }
  msync(addr: number, len: number, flags: number): void {
    const a = ulong(addr);
    const l = ulong(len);
    const f = cint(flags);
    check(Number.isNaN(a + l + f) ? -EINVAL : this.sysMsync(a, l, f), 'msync');
  }
  touch(addr: number, len: number, write: boolean): void {
    const a = ulong(addr);
    const l = ulong(len);
    check(Number.isNaN(a + l) ? -EINVAL : this.sysTouch(a, l, write), 'touch');
  }

  // ---- views ---------------------------------------------------------------------------------

  /** The VMAs in address order, as /proc/PID/maps and smaps show them. */
  vmas(): VmaView[] {
    this.mmapLock.downRead();
    try {
      return vmaViews(this);
    } finally {
      this.mmapLock.upRead();
    }
  }
}
