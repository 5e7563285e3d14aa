/**
 * The entry of one CPU (a worker thread started by Machine). It statically imports only the
 * shared-globals registry: the globals must be adopted before any module that registers one is
 * loaded. Then it fixes its CPU id and runs tasks on request, one at a time:
 *
 *   main -> cpu  { op: 'run', id, task: <module URL>, args }      { op: 'exit' }
 *   cpu -> main  { op: 'ready' }  { op: 'done', id, value }  { op: 'fail', id, name, message, stack }
 *
 * While a task runs synchronously the CPU is RCU-online (it reports its own quiescent states);
 * once the task awaits, and between tasks, it is offline (an extended quiescent state).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { attachGlobals } from '../shm/globals.js';

interface CpuData {
  vmspaceCpu: number;
  globals: Record<string, SharedArrayBuffer>;
}

interface RunMessage {
  op: 'run' | 'exit';
  id: number;
  task: string;
  args: unknown;
}

const data = workerData as CpuData;
attachGlobals(data.globals);
const { setCurrentCpu } = await import('./current.js');
setCurrentCpu(data.vmspaceCpu);
const { setCpuStatus, STATUS_IDLE, STATUS_RUNNING } = await import('./waits.js');
const rcu = await import('../sync/rcu.js');
const cpu = data.vmspaceCpu;
const port = parentPort!;

async function runTask(message: RunMessage): Promise<unknown> {
  const module = (await import(message.task)) as { default?: (cpu: number, args: unknown) => unknown };
  if (typeof module.default !== 'function')
    throw new Error(`task module ${message.task} has no default export function`);
  rcu.rcuOnline();
  let result: unknown;
  try {
    result = module.default(cpu, message.args);
  } finally {
    leaveTask();
  }
  return await result;
}

/** A task must not leave a read section open; the CPU goes idle (RCU-offline). */
function leaveTask(): void {
  const depth = rcu.rcuCpu.depth;
  if (depth !== 0) {
    rcu.rcuCpu.depth = 0;
    rcu.rcuOffline();
    throw new Error(`task returned inside ${depth} RCU read section(s)`);
  }
  rcu.rcuOffline();
  rcu.advanceDeferred();
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
port.postMessage({ op: 'ready' });
