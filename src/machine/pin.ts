/**
 * Pinning a CPU's worker thread to one host core (Linux: `taskset` on the thread's id).
 *
 * Why: a vmspace CPU is a worker thread the host schedules wherever it likes. When one CPU wakes
 * another (a lock handed off, a futex notify), the host may run the woken thread on the waker's
 * core and preempt the waker there (wake-affine placement, then wakeup preemption of a thread that
 * slept long). On a real machine one CPU's release never preempts that CPU. The lab measures
 * exactly such hand-offs: unpinned, `global`'s faulting CPU lost its core for a whole host time
 * slice (about 3 ms) right after each release of mmap_lock, and the mapper ran freely meanwhile
 * (4,000-10,000 mmap+munmap/s where a CPU of its own gives 60-160/s, Lespinasse's 55).
 *
 * Pinned, CPU i runs on host core i mod cores: with no more CPUs than cores each has a core of
 * its own. Best effort: where the host cannot pin (not Linux, no taskset, not permitted), the CPU
 * runs unpinned and says why.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** The host core CPU `cpu` is pinned to. */
export function coreOf(cpu: number): number {
  return cpu % availableParallelism();
}

/** Pins the calling thread to host core `core`: null, or why it could not. */
export function pinThisThread(core: number): string | null {
  if (process.platform !== 'linux') return `pinning needs Linux, not ${process.platform}`;
  try {
    // '/proc/thread-self' names this thread: '<pid>/task/<tid>'.
    const tid = readlinkSync('/proc/thread-self').split('/').pop() ?? '';
    if (!/^\d+$/.test(tid)) return `no thread id in /proc/thread-self (${tid})`;
    execFileSync('taskset', ['-p', '-c', String(core), tid], { stdio: 'ignore', timeout: 5000 });
    return null;
  } catch (error) {
    return `taskset failed: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** The host cores the calling thread may run on (Linux; null elsewhere), e.g. '1' or '0-1'. */
export function allowedCores(): string | null {
  if (process.platform !== 'linux') return null;
  try {
    const status = readFileSync('/proc/thread-self/status', 'utf8');
    return /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? null;
  } catch {
    return null;
  }
}
