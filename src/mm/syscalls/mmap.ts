/**
 * mmap(2): ksys_mmap_pgoff -> do_mmap -> __get_unmapped_area -> mmap_region (mm/mmap.c,
 * mm/vma.c), then the population of MAP_POPULATE / VM_LOCKED mappings. The checks run in the
 * kernel's order, so every invalid combination reports the errno Linux reports first.
 */
import { EACCES, EAGAIN, EBADF, EEXIST, EINVAL, ENOMEM, EOPNOTSUPP, EOVERFLOW, EPERM } from '../../errno.js';
import { CHECKED, POPULATE_IGNORE, type SyscallContext } from '../context.js';
import {
  LEGACY_MAP_MASK,
  MAP_ANONYMOUS,
  MAP_DROPPABLE,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NONBLOCK,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_STACK,
  MAP_SYNC,
  MAP_TYPE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_WRITE,
  protToVm,
  VM_ACCOUNT,
  VM_DONTDUMP,
  VM_DROPPABLE,
  VM_GROWSDOWN,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_NOHUGEPAGE,
  VM_NORESERVE,
  VM_SHARED,
  VM_SYNC,
  VM_WIPEONFORK,
  VM_WRITE,
} from '../vm-flags.js';
import { clearVmaFields, NAME_ANON, NAME_FILE, type VmaFields, vmaFields } from '../vma-record.js';
import { pageAlign, U64 } from './args.js';
import { mlockFutureOk } from './mlock.js';
import { doMunmap } from './munmap.js';

/** MAX_LFS_FILESIZE on 64-bit, 2^63 - 1, in pages (exactly: its page count is 2^51 - 1/4096). */
const MAX_LFS_PAGES = 2 ** 51;

/**
 * ksys_mmap_pgoff's checks before mmap_lock: CHECKED or -errno. `file` is the file id the entry
 * resolved the descriptor to (0 for MAP_ANONYMOUS, or when the descriptor is bad).
 */
export function mmapCheck(flags: number, file: number, offset: number): number {
  if (offset % PAGE_SIZE !== 0) return -EINVAL;
  if ((flags & MAP_ANONYMOUS) === 0) {
    if (file === 0) return -EBADF;
    if ((flags & MAP_HUGETLB) !== 0) return -EINVAL;
  } else if ((flags & MAP_HUGETLB) !== 0) {
    // ksys_mmap_pgoff: the size field must name a huge page size.
    if (hugePageSize((flags >>> MAP_HUGE_SHIFT) & MAP_HUGE_MASK) === 0) return -EINVAL;
  }
  return CHECKED;
}

/** do_mmap under mmap_lock. Preconditions: mmapCheck passed; mmap_lock held for write. */
export function mmapLocked(
  mm: SyscallContext,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  file: number,
  offset: number,
): number {
  if ((flags & (MAP_ANONYMOUS | MAP_HUGETLB)) === (MAP_ANONYMOUS | MAP_HUGETLB)) {
    // ksys_mmap_pgoff rounds the length up to the huge page size.
    const huge = hugePageSize((flags >>> MAP_HUGE_SHIFT) & MAP_HUGE_MASK);
    const hugeLen = len > U64 - huge ? 0 : Math.ceil(len / huge) * huge;
    return doMmapHugetlb(mm, addr, hugeLen, prot, flags, offset / PAGE_SIZE, huge);
  }
  return doMmap(mm, (flags & MAP_ANONYMOUS) === 0 ? file : 0, addr, len, prot, flags, offset / PAGE_SIZE);
}

/** calc_vm_flag_bits. */
function vmFlagBits(flags: number): number {
  return (
    ((flags & MAP_GROWSDOWN) !== 0 ? VM_GROWSDOWN : 0) |
    ((flags & MAP_LOCKED) !== 0 ? VM_LOCKED : 0) |
    ((flags & MAP_SYNC) !== 0 ? VM_SYNC : 0) |
    ((flags & MAP_STACK) !== 0 ? VM_NOHUGEPAGE : 0)
  );
}

