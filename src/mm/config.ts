/**
 * The knobs of an address space, each with Linux 6.18's x86_64 default (4 KiB pages, 4-level
 * paging, no ASLR). Every value the traces record in their header maps onto one of these.
 */
import { PAGE_SIZE } from '../mem/page.js';
import { DEFAULT_FAULT_DESIGN, type FaultDesign, isFaultDesign } from './fault-design.js';

export interface MmConfig {
  /** TASK_SIZE / DEFAULT_MAP_WINDOW: 2^47 - 4096. */
  taskSize: number;
  /** mm->mmap_base: the top of the top-down search (arch/x86/mm/mmap.c formula by default). */
  mmapBase: number;
  /** mm->mmap_legacy_base: start of the bottom-up fallback search (TASK_SIZE / 3). */
  mmapLegacyBase: number;
  /** /proc/sys/vm/mmap_min_addr. */
  mmapMinAddr: number;
  /** /proc/sys/vm/max_map_count. */
  maxMapCount: number;
  /** stack_guard_gap in bytes (256 pages). */
  stackGuardGap: number;
  /** /sys/kernel/mm/transparent_hugepage/enabled: 'always' | 'madvise' | 'never'. */
  thpEnabled: string;
  /** Align anonymous mappings whose length is a multiple of 2 MiB (CONFIG_TRANSPARENT_HUGEPAGE). */
  thpAlignAnon: boolean;
  /**
   * /sys/kernel/mm/transparent_hugepage/shmem_enabled: 'always' | 'within_size' | 'advise' | 'never'
   * | 'deny' | 'force'. Decides shmem_get_unmapped_area's 2 MiB alignment of shared anonymous maps.
   */
  thpShmemEnabled: string;
  /**
   * A read fault on private anonymous memory maps the shared zero page (no page, no anon_vma).
   * false: it allocates a page and an anon_vma like a write fault (kernels without the zero page).
   */
  zeroPage: boolean;
  /** /proc/sys/vm/overcommit_memory (0 heuristic, 1 always, 2 never). */
  overcommitMemory: number;
  /** Pages a single accountable mapping may not exceed under heuristic overcommit (RAM + swap). */
  commitLimitPages: number;
  /** CAP_IPC_LOCK and CAP_SYS_RAWIO (root): mlock unlimited, mappings below mmap_min_addr. */
  privileged: boolean;
  /** RLIMIT_MEMLOCK in bytes. */
  rlimitMemlock: number;
  /** RLIMIT_STACK in bytes (enters the mmap_base formula). */
  rlimitStack: number;
  /** mm->start_brk (= the initial break). */
  startBrk: number;
  /**
   * The fault-locking design (fault-design.ts): 'global', 'retry' or 'vma-lock' (the default).
   * Not a Linux knob: the lab compares the designs; a fork's child inherits it.
   */
  design: FaultDesign;
}

export const PAGE = PAGE_SIZE;
/** The words shmem_enabled accepts. */
const SHMEM_ENABLED = ['always', 'within_size', 'advise', 'never', 'deny', 'force'];
export const DEFAULT_TASK_SIZE = 2 ** 47 - PAGE;

/** arch/x86/mm/mmap.c mmap_base() without randomisation. */
export function mmapBaseFor(taskSize: number, rlimitStack: number, stackGuardGap: number): number {
  const gapMin = 128 * 1024 * 1024;
  const gapMax = Math.floor(taskSize / 6) * 5;
  const gap = Math.min(Math.max(rlimitStack + stackGuardGap, gapMin), gapMax);
  return Math.ceil((taskSize - gap) / PAGE) * PAGE;
}

export function defaultConfig(overrides: Partial<MmConfig> = {}): MmConfig {
  const taskSize = overrides.taskSize ?? DEFAULT_TASK_SIZE;
  const rlimitStack = overrides.rlimitStack ?? 8 * 1024 * 1024;
  const stackGuardGap = overrides.stackGuardGap ?? 256 * PAGE;
  const config: MmConfig = {
    taskSize,
    mmapBase: mmapBaseFor(taskSize, rlimitStack, stackGuardGap),
    mmapLegacyBase: Math.ceil(taskSize / 3 / PAGE) * PAGE,
    mmapMinAddr: PAGE,
    maxMapCount: 65530,
    stackGuardGap,
    thpEnabled: 'madvise',
    thpAlignAnon: true,
    thpShmemEnabled: 'never',
    zeroPage: true,
    overcommitMemory: 0,
    commitLimitPages: Number.POSITIVE_INFINITY,
    privileged: false,
    rlimitMemlock: 8 * 1024 * 1024,
    rlimitStack,
    startBrk: 0x555555560000,
    design: DEFAULT_FAULT_DESIGN,
    ...overrides,
  };
  checkConfig(config);
  return config;
}

function checkConfig(c: MmConfig): void {
  const aligned = (v: number) => Number.isSafeInteger(v) && v >= 0 && v % PAGE === 0;
  for (const key of ['taskSize', 'mmapBase', 'mmapLegacyBase', 'stackGuardGap', 'startBrk'] as const) {
    if (!aligned(c[key])) throw new RangeError(`mm config: ${key} must be a page-aligned safe integer`);
  }
  if (c.taskSize > 2 ** 52) throw new RangeError('mm config: taskSize above 2^52');
  if (!(c.mmapBase <= c.taskSize)) throw new RangeError('mm config: mmapBase above taskSize');
  if (!['always', 'madvise', 'never'].includes(c.thpEnabled)) throw new RangeError('mm config: thpEnabled');
  if (!SHMEM_ENABLED.includes(c.thpShmemEnabled)) throw new RangeError('mm config: thpShmemEnabled');
  if (!(Number.isSafeInteger(c.maxMapCount) && c.maxMapCount > 0))
    throw new RangeError('mm config: maxMapCount');
  if (!isFaultDesign(c.design)) throw new RangeError(`mm config: design '${String(c.design)}'`);
}
