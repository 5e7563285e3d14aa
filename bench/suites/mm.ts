/**
 * Address-space figures next to the Linux kernel doing the same operations on this machine in
 * the same run (bench/linux/mmops.c via measureLinux): each `mm.X.ns` has baseline `linux.X.ns`.
 *
 *   mmap_munmap_16k       mmap 16 KiB anonymous private RW + munmap (ns per pair)
 *   mprotect_split_merge  one page in the middle of a 64-page VMA to R, then back to RW (ns per call)
 *   mremap_move           a 4-page VMA MAYMOVE|FIXED to another place and back (ns per call)
 *   vma_lookup_rcu        lockVmaUnderRcu + vmaEndRead at random addresses of 1000 VMAs (no baseline)
 *
 * Also the kernel's fault figures (anon_write_fault, page_fault1, cow_after_fork, scaling_2cpu: see
 * mmops.c), and
 *
 *   fault.anon_write      will-it-scale page_fault1 through this CPU's Mmu: map 128 MiB anonymous,
 *                         store one byte per page (each store a TLB miss and a write fault), munmap
 *                         (ns per page, the map and unmap included; baseline linux.page_fault1.ns)
 *   fault.scaling_2cpu    two CPUs each faulting its own VMAs of one process (page_fault1 on each),
 *                         pages per second against one CPU doing the same alone (target >= 1.9);
 *                         every run on one kernel whose frames a warm-up already touched; each
 *                         CPU maps at its own hint, so the VMAs do not merge (mm-fault-task.ts)
 *   fault.cow_after_fork  16 MiB written, Process.fork, then the parent writes every page again
 *                         while the child still maps them: a copy-on-write fault per page (ns per
 *                         page, the writes alone; baseline linux.cow_after_fork.ns)
 *   fault.file_private_write  will-it-scale page_fault2: a 128 MiB memory file mapped private, one
 *                         byte stored per page (a copy-on-write fault of the cached page), unmapped
 *                         (ns per page, map and unmap included; baseline linux.page_fault2.ns)
 *   fault.file_shared_write   page_fault3: the same file mapped shared (page_mkwrite, dirty entry;
 *                         baseline linux.page_fault3.ns)
 *   mm.mmap_munmap_file   will-it-scale mmap2: mmap 128 MiB of the file shared + munmap (ns per
 *                         pair; baseline linux.mmap2.ns)
 *   The file's pages are cached after the first (warm-up) round, as the kernel's are. The kernel's
 *   file is a memfd (shmem), the same kind as vmspace's memory file; linux.page_fault3_disk.* is
 *   the kernel on a disk file beside it (ext4 maps a whole large folio per fault since 6.16).
 *   lab.speculative_vs_vma_lock.*  the speculative design against vma-lock (mm-speculative.ts)
 *
 * The address space is the production one: a MapleTree index, RCU-deferred record frees. The
 * main thread runs RCU-online, as a CPU running a task does.
 */
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MapleTree } from '../../src/maple/tree.js';
import { AddressSpace } from '../../src/mm/address-space.js';
import { lockVmaUnderRcu } from '../../src/mm/fault-lookup.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { vmaEndRead } from '../../src/mm/vma-lock.js';
import { rcuBarrier, rcuOffline, rcuOnline, rcuQuiescent } from '../../src/sync/rcu.js';
import { type BenchOptions, type BenchSuite, nsPerOp, type Report } from '../harness.js';
import { measureLinux } from '../linux.js';
import type { FaultTaskArgs } from './mm-fault-task.js';
import { measureSpeculative } from './mm-speculative.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const BATCH = 64;
const LOOKUP_VMAS = 1000;
const LOOKUP_BATCH = 1024;

/** Calls of a batch before measuring: the syscall paths need ~20k syscalls until V8 has optimised them. */
const WARM_CALLS = 500;

/**
 * Runs `op` before it is measured, at least WARM_CALLS times and for a while: a quick measurement
 * alone would mostly time the interpreter (the C program warms up likewise).
 */
function warm(op: () => void, options: BenchOptions): void {
  const until = performance.now() + (options.quick ? 50 : 300);
  for (let calls = 0; calls < WARM_CALLS || performance.now() < until; calls++) op();
}

async function measure(op: () => void, opsPerCall: number, options: BenchOptions): Promise<number> {
  warm(op, options);
  return nsPerOp(op, opsPerCall, options);
}

