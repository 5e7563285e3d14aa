/**
 * The one-process set-up of the single-CPU memory tests: a Kernel of `frames` frames (4096 unless
 * told; an injector fails its allocations when given), one privileged Process whose VMA records
 * are freed at once, and the constants the tests map with.
 */
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import type { FailureInjector } from '../../src/shm/arena.js';

export const P = 4096;
export const BASE = 0x100000000;
export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

export function setup(frames = 4096, injector?: FailureInjector): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames, injector });
  return { kernel, proc: Process.create(kernel, { config: { privileged: true }, rcuFree: false }) };
}
