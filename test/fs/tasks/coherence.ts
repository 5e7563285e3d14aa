/**
 * Task (test/fs/coherence-cpus.test.ts): two processes (a parent and its fork child, one file
 * shared through the inherited descriptor) on two CPUs take turns. In round r the CPU r % 2 is the
 * writer: it puts a fresh value into one word of the file, by a store through its process's
 * MAP_SHARED mapping or by pwrite() (seeded: both CPUs draw the same sequence), records it in the
 * shared model and publishes r; the other CPU checks that word at once, by a load through its own
 * shared mapping or by pread(), and through its private mapping:
 *
 *   - a page the private mapping never wrote shows the file's value (it is still backed by the file);
 *   - a page it wrote (the first `privatePages` pages, written once by CPU 1 before round 1) keeps
 *     its own bytes, whatever the file holds.
 *
 * Every `syncEvery` rounds the writer also makes the bytes durable — msync(MS_SYNC) over its shared
 * mapping or fsync(), seeded — and the checker reads the word from the host file with node:fs
 * (its own host descriptor, outside vmspace).
 *
 * Returns { rounds checked, mismatches (shared, private, host), by-method counts, error }.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Process, type ProcessDescriptor } from '../../../src/kernel/process.js';
import type { Mmu } from '../../../src/mem/mmu.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MS_SYNC, PROT_READ, PROT_WRITE } from '../../../src/mm/vm-flags.js';
import { Rng } from '../../../src/rng.js';

const P = 4096;
const WAIT_MS = 10_000;
/** sync words: [0] the round published by the writer, [1] the round the checker finished, [2] arrived. */
const PUBLISHED = 0;
const CHECKED = 1;
const ARRIVED = 2;

export interface CoherenceArgs {
  process: ProcessDescriptor;
  fd: number;
  /** The host file's path (read with node:fs). */
  path: string;
  pages: number;
  /** This process's MAP_SHARED and MAP_PRIVATE mappings of the whole file. */
  shared: number;
  private: number;
  privatePages: number;
  rounds: number;
  syncEvery: number;
  seed: number;
  sync: SharedArrayBuffer;
  /** Int32 per word of the file: the value the file must hold. */
  model: SharedArrayBuffer;
}

export interface CoherenceResult {
  checked: number;
  sharedBad: number;
  privateBad: number;
  hostBad: number;
  hostChecks: number;
  /** [store, pwrite] writes made, [load, pread] checks made. */
  writes: number[];
  reads: number[];
  error: string;
}

/** The private mapping's own value for word w (pages below privatePages), never a file value. */
export function privateValue(w: number): number {
  return -1 - w;
}

/** Round r's value: positive, unique per round. */
export function roundValue(r: number): number {
  return r * 7 + 3;
}

export default function run(cpu: number, args: CoherenceArgs): CoherenceResult {
  const out: CoherenceResult = {
    checked: 0,
    sharedBad: 0,
    privateBad: 0,
    hostBad: 0,
    hostChecks: 0,
    writes: [0, 0],
    reads: [0, 0],
    error: '',
  };
  const proc = Process.attach(args.process);
  const host = openSync(args.path, 'r');
  try {
    rounds(cpu, args, proc, host, out);
  } catch (error) {
    out.error = String((error as Error).stack ?? error);
  } finally {
    closeSync(host);
    proc.detach();
  }
  return out;
}

/**
 * Waits for word `at` to reach `value`, the Mmu offline meanwhile (an idle CPU: a shootdown from the
 * other CPU's msync or fsync, which write-protects this process's entries, must not wait for it).
 */
function waitFor(mmu: Mmu, sync: Int32Array, at: number, value: number): void {
  if (Atomics.load(sync, at) < value) mmu.offline();
  for (let spin = 0; Atomics.load(sync, at) < value; spin++) {
    if (spin > 1000) throw new Error(`waited too long for word ${at} to reach ${value}`);
    Atomics.wait(sync, at, Atomics.load(sync, at), WAIT_MS / 1000);
  }
}

function rounds(cpu: number, args: CoherenceArgs, proc: Process, host: number, out: CoherenceResult): void {
  const sync = new Int32Array(args.sync);
  const model = new Int32Array(args.model);
  const mmu = proc.mm.mmu();
  const words = (args.pages * P) >> 2;
  // Only CPU 1's process writes its private mapping.
  const privateWords = cpu === 1 ? (args.privatePages * P) >> 2 : 0;
  // A private buffer of this process for pwrite/pread.
  const buf = proc.mm.mmap(0, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const hostWord = new Int32Array(1);
  const hostBytes = new Uint8Array(hostWord.buffer);
  // CPU 1's private mapping writes its first pages once: from now on they are its own.
  for (let w = 0; w < privateWords; w++) mmu.store32(args.private + w * 4, privateValue(w));
  Atomics.add(sync, ARRIVED, 1);
  waitFor(mmu, sync, ARRIVED, 2);
  const rng = new Rng(args.seed);
  for (let r = 1; r <= args.rounds; r++) {
    // Both CPUs draw the round's choices, so both know the word and the methods.
    const w = rng.below(words);
    const byStore = rng.below(2) === 0;
    const byLoad = rng.below(2) === 0;
    const durable = r % args.syncEvery === 0;
    const viaMsync = rng.below(2) === 0;
    const value = roundValue(r);
    if (r % 2 === cpu) {
      waitFor(mmu, sync, CHECKED, r - 1);
      if (byStore) mmu.store32(args.shared + w * 4, value);
      else {
        mmu.store32(buf, value);
        if (proc.pwrite(args.fd, buf, 4, w * 4) !== 4) throw new Error('short pwrite');
      }
      out.writes[byStore ? 0 : 1]++;
      Atomics.store(model, w, value);
      if (durable) {
        if (viaMsync) proc.mm.msync(args.shared + (w & ~1023) * 4, P, MS_SYNC);
        else proc.fsync(args.fd);
      }
      Atomics.store(sync, PUBLISHED, r);
      Atomics.notify(sync, PUBLISHED);
    } else {
      waitFor(mmu, sync, PUBLISHED, r);
      let seen: number;
      if (byLoad) seen = mmu.load32(args.shared + w * 4);
      else {
        if (proc.pread(args.fd, buf, 4, w * 4) !== 4) throw new Error('short pread');
        seen = mmu.load32(buf);
      }
      out.reads[byLoad ? 0 : 1]++;
      if (seen !== value) out.sharedBad++;
      const priv = mmu.load32(args.private + w * 4);
      if (priv !== (w < privateWords ? privateValue(w) : value)) out.privateBad++;
      if (durable) {
        out.hostChecks++;
        if (readSync(host, hostBytes, 0, 4, w * 4) !== 4 || hostWord[0] !== value) out.hostBad++;
      }
      out.checked++;
      Atomics.store(sync, CHECKED, r);
      Atomics.notify(sync, CHECKED);
    }
  }
  proc.mm.munmap(buf, P);
}
