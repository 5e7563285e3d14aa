/**
 * Kernel: the system-wide tables every process shares (what Linux keeps in globals): physical
 * memory (PhysMem: frames and page descriptors), the file table (one record per file identity), the
 * anonymous identities (anon_vma records, shared by a parent and its children after fork), and the
 * pid counter. Created once, on the main thread or
 * any CPU; `describe()` / `Kernel.attach(desc)` gives another CPU the same tables.
 *
 *   words (Int32): NEXT_PID (atomic) | PROCESSES (atomic: live Process records)
 */
import { FileTable, type FileTableDescriptor } from '../fs/file-table.js';
import { PhysMem, type PhysMemDescriptor } from '../mem/frames.js';
import { AnonVmaTable } from '../mm/anon-vma.js';
import type { ArenaDescriptor, FailureInjector } from '../shm/arena.js';

const NEXT_PID = 0;
const PROCESSES = 1;
const FIRST_PID = 1000;

export interface KernelDescriptor {
  words: SharedArrayBuffer;
  mem: PhysMemDescriptor;
  files: FileTableDescriptor;
  anonVmas: ArenaDescriptor;
}

export interface KernelOptions {
  /** Fails the k-th allocation of any shared table (tests of ENOMEM paths). */
  injector?: FailureInjector;
  /** Physical memory in 4 KiB frames (default: PhysMem's, 256 MiB reserved, committed as used). */
  frames?: number;
}

/** Live shared records, for leak checks: every count is 0 once every process exited. */
export interface KernelCounts {
  processes: number;
  /** Frames in use, the zero page aside (anonymous, file, page-table and other pages). */
  frames: number;
  files: number;
  anonVmas: number;
}

export class Kernel {
  readonly mem: PhysMem;
  readonly files: FileTable;
  readonly anonVmas: AnonVmaTable;
  private readonly words: Int32Array;

  static create(options: KernelOptions = {}): Kernel {
    const words = new SharedArrayBuffer(16);
    new Int32Array(words)[NEXT_PID] = FIRST_PID;
    const mem = PhysMem.create({ frames: options.frames, injector: options.injector });
    return new Kernel(
      words,
      mem,
      FileTable.create({ injector: options.injector, mem }),
      AnonVmaTable.create(options.injector),
    );
  }

  static attach(desc: KernelDescriptor): Kernel {
    const mem = PhysMem.attach(desc.mem);
    return new Kernel(desc.words, mem, FileTable.attach(desc.files, mem), AnonVmaTable.attach(desc.anonVmas));
  }

  private constructor(words: SharedArrayBuffer, mem: PhysMem, files: FileTable, anonVmas: AnonVmaTable) {
    this.words = new Int32Array(words);
    this.mem = mem;
    this.files = files;
    this.anonVmas = anonVmas;
  }

  describe(): KernelDescriptor {
    return {
      words: this.words.buffer as SharedArrayBuffer,
      mem: this.mem.describe(),
      files: this.files.describe(),
      anonVmas: this.anonVmas.describe(),
    };
  }

  /** alloc_pid: a new pid; the process count goes up until `releasePid`. */
  allocPid(): number {
    Atomics.add(this.words, PROCESSES, 1);
    return Atomics.add(this.words, NEXT_PID, 1);
  }

  releasePid(): void {
    Atomics.sub(this.words, PROCESSES, 1);
  }

  counts(): KernelCounts {
    return {
      processes: Atomics.load(this.words, PROCESSES),
      frames: framesInUse(this.mem),
      files: this.files.live,
      anonVmas: this.anonVmas.live,
    };
  }
}

/** Frames in use but for the zero page (frames cached in CPU lists count as free). */
function framesInUse(mem: PhysMem): number {
  const s = mem.stats();
  return s.anon + s.file + s.pagetable + s.other;
}