function doMmap(
  mm: SyscallContext,
  file: number,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  pgoff: number,
): number {
  const c = mm.config;
  const highFlags = flags >= 2 ** 32;
  if (len === 0) return -EINVAL;
  if ((flags & MAP_FIXED_NOREPLACE) !== 0) flags |= MAP_FIXED;
  if ((flags & MAP_FIXED) === 0) addr = roundHintToMin(mm, addr);
  len = pageAlign(len);
  if (len === 0) return -ENOMEM;
  if (pgoff + len / PAGE_SIZE >= U64) return -EOVERFLOW;
  if (mm.mapCount > c.maxMapCount) return -ENOMEM;
  let vmFlags = protToVm(prot) | vmFlagBits(flags) | mm.defFlags | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  addr = mm.placement.getUnmappedArea(file, addr, len, pgoff, flags);
  if (addr < 0) return addr;
  if ((flags & MAP_FIXED_NOREPLACE) !== 0 && mm.txn.intersecting(addr, addr + len) >= 0) return -EEXIST;
  if ((flags & MAP_LOCKED) !== 0 && !c.privileged && c.rlimitMemlock === 0) return -EPERM;
  if (!mlockFutureOk(mm, (vmFlags & VM_LOCKED) !== 0, len)) return -EAGAIN;
  if (file !== 0) {
    // file_mmap_ok: pgoff > (MAX_LFS_FILESIZE - len) >> PAGE_SHIFT, exact for page-aligned len.
    if (len / PAGE_SIZE >= MAX_LFS_PAGES || pgoff > MAX_LFS_PAGES - len / PAGE_SIZE - 1) return -EOVERFLOW;
    const type = flags & MAP_TYPE;
    if (type === MAP_SHARED || type === MAP_SHARED_VALIDATE) {
      const syncUnsupported = mm.files.syncUnsupported(file);
      const writable = mm.mapFileWritable;
      const mask = LEGACY_MAP_MASK | (syncUnsupported ? MAP_SYNC : 0);
      const checked = type === MAP_SHARED ? flags & LEGACY_MAP_MASK : flags;
      if ((checked & ~mask) !== 0 || (type === MAP_SHARED_VALIDATE && highFlags)) return -EOPNOTSUPP;
      if ((prot & PROT_WRITE) !== 0 && !writable) return -EACCES;
      vmFlags |= VM_SHARED | VM_MAYSHARE;
      if (!writable) vmFlags &= ~(VM_MAYWRITE | VM_SHARED);
    } else if (type !== MAP_PRIVATE) {
      return -EINVAL;
    }
    if ((vmFlags & VM_GROWSDOWN) !== 0) return -EINVAL;
  } else {
    const type = flags & MAP_TYPE;
    if (type === MAP_SHARED) {
      if ((vmFlags & VM_GROWSDOWN) !== 0) return -EINVAL;
      pgoff = 0;
      vmFlags |= VM_SHARED | VM_MAYSHARE;
    } else if (type === MAP_PRIVATE || type === MAP_DROPPABLE) {
      if (type === MAP_DROPPABLE) {
        if ((flags & (MAP_LOCKED | MAP_HUGETLB)) !== 0 || (vmFlags & VM_GROWSDOWN) !== 0) return -EINVAL;
        vmFlags |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP;
      }
      pgoff = addr / PAGE_SIZE;
    } else {
      return -EINVAL;
    }
  }
  if ((flags & MAP_NORESERVE) !== 0 && c.overcommitMemory !== 2) vmFlags |= VM_NORESERVE;
  const ret = mmapRegion(mm, file, addr, len, vmFlags, pgoff);
  if (ret < 0) return ret;
  if ((vmFlags & VM_LOCKED) !== 0 || (flags & (MAP_POPULATE | MAP_NONBLOCK)) === MAP_POPULATE) {
    mm.requestPopulate(addr, len, POPULATE_IGNORE);
  }
  return addr;
}

