/**
 * Task: vmsplice from a CPU whose Mmu is online while another CPU of the same process unmaps
 * (test/mm/cow-cpus.test.ts). One process, attached on both CPUs:
 *
 *   splicer (CPU 0)   loads the spliced page through its Mmu (online), then splices it into a pipe
 *                     and closes the pipe, over and over: each splice takes mmap_lock (R)
 *   unmapper (CPU 1)  maps, touches and unmaps a page of its own: each munmap holds mmap_lock (W)
 *                     and shoots down every CPU's TLB, the splicer's included
 *
 * The splice must take the splicer's Mmu offline before it may block on mmap_lock, or the two
 * wait for each other (until the watchdog). Both go on until the splicer did SPLICES and the
 * unmapper UNMAPS, or LIMIT_MS passed.
 *
 *   sync (Int32): READY (CPUs started) | DONE (the splicer stopped) | UNMAPS (the unmapper's count)
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { Pipe } from '../../../src/mm/pipe.js';
import { rcuQuiescent } from '../../../src/sync/rcu.js';
import { ANON, BASE, P, RW, wordOf } from '../cow-fixture.js';

export const SPLICES = 1000;
export const UNMAPS = 200;
const LIMIT_MS = 5000;
/** The page the splicer splices is filled with this seed; the unmapper's page lies past it. */
export const SEED = 7;
const SCRATCH = BASE + 64 * P;

const READY = 0;
const DONE = 1;
const COUNT = 2;

export interface SpliceRaceArgs {
  role: 'splicer' | 'unmapper';
  process: ProcessDescriptor;
  sync: SharedArrayBuffer;
}

/** Returns the splices or unmaps this CPU did. */
export default function run(_cpu: number, args: SpliceRaceArgs): number {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, READY, 1);
  for (let spins = 0; Atomics.load(sync, READY) < 2; spins++) {
    if (spins > 1e8) throw new Error('the other CPU did not start');
  }
  try {
    return args.role === 'splicer' ? splicer(proc, sync) : unmapper(proc, sync);
  } finally {
    Atomics.store(sync, DONE, 1);
    proc.detach();
  }
}

function splicer(proc: Process, sync: Int32Array): number {
  const mmu = proc.mm.mmu();
  const deadline = Date.now() + LIMIT_MS;
  let n = 0;
  while ((n < SPLICES || Atomics.load(sync, COUNT) < UNMAPS) && Date.now() < deadline) {
    if (mmu.load32(BASE) !== wordOf(SEED, 0)) throw new Error('the spliced page changed');
    const pipe = new Pipe(proc.kernel.mem);
    const r = pipe.spliceFrom(proc.mm, BASE, P);
    if (r !== P) throw new Error(`vmsplice: ${r}`);
    const head = pipe.read(4);
    pipe.close();
    if (new DataView(head.buffer).getInt32(0, true) !== wordOf(SEED, 0)) throw new Error('the pipe');
    n++;
    rcuQuiescent();
  }
  return n;
}

function unmapper(proc: Process, sync: Int32Array): number {
  const mmu = proc.mm.mmu();
  let n = 0;
  while (Atomics.load(sync, DONE) === 0) {
    proc.mm.mmap(SCRATCH, P, RW, ANON);
    mmu.store32(SCRATCH, n);
    proc.mm.munmap(SCRATCH, P);
    n++;
    Atomics.store(sync, COUNT, n);
    rcuQuiescent();
  }
  return n;
}
