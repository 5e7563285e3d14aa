/**
 * The lab's workloads on files (issue 12): each opens its own file in the phase's process on its
 * CPU (so every measured run starts with a cold cache: the file and its cached pages go when the
 * workload closes it), and allocates nothing per operation. `openWorkloadFile` opens it (io-fault
 * and inversion-fault also map it whole) before the CPUs' start barrier, `closeWorkloadFile` closes
 * it after the deadline: outside the measured interval, so no other CPU's figure counts the time
 * this one spent setting up (io-under-lock's global mapper ran freely through the slow file's
 * open and mmap: some 4,000 of its 4,400 iterations in a 1 s phase).
 *
 *   io-fault         the slow device: read faults on random pages of a 128 MiB file whose `fault`
 *                    callback sleeps IO_LATENCY_US (INJECT_FAULT) each time; the file is far
 *                    larger than what a phase touches, so (nearly) every fault does I/O
 *   io-idle          io-fault without the I/O (io-under-lock's baseline): the same file mapped the
 *                    same way, the pages io-fault would read in the phase read before the start
 *                    barrier (no latency), then asleep until the deadline; so the loop beside it
 *                    works in the same address space (VMAs, page tables), and "kept" measures what
 *                    the I/O fault's locking costs the loop, not what a bigger address space costs
 *   cached-fault     minor faults: map a 16 MiB file whose pages are all in the page cache, read
 *                    one word per page (each a fault that finds its page cached), unmap; again
 *                    (the cache is filled before the start barrier, by openWorkloadFile). Between two faults
 *                    the program "works" THINK_US asleep: a few thousand faults a second, as a
 *                    program that computes between faults, and it leaves the two cores to the
 *                    writer (queued-writer runs three CPUs on two cores)
 *   page_fault2/3    the CPU's own file of the region's size (workloads.ts: writeFaultLoop)
 *   mmap2            will-it-scale mmap2: mmap + munmap of the CPU's own 128 MiB file, MAP_SHARED
 *   inversion-fault  io-fault on a file whose `fault` callback takes its i_rwsem for read
 *                    (FAULT_TAKES_I_RWSEM, Jan Kara's pattern), IO_LATENCY_INVERSION_US each
 *   inversion-write  write() of 64 KiB into another file from a user buffer mapped fresh each time,
 *                    so the copy faults it in while holding that file's i_rwsem
 */
import { INJECT_FAULT, setInjection } from '../fs/inject.js';
import type { Process } from '../kernel/process.js';
import type { AddressSpace } from '../mm/address-space.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../mm/vm-flags.js';
import { Rng } from '../rng.js';
import { rcuBlockBegin, rcuBlockEnd } from '../sync/rcu.js';
import { type CpuProbe, KIND_FAULT, KIND_MMAP, KIND_WRITE } from './cpu-probe.js';
import type { Workload, WorkloadOutcome } from './workloads.js';

const P = PAGE_SIZE;
/** The slow file: 128 MiB (only its touched pages ever take memory). */
export const SLOW_FILE_PAGES = 32768;
/** io-fault's step between pages: odd, so it visits all SLOW_FILE_PAGES (a power of two) in turn; far apart, so no readahead window covers the next. */
const PAGE_STRIDE = 4099;
/** The slow device's latency per fault: 10 ms, a disk seek (Lespinasse's 2010 setting had I/O of that order). */
export const IO_LATENCY_US = 10_000;
/** The inversion's fault latency: short, it only has to happen. */
export const IO_LATENCY_INVERSION_US = 200;
/** The cached file of cached-fault: 16 MiB. */
export const CACHED_FILE_PAGES = 4096;
/** cached-fault's pause between two faults (microseconds). */
export const THINK_US = 200;
/** io-idle's sleep between two looks at the deadline (microseconds). */
const IDLE_POLL_US = 1000;
/** A word nobody notifies: Atomics.wait on it sleeps its whole timeout. */
const thinkWord = new Int32Array(new SharedArrayBuffer(4));
/** will-it-scale mmap2's file: 128 MiB. */
export const MMAP2_BYTES = 128 << 20;
/** inversion-write's buffer and write size. */
const WRITE_BYTES = 64 << 10;