export const suite: BenchSuite = {
  name: 'mm',
  async run(report: Report, options: BenchOptions): Promise<void> {
    const linux = measureLinux(options.quick ? 20_000 : 200_000);
    report.add('linux.mmap_munmap_16k.ns', linux.mmap_munmap_16k, 'ns');
    report.add('linux.mprotect_split_merge.ns', linux.mprotect_split_merge, 'ns');
    report.add('linux.mremap_move.ns', linux.mremap_move, 'ns');
    // The fault baselines the memory layer's figures will be compared with (fault.*: issue 10).
    report.add('linux.anon_write_fault.ns', linux.anon_write_fault, 'ns');
    report.add('linux.page_fault1.ns', linux.page_fault1, 'ns');
    report.add('linux.cow_after_fork.ns', linux.cow_after_fork, 'ns');
    report.add('linux.page_fault2.ns', linux.page_fault2, 'ns');
    report.add('linux.page_fault3.ns', linux.page_fault3, 'ns');
    // The same on a disk file: beside the figure, not its baseline (vmspace's file is a memory
    // file, and a disk file system may map a large folio per fault: the pages-per-fault says).
    report.add('linux.page_fault3_disk.ns', linux.page_fault3_disk, 'ns');
    report.add('linux.page_fault3_disk.pages_per_fault', linux.page_fault3_disk_pages_per_fault, 'ratio');
    report.add('linux.mmap2.ns', linux.mmap2, 'ns');
    report.add('linux.scaling_2cpu.ratio', linux.scaling_2cpu, 'ratio');
    rcuOnline();
    try {
      await measureSyscalls(report, options);
      await measureLookup(report, options);
      measureFaults(report, options);
      measureSpeculative(report, options);
      await measureFileFaults(report, options);
      measureCowAfterFork(report, options);
      await measureFaultScaling(report, options);
    } finally {
      rcuOffline();
      rcuBarrier();
    }
  },
};

const FAULT_PAGES = (128 << 20) / P;

/** page_fault1 through the Mmu: the median round (map, a one-byte store per page, unmap) per page. */
function measureFaults(report: Report, options: BenchOptions): void {
  const mm = newSpace();
  const mmu = mm.mmu();
  const round = (): number => {
    const t0 = performance.now();
    const addr = mm.sysMmap(0, FAULT_PAGES * P, RW, ANON, -1, 0);
    if (addr < 0) throw new Error(`mmap failed: ${addr}`);
    for (let i = 0; i < FAULT_PAGES; i++) mmu.store8(addr + i * P, 1);
    if (mm.sysMunmap(addr, FAULT_PAGES * P) !== 0) throw new Error('munmap failed');
    rcuQuiescent();
    return ((performance.now() - t0) * 1e6) / FAULT_PAGES;
  };
  for (let i = 0; i < (options.quick ? 1 : 3); i++) round();
  const times: number[] = [];
  for (let i = 0; i < (options.quick ? 3 : 11); i++) times.push(round());
  times.sort((x, y) => x - y);
  report.add('fault.anon_write.ns', times[times.length >> 1], 'ns', 'linux.page_fault1.ns');
  mm.destroy();
  mm.detach();
}

/** page_fault2 (private) and page_fault3 (shared) of a 128 MiB memory file, and mmap2. */
async function measureFileFaults(report: Report, options: BenchOptions): Promise<void> {
  const mm = newSpace();
  const mmu = mm.mmu();
  const file = mm.files.add({ size: FAULT_PAGES * P, writable: true, name: 'bench.file' });
  const fd = mm.fds.install(file);
  mm.files.put(file); // the descriptor holds the file
  const round = (flags: number): number => {
    const t0 = performance.now();
    const addr = mm.sysMmap(0, FAULT_PAGES * P, RW, flags, fd, 0);
    if (addr < 0) throw new Error(`mmap failed: ${addr}`);
    for (let i = 0; i < FAULT_PAGES; i++) mmu.store8(addr + i * P, 1);
    if (mm.sysMunmap(addr, FAULT_PAGES * P) !== 0) throw new Error('munmap failed');
    rcuQuiescent();
    return ((performance.now() - t0) * 1e6) / FAULT_PAGES;
  };
  for (const [name, flags] of [
    ['fault.file_private_write.ns', MAP_PRIVATE],
    ['fault.file_shared_write.ns', MAP_SHARED],
  ] as const) {
    for (let i = 0; i < (options.quick ? 1 : 3); i++) round(flags);
    const times: number[] = [];
    for (let i = 0; i < (options.quick ? 3 : 9); i++) times.push(round(flags));
    times.sort((x, y) => x - y);
    const base = flags === MAP_PRIVATE ? 'linux.page_fault2.ns' : 'linux.page_fault3.ns';
    report.add(name, times[times.length >> 1], 'ns', base);
  }
  const pair = (): void => {
    const addr = mm.sysMmap(0, FAULT_PAGES * P, RW, MAP_SHARED, fd, 0);
    if (addr < 0 || mm.sysMunmap(addr, FAULT_PAGES * P) !== 0) throw new Error('mmap2 failed');
  };
  warm(pair, options);
  report.add('mm.mmap_munmap_file.ns', await nsPerOp(pair, 1, options), 'ns', 'linux.mmap2.ns');
  mm.fds.close(fd);
  mm.destroy();
  mm.detach();
}

