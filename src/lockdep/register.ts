/**
 * Preload for test processes: `node --import ./dist/src/lockdep/register.js --test ...` switches
 * the validator on in every test process when VMSPACE_LOCKDEP is set (scripts/run-tests.js sets
 * it). Main thread only: a worker CPU may not load the validator before it adopted the shared
 * globals, so the Machine's worker entry calls `enableLockdepFromEnv()` itself.
 */
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const { enableLockdepFromEnv } = await import('./index.js');
  enableLockdepFromEnv();
}
