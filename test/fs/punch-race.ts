/**
 * The punch-versus-fault race on real worker CPUs (tasks/punch-race.ts), for the quick test and the
 * stress run: one mutator CPU punches holes, rewrites blocks (pwrite and stores through its shared
 * mapping), shrinks and grows the file and writes it back, while two reader CPUs — one in the
 * mutator's process, one in its fork child, sharing the file — load through shared and private
 * mappings and pread. The oracle's generations (STARTED / DONE per block) say which states each
 * access may see; after the run the file is checked whole: pread of every block through vmspace,
 * then, after fsync, the host file with node:fs (no dirty data lost outside a truncated range,
 * nothing past the size). Then teardown: every count back to zero.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { Machine } from '../../src/machine/machine.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import {
  BLOCK,
  kindAt,
  oracleWords,
  type PunchRaceArgs,
  type PunchRaceResult,
  SIZE_BLOCKS,
  stamp,
  startedAt,
  WRITE,
} from './tasks/punch-race.js';

const P = 4096;
const PAGES = 32;
const BLOCKS = (PAGES * P) / BLOCK;
const task = new URL('./tasks/punch-race.js', import.meta.url);

export interface PunchRaceSummary {
  seed: number;
  /** punches, pwrites, stores, shrinks, grows, fsyncs, msyncs. */
  ops: number[];
  /** shared loads, private loads, preads, over both readers. */
  reads: number[];
  stale: number;
  foreign: number;
  sigbus: number;
  short: number;
  zeros: number;
  unjudged: number;
  firstBad: string;
}

export async function runPunchRace(seed: number, durationMs: number, lie = false): Promise<PunchRaceSummary> {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-punch-race-'));
  const machine = await Machine.start({ cpus: 3, watchdogMs: 30_000 });
  try {
    return await race(dir, machine, seed, durationMs, lie);
  } finally {
    await machine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function race(
  dir: string,
  machine: Machine,
  seed: number,
  durationMs: number,
  lie: boolean,
): Promise<PunchRaceSummary> {
  const path = join(dir, 'punched.bin');
  const initial = new Uint32Array((BLOCKS * BLOCK) >> 2);
  for (let b = 0; b < BLOCKS; b++) initial.fill(stamp(1, b), (b * BLOCK) >> 2, ((b + 1) * BLOCK) >> 2);
  writeFileSync(path, new Uint8Array(initial.buffer));
  const oracle = new SharedArrayBuffer(oracleWords(BLOCKS) * 4);
  const o = new Int32Array(oracle);
  for (let b = 0; b < BLOCKS; b++) {
    o[startedAt(b)] = 1;
    o[startedAt(b) + 1] = 1;
    o[kindAt(BLOCKS, b, 1)] = WRITE;
  }
  const kernel = Kernel.create({ frames: 4096 });
  const a = Process.create(kernel);
  const fd = a.open(path, O_RDWR);
  const b = a.fork();
  const RW = PROT_READ | PROT_WRITE;
  const maps = [a, b].map((p) => ({
    shared: p.mm.mmap(0, PAGES * P, RW, MAP_SHARED, fd, 0),
    private: p.mm.mmap(0, PAGES * P, PROT_READ, MAP_PRIVATE, fd, 0),
  }));
  const base = { fd, blocks: BLOCKS, seed, durationMs, lie, cpus: 3, oracle };
  const roles: [Process, PunchRaceArgs['role'], number][] = [
    [a, 'mutator', 0],
    [a, 'reader', 1],
    [b, 'reader', 2],
  ];
  const results = await Promise.all(
    roles.map(async ([p, role, cpu]) => {
      const args: PunchRaceArgs = { ...base, role, process: p.describe(), ...maps[p === a ? 0 : 1] };
      const [r] = await machine.run<PunchRaceResult>(task, args, [cpu]);
      return r;
    }),
  );
  assert.deepEqual(
    results.map((r) => r.error),
    ['', '', ''],
  );
  const readers = results.slice(1);
  const add = (f: (r: PunchRaceResult) => number) => readers.reduce((n, r) => n + f(r), 0);
  const summary: PunchRaceSummary = {
    seed,
    ops: results[0].ops,
    reads: [0, 1, 2].map((k) => add((r) => r.reads[k])),
    stale: add((r) => r.stale),
    foreign: add((r) => r.foreign),
    sigbus: add((r) => r.sigbus),
    short: add((r) => r.short),
    zeros: add((r) => r.zeros),
    unjudged: add((r) => r.unjudged),
    firstBad: readers.map((r) => r.firstBad).join(' | '),
  };
  checkFinalFile(a, fd, path, o);
  a.close(fd);
  b.close(fd);
  for (const p of [b, a]) p.exit();
  for (const p of [b, a]) p.detach();
  rcuBarrier();
  kernel.mem.drainAll();
  assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
  return summary;
}

/** What block b must hold at the end: its last state's bytes (zeros but for a WRITE). */
function finalWord(o: Int32Array, b: number): number {
  const s = o[startedAt(b)];
  return o[kindAt(BLOCKS, b, s)] === WRITE ? stamp(s, b) : 0;
}

/** Every block inside the final size, through pread and in the host file after fsync. */
function checkFinalFile(proc: Process, fd: number, path: string, o: Int32Array): void {
  const size = o[SIZE_BLOCKS] * BLOCK;
  assert.equal(proc.fstat(fd).size, size);
  const buf = proc.mm.mmap(0, BLOCKS * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  assert.equal(proc.pread(fd, buf, BLOCKS * BLOCK, 0), size);
  const got = new Uint32Array(size >> 2);
  assert.equal(proc.mm.mmu().copyIn(buf, new Uint8Array(got.buffer)), 0);
  proc.mm.munmap(buf, BLOCKS * BLOCK);
  proc.fsync(fd);
  const host = new Uint8Array(readFileSync(path));
  assert.equal(host.length, size, 'the host file has the final size');
  const hostWords = new Uint32Array(host.buffer, host.byteOffset, size >> 2);
  for (let b = 0; b < size / BLOCK; b++) {
    const want = finalWord(o, b);
    for (let w = 0; w < BLOCK >> 2; w++) {
      const at = b * (BLOCK >> 2) + w;
      assert.equal(got[at], want, `block ${b} word ${w} through pread`);
      assert.equal(hostWords[at], want, `block ${b} word ${w} in the host file`);
    }
  }
}
