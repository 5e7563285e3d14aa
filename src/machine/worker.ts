/**
 * The entry of one CPU (a worker thread started by Machine). It statically imports only the
 * shared-globals registry: the globals must be adopted before any module that registers one is
 * loaded. Then it fixes its CPU id and runs tasks on request, one at a time:
 *
 *   main -> cpu  { op: 'run', id, task: <module URL>, args }      { op: 'exit' }
 *                { op: 'mms', mms }: the address spaces announced before this CPU's registry channel
 *                opened (src/mm/mm-registry.ts: it is loaded before 'ready')
 *   cpu -> main  { op: 'ready', unpinned }  { op: 'done', id, value }  { op: 'fail', id, name, message, stack }
 *
 * While a task runs synchronously the CPU is RCU-online (it reports its own quiescent states);
 * once the task awaits, and between tasks, it is offline (an extended quiescent state).
 *
 * The lock validator is switched on here when the environment or the main thread says so. When a
 * task's synchronous part ends it must hold no lock (`lockdepAssertNoneHeld('task')`: a CPU must
 * not await while holding one) and be outside every RCU read section.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { attachGlobals } from '../shm/globals.js';

interface CpuData {
  vmspaceCpu: number;
  globals: Record<string, SharedArrayBuffer>;
  /** The host core to pin this thread to, or -1 (Machine's pinCpus). */
  pinCore: number;
}

interface RunMessage {
  op: 'run' | 'exit' | 'mms';
  id: number;
  task: string;
  args: unknown;
  mms?: import('../mm/mm-registry.js').MmRef[];
}

const data = workerData as CpuData;
attachGlobals(data.globals);
const { setCurrentCpu } = await import('../cpu/current.js');
setCurrentCpu(data.vmspaceCpu);
const lockdep = await import('../lockdep/index.js');
lockdep.enableLockdepFromEnv();
const { setCpuStatus, STATUS_IDLE, STATUS_RUNNING } = await import('../cpu/waits.js');
const rcu = await import('../sync/rcu.js');
// Opens this CPU's registry channel before 'ready': every address space announced from now on reaches it.
const registry = await import('../mm/mm-registry.js');
const cpu = data.vmspaceCpu;
const port = parentPort!;
const unpinned = data.pinCore >= 0 ? ((await import('./pin.js')).pinThisThread(data.pinCore) ?? '') : '';

async function runTask(message: RunMessage): Promise<unknown> {
  const module = (await import(message.task)) as { default?: (cpu: number, args: unknown) => unknown };
  if (typeof module.default !== 'function')
    throw new Error(`task module ${message.task} has no default export function`);
  rcu.rcuOnline();
  let result: unknown;
  try {
    result = module.default(cpu, message.args);
  } catch (error) {
    leaveTask(true);
    throw error;
  }
  try {
    leaveTask(false);
  } catch (error) {
    abandon(result);
    throw error;
  }
  return await result;
}

/**
 * The task failed when its synchronous part ended (e.g. it awaited holding a lock): nobody awaits
 * the promise it returned, so a later failure of it is dropped instead of crashing the CPU.
 */
function abandon(result: unknown): void {
  if (result instanceof Promise) result.catch(() => {});
}

/**
 * After a task's synchronous part: the CPU goes idle (RCU-offline). A task that returns inside a
 * read section, or holding a lock (reported by the validator, naming the locks), fails. A task
 * that threw keeps its own error as the report: what it left behind is only cleaned up.
 */
function leaveTask(failed: boolean): void {
  const depth = rcu.rcuCpu.depth;
  rcu.rcuCpu.depth = 0;
  rcu.rcuOffline();
  if (depth === 0) rcu.advanceDeferred();
  if (failed || depth !== 0) {
    lockdep.lockdepForgetHeld();
    if (!failed) throw new Error(`task returned inside ${depth} RCU read section(s)`);
  } else lockdep.lockdepAssertNoneHeld('task');
}

/** Tasks run one after another, even when one awaits. */
let queue: Promise<void> = Promise.resolve();

function report(message: RunMessage): Promise<void> {
  setCpuStatus(cpu, STATUS_RUNNING);
  return runTask(message).then(
    (value) => {
      setCpuStatus(cpu, STATUS_IDLE);
      try {
        port.postMessage({ op: 'done', id: message.id, value });
      } catch (error) {
        fail(message.id, error);
      }
    },
    (error: unknown) => {
      setCpuStatus(cpu, STATUS_IDLE);
      fail(message.id, error);
    },
  );
}

function fail(id: number, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  port.postMessage({ op: 'fail', id, name: e.name, message: e.message, stack: e.stack ?? '' });
}

port.on('message', (message: RunMessage) => {
  if (message.op === 'mms') {
    registry.mmRegistryAdopt(message.mms ?? []);
    return;
  }
  if (message.op === 'exit') {
    queue.then(() => {
      rcu.rcuBarrier();
      port.close();
    });
    return;
  }
  queue = queue.then(() => report(message));
});
setCpuStatus(cpu, STATUS_IDLE);
port.postMessage({ op: 'ready', unpinned });
