/**
 * The lock validator's checks that must not move across a multi-CPU file test: I/O under
 * mmap_lock and every deadlock check (the counts are shared by every CPU of the Node process).
 * Sleeps and allocations under mmap_lock are the mm layer's own, counted by design (munmap's
 * shootdown, mmap's allocations), so they are left out.
 */
import assert from 'node:assert/strict';
import { lockdepCounts } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';

const BY_DESIGN = new Set(['mmap_sleep', 'mmap_alloc']);

/** The validator's counts now, to hand to quietValidator after the run. */
export function validatorCounts(): Record<string, number> {
  return { ...lockdepCounts() };
}

/** Asserts no check but the by-design ones moved since `before` (a no-op with the validator off). */
export function quietValidator(before: Record<string, number>): void {
  if (!lockHooks.on) return;
  const now = lockdepCounts();
  for (const [check, n] of Object.entries(now))
    if (!BY_DESIGN.has(check)) assert.equal(n, before[check], `validator: ${check}`);
}
