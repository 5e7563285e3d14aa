/**
 * Kernel: the system-wide tables every process shares (what Linux keeps in globals): the file
 * table (one record per file identity), the anonymous identities (anon_vma records, shared by a
 * parent and its children after fork), and the pid counter. Created once, on the main thread or
 * any CPU; `describe()` / `Kernel.attach(desc)` gives another CPU the same tables.
 *
 *   words (Int32): NEXT_PID (atomic) | PROCESSES (atomic: live Process records)
 */
import { FileTable } from '../fs/file-table.js';
import { AnonVmaTable } from '../mm/anon-vma.js';
import type { ArenaDescriptor, FailureInjector } from '../shm/arena.js';

const NEXT_PID = 0;
const PROCESSES = 1;
const FIRST_PID = 1000;

export interface KernelDescriptor {
  words: SharedArrayBuffer;
  files: ArenaDescriptor;
  anonVmas: ArenaDescriptor;
}

export interface KernelOptions {
  /** Fails the k-th allocation of any shared table (tests of ENOMEM paths). */
  injector?: FailureInjector;
}

/** Live shared records, for leak checks: every count is 0 once every process exited. */
export interface KernelCounts {
  processes: number;
  files: number;
  anonVmas: number;
}

export class Kernel {
  readonly files: FileTable;
  readonly anonVmas: AnonVmaTable;
  private readonly words: Int32Array;

  static create(options: KernelOptions = {}): Kernel {
    const words = new SharedArrayBuffer(16);
    new Int32Array(words)[NEXT_PID] = FIRST_PID;
    return new Kernel(
      words,
      FileTable.create({ injector: options.injector }),
      AnonVmaTable.create(options.injector),
    );
  }

  static attach(desc: KernelDescriptor): Kernel {
    return new Kernel(desc.words, FileTable.attach(desc.files), AnonVmaTable.attach(desc.anonVmas));
  }

  private constructor(words: SharedArrayBuffer, files: FileTable, anonVmas: AnonVmaTable) {
    this.words = new Int32Array(words);
    this.files = files;
    this.anonVmas = anonVmas;
  }

  describe(): KernelDescriptor {
    return {
      words: this.words.buffer as SharedArrayBuffer,
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
      files: this.files.live,
      anonVmas: this.anonVmas.live,
    };
  }
}
