/**
 * Task: file syscalls on a CPU (test/fs/file-syscalls-cpus.test.ts). Every role attaches the
 * process, maps a private buffer of its own, waits on `sync` word 0 until `cpus` CPUs arrived, and
 * works through descriptor `fd`:
 *
 *   append  `rounds` write()s of one REC-byte record through the shared description: word 0 the
 *           CPU, word 1 the sequence number, then the record's pattern
 *   read    read()s of one record through the shared description until the end of the file:
 *           returns the (cpu, seq) of every record read, checking each record's pattern
 *   pages   for every page index k < `pages` with k % cpus == cpu: pwrite the page's pattern at
 *           k * 4096 (`rounds` times, a new pattern each round), pread it back and compare
 *
 * Returns { records (read), bad (records or pages whose bytes were wrong), error }.
 */
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';

export const REC = 64;
const P = 4096;

export interface FileIoArgs {
  role: 'append' | 'read' | 'pages';
  process: ProcessDescriptor;
  fd: number;
  rounds: number;
  pages: number;
  cpus: number;
  sync: SharedArrayBuffer;
}

export interface FileIoResult {
  records: number[];
  bad: number;
  error: string;
}

/** Byte i of record (cpu, seq) past its two header words. */
export function recordByte(cpu: number, seq: number, i: number): number {
  return (cpu * 97 + seq * 13 + i * 7) & 0xff;
}

/** Byte i of page k in round r. */
export function pageByte(k: number, r: number, i: number): number {
  return ((k * 31 + r * 17 + i) % 253) | 0;
}

export default function run(cpu: number, args: FileIoArgs): FileIoResult {
  const proc = Process.attach(args.process);
  const out: FileIoResult = { records: [], bad: 0, error: '' };
  try {
    const buf = proc.mm.mmap(0, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const sync = new Int32Array(args.sync);
    Atomics.add(sync, 0, 1);
    while (Atomics.load(sync, 0) < args.cpus) {
      // Start together.
    }
    if (args.role === 'append') append(proc, args, cpu, buf);
    else if (args.role === 'read') readAll(proc, args, buf, out);
    else out.bad = pages(proc, args, cpu % args.cpus, buf);
    proc.mm.munmap(buf, 2 * P);
  } catch (error) {
    out.error = String((error as Error).stack ?? error);
  } finally {
    proc.detach();
  }
  return out;
}

function append(proc: Process, args: FileIoArgs, cpu: number, buf: number): void {
  const rec = new Uint8Array(REC);
  const words = new Int32Array(rec.buffer);
  const mmu = proc.mm.mmu();
  for (let seq = 0; seq < args.rounds; seq++) {
    words[0] = cpu;
    words[1] = seq;
    for (let i = 8; i < REC; i++) rec[i] = recordByte(cpu, seq, i);
    if (mmu.copyOut(buf, rec) !== 0) throw new Error('buffer faulted');
    const n = proc.write(args.fd, buf, REC);
    if (n !== REC) throw new Error(`short write ${n}`);
  }
}

function readAll(proc: Process, args: FileIoArgs, buf: number, out: FileIoResult): void {
  const rec = new Uint8Array(REC);
  const words = new Int32Array(rec.buffer);
  const mmu = proc.mm.mmu();
  // Bounded: the file does not grow while the readers run.
  for (let round = 0; round < 1 << 20; round++) {
    const n = proc.read(args.fd, buf, REC);
    if (n === 0) return;
    if (n !== REC) throw new Error(`short read ${n}`);
    mmu.copyIn(buf, rec);
    let ok = true;
    for (let i = 8; i < REC; i++) if (rec[i] !== recordByte(words[0], words[1], i)) ok = false;
    if (!ok) out.bad++;
    out.records.push(words[0], words[1]);
  }
  throw new Error('the file never ended');
}

function pages(proc: Process, args: FileIoArgs, me: number, buf: number): number {
  const mmu = proc.mm.mmu();
  const page = new Uint8Array(P);
  let bad = 0;
  for (let r = 0; r < args.rounds; r++) {
    for (let k = me; k < args.pages; k += args.cpus) {
      for (let i = 0; i < P; i++) page[i] = pageByte(k, r, i);
      mmu.copyOut(buf, page);
      if (proc.pwrite(args.fd, buf, P, k * P) !== P) throw new Error('short pwrite');
      if (proc.pread(args.fd, buf + P, P, k * P) !== P) throw new Error('short pread');
      mmu.copyIn(buf + P, page);
      for (let i = 0; i < P; i++) {
        if (page[i] !== pageByte(k, r, i)) {
          bad++;
          break;
        }
      }
    }
  }
  return bad;
}
