/**
 * What `kernel.counts()` must be once every process exited and every reference was dropped: one
 * definition, typed by KernelCounts, so a new count is added here and checked by every test.
 */
import type { KernelCounts } from '../../src/kernel/kernel.js';

export const KERNEL_EMPTY: KernelCounts = {
  processes: 0,
  frames: 0,
  files: 0,
  openFiles: 0,
  anonVmas: 0,
  cacheNodes: 0,
  iMmapEntries: 0,
};
