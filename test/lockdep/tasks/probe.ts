/** Task: whether the lock validator is on on this CPU. */
import { lockHooks } from '../../../src/sync/hooks.js';

export default function probe(): boolean {
  return lockHooks.on;
}
