/**
 * SyscallLog: an optional record of every syscall that changed an address space, in the order
 * mmap_lock granted them (the entry appends while it still holds the lock for write), readable by
 * any CPU. A single-threaded replay of the log must reach the same address space: the stress test
 * proves concurrent CPUs serialise exactly as the lock says, and the lab can show the sequence.
 *
 *   Int32 header: COUNT (entries written; atomic) | LOST (entries past capacity)
 *   Float64 entries from byte 64: NR a b c d e f RET  (Linux x86_64 syscall numbers)
 */
const COUNT = 0;
const LOST = 1;
const ENTRY = 8;
const HEADER_BYTES = 64;

/** x86_64 syscall numbers of the calls the log records (touch, the traces' fault stand-in: -1). */
export const NR_MMAP = 9;
export const NR_MPROTECT = 10;
export const NR_MUNMAP = 11;
export const NR_BRK = 12;
export const NR_MREMAP = 25;
export const NR_MADVISE = 28;
export const NR_MLOCK2 = 325;
export const NR_MUNLOCK = 150;
export const NR_MLOCKALL = 151;
export const NR_MUNLOCKALL = 152;
export const NR_TOUCH = -1;
/** Not a syscall: the teardown of the whole address space. */
export const NR_DESTROY = -2;
/**
 * Not a syscall: a populate stage after its syscall released mmap_lock (a = start, b = length,
 * c = POPULATE_* mode, d = the syscall's result going in; RET = the result coming out).
 */
export const NR_POPULATE = -3;
/**
 * Not a syscall: a round of a populate stage that stopped for I/O (a = start, b = the length it
 * walked, up to the page that waits; c, d as NR_POPULATE's; RET 0: the stage's result is its last
 * round's, an NR_POPULATE over the rest). Other CPUs' syscalls may come between the rounds.
 */
export const NR_POPULATE_PART = -4;

export interface SyscallLogDescriptor {
  buffer: SharedArrayBuffer;
}

export class SyscallLog {
  private readonly header: Int32Array;
  private readonly entries: Float64Array;
  readonly capacity: number;

  static create(capacity: number): SyscallLog {
    return new SyscallLog({ buffer: new SharedArrayBuffer(HEADER_BYTES + capacity * ENTRY * 8) });
  }

  static attach(desc: SyscallLogDescriptor): SyscallLog {
    return new SyscallLog(desc);
  }

  private constructor(desc: SyscallLogDescriptor) {
    this.header = new Int32Array(desc.buffer, 0, HEADER_BYTES >> 2);
    this.entries = new Float64Array(desc.buffer, HEADER_BYTES);
    this.capacity = this.entries.length / ENTRY;
  }

  describe(): SyscallLogDescriptor {
    return { buffer: this.header.buffer as SharedArrayBuffer };
  }

  /** Appends one entry. Preconditions: mmap_lock held for write (appends are serialised by it). */
  appendLocked(
    nr: number,
    a: number,
    b: number,
    c: number,
    d: number,
    e: number,
    f: number,
    ret: number,
  ): void {
    const n = this.header[COUNT];
    if (n >= this.capacity) {
      Atomics.add(this.header, LOST, 1);
      return;
    }
    const x = this.entries;
    const at = n * ENTRY;
    x[at] = nr;
    x[at + 1] = a;
    x[at + 2] = b;
    x[at + 3] = c;
    x[at + 4] = d;
    x[at + 5] = e;
    x[at + 6] = f;
    x[at + 7] = ret;
    Atomics.store(this.header, COUNT, n + 1);
  }

  get count(): number {
    return Atomics.load(this.header, COUNT);
  }
  get lost(): number {
    return Atomics.load(this.header, LOST);
  }

  /** Entry i as [nr, a, b, c, d, e, f, ret]. */
  entry(i: number): number[] {
    return Array.from(this.entries.subarray(i * ENTRY, (i + 1) * ENTRY));
  }
}
