/**
 * Test helper for deliberate lock misuse. With the lock validator on (as `npm test` runs), it
 * catches the misuse first and throws its report before the lock is touched; the lock's own
 * check fires only when the validator is off or its check is. So a misuse is asserted both ways:
 * the validator's report when it is on, then (that check switched off for a moment) the lock's
 * own error; with the validator off, only the lock's own error.
 */
import assert from 'node:assert/strict';
import { type LockdepCheck, LockdepError, lockdepMode, setLockdepMode } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';

export function isLockdepReport(check: LockdepCheck) {
  return (e: unknown) => e instanceof LockdepError && e.check === check;
}

/** `misuse` must throw without changing any state, however often it is called. */
export function assertMisuse(misuse: () => unknown, check: LockdepCheck, own: RegExp): void {
  if (lockHooks.on) {
    assert.throws(misuse, isLockdepReport(check), `the validator reports ${check}`);
    const mode = lockdepMode(check);
    setLockdepMode(check, 'off');
    try {
      assert.throws(misuse, own);
    } finally {
      setLockdepMode(check, mode);
    }
  } else assert.throws(misuse, own);
}
