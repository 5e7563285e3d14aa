/**
 * The lab's experiments: what each runs on which CPUs, per design. An experiment is one or more
 * phases; a phase gives every CPU taking part a workload (workloads.ts, file-workloads.ts). An
 * experiment may need more worker CPUs than --cpus (queued-writer: 3, one of them asleep in its
 * injected I/O nearly all the time): the runner starts as many as the largest phase has roles.
 */
import type { Workload } from './workloads.js';

export const EXPERIMENTS = [
  'page_fault1',
  'page_fault2',
  'page_fault3',
  'mmap1',
  'mmap2',
  'fault-scaling',
  'thread-launch',
  'cow',
  'io-under-lock',
  'queued-writer',
  'inversion',
] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

export interface Phase {
  /** The workload of each CPU taking part (CPU ids 0..roles.length-1). */
  roles: Workload[];
  /** A baseline phase (the no-I/O case the summary's ratios divide by). */
  baseline?: boolean;
}

export interface Experiment {
  name: ExperimentName;
  title: string;
  /** What it shows, for the report (one paragraph). */
  about: string;
  /** Its phases on a machine of `cpus` CPUs. */
  phases(cpus: number): Phase[];
  /** The workload whose figures the summary shows (default: the first CPU's). */
  headline?: Workload;
  /** The validator's cycle check only warns (a reported cycle is the experiment's finding). */
  warnCycles?: boolean;
}

/** What an operation of each workload is, as throughput units. */
export const WORKLOAD_UNITS: Record<Workload, string> = {
  page_fault1: 'faults/s',
  page_fault2: 'faults/s',
  page_fault3: 'faults/s',
  mmap1: 'mmap+munmap/s',
  mmap2: 'mmap+munmap/s',
  'thread-launch': 'launches/s',
  cow: 'cases/s',
  'io-fault': 'faults/s',
  'io-idle': 'ops/s',
  'cached-fault': 'faults/s',
  'inversion-fault': 'faults/s',
  'inversion-write': 'writes/s',
};

/** Workloads that sleep in injected I/O: their warm-up has no operation floor. */
export const IO_WORKLOADS: ReadonlySet<Workload> = new Set<Workload>([
  'io-fault',
  'io-idle',
  'inversion-fault',
]);

const all = (cpus: number, w: Workload): Workload[] => new Array<Workload>(cpus).fill(w);

