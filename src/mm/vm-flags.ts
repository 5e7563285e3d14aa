/**
 * Linux constants of the address-space syscalls (x86_64 values) and the VMA flag bits
 * (`VM_*`, include/linux/mm.h), with the two views the kernel prints: the `perms` column of
 * /proc/PID/maps and the `VmFlags:` line of smaps (two-letter codes in bit order).
 */
import { PAGE_SIZE } from '../mem/page.js';

/** The page size and the PMD span are the memory layer's (one definition: src/mem/page.ts, pte.ts). */
export { PAGE_SHIFT, PAGE_SIZE } from '../mem/page.js';
export { PMD_SIZE } from '../mem/pte.js';
export const PAGE_MASK_LOW = PAGE_SIZE - 1;

// VMA flags (vm_flags_t bits 0..31; all fit an Int32).
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_GROWSDOWN = 0x100;
export const VM_UFFD_MISSING = 0x200;
export const VM_PFNMAP = 0x400;
/** Linux keeps VM_DROPPABLE in a high bit; vmspace uses the free bit 11 (never printed). */
export const VM_DROPPABLE = 0x800;
export const VM_UFFD_WP = 0x1000;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
export const VM_LOCKONFAULT = 0x80000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_HUGETLB = 0x400000;
export const VM_SYNC = 0x800000;
export const VM_ARCH_1 = 0x1000000;
export const VM_WIPEONFORK = 0x2000000;
export const VM_DONTDUMP = 0x4000000;
export const VM_SOFTDIRTY = 0x8000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
export const VM_MERGEABLE = 0x80000000 | 0;

export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
export const VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT;
/** VM_DATA_DEFAULT_FLAGS on x86_64 (VM_DATA_FLAGS_TSK_EXEC without READ_IMPLIES_EXEC). */
export const VM_DATA_DEFAULT_FLAGS = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
/** Flags ignored when deciding a merge (soft-dirty only). */
export const VM_IGNORE_MERGE = VM_SOFTDIRTY;

// mmap(2)
export const PROT_NONE = 0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
export const PROT_SEM = 0x8;
export const PROT_GROWSDOWN = 0x01000000;
export const PROT_GROWSUP = 0x02000000;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_DROPPABLE = 0x08;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_32BIT = 0x40;
export const MAP_GROWSDOWN = 0x100;
export const MAP_DENYWRITE = 0x800;
export const MAP_EXECUTABLE = 0x1000;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000;
export const MAP_STACK = 0x20000;
export const MAP_HUGETLB = 0x40000;
export const MAP_SYNC = 0x80000;
export const MAP_FIXED_NOREPLACE = 0x100000;
/** The flags MAP_SHARED silently keeps (include/linux/mman.h LEGACY_MAP_MASK). */
export const LEGACY_MAP_MASK =
  MAP_SHARED |
  MAP_PRIVATE |
  MAP_FIXED |
  MAP_ANONYMOUS |
  MAP_DENYWRITE |
  MAP_EXECUTABLE |
  0x4000000 /* MAP_UNINITIALIZED */ |
  MAP_GROWSDOWN |
  MAP_LOCKED |
  MAP_NORESERVE |
  MAP_POPULATE |
  MAP_NONBLOCK |
  MAP_STACK |
  MAP_HUGETLB |
  MAP_32BIT |
  0x80 /* MAP_ABOVE4G */ |
  0x54000000 /* MAP_HUGE_2MB */ |
  0x78000000; /* MAP_HUGE_1GB */

// mremap(2)
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// madvise(2)
export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_MERGEABLE = 12;
export const MADV_UNMERGEABLE = 13;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_DONTDUMP = 16;
export const MADV_DODUMP = 17;
export const MADV_WIPEONFORK = 18;
export const MADV_KEEPONFORK = 19;
export const MADV_COLD = 20;
export const MADV_PAGEOUT = 21;
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
export const MADV_DONTNEED_LOCKED = 24;
export const MADV_COLLAPSE = 25;
export const MADV_HWPOISON = 100;
export const MADV_SOFT_OFFLINE = 101;
export const MADV_GUARD_INSTALL = 102;
export const MADV_GUARD_REMOVE = 103;

// mlock2(2), mlockall(2), msync(2)
export const MLOCK_ONFAULT = 1;
export const MCL_CURRENT = 1;
export const MCL_FUTURE = 2;
export const MCL_ONFAULT = 4;
export const MS_ASYNC = 1;
export const MS_INVALIDATE = 2;
export const MS_SYNC = 4;

