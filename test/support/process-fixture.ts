/**
 * The one-process set-up of the single-CPU memory tests: a Kernel of 4096 frames, one privileged
 * Process whose VMA records are freed at once, and the constants the tests map with.
 */
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';

export const P = 4096;
export const BASE = 0x100000000;
export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

export function setup(): { kernel: Kernel; proc: Process } {
  const kernel = Kernel.create({ frames: 4096 });
  return { kernel, proc: Process.create(kernel, { config: { privileged: true }, rcuFree: false }) };
}
