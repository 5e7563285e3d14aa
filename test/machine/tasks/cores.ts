/** Reports the host cores this CPU's thread may run on (/proc/thread-self/status), or null. */
import { allowedCores } from '../../../src/machine/pin.js';

export default function cores(cpu: number): { cpu: number; cores: string | null } {
  return { cpu, cores: allowedCores() };
}
