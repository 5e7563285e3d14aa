/**
 * Task (test/mm/commit-put-cpus.test.ts): the last VMA of a memfd goes while another CPU closes
 * the memfd's descriptor, the close landing inside the VMA commit.
 *
 *   - `holder`: stores through the shared mapping with this CPU's Mmu (so its TLB holds the page
 *     and the unmapper's shootdown must wait for this CPU), raises READY, waits until a shootdown
 *     generation newer than its acknowledgement exists (the unmapper's commit is done with the
 *     records and waits in its shootdown, its i_mmap commit window still open), notes the file's
 *     reference count, closes the descriptor, and only then acknowledges (goes offline).
 *   - `unmapper`: waits for READY, then unmaps the mapping (munmap, or an anonymous MAP_FIXED
 *     mmap over it) and checks the range reads back as the anonymous zeros or is gone.
 */
import { currentCpu } from '../../../src/cpu/current.js';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';

/** sync words. */
export const READY = 0;
/** Longest either side waits for the other (ms). */
const WAIT_MS = 10_000;

export interface CommitPutArgs {
  role: 'holder' | 'unmapper';
  how: 'munmap' | 'mmap-fixed';
  process: ProcessDescriptor;
  fd: number;
  file: number;
  addr: number;
  len: number;
  sync: SharedArrayBuffer;
}

export interface CommitPutResult {
  /** holder: the file's references just before its close (the close is the last put when 1). */
  refsAtClose: number;
  /** holder: the shootdown generation it waited for. */
  generation: number;
}

export default function commitPut(_cpu: number, args: CommitPutArgs): CommitPutResult {
  const proc = Process.attach(args.process);
  const sync = new Int32Array(args.sync);
  try {
    return args.role === 'holder' ? holder(proc, args, sync) : unmapper(proc, args, sync);
  } finally {
    proc.detach();
  }
}

function holder(proc: Process, args: CommitPutArgs, sync: Int32Array): CommitPutResult {
  const mm = proc.mm;
  const tlb = mm.tlb;
  const me = currentCpu();
  for (let at = args.addr; at < args.addr + args.len; at += 4096) mm.mmu().store32(at, 0x5eed);
  const acked = tlb.acked(me);
  Atomics.store(sync, READY, 1);
  Atomics.notify(sync, READY);
  // No Mmu access from here on: this CPU's acknowledgement stays behind until it goes offline.
  const deadline = Date.now() + WAIT_MS;
  let generation = tlb.generation();
  for (let spin = 1; generation === acked; spin++) {
    if ((spin & 0xffff) === 0 && Date.now() > deadline) throw new Error('the unmapper never shot down');
    generation = tlb.generation();
  }
  const refsAtClose = proc.kernel.files.refs(args.file);
  proc.close(args.fd);
  mm.mmuOffline();
  return { refsAtClose, generation };
}

function unmapper(proc: Process, args: CommitPutArgs, sync: Int32Array): CommitPutResult {
  const deadline = Date.now() + WAIT_MS;
  while (Atomics.load(sync, READY) === 0) {
    if (Date.now() > deadline) throw new Error('the holder never got ready');
    Atomics.wait(sync, READY, 0, 10);
  }
  const mm = proc.mm;
  if (args.how === 'munmap') mm.munmap(args.addr, args.len);
  else {
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    mm.mmap(args.addr, args.len, PROT_READ | PROT_WRITE, flags);
    if (mm.mmu().load32(args.addr) !== 0) throw new Error('MAP_FIXED left the memfd page mapped');
  }
  return { refsAtClose: 0, generation: 0 };
}
