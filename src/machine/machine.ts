/**
 * Machine: N worker threads acting as CPUs with stable ids 0..N-1 over the same shared state.
 * `run` executes the default export of a task module on all or some CPUs and gathers the results;
 * a CPU whose task throws rejects the run with its id and remote stack (fail fast: the first error
 * wins). Every blocking wait on every CPU is bounded by the watchdog limit: a CPU stuck on a lock or
 * a grace period throws a report of what each CPU waits on, instead of hanging.
 *
 * Globals: the CPUs share every global (src/shm/globals.ts) registered on the main thread before
 * `start`: import the modules that register globals before starting (this module imports the
 * locks' and the lock validator's). Each CPU switches the validator on when the environment
 * (VMSPACE_LOCKDEP) or the main thread (`enableLockdep()`) says so, and checks that a task
 * returns holding no lock.
 *
 *   const machine = await Machine.start({ cpus: 2 });
 *   const sums = await machine.run<number>(new URL('./task.js', import.meta.url), { n: 1000 });
 *   await machine.stop();
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import '../lockdep/index.js';
import { describeGlobals } from '../shm/globals.js';
import '../sync/lockstat.js';
import '../sync/rcu.js';
import { MAX_WORKER_CPUS } from '../cpu/current.js';
import { STATUS_ABSENT, setCpuStatus, setWaitLimitMs } from '../cpu/waits.js';
import { mmRegistrySnapshot } from '../mm/mm-registry.js';
import { coreOf } from './pin.js';

export interface MachineOptions {
  cpus: number;
  /** Longest any single blocking wait may last before the waiting CPU fails (default 10 s). */
  watchdogMs?: number;
  /**
   * Pin CPU i's thread to host core i mod cores (pin.ts: why the lab does), best effort; `pinned`
   * says whether every CPU was. Default false: the host places the threads.
   */
  pinCpus?: boolean;
}