const SCALING_PAGES = (32 << 20) / P;

/** Pages faulted per second by `cpus` CPUs on disjoint VMAs of one process of `kernel`. */
async function faultRate(machine: Machine, kernel: Kernel, cpus: number, rounds: number): Promise<number> {
  const proc = Process.create(kernel);
  const start = new SharedArrayBuffer(4);
  const args: FaultTaskArgs = { process: proc.describe(), pages: SCALING_PAGES, rounds, start };
  const ids = Array.from({ length: cpus }, (_, k) => k);
  const running = machine.run<number>(new URL('./mm-fault-task.js', import.meta.url), args, ids);
  await new Promise((resolve) => setTimeout(resolve, 50));
  Atomics.store(new Int32Array(start), 0, 1);
  Atomics.notify(new Int32Array(start), 0);
  const ms = await running;
  proc.exit();
  const slowest = Math.max(...ms);
  return (cpus * rounds * SCALING_PAGES) / (slowest / 1000);
}

async function measureFaultScaling(report: Report, options: BenchOptions): Promise<void> {
  // The main thread waits for the CPUs: offline, so their grace periods do not wait for it.
  rcuOffline();
  // Each CPU on a host core of its own, as in the lab (src/machine/pin.ts).
  const machine = await Machine.start({ cpus: 2, pinCpus: true });
  try {
    const rounds = options.quick ? 2 : 6;
    // One kernel for every run, its frames touched by the warm-up: like fault.anon_write and the
    // kernel's page_fault1, this measures faults on memory the machine already has. A new kernel
    // per run made its first round pay the host's first touch of each frame (about 2 us a page
    // on this VM, a third of a 6-round run, and it scales worse than the faults themselves).
    const kernel = Kernel.create({ frames: 3 * SCALING_PAGES });
    await faultRate(machine, kernel, 2, 2);
    const one: number[] = [];
    const two: number[] = [];
    for (let i = 0; i < (options.quick ? 1 : 3); i++) {
      one.push(await faultRate(machine, kernel, 1, rounds));
      two.push(await faultRate(machine, kernel, 2, rounds));
    }
    one.sort((x, y) => x - y);
    two.sort((x, y) => x - y);
    const r1 = one[one.length >> 1];
    const r2 = two[two.length >> 1];
    report.add('fault.pages_1cpu.mops', r1 / 1e6, 'Mops/s');
    report.add('fault.pages_2cpu.mops', r2 / 1e6, 'Mops/s', 'fault.pages_1cpu.mops');
    // Against the kernel's own scaling on this machine (memory bandwidth, the hypervisor):
    // a ratio of 1 means vmspace scales as well as Linux does here.
    report.add('fault.scaling_2cpu.ratio', r2 / r1, 'ratio', 'linux.scaling_2cpu.ratio');
    kernel.mem.drainAll();
    if (kernel.counts().frames !== 0) throw new Error('bench fault.scaling_2cpu leaked frames');
  } finally {
    await machine.stop();
    rcuOnline();
  }
}

const COW_PAGES = (16 << 20) / P;

/** A copy-on-write fault per page after fork, through the parent's Mmu: the median round. */
function measureCowAfterFork(report: Report, options: BenchOptions): void {
  const kernel = Kernel.create({ frames: 3 * COW_PAGES });
  const round = (): number => {
    const parent = Process.create(kernel);
    const mmu = parent.mm.mmu();
    const addr = parent.mm.sysMmap(0, COW_PAGES * P, RW, ANON, -1, 0);
    if (addr < 0) throw new Error(`mmap failed: ${addr}`);
    for (let i = 0; i < COW_PAGES; i++) mmu.store8(addr + i * P, 1);
    const child = parent.fork();
    const t0 = performance.now();
    for (let i = 0; i < COW_PAGES; i++) mmu.store8(addr + i * P, 2);
    const ns = ((performance.now() - t0) * 1e6) / COW_PAGES;
    child.exit();
    parent.exit();
    parent.detach();
    rcuQuiescent();
    return ns;
  };
  for (let i = 0; i < (options.quick ? 1 : 2); i++) round();
  const times: number[] = [];
  for (let i = 0; i < (options.quick ? 3 : 9); i++) times.push(round());
  times.sort((x, y) => x - y);
  report.add('fault.cow_after_fork.ns', times[times.length >> 1], 'ns', 'linux.cow_after_fork.ns');
  kernel.mem.drainAll();
  if (kernel.counts().frames !== 0) throw new Error('bench cow_after_fork leaked frames');
}