/** A file workload's file: its descriptor, and where io-fault / inversion-fault mapped it (else 0). */
export interface WorkloadFile {
  fd: number;
  addr: number;
}

/**
 * Opens `workload`'s file in `proc`: null for a workload without one, or with out.failure set.
 * io-fault and inversion-fault: the slow file, its `fault` latency injected, mapped whole.
 */
export function openWorkloadFile(
  proc: Process,
  workload: Workload,
  out: WorkloadOutcome,
  seed: number,
  durationMs: number,
  regionPages: number,
): WorkloadFile | null {
  if (workload === 'cached-fault') return cachedFile(proc, out);
  if (workload === 'page_fault2' || workload === 'page_fault3') {
    return plain(proc, regionPages * P, true, `${workload}.bin`);
  }
  if (workload === 'mmap2') return plain(proc, MMAP2_BYTES, true, 'mmap2.bin');
  if (workload === 'inversion-write') return plain(proc, WRITE_BYTES, true, 'written.bin');
  if (workload !== 'io-fault' && workload !== 'inversion-fault' && workload !== 'io-idle') return null;
  const takesRwsem = workload === 'inversion-fault';
  const name = takesRwsem ? 'inversion.bin' : 'slow.bin';
  const fd = proc.open({ size: SLOW_FILE_PAGES * P, writable: false, name, faultTakesIRwsem: takesRwsem });
  const addr = proc.mm.sysMmap(0, SLOW_FILE_PAGES * P, PROT_READ, MAP_SHARED, fd, 0);
  if (addr < 0) {
    proc.close(fd);
    out.failure = `${name}: mmap returned ${addr}`;
    return null;
  }
  if (workload === 'io-idle') {
    // The pages io-fault would read in a phase of durationMs, read now without the latency.
    const pages = Math.ceil((durationMs * 1000) / IO_LATENCY_US);
    const mmu = proc.mm.mmu();
    for (let k = 0, page = firstIoPage(seed); k < pages; k++, page = nextIoPage(page)) {
      mmu.load32(addr + page * P);
    }
    proc.mm.mmuOffline();
    return { fd, addr };
  }
  const files = proc.mm.files;
  const file = proc.mm.fds.fget(fd);
  setInjection(files, file, INJECT_FAULT, {
    latencyUs: takesRwsem ? IO_LATENCY_INVERSION_US : IO_LATENCY_US,
  });
  files.put(file);
  return { fd, addr };
}

/** io-fault's first page: seeded. */
function firstIoPage(seed: number): number {
  return nextIoPage(new Rng(seed).below(SLOW_FILE_PAGES));
}

/** io-fault's next page: an odd stride, so every page once before any again (each access a fault). */
function nextIoPage(page: number): number {
  return (page + PAGE_STRIDE) & (SLOW_FILE_PAGES - 1);
}

/** cached-fault's file, every page read into the page cache (through a mapping, then unmapped). */
function cachedFile(proc: Process, out: WorkloadOutcome): WorkloadFile | null {
  const f = plain(proc, CACHED_FILE_PAGES * P, false, 'cached.bin');
  const addr = proc.mm.sysMmap(0, CACHED_FILE_PAGES * P, PROT_READ, MAP_SHARED, f.fd, 0);
  if (addr < 0) {
    proc.close(f.fd);
    out.failure = `cached-fault: mmap returned ${addr}`;
    return null;
  }
  const mmu = proc.mm.mmu();
  for (let i = 0; i < CACHED_FILE_PAGES; i++) mmu.load32(addr + i * P);
  const r = proc.mm.sysMunmap(addr, CACHED_FILE_PAGES * P);
  if (r !== 0) out.failure = `cached-fault: munmap returned ${r}`;
  return f;
}

function plain(proc: Process, bytes: number, writable: boolean, name: string): WorkloadFile {
  return { fd: proc.open({ size: bytes, writable, name }), addr: 0 };
}

