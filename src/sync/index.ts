/** The synchronisation primitives in one import: locks, lock classes, statistics, RCU, hooks. */
export { installValidator, type LockValidator, lockHooks, READ, WRITE } from '../lockhooks.js';
export { lockClass, lockClassCount, lockClassName, MAX_CLASSES } from './lockclass.js';
export {
  formatLockStat,
  type LockStatRow,
  lockStatOn,
  lockStatRows,
  resetLockStat,
  setLockStat,
} from './lockstat.js';
export type { LockDescriptor } from './lockview.js';
export { Mutex } from './mutex.js';
export {
  mightSleep,
  mightWaitCpus,
  rcuBarrier,
  rcuDeferFree,
  rcuOffline,
  rcuOnline,
  rcuPendingFrees,
  rcuQuiescent,
  rcuReadLock,
  rcuReadLockHeld,
  rcuReadUnlock,
  rcuStats,
  synchronizeRcu,
} from './rcu.js';
export {
  RwSem,
  rwsemDowngrade,
  rwsemDownRead,
  rwsemDownWrite,
  rwsemState,
  rwsemTryDownRead,
  rwsemTryDownWrite,
  rwsemUpRead,
  rwsemUpWrite,
} from './rwsem.js';
export { SeqCount } from './seqcount.js';
export { SpinLock } from './spinlock.js';