function newSpace(): AddressSpace {
  return new AddressSpace({ index: MapleTree.create({ name: 'bench.vmas', externalLock: 'mmap_lock' }) });
}

async function measureSyscalls(report: Report, options: BenchOptions): Promise<void> {
  const mm = newSpace();
  const mmapMunmap = () => {
    for (let i = 0; i < BATCH; i++) {
      const addr = mm.sysMmap(0, 4 * P, RW, ANON, -1, 0);
      if (addr < 0 || mm.sysMunmap(addr, 4 * P) !== 0) throw new Error(`mmap/munmap failed: ${addr}`);
      rcuQuiescent();
    }
  };
  const ns = await measure(mmapMunmap, BATCH, options);
  report.add('mm.mmap_munmap_16k.ns', ns, 'ns', 'linux.mmap_munmap_16k.ns');

  const area = mm.sysMmap(0, 64 * P, RW, ANON, -1, 0);
  const page = area + 32 * P;
  const splitMerge = () => {
    for (let i = 0; i < BATCH; i++) {
      if (mm.sysMprotect(page, P, PROT_READ) !== 0 || mm.sysMprotect(page, P, RW) !== 0) {
        throw new Error('mprotect failed');
      }
      rcuQuiescent();
    }
  };
  report.add(
    'mm.mprotect_split_merge.ns',
    await measure(splitMerge, 2 * BATCH, options),
    'ns',
    'linux.mprotect_split_merge.ns',
  );
  if (mm.vmas().length !== 1) throw new Error('mprotect back to RW did not merge the VMA again');
  mm.sysMunmap(area, 64 * P);

  const window = mm.sysMmap(0, 64 * P, RW, ANON, -1, 0);
  mm.sysMunmap(window, 64 * P);
  const a = mm.sysMmap(window, 4 * P, RW, ANON | MAP_FIXED, -1, 0);
  const b = window + 32 * P;
  const moveBack = () => {
    for (let i = 0; i < BATCH; i++) {
      if (mm.sysMremap(a, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, b) !== b)
        throw new Error('mremap failed');
      if (mm.sysMremap(b, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, a) !== a)
        throw new Error('mremap failed');
      rcuQuiescent();
    }
  };
  report.add('mm.mremap_move.ns', await measure(moveBack, 2 * BATCH, options), 'ns', 'linux.mremap_move.ns');
  mm.destroy();
}

async function measureLookup(report: Report, options: BenchOptions): Promise<void> {
  const mm = newSpace();
  const base = 0x100000000;
  // Alternate protections so that neighbours never merge: LOOKUP_VMAS VMAs of 4 pages.
  for (let i = 0; i < LOOKUP_VMAS; i++) {
    const prot = (i & 1) === 0 ? RW : PROT_READ;
    if (mm.sysMmap(base + i * 4 * P, 4 * P, prot, ANON | MAP_FIXED, -1, 0) < 0)
      throw new Error('mmap failed');
  }
  const addresses = new Float64Array(LOOKUP_BATCH);
  let seed = 12345;
  for (let i = 0; i < LOOKUP_BATCH; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    addresses[i] = base + (seed % (LOOKUP_VMAS * 4 * P));
  }
  const lookups = () => {
    for (let i = 0; i < LOOKUP_BATCH; i++) {
      const h = lockVmaUnderRcu(mm, addresses[i]);
      if (h === 0) throw new Error('lookup fell back');
      vmaEndRead(mm.locks, h);
    }
  };
  report.add('mm.vma_lookup_rcu.ns', await measure(lookups, LOOKUP_BATCH, options), 'ns');
  // One VMA per call: a single commit of 1000 erasures asks the tree to preallocate too much.
  for (let i = 0; i < LOOKUP_VMAS; i++) mm.sysMunmap(base + i * 4 * P, 4 * P);
  mm.destroy();
}