/** Symbolic names as traces and tools print them. */
export const PROT_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['PROT_READ', PROT_READ],
  ['PROT_WRITE', PROT_WRITE],
  ['PROT_EXEC', PROT_EXEC],
  ['PROT_GROWSDOWN', PROT_GROWSDOWN],
  ['PROT_GROWSUP', PROT_GROWSUP],
];
export const MAP_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['MAP_SHARED', MAP_SHARED],
  ['MAP_PRIVATE', MAP_PRIVATE],
  ['MAP_SHARED_VALIDATE', MAP_SHARED_VALIDATE],
  ['MAP_FIXED', MAP_FIXED],
  ['MAP_ANONYMOUS', MAP_ANONYMOUS],
  ['MAP_GROWSDOWN', MAP_GROWSDOWN],
  ['MAP_LOCKED', MAP_LOCKED],
  ['MAP_NORESERVE', MAP_NORESERVE],
  ['MAP_POPULATE', MAP_POPULATE],
  ['MAP_NONBLOCK', MAP_NONBLOCK],
  ['MAP_STACK', MAP_STACK],
  ['MAP_HUGETLB', MAP_HUGETLB],
  ['MAP_SYNC', MAP_SYNC],
  ['MAP_FIXED_NOREPLACE', MAP_FIXED_NOREPLACE],
];
export const MREMAP_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['MREMAP_MAYMOVE', MREMAP_MAYMOVE],
  ['MREMAP_FIXED', MREMAP_FIXED],
  ['MREMAP_DONTUNMAP', MREMAP_DONTUNMAP],
];
export const MLOCK_NAMES: ReadonlyArray<readonly [string, number]> = [['MLOCK_ONFAULT', MLOCK_ONFAULT]];
export const MADV_NAMES: Readonly<Record<string, number>> = {
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_REMOVE,
  MADV_DONTFORK,
  MADV_DOFORK,
  MADV_MERGEABLE,
  MADV_UNMERGEABLE,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MADV_DONTDUMP,
  MADV_DODUMP,
  MADV_WIPEONFORK,
  MADV_KEEPONFORK,
  MADV_COLD,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_DONTNEED_LOCKED,
  MADV_COLLAPSE,
  MADV_HWPOISON,
  MADV_SOFT_OFFLINE,
  MADV_GUARD_INSTALL,
  MADV_GUARD_REMOVE,
};

/** smaps `VmFlags:` codes indexed by bit (fs/proc/task_mmu.c show_smap_vma_flags). */
const MNEMONICS: readonly string[] = [
  'rd',
  'wr',
  'ex',
  'sh',
  'mr',
  'mw',
  'me',
  'ms',
  'gd',
  'um',
  'pf',
  '',
  'uw',
  'lo',
  'io',
  'sr',
  'rr',
  'dc',
  'de',
  'lf',
  'ac',
  'nr',
  'ht',
  'sf',
  'ar',
  'wf',
  'dd',
  'sd',
  'mm',
  'hg',
  'nh',
  'mg',
];

/** The smaps VmFlags line for `flags` (codes separated by one space, kernel order). */
export function vmFlagsText(flags: number): string {
  let out = '';
  for (let bit = 0; bit < 32; bit++) {
    if ((flags & (1 << bit)) === 0 || MNEMONICS[bit] === '') continue;
    out += out === '' ? MNEMONICS[bit] : ` ${MNEMONICS[bit]}`;
  }
  return out;
}

/** Flags from a VmFlags line; throws on an unknown code. */
export function parseVmFlags(text: string): number {
  let flags = 0;
  for (const code of text.split(' ')) {
    if (code === '') continue;
    const bit = MNEMONICS.indexOf(code);
    if (bit < 0) throw new Error(`unknown VmFlags code ${code}`);
    flags |= 1 << bit;
  }
  return flags;
}

/** The maps `perms` column: rwx and s (VM_MAYSHARE) or p. */
export function permsText(flags: number): string {
  return (
    ((flags & VM_READ) !== 0 ? 'r' : '-') +
    ((flags & VM_WRITE) !== 0 ? 'w' : '-') +
    ((flags & VM_EXEC) !== 0 ? 'x' : '-') +
    ((flags & VM_MAYSHARE) !== 0 ? 's' : 'p')
  );
}

/** calc_vm_prot_bits: PROT_* -> VM_READ/WRITE/EXEC (other bits ignored). */
export function protToVm(prot: number): number {
  return prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
}
