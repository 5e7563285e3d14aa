/**
 * The file interface the address space needs: identity, size, access mode and how the file
 * system places mappings. The page-cache layer fills real files in later; for now a FileTable
 * registers them (test files, the executable and libraries of a trace, shmem objects created by
 * shared anonymous mmaps). Ids are small positive integers stored in VMA records (0 = no file).
 */

/** How get_unmapped_area places a mapping of the file (fs->f_op->get_unmapped_area). */
export const PLACE_GENERIC = 0;
/** ext4 and other THP-capable file systems: thp_get_unmapped_area (2 MiB alignment). */
export const PLACE_THP = 1;
/** shmem/tmpfs: shmem_get_unmapped_area (2 MiB alignment only when the mount uses huge pages). */
export const PLACE_SHMEM = 2;

export interface FileRef {
  readonly id: number;
  /** Size in bytes (pages at or past round_up(size) fault with SIGBUS). */
  readonly size: number;
  /** Opened for writing (FMODE_WRITE); MAP_SHARED + PROT_WRITE needs it. */
  readonly writable: boolean;
  /** Display name (maps view and traces). */
  readonly name: string;
  readonly placement: number;
  /** A shmem object (shared anonymous memory): its creation index N, else -1. */
  readonly shmemIndex: number;
  /** The file system supports MAP_SYNC (FOP_MMAP_SYNC) but not on this file (non-DAX ext4). */
  readonly syncUnsupported: boolean;
}

export interface FileSpec {
  size: number;
  writable: boolean;
  name: string;
  placement?: number;
  syncUnsupported?: boolean;
}

export class FileTable {
  private readonly files: FileRef[] = [];
  private shmemCount = 0;

  /** Registers a file; returns its id. */
  add(spec: FileSpec): FileRef {
    if (!(Number.isSafeInteger(spec.size) && spec.size >= 0))
      throw new RangeError(`file ${spec.name}: bad size`);
    const ref: FileRef = {
      id: this.files.length + 1,
      size: spec.size,
      writable: spec.writable,
      name: spec.name,
      placement: spec.placement ?? PLACE_GENERIC,
      shmemIndex: -1,
      syncUnsupported: spec.syncUnsupported ?? false,
    };
    this.files.push(ref);
    return ref;
  }

  /** A new shmem object of `size` bytes (shmem_zero_setup); numbered in creation order. */
  addShmem(size: number): FileRef {
    const ref: FileRef = {
      id: this.files.length + 1,
      size,
      writable: true,
      name: `anon_shared:${this.shmemCount}`,
      placement: PLACE_SHMEM,
      shmemIndex: this.shmemCount++,
      syncUnsupported: false,
    };
    this.files.push(ref);
    return ref;
  }

  /** A point to roll back to: files registered after it are forgotten by `rollback`. */
  mark(): number {
    return this.files.length;
  }

  rollback(mark: number): void {
    while (this.files.length > mark) {
      const ref = this.files.pop() as FileRef;
      if (ref.shmemIndex >= 0) this.shmemCount--;
    }
  }

  get(id: number): FileRef {
    const ref = this.files[id - 1];
    if (ref === undefined) throw new Error(`no file with id ${id}`);
    return ref;
  }

  /** Shmem objects created so far. */
  get shmemObjects(): number {
    return this.shmemCount;
  }
}