/** MAP_HUGE_SHIFT / MAP_HUGE_MASK: the log2 of the huge page size in bits 26..31 of the flags. */
const MAP_HUGE_SHIFT = 26;
const MAP_HUGE_MASK = 0x3f;

/** hstate_sizelog on x86_64 (2 MiB pages, 1 GiB with GB pages): the size in bytes, 0 if none. */
function hugePageSize(sizeLog: number): number {
  if (sizeLog === 0 || sizeLog === 21) return PMD_SIZE;
  return sizeLog === 30 ? 2 ** 30 : 0;
}

/**
 * do_mmap of the hugetlbfs file MAP_HUGETLB|MAP_ANONYMOUS creates (hugetlb_file_setup), with
 * `len` already rounded to the huge page size `huge`. No huge pages are reserved
 * (nr_hugepages = 0), so it always fails, after do_mmap's checks in their order: length, hint,
 * EOVERFLOW, map_count; hugetlb_get_unmapped_area (MAP_FIXED: EINVAL unless huge-page aligned;
 * an unfixed search only decides whether a later check is reached); EEXIST; the mlock limits; the
 * file checks (EOVERFLOW, EOPNOTSUPP, EINVAL for a missing type or MAP_GROWSDOWN). mmap_region
 * then clears a MAP_FIXED range (vms_clean_up_area) before hugetlbfs_file_mmap refuses an
 * unaligned offset (EINVAL) or fails the reservation (ENOMEM): the range stays unmapped.
 * MAP_NORESERVE, which would skip the reservation and map hugetlb pages, is not modelled.
 */
function doMmapHugetlb(
  mm: SyscallContext,
  addr: number,
  len: number,
  prot: number,
  flags: number,
  pgoff: number,
  huge: number,
): number {
  const c = mm.config;
  if (len === 0) return -EINVAL;
  if ((flags & MAP_FIXED_NOREPLACE) !== 0) flags |= MAP_FIXED;
  const fixed = (flags & MAP_FIXED) !== 0;
  if (!fixed) addr = roundHintToMin(mm, addr);
  if (pgoff + len / PAGE_SIZE >= U64) return -EOVERFLOW;
  if (mm.mapCount > c.maxMapCount) return -ENOMEM;
  const vmFlags = protToVm(prot) | vmFlagBits(flags) | mm.defFlags;
  if (len > c.taskSize) return -ENOMEM;
  if (fixed) {
    if (addr % huge !== 0) return -EINVAL;
    if (addr > c.taskSize - len) return -ENOMEM;
    if (addr < c.mmapMinAddr && !c.privileged) return -EPERM;
  } else {
    const hint = addr === 0 ? 0 : Math.ceil(addr / huge) * huge;
    const p = mm.placement;
    const hinted = hint !== 0 && hint <= c.taskSize - len && p.archTopdown(hint, len, 0) === hint;
    if (!hinted && p.archTopdown(0, len + huge - PAGE_SIZE, 0) < 0) return -ENOMEM;
  }
  if ((flags & MAP_FIXED_NOREPLACE) !== 0 && mm.txn.intersecting(addr, addr + len) >= 0) return -EEXIST;
  if ((flags & MAP_LOCKED) !== 0 && !c.privileged && c.rlimitMemlock === 0) return -EPERM;
  if (!mlockFutureOk(mm, (vmFlags & VM_LOCKED) !== 0, len)) return -EAGAIN;
  if (len / PAGE_SIZE >= MAX_LFS_PAGES || pgoff > MAX_LFS_PAGES - len / PAGE_SIZE - 1) return -EOVERFLOW;
  const type = flags & MAP_TYPE;
  if (type === MAP_SHARED || type === MAP_SHARED_VALIDATE) {
    const checked = type === MAP_SHARED ? flags & LEGACY_MAP_MASK : flags;
    if ((checked & ~LEGACY_MAP_MASK) !== 0 || (type === MAP_SHARED_VALIDATE && flags >= 2 ** 32))
      return -EOPNOTSUPP;
  } else if (type !== MAP_PRIVATE) {
    return -EINVAL;
  }
  if ((vmFlags & VM_GROWSDOWN) !== 0) return -EINVAL;
  if (fixed) {
    const err = doMunmap(mm, addr, addr + len);
    if (err < 0) return err;
  }
  return pgoff % (huge / PAGE_SIZE) !== 0 ? -EINVAL : -ENOMEM;
}