/** Unmaps (where mapped) and closes a workload's file; a failed munmap is the outcome's failure. */
export function closeWorkloadFile(proc: Process, f: WorkloadFile, out: WorkloadOutcome): void {
  if (f.addr !== 0) {
    const r = proc.mm.sysMunmap(f.addr, SLOW_FILE_PAGES * P);
    if (r !== 0 && out.failure === '') out.failure = `munmap returned ${r}`;
  }
  proc.close(f.fd);
}

/** io-fault and inversion-fault: read faults on the pages of `f`, every page once in turn. */
export function ioFault(proc: Process, probe: CpuProbe, seed: number, f: WorkloadFile): void {
  const mmu = proc.mm.mmu();
  for (let page = firstIoPage(seed); !probe.over; page = nextIoPage(page)) {
    const t0 = probe.now();
    mmu.load32(f.addr + page * P);
    probe.op(t0, KIND_FAULT);
    probe.pages++;
  }
}

/** io-idle: asleep until the deadline (its Mmu offline, quiescent for RCU); no operation. */
export function ioIdle(proc: Process, probe: CpuProbe): void {
  while (!probe.over) {
    sleepUs(proc.mm, IDLE_POLL_US);
    probe.poll();
  }
}

/** cached-fault: minor faults on `f`, a file whose pages are all cached (openWorkloadFile). */
export function cachedFault(proc: Process, probe: CpuProbe, f: WorkloadFile, out: WorkloadOutcome): void {
  const mm = proc.mm;
  const mmu = mm.mmu();
  const len = CACHED_FILE_PAGES * P;
  while (!probe.over) {
    const addr = mm.sysMmap(0, len, PROT_READ, MAP_SHARED, f.fd, 0);
    if (addr < 0) {
      out.failure = `cached-fault: mmap returned ${addr}`;
      return;
    }
    for (let i = 0; i < CACHED_FILE_PAGES && !probe.over; i++) {
      const t0 = probe.now();
      mmu.load32(addr + i * P);
      probe.op(t0, KIND_FAULT);
      probe.pages++;
      sleepUs(mm, THINK_US);
    }
    const r = mm.sysMunmap(addr, len);
    if (r !== 0) {
      out.failure = `cached-fault: munmap returned ${r}`;
      return;
    }
  }
}

/**
 * `us` asleep: this CPU's Mmu offline (a sleeping CPU must not hold up another's TLB shootdown)
 * and quiescent for RCU meanwhile. Preconditions: no lock held.
 */
function sleepUs(mm: AddressSpace, us: number): void {
  mm.mmuOffline();
  const wasOnline = rcuBlockBegin();
  Atomics.wait(thinkWord, 0, 0, us / 1000);
  rcuBlockEnd(wasOnline);
}

/** will-it-scale mmap2: mmap + munmap of this CPU's own file `f`, MAP_SHARED, untouched. */
export function mmap2File(proc: Process, probe: CpuProbe, f: WorkloadFile, out: WorkloadOutcome): void {
  const mm = proc.mm;
  while (!probe.over) {
    const t0 = probe.now();
    const addr = mm.sysMmap(0, MMAP2_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
    const r = addr < 0 ? addr : mm.sysMunmap(addr, MMAP2_BYTES);
    probe.op(t0, KIND_MMAP);
    if (r !== 0) {
      out.failure = `mmap2: ${addr < 0 ? 'mmap' : 'munmap'} returned ${r}`;
      return;
    }
  }
}

/** inversion-write: write() into `f` from a user buffer that must be faulted in, under its i_rwsem. */
export function inversionWrite(proc: Process, probe: CpuProbe, f: WorkloadFile, out: WorkloadOutcome): void {
  const mm = proc.mm;
  while (!probe.over) {
    const t0 = probe.now();
    const buf = mm.sysMmap(0, WRITE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf < 0) {
      out.failure = `inversion-write: mmap returned ${buf}`;
      return;
    }
    const n = proc.pwrite(f.fd, buf, WRITE_BYTES, 0);
    const r = mm.sysMunmap(buf, WRITE_BYTES);
    probe.op(t0, KIND_WRITE);
    probe.pages += WRITE_BYTES / P;
    if (n !== WRITE_BYTES || r !== 0) {
      out.failure = `inversion-write: pwrite returned ${n}, munmap ${r}`;
      return;
    }
  }
}