export const EXPERIMENT_LIST: readonly Experiment[] = [
  {
    name: 'page_fault1',
    title: 'will-it-scale page_fault1: anonymous write faults',
    about:
      'Every CPU maps its own 32 MiB of anonymous memory, writes one byte per page (one write fault ' +
      'each) and unmaps it, again and again. The faults of different CPUs meet only on mmap_lock: ' +
      'global and retry take it for every fault, vma-lock only for the first fault of a VMA or of ' +
      'a 2 MiB region; mmap and munmap take it for write.',
    phases: (cpus) => [{ roles: all(cpus, 'page_fault1') }],
  },
  {
    name: 'page_fault2',
    title: 'will-it-scale page_fault2: write faults on a private file mapping',
    about:
      'Every CPU maps its own 32 MiB file MAP_PRIVATE, writes one byte per page and unmaps it, ' +
      'again and again: each write fault finds the file page in the page cache (read once, in the ' +
      'first round) and copies it into a new anonymous page. Faults take the same locks as ' +
      'page_fault1 plus the page lock of the cached page.',
    phases: (cpus) => [{ roles: all(cpus, 'page_fault2') }],
  },
  {
    name: 'page_fault3',
    title: 'will-it-scale page_fault3: write faults on a shared file mapping',
    about:
      'Every CPU maps its own 32 MiB file MAP_SHARED, writes one byte per page and unmaps it, ' +
      'again and again: each write fault maps the cached page writable after page_mkwrite, which ' +
      'runs under the VMA lock alone under vma-lock and outside mmap_lock (a retry) under retry.',
    phases: (cpus) => [{ roles: all(cpus, 'page_fault3') }],
  },
  {
    name: 'mmap1',
    title: 'will-it-scale mmap1: mmap + munmap of 128 MiB anonymous memory',
    about:
      'Every CPU maps and unmaps 128 MiB of private anonymous memory in a loop, never touching it: ' +
      'the syscalls are serialised by mmap_lock held for write under every design (the control ' +
      'experiment: no fault is taken).',
    phases: (cpus) => [{ roles: all(cpus, 'mmap1') }],
  },
  {
    name: 'mmap2',
    title: 'will-it-scale mmap2: mmap + munmap of a 128 MiB file, MAP_SHARED',
    about:
      'Every CPU opens its own 128 MiB file and maps and unmaps all of it MAP_SHARED in a loop, ' +
      'never touching it: each mmap links the VMA into the file’s i_mmap and takes a file ' +
      'reference, each munmap undoes both; mmap_lock is held for write under every design.',
    phases: (cpus) => [{ roles: all(cpus, 'mmap2') }],
  },
  {
    name: 'fault-scaling',
    title: 'Fault scaling on disjoint VMAs, 1..N CPUs',
    about:
      'page_fault1 on 1, 2, ... N CPUs of one process, each CPU on its own VMAs: the ideal is N ' +
      'times the one-CPU rate. Under global and retry every fault takes mmap_lock for read (a ' +
      'shared cache line written by every fault of every CPU); vma-lock takes only the VMA lock.',
    phases: (cpus) => Array.from({ length: cpus }, (_, i) => ({ roles: all(i + 1, 'page_fault1') })),
  },
  {
    name: 'thread-launch',
    title: 'thread-launch: new stacks mapped while other CPUs fault',
    about:
      'CPU 0 starts threads: it maps a 256 KiB stack (MAP_GROWSDOWN | MAP_STACK), touches its top ' +
      '8 pages and unmaps it; the other CPUs run page_fault1 meanwhile. Each mmap and munmap holds ' +
      'mmap_lock for write: under global and retry every fault of the other CPUs waits for it, under ' +
      'vma-lock only faults on the VMAs being changed do (the Android case per-VMA locks sped up).',
    phases: (cpus) => [{ roles: ['thread-launch', ...all(cpus - 1, 'page_fault1')] }],
  },
  {
    name: 'io-under-lock',
    title: 'io-under-lock: mmap/munmap beside a fault waiting for a slow device',
    about:
      'CPU 0 faults random pages of a 128 MiB file on a slow device (10 ms injected into every ' +
      'fault’s read); CPU 1 maps and unmaps 128 MiB in a loop in the same address space. Under ' +
      'global the fault holds mmap_lock (R) across its I/O and every mmap or munmap waits for it ' +
      '(Lespinasse, 2010: 55 iterations/s); retry and vma-lock drop their locks for the I/O ' +
      '(15,000/s). The baseline phase runs the loop beside the same file mapped, the pages the ' +
      'fault would read already read, and CPU 0 asleep (io-idle): "kept" is the loop’s rate beside ' +
      'the I/O over its rate in the same address space without it.',
    headline: 'mmap1',
    phases: () => [{ roles: ['io-idle', 'mmap1'], baseline: true }, { roles: ['io-fault', 'mmap1'] }],
  },
  {
    name: 'queued-writer',
    title: 'queued-writer: cached faults behind a writer queued behind a fault doing I/O',
    about:
      'CPU 0 takes minor faults on a cached file (measured); CPU 1 maps and unmaps in a loop (a ' +
      'writer of mmap_lock); CPU 2 faults a slow file (10 ms of I/O per fault), asleep nearly all ' +
      'the time, so three worker CPUs fit on two cores. Under global CPU 1’s mmap queues behind ' +
      'CPU 2’s fault and CPU 0’s faults queue behind the writer (Bacik, 2018: the rwsem becomes a ' +
      'mutex): its p99 becomes the I/O time. The baseline phase runs CPU 0 alone.',
    headline: 'cached-fault',
    phases: () => [
      { roles: ['cached-fault'], baseline: true },
      { roles: ['cached-fault', 'mmap1', 'io-fault'] },
    ],
  },
  {
    name: 'inversion',
    title: 'inversion: a fault that takes i_rwsem, and a write() that faults in its buffer',
    about:
      'CPU 0 writes 64 KiB into a file from a freshly mapped buffer (the copy faults under the ' +
      'file’s i_rwsem: i_rwsem -> mmap_lock); CPU 1 faults pages of a file whose fault callback ' +
      'takes the file’s i_rwsem (Jan Kara’s pattern). Under global the callback runs under ' +
      'mmap_lock (mmap_lock -> i_rwsem): the validator reports the circular dependency with both ' +
      'stacks from a run that did not deadlock. Retry and vma-lock run the callback with no lock ' +
      'held: no report. The dependency graph starts empty for every phase.',
    headline: 'inversion-write',
    warnCycles: true,
    phases: () => [{ roles: ['inversion-write', 'inversion-fault'] }],
  },
  {
    name: 'cow',
    title: 'cow.c: the copy-on-write scenarios per design',
    about:
      'The 14 anonymous base-page cases of Linux’s cow.c (fork, the vmsplice analogue, R/W and R/O ' +
      'longterm pins, mprotect), run in turn on every CPU in new processes under the design. The ' +
      'designs differ only in locking: every case must hold under each.',
    phases: (cpus) => [{ roles: all(cpus, 'cow') }],
  },
];

export function experimentNamed(name: string): Experiment | undefined {
  return EXPERIMENT_LIST.find((e) => e.name === name);
}