/** round_hint_to_min: hints are page-rounded down and raised to mmap_min_addr. */
function roundHintToMin(mm: SyscallContext, hint: number): number {
  hint -= hint % PAGE_SIZE;
  if (hint !== 0 && hint < mm.config.mmapMinAddr)
    return Math.ceil(mm.config.mmapMinAddr / PAGE_SIZE) * PAGE_SIZE;
  return hint;
}

/** accountable_mapping: private writable mappings without MAP_NORESERVE are charged. */
function accountable(vmFlags: number): boolean {
  return (vmFlags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) === VM_WRITE;
}

/**
 * mmap_region / __mmap_region: unmaps what [addr, addr + len) overlaps, then merges the new
 * range with its neighbours or inserts a new VMA. Returns addr or -errno.
 */
export function mmapRegion(
  mm: SyscallContext,
  file: number,
  addr: number,
  len: number,
  vmFlags: number,
  pgoff: number,
): number {
  const t = mm.txn;
  const end = addr + len;
  // find_vma(addr): the first VMA ending above addr; it meets the range or is the one after it
  // (known without a walk when placement's gap search found this very range).
  const known = mm.placement.nextVmaIfFound(addr, len);
  const after = known >= 0 ? t.findFromKnown(addr, known) : t.findFrom(addr);
  const first = after >= 0 && t.start[after] < end ? after : -1;
  let unmapped = 0;
  if (first >= 0) {
    unmapped = mm.layer.unmapRange(first, addr, end);
    if (unmapped < 0) return unmapped;
  }
  if (accountable(vmFlags)) {
    if (len / PAGE_SIZE > mm.config.commitLimitPages) return -ENOMEM;
    vmFlags |= VM_ACCOUNT;
  }
  // ext4's mmap_prepare refuses MAP_SYNC on a non-DAX file after the old mappings were cleared.
  if (file !== 0 && (vmFlags & VM_SYNC) !== 0 && mm.files.syncUnsupported(file)) return -EOPNOTSUPP;
  const prev = t.findBefore(addr);
  // Nothing met the range: the VMA after it is `after`.
  const next = first < 0 ? after : t.findFrom(end);
  const ms = mm.ms;
  const fields = newVmaFields(file, vmFlags);
  ms.forNew(prev, next, addr, end, pgoff, fields);
  if ((prev >= 0 || next >= 0) && mm.layer.mergeNewRange(ms) >= 0) return addr;
  if (file === 0 && (vmFlags & VM_SHARED) !== 0) {
    fields.file = mm.newShmem(len);
    if (fields.file === 0) return -ENOMEM;
  }
  fields.nameKind = fields.file !== 0 ? NAME_FILE : NAME_ANON;
  fields.start = addr;
  fields.end = end;
  fields.pgoff = pgoff;
  t.insert(fields);
  return addr;
}

/** The new VMA's fields (reused: no allocation per call). */
const scratch = vmaFields();

function newVmaFields(file: number, flags: number): VmaFields {
  clearVmaFields(scratch);
  scratch.flags = flags;
  scratch.file = file;
  scratch.nameKind = file !== 0 ? NAME_FILE : NAME_ANON;
  return scratch;
}
