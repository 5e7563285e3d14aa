/**
 * Task: one CPU of the all-designs stress (test/kernel/designs-stress.ts). Attaches the shared
 * process, opens its own host file and a memfd, publishes their file ids, and runs the seeded
 * workload of designs-workload.ts on its lane until STOP, counting each op in OPS[lane] (the
 * driver's watchdog reads it). At a checkpoint request it checks its lane and files whole, then
 * acknowledges with its Mmu offline and waits outside RCU until the driver resumes it. At the end:
 * the lane and files checked once more, then the host files after fsync.
 */
import { O_RDWR } from '../../../src/fs/open-file.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { mmapWriteLock, mmapWriteUnlock } from '../../../src/mm/vma-lock.js';
import { rcuBlockBegin, rcuBlockEnd, rcuQuiescent } from '../../../src/sync/rcu.js';
import { Workload, type WorkloadCounts } from '../designs-workload.js';

/** Control words (Int32). */
export const C_STOP = 0;
export const C_PAUSE = 1;
export const C_ERRORS = 2;
export const C_READY = 3;
export const C_PAUSED = 4;
export const C_OPS = 8;
export const C_DONE = 12;
/** Per lane: the ids of its own host file and memfd. */
export const C_FILE_IDS = 16;
/** Per lane: the selector of the op it runs (designs-workload.ts, step). */
export const C_DOING = 24;
export const CONTROL_WORDS = 28;

export interface DesignsCpuArgs {
  process: ProcessDescriptor;
  control: SharedArrayBuffer;
  lane: number;
  lanes: number;
  seed: number;
  sharedFd: number;
  ownPath: string;
  sharedPath: string;
  /** Bound on every wait of this task (start, pause). */
  giveUpMs: number;
  /** Bound on the whole run: the driver stops the CPUs long before. */
  limitMs: number;
  /** The watchdog's own test: after this many steps, hold mmap_lock for write for stallMs. */
  stallAfter?: number;
  stallMs?: number;
}

export interface DesignsCpuResult {
  counts: WorkloadCounts | null;
  steps: number;
  pauses: number;
  error: string;
}

export default function run(_cpu: number, args: DesignsCpuArgs): DesignsCpuResult {
  const proc = Process.attach(args.process);
  const ctl = new Int32Array(args.control);
  const res: DesignsCpuResult = { counts: null, steps: 0, pauses: 0, error: '' };
  const lane = args.lane;
  try {
    const own = proc.open(args.ownPath, O_RDWR);
    const memfd = proc.memfdCreate(`lane-${lane}`);
    const fds = [own, memfd, args.sharedFd];
    const ids = fds.map((fd) => fileId(proc, fd));
    Atomics.store(ctl, C_FILE_IDS + 2 * lane, ids[0]);
    Atomics.store(ctl, C_FILE_IDS + 2 * lane + 1, ids[1]);
    const w = new Workload(proc, lane, args.seed, {
      fds,
      ids,
      ownPath: args.ownPath,
      sharedPath: args.sharedPath,
      ownTag: lane,
      sharedTag: MAX_TAG,
    });
    res.counts = w.counts;
    w.doing = { words: ctl, at: C_DOING + lane };
    w.start();
    proc.mm.mmuOffline();
    Atomics.add(ctl, C_READY, 1);
    waitWhile(ctl, () => Atomics.load(ctl, C_READY) < args.lanes, args.giveUpMs, 'the other CPUs to start');
    loop(w, proc, ctl, args, res);
    w.checkAll();
    w.checkHostFiles();
  } catch (error) {
    res.error = `cpu lane ${lane}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    Atomics.add(ctl, C_ERRORS, 1);
    // Also on stderr: a lock the error left held makes the machine replace this result.
    console.error(res.error);
  } finally {
    proc.mm.mmuOffline();
    proc.detach();
    Atomics.store(ctl, C_DONE + lane, 1);
  }
  return res;
}

/** The tag of the shared host file's initial pattern (lanes use their own number). */
export const MAX_TAG = 100;

function loop(
  w: Workload,
  proc: Process,
  ctl: Int32Array,
  args: DesignsCpuArgs,
  res: DesignsCpuResult,
): void {
  const limit = Date.now() + args.limitMs;
  let paused = 0;
  for (let n = 1; Atomics.load(ctl, C_STOP) === 0 && Atomics.load(ctl, C_ERRORS) === 0; n++) {
    const pause = Atomics.load(ctl, C_PAUSE);
    if (pause !== 0 && pause !== paused) {
      w.checkAll();
      pauseUntilResumed(proc, ctl, args, pause);
      paused = pause;
      res.pauses++;
    }
    if (n === args.stallAfter) stall(proc, args.stallMs ?? 0);
    w.step();
    res.steps++;
    Atomics.add(ctl, C_OPS + args.lane, 1);
    if ((n & 15) === 0) {
      rcuQuiescent();
      if (Date.now() > limit) throw new Error(`not stopped within ${args.limitMs} ms`);
    }
  }
}

function pauseUntilResumed(proc: Process, ctl: Int32Array, args: DesignsCpuArgs, pause: number): void {
  proc.mm.mmuOffline();
  Atomics.store(ctl, C_PAUSED + args.lane, pause);
  Atomics.notify(ctl, C_PAUSED + args.lane);
  const wasOnline = rcuBlockBegin();
  try {
    const resumed = () => Atomics.load(ctl, C_PAUSE) !== pause || Atomics.load(ctl, C_STOP) !== 0;
    waitWhile(ctl, () => !resumed(), args.giveUpMs, `checkpoint ${pause} to end`);
  } finally {
    rcuBlockEnd(wasOnline);
  }
}

/** A stuck CPU for the watchdog's test: mmap_lock held for write over a sleep. */
function stall(proc: Process, ms: number): void {
  proc.mm.mmuOffline();
  mmapWriteLock(proc.mm.locks);
  // Asleep as a blocked CPU is: outside RCU, so only the lock holds the others up.
  const wasOnline = rcuBlockBegin();
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  } finally {
    rcuBlockEnd(wasOnline);
    mmapWriteUnlock(proc.mm.locks);
  }
}

/** The file id behind `fd` (the descriptor keeps it alive). */
function fileId(proc: Process, fd: number): number {
  const id = proc.fds.fget(fd);
  if (id === 0) throw new Error(`fd ${fd} is not open`);
  proc.kernel.files.put(id);
  return id;
}

function waitWhile(ctl: Int32Array, busy: () => boolean, giveUpMs: number, what: string): void {
  const deadline = Date.now() + giveUpMs;
  while (busy()) {
    if (Date.now() > deadline) throw new Error(`waited more than ${giveUpMs} ms for ${what}`);
    Atomics.wait(ctl, C_PAUSE, Atomics.load(ctl, C_PAUSE), 5);
  }
}
