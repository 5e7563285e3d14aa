/**
 * Task (test/fs/inode-cpus.test.ts): opens of one host file by separate processes on separate
 * CPUs, which the inode hash must resolve to one file record (docs/fs.md, "Opening files").
 *
 *   - `open`: meet the other CPUs at the barrier, open `path`, map it MAP_SHARED (and
 *     MAP_PRIVATE) whole; returns the descriptor, the record and the mappings (left in place).
 *   - `opens`: `rounds` times: meet the others, open `path`.r (a file nobody opened yet: every CPU
 *     races to make its record), store the record's id in `ids[cpu * rounds + r]`, meet again, close.
 *   - `race`: `rounds` times: open `path` O_RDWR, read this CPU's word (word `cpu` of page 0) and
 *     compare it with the value this CPU wrote last (a mismatch is stale), write the next value by
 *     pwrite or by a store through a MAP_SHARED mapping that outlives the descriptor (munmap is then
 *     the last put: the delayed fput), seeded per CPU, close. Both CPUs' words share a page, so two records of the
 *     file, or an open that revived a record being released, or one that read the host file before
 *     the dying record wrote its page back, would lose a value.
 *   - `read`: open `path` O_RDONLY, raise `sync[OPENED]`, pread word 0; returns it and the record.
 */
import { O_RDONLY, O_RDWR } from '../../../src/fs/open-file.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';
import { Rng } from '../../../src/rng.js';

const P = 4096;
const RW = PROT_READ | PROT_WRITE;
/** sync words: ARRIVALS (the barrier's), OPENED (raised by `read` once it opened). */
const ARRIVALS = 0;
export const OPENED = 1;
/** Longest a barrier waits for the other CPUs (ms). */
const BARRIER_MS = 10_000;

export interface InodeTaskArgs {
  mode: 'open' | 'opens' | 'race' | 'read';
  process: ProcessDescriptor;
  path: string;
  /** open(2) flags (`open`). */
  flags: number;
  /** Pages of the file to map (`open`). */
  pages: number;
  /** CPUs meeting at the barrier. */
  cpus: number;
  rounds: number;
  /** `race`: picks pwrite or a mapping per round (CPU cpu draws from seed + cpu). */
  seed: number;
  /** Int32 words: ARRIVALS, OPENED. */
  sync: SharedArrayBuffer;
  /** `opens`: Int32 per (cpu, round), the record each open named. */
  ids: SharedArrayBuffer;
}

export interface InodeTaskResult {
  fd: number;
  file: number;
  shared: number;
  private: number;
  /** `race`: reads that did not see this CPU's last value; opens made; writes through a mapping. */
  stale: number;
  opens: number;
  mapped: number;
  /** `read`: word 0 as read. */
  value: number;
  error: string;
}

export default function run(cpu: number, args: InodeTaskArgs): InodeTaskResult {
  const out: InodeTaskResult = {
    fd: -1,
    file: 0,
    shared: 0,
    private: 0,
    stale: 0,
    opens: 0,
    mapped: 0,
    value: 0,
    error: '',
  };
  const proc = Process.attach(args.process);
  try {
    if (args.mode === 'open') openAndMap(proc, args, out);
    else if (args.mode === 'opens') opens(cpu, proc, args);
    else if (args.mode === 'race') race(cpu, proc, args, out);
    else readOnce(proc, args, out);
  } catch (error) {
    out.error = String((error as Error).stack ?? error);
  } finally {
    proc.detach();
  }
  return out;
}

/**
 * The `phase`-th barrier (from 1): every CPU arrives, and leaves once all `cpus` did. Spins (the
 * CPUs leave as close together as they can), bounded.
 */
function barrier(proc: Process, sync: Int32Array, phase: number, cpus: number): void {
  proc.mm.mmu().offline(); // an idle CPU must not hold up another's shootdown
  Atomics.add(sync, ARRIVALS, 1);
  const start = Date.now();
  for (let spin = 1; Atomics.load(sync, ARRIVALS) < phase * cpus; spin++) {
    if ((spin & 0xfffff) === 0 && Date.now() - start > BARRIER_MS)
      throw new Error(`barrier ${phase}: ${Atomics.load(sync, ARRIVALS)} arrivals`);
  }
}

function fileOf(proc: Process, fd: number): number {
  const file = proc.fds.fget(fd);
  proc.kernel.files.put(file); // the descriptor keeps it
  return file;
}

function openAndMap(proc: Process, args: InodeTaskArgs, out: InodeTaskResult): void {
  barrier(proc, new Int32Array(args.sync), 1, args.cpus);
  out.fd = proc.open(args.path, args.flags);
  out.file = fileOf(proc, out.fd);
  out.shared = proc.mm.mmap(0, args.pages * P, RW, MAP_SHARED, out.fd, 0);
  out.private = proc.mm.mmap(0, args.pages * P, RW, MAP_PRIVATE, out.fd, 0);
}

function opens(cpu: number, proc: Process, args: InodeTaskArgs): void {
  const sync = new Int32Array(args.sync);
  const ids = new Int32Array(args.ids);
  for (let r = 0; r < args.rounds; r++) {
    barrier(proc, sync, 2 * r + 1, args.cpus);
    const fd = proc.open(`${args.path}.${r}`, O_RDWR);
    ids[cpu * args.rounds + r] = fileOf(proc, fd);
    barrier(proc, sync, 2 * r + 2, args.cpus);
    proc.close(fd);
  }
}

function race(cpu: number, proc: Process, args: InodeTaskArgs, out: InodeTaskResult): void {
  const mmu = proc.mm.mmu();
  const buf = proc.mm.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  const rng = new Rng(args.seed + cpu);
  let last = 0;
  for (let r = 0; r < args.rounds; r++) {
    const fd = proc.open(args.path, O_RDWR);
    out.opens++;
    if (proc.pread(fd, buf, 4, cpu * 4) !== 4) throw new Error('short pread');
    if (mmu.load32(buf) !== last) out.stale++;
    last++;
    if (rng.below(2) === 0) {
      mmu.store32(buf, last);
      if (proc.pwrite(fd, buf, 4, cpu * 4) !== 4) throw new Error('short pwrite');
      proc.close(fd);
    } else {
      const map = proc.mm.mmap(0, P, RW, MAP_SHARED, fd, 0);
      proc.close(fd); // the mapping holds the file now
      mmu.store32(map + cpu * 4, last);
      proc.mm.munmap(map, P); // maybe the last put: released after mmap_lock (delayed fput)
      out.mapped++;
    }
  }
  proc.mm.munmap(buf, P);
}

function readOnce(proc: Process, args: InodeTaskArgs, out: InodeTaskResult): void {
  const buf = proc.mm.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS);
  out.fd = proc.open(args.path, O_RDONLY);
  Atomics.store(new Int32Array(args.sync), OPENED, 1);
  out.file = fileOf(proc, out.fd);
  if (proc.pread(out.fd, buf, 4, 0) !== 4) throw new Error('short pread');
  out.value = proc.mm.mmu().load32(buf);
  proc.close(out.fd);
  proc.mm.munmap(buf, P);
}
