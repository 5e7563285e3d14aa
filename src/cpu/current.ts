/**
 * Which CPU this thread is. Every worker a `Machine` starts is one CPU with a stable id 0..N-1;
 * the main thread is CPU `MAIN_CPU` (the last slot of every per-CPU table), so single-threaded
 * code (the replayer, unit tests) can use locks and RCU too.
 *
 * The id is fixed before any task module loads: the worker entry calls `setCurrentCpu` right after
 * adopting the shared globals (a worker started by a `Machine` also finds it in `workerData`).
 */
import { isMainThread, workerData } from 'node:worker_threads';

/** Capacity of every per-CPU table (lock statistics, RCU states, wait words). */
export const MAX_CPUS = 64;

/** The main thread's CPU id; worker CPUs are 0..MAX_CPUS-2. */
export const MAIN_CPU = MAX_CPUS - 1;

/** Most worker CPUs a Machine may start (the main thread keeps the last slot). */
export const MAX_WORKER_CPUS = MAX_CPUS - 1;

let cpu = initialCpu();

function initialCpu(): number {
  if (isMainThread) return MAIN_CPU;
  const id = (workerData as { vmspaceCpu?: unknown } | null)?.vmspaceCpu;
  return typeof id === 'number' ? id : -1;
}

/** This thread's CPU id. */
export function currentCpu(): number {
  return cpu;
}

/** Called once by the worker entry before any task module is imported. */
export function setCurrentCpu(id: number): void {
  if (!(Number.isInteger(id) && id >= 0 && id < MAX_WORKER_CPUS)) {
    throw new RangeError(`cpu id ${id} is not in 0..${MAX_WORKER_CPUS - 1}`);
  }
  if (isMainThread) throw new Error('the main thread is always CPU MAIN_CPU');
  cpu = id;
}

/** Throws when this thread has no CPU id (a worker that no Machine started). */
export function assertCpu(): number {
  if (cpu < 0) throw new Error('this worker is not a vmspace CPU: start it with Machine.start()');
  return cpu;
}