/** A task's error, rethrown on the main thread. */
export class CpuError extends Error {
  readonly cpu: number;
  readonly remoteName: string;
  readonly remoteStack: string;
  constructor(cpu: number, name: string, message: string, stack: string) {
    super(`cpu ${cpu}: ${message}`);
    this.name = 'CpuError';
    this.cpu = cpu;
    this.remoteName = name;
    this.remoteStack = stack;
    this.stack = `CpuError: cpu ${cpu}: ${stack}`;
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface CpuMessage {
  op: 'ready' | 'done' | 'fail';
  id: number;
  /** 'ready': why the CPU could not be pinned as asked ('' when it was, or was not asked). */
  unpinned?: string;
  value?: unknown;
  name?: string;
  message?: string;
  stack?: string;
}

export const DEFAULT_WATCHDOG_MS = 10_000;

export class Machine {
  readonly cpus: number;
  readonly watchdogMs: number;
  /** Whether pinning was asked for. */
  readonly pinCpus: boolean;
  /** Why some CPU is not pinned as asked (the first CPU's reason), or '' when all are. */
  unpinned = '';
  private readonly workers: Worker[] = [];
  private readonly pending: Map<number, Pending>[] = [];
  /** Resolves when that CPU's worker has exited (for whatever reason). */
  private readonly exits: Promise<void>[] = [];
  /** Why that CPU is gone (crashed or exited), once it is. */
  private readonly gone: (CpuError | undefined)[] = [];
  private nextId = 1;
  private stopped = false;

  static async start(options: MachineOptions): Promise<Machine> {
    const machine = new Machine(options);
    await machine.boot();
    return machine;
  }

  private constructor(options: MachineOptions) {
    if (!(Number.isInteger(options.cpus) && options.cpus >= 1 && options.cpus <= MAX_WORKER_CPUS)) {
      throw new RangeError(`EINVAL: a machine has 1..${MAX_WORKER_CPUS} cpus, not ${options.cpus}`);
    }
    const watchdogMs = options.watchdogMs ?? DEFAULT_WATCHDOG_MS;
    if (!(Number.isInteger(watchdogMs) && watchdogMs > 0))
      throw new RangeError(`EINVAL: watchdogMs ${watchdogMs}`);
    this.cpus = options.cpus;
    this.watchdogMs = watchdogMs;
    this.pinCpus = options.pinCpus ?? false;
  }

  /** Every CPU's thread runs on its own host core as asked (pinCpus, and the host could). */
  get pinned(): boolean {
    return this.pinCpus && this.unpinned === '';
  }

  private async boot(): Promise<void> {
    setWaitLimitMs(this.watchdogMs);
    const globals = describeGlobals();
    const ready: Promise<void>[] = [];
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      const worker = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: { vmspaceCpu: cpu, globals, pinCore: this.pinCpus ? coreOf(cpu) : -1 },
      });
      this.workers.push(worker);
      this.exits.push(new Promise((exited) => worker.once('exit', () => exited())));
      this.pending.push(new Map());
      ready.push(this.wire(worker, cpu));
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      await this.terminate();
      throw error;
    }
    // Every CPU's registry channel is open now: what was announced before reaches it this way.
    const mms = mmRegistrySnapshot();
    for (const worker of this.workers) worker.postMessage({ op: 'mms', mms });
  }

  /** Routes a CPU's messages; resolves when the CPU is ready. */
  private wire(worker: Worker, cpu: number): Promise<void> {
    return new Promise((ready, failed) => {
      worker.on('message', (m: CpuMessage) => {
        if (m.op === 'ready') {
          if (m.unpinned && this.unpinned === '') this.unpinned = `cpu ${cpu}: ${m.unpinned}`;
          return ready();
        }
        const waiter = this.pending[cpu].get(m.id);
        if (!waiter) return;
        this.pending[cpu].delete(m.id);
        if (m.op === 'done') waiter.resolve(m.value);
        else waiter.reject(new CpuError(cpu, m.name ?? 'Error', m.message ?? '', m.stack ?? ''));
      });
      worker.on('error', (error: Error) => {
        const e = new CpuError(cpu, error.name, `crashed: ${error.message}`, error.stack ?? '');
        this.gone[cpu] = e;
        failed(e);
        this.failAll(cpu, e);
      });
      worker.on('exit', (code) => {
        setCpuStatus(cpu, STATUS_ABSENT);
        const e = new CpuError(cpu, 'Error', `exited (code ${code}) with tasks pending`, '');
        this.gone[cpu] ??= e;
        failed(e);
        this.failAll(cpu, e);
      });
    });
  }

  private failAll(cpu: number, error: Error): void {
    for (const waiter of this.pending[cpu].values()) waiter.reject(error);
    this.pending[cpu].clear();
  }

  /**
   * Runs `task`'s default export `(cpu, args) => T | Promise<T>` on each CPU of `cpus` (default:
   * all) at once; resolves with the results in the order of `cpus`.
   */
  run<T>(task: URL | string, args?: unknown, cpus?: number[]): Promise<T[]> {
    if (this.stopped) return Promise.reject(new Error('EINVAL: the machine is stopped'));
    const href =
      task instanceof URL ? task.href : /^(file|data):/.test(task) ? task : pathToFileURL(resolve(task)).href;
    const targets = cpus ?? Array.from({ length: this.cpus }, (_, i) => i);
    for (const cpu of targets) {
      if (!(Number.isInteger(cpu) && cpu >= 0 && cpu < this.cpus)) {
        return Promise.reject(new RangeError(`EINVAL: cpu ${cpu} is not in 0..${this.cpus - 1}`));
      }
    }
    return Promise.all(targets.map((cpu) => this.runOn<T>(cpu, href, args)));
  }

  private runOn<T>(cpu: number, task: string, args: unknown): Promise<T> {
    const gone = this.gone[cpu];
    if (gone) return Promise.reject(gone);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending[cpu].set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.workers[cpu].postMessage({ op: 'run', id, task, args });
    });
  }

  /**
   * Lets every CPU finish its queued tasks and its deferred RCU frees, then ends the workers; a CPU
   * that does not exit within the watchdog limit is terminated.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const worker of this.workers) worker.postMessage({ op: 'exit' });
    const timer = setTimeout(() => this.terminate(), this.watchdogMs);
    await Promise.all(this.exits);
    clearTimeout(timer);
  }

  private async terminate(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
