/**
 * The lab's experiments: what each runs on which CPUs, per design. An experiment is one or more
 * phases; a phase gives every CPU taking part a workload (workloads.ts). Experiments on files and
 * the page cache (io-under-lock, queued-writer, inversion) come with issue 11.
 */
import type { Workload } from './workloads.js';

export const EXPERIMENTS = [
  'page_fault1',
  'mmap1',
  'mmap2',
  'fault-scaling',
  'thread-launch',
  'cow',
] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

export interface Phase {
  /** The workload of each CPU taking part (CPU ids 0..roles.length-1). */
  roles: Workload[];
}

export interface Experiment {
  name: ExperimentName;
  title: string;
  /** What it shows, for the report (one paragraph). */
  about: string;
  /** Its phases on a machine of `cpus` CPUs. */
  phases(cpus: number): Phase[];
}

/** What an operation of each workload is, as throughput units. */
export const WORKLOAD_UNITS: Record<Workload, string> = {
  page_fault1: 'faults/s',
  mmap1: 'mmap+munmap/s',
  mmap2: 'mmap+munmap/s',
  'thread-launch': 'launches/s',
  cow: 'cases/s',
};

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
    title: 'will-it-scale mmap2 (anonymous shape): mmap + munmap of 128 MiB shared anonymous memory',
    about:
      'mmap2 maps a separate file per CPU; until files exist (issue 11) each mmap here creates a ' +
      'shared anonymous (shmem) object of 128 MiB, so the mapping carries an object reference as a ' +
      'file mapping does.',
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
