/** Task: forgets to leave its read section. */
import { rcuReadLock } from '../../../src/sync/rcu.js';

export default function leak(): void {
  rcuReadLock();
}
