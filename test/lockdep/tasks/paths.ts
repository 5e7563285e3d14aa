/**
 * Task: kernel-like code paths over real locks, one per `args.path`, each a named function so the
 * validator's reports name them. Every path releases what it took, even when the validator throws,
 * except the two that leak a lock on purpose. (The CPU's worker entry switched the validator on.)
 */
import { mightIO } from '../../../src/lockdep/index.js';
import { Arena, type ArenaDescriptor } from '../../../src/shm/arena.js';
import type { LockDescriptor } from '../../../src/sync/lockview.js';
import { Mutex } from '../../../src/sync/mutex.js';
import { rcuReadLock, rcuReadUnlock } from '../../../src/sync/rcu.js';
import { RwSem } from '../../../src/sync/rwsem.js';
import { SeqCount } from '../../../src/sync/seqcount.js';
import { SpinLock } from '../../../src/sync/spinlock.js';

export interface PathArgs {
  path: string;
  rwsems?: Record<string, LockDescriptor>;
  mutexes?: Record<string, LockDescriptor>;
  spinlocks?: Record<string, LockDescriptor>;
  seqcounts?: Record<string, LockDescriptor>;
  arena?: ArenaDescriptor;
  /** An Int32Array word the main thread sets to let a path go on. */
  flag?: SharedArrayBuffer;
  rounds?: number;
  budgetMs?: number;
}

/** A user page fault while copying from user memory: the fault takes mmap_lock for read. */
function copyFromUser(mm: RwSem): void {
  mm.downRead();
  mm.upRead();
}

/** write(2) on a file: i_rwsem held for write across the copy from the user's buffer. */
function fileWritePath(inode: RwSem, mm: RwSem): void {
  inode.downWrite();
  try {
    copyFromUser(mm);
  } finally {
    inode.upWrite();
  }
}

/** The filesystem's fault handler takes the file's i_rwsem for read. */
function filemapFault(inode: RwSem): void {
  inode.downRead();
  inode.upRead();
}

/** A page fault on a file mapping: mmap_lock for read, then the filesystem's fault handler. */
function faultPath(mm: RwSem, inode: RwSem): void {
  mm.downRead();
  try {
    filemapFault(inode);
  } finally {
    mm.upRead();
  }
}

function nest(outer: Mutex, inner: Mutex): void {
  outer.lock();
  try {
    inner.lock();
    inner.unlock();
  } finally {
    outer.unlock();
  }
}

function readThenLock(sem: RwSem, mutex: Mutex): void {
  sem.downRead();
  try {
    mutex.lock();
    mutex.unlock();
  } finally {
    sem.upRead();
  }
}

function lockThenRead(mutex: Mutex, sem: RwSem): void {
  mutex.lock();
  try {
    sem.downRead();
    sem.upRead();
  } finally {
    mutex.unlock();
  }
}

/** A fault that reads the page from the file while still holding mmap_lock (the `global` design). */
function readPageUnderMmapLock(mm: RwSem): void {
  mm.downRead();
  try {
    mightIO('filemap.readPage');
  } finally {
    mm.upRead();
  }
}

/** The `retry` design: drop mmap_lock, then read the page. */
function readPageAfterDroppingMmapLock(mm: RwSem): void {
  mm.downRead();
  mm.upRead();
  mightIO('filemap.readPage');
}

/** mmap(2) allocating its VMA record while holding mmap_lock for write. */
function allocVmaUnderMmapLock(mm: RwSem, vmas: Arena): void {
  mm.downWrite();
  try {
    vmas.free(vmas.alloc());
  } finally {
    mm.upWrite();
  }
}

/** Holds mmap_lock for write until the main thread sets the flag word (or 5 s pass). */
function holdMmapLockUntilReleased(mm: RwSem, flag: Int32Array): void {
  mm.downWrite();
  try {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    Atomics.wait(flag, 0, 1, 5000);
  } finally {
    mm.upWrite();
  }
}

/** A bug: returns with the mutex held. */
function returnHoldingMutex(m: Mutex): void {
  m.lock();
}

/**
 * A bug: awaits while holding the mutex (another task could run on this CPU meanwhile). Resumes
 * when the flag word leaves 0; sets it to 2 just before it unlocks.
 */
async function awaitHoldingMutex(m: Mutex, flag: Int32Array): Promise<void> {
  m.lock();
  try {
    await Atomics.waitAsync(flag, 0, 0).value;
  } finally {
    Atomics.store(flag, 0, 2);
    m.unlock();
  }
}

/**
 * Everything in the documented lock order, with subclass nesting, trylocks against the order,
 * RCU and seqcount readers, for `rounds` rounds or `budgetMs`, whichever ends first.
 */
function orderedWorkload(args: PathArgs): number {
  const [parent, child] = [RwSem.attach(args.rwsems!.parent), RwSem.attach(args.rwsems!.child)];
  const mm = RwSem.attach(args.rwsems!.mm);
  const invalidate = RwSem.attach(args.rwsems!.invalidate);
  const ptl = SpinLock.attach(args.spinlocks!.ptl);
  const seq = SeqCount.attach(args.seqcounts!.seq);
  const end = Date.now() + (args.budgetMs ?? 1000);
  let rounds = 0;
  for (; rounds < (args.rounds ?? 200) && Date.now() < end; rounds++) {
    parent.downWrite(0);
    child.downWrite(1);
    mm.downRead();
    invalidate.downRead();
    ptl.lock();
    rcuReadLock();
    rcuReadLock();
    seq.readRetry(seq.readBegin());
    rcuReadUnlock();
    rcuReadUnlock();
    ptl.unlock();
    invalidate.upRead();
    mm.upRead();
    child.upWrite();
    parent.upWrite();
    mm.downWrite();
    seq.writeBegin();
    seq.writeEnd();
    if (parent.tryDownRead()) parent.upRead();
    mm.upWrite();
    rcuReadLock();
    if (ptl.tryLock()) ptl.unlock();
    rcuReadUnlock();
  }
  return rounds;
}

export default function task(cpu: number, args: PathArgs): unknown {
  const rw = (name: string) => RwSem.attach(args.rwsems![name]);
  const mutex = (name: string) => Mutex.attach(args.mutexes![name]);
  switch (args.path) {
    case 'fileWrite':
      return fileWritePath(rw('inodeA'), rw('mm'));
    case 'fault':
      return faultPath(rw('mm'), rw('inodeB'));
    case 'ab':
      return nest(mutex('a'), mutex('b'));
    case 'ba':
      return nest(mutex('b'), mutex('a'));
    case 'bc':
      return nest(mutex('b'), mutex('c'));
    case 'ca':
      return nest(mutex('c'), mutex('a'));
    case 'readThenLock':
      return readThenLock(rw('sem'), mutex('m'));
    case 'lockThenRead':
      return lockThenRead(mutex('m'), rw('sem'));
    case 'ioUnderMmap':
      return readPageUnderMmapLock(rw('mm'));
    case 'ioAfterMmap':
      return readPageAfterDroppingMmapLock(rw('mm'));
    case 'allocUnderMmap':
      return allocVmaUnderMmapLock(rw('mm'), Arena.attach(args.arena!));
    case 'holdMmap':
      return holdMmapLockUntilReleased(rw('mm'), new Int32Array(args.flag!));
    case 'ordered':
      return orderedWorkload(args);
    case 'returnHolding':
      return returnHoldingMutex(mutex('m'));
    case 'awaitHolding':
      return awaitHoldingMutex(mutex('m'), new Int32Array(args.flag!));
    default:
      throw new Error(`cpu ${cpu}: unknown path ${args.path}`);
  }
}
