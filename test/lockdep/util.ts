/**
 * Test helpers: drive the validator through the lock hooks directly (the way every lock does),
 * with classes named per test so tests never share a dependency.
 */
import { enableLockdep, type LockdepCheck, type LockdepMode, lockdepReset } from '../../src/lockdep/index.js';
import { LOCK_ATOMIC, LOCK_SLEEPS, lockHooks, READ, WRITE } from '../../src/lockhooks.js';
import { lockClass, newLockId } from '../../src/sync/lockclass.js';

/** A fresh validator state with the given modes on top of the defaults. */
export function fresh(modes: Partial<Record<LockdepCheck, LockdepMode>> = {}): void {
  lockdepReset();
  enableLockdep(modes);
}

/** A lock as the validator sees it: class, subclass, instance id and kind bits. */
export class FakeLock {
  readonly classId: number;
  readonly id = newLockId();
  constructor(
    className: string,
    readonly kind: number = LOCK_SLEEPS,
    readonly subclass = 0,
  ) {
    this.classId = lockClass(className);
  }

  lock(mode = WRITE): void {
    lockHooks.v.acquire(this.classId, this.subclass, this.id, mode | this.kind, false);
    lockHooks.v.acquired(this.classId, this.subclass, this.id, mode | this.kind);
  }

  read(): void {
    this.lock(READ);
  }

  tryLock(mode = WRITE): void {
    lockHooks.v.acquire(this.classId, this.subclass, this.id, mode | this.kind, true);
    lockHooks.v.acquired(this.classId, this.subclass, this.id, mode | this.kind);
  }

  unlock(): void {
    lockHooks.v.release(this.classId, this.id);
  }
}

export function spinLock(name: string): FakeLock {
  return new FakeLock(name, LOCK_ATOMIC);
}
