/** Task: whether the lock validator is on on this CPU. */
import { lockHooks } from '../../../src/lockhooks.js';

export default function probe(): boolean {
  return lockHooks.on;
}
