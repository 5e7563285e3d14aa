/**
 * Task: file-layer work on a CPU (test/fs/open-file.test.ts, test/fs/inject.test.ts).
 *
 *   inject  calls injectOp(op) `rounds` times on a file: returns how many came back -EIO
 *   pos     through descriptor `fd` of the process: `rounds` times take the f_pos lock, read the
 *           position, spin a little, store it + 1, unlock (a lost update shows in the total)
 *   close   closes descriptor `fd` of the process (maybe the file's last reference)
 *
 * Every role waits on `sync` word 0 until `cpus` CPUs arrived, so they start together.
 */
import { EIO } from '../../../src/errno.js';
import { injectOp } from '../../../src/fs/inject.js';
import { Kernel, type KernelDescriptor } from '../../../src/kernel/kernel.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';

export interface FsCpuArgs {
  role: 'inject' | 'pos' | 'close';
  kernel?: KernelDescriptor;
  process?: ProcessDescriptor;
  file?: number;
  op?: number;
  fd?: number;
  rounds: number;
  cpus: number;
  sync: SharedArrayBuffer;
}

export interface FsCpuResult {
  /** inject: calls that returned -EIO; pos: updates made. */
  count: number;
  error: string;
}

export default function run(_cpu: number, args: FsCpuArgs): FsCpuResult {
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < args.cpus) {
    // Start together.
  }
  try {
    if (args.role === 'inject') return { count: inject(args), error: '' };
    const proc = Process.attach(args.process!);
    try {
      if (args.role === 'pos') return { count: bumpPos(proc, args.fd!, args.rounds), error: '' };
      proc.close(args.fd!);
      return { count: 1, error: '' };
    } finally {
      proc.detach();
    }
  } catch (error) {
    return { count: -1, error: String((error as Error).stack ?? error) };
  }
}

function inject(args: FsCpuArgs): number {
  const kernel = Kernel.attach(args.kernel!);
  let failed = 0;
  for (let i = 0; i < args.rounds; i++) {
    const r = injectOp(kernel.files, args.file!, args.op!);
    if (r === -EIO) failed++;
    else if (r !== 0) throw new Error(`injectOp returned ${r}`);
  }
  return failed;
}

function bumpPos(proc: Process, fd: number, rounds: number): number {
  const opens = proc.fds.opens;
  const of = proc.fds.fgetOpen(fd);
  if (of === 0) throw new Error(`descriptor ${fd} is not open`);
  let sink = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      opens.lockPos(of);
      const pos = opens.pos(of);
      for (let k = 0; k < 50; k++) sink += k; // widen the window a lost update needs
      opens.setPos(of, pos + 1 + (sink & 0));
      opens.unlockPos(of);
    }
  } finally {
    opens.put(of);
  }
  return rounds;
}
