/**
 * Concurrency scenario for PageTables: one CPU (the writer) installs, zaps, moves, protects,
 * splits and frees page tables flat out, while another (the reader) walks them lock-free under
 * RCU. The writer works on SLOTS 2 MiB regions placed across 1 GiB and 512 GiB boundaries, each
 * a "VMA" of its own or unmapped; unmapping one frees its tables with free_pgtables' floor and
 * ceiling (the nearest mapped slots), so PTE, PMD and PUD tables are freed and reallocated all
 * the time. The table arena poisons freed tables.
 *
 * An entry encodes where it may be: pfn = tag << 9 | page, page the 4 KiB page's index in its
 * 2 MiB region (0 for a huge entry), tag > 0, flags PRESENT | USER (| WRITE) (| HUGE). Moves keep
 * a page's offset in its region, splits give page k the pfn huge + k, so every entry the writer
 * ever installs has this shape. The reader checks each lookupPte result against it (a poisoned
 * word 0x6b6b6b6b, a free-list link or a stale entry of a reused table does not have it), and
 * walks by hand now and then, checking that every table it reaches is live (freed tables go back
 * to the arena only after a grace period) and holds no poison.
 */
import { PageTables, type PageTablesDescriptor } from '../../../src/mem/pgtable.js';
import {
  makePte,
  PAGE_SIZE,
  PGDIR_SIZE,
  PMD_SIZE,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_USER,
  PTE_WRITE,
  PUD_SIZE,
  pteIndex,
} from '../../../src/mem/pte.js';
import { POISON_WORD } from '../../../src/shm/arena.js';
import { rcuBarrier, rcuQuiescent, rcuReadLock, rcuReadUnlock } from '../../../src/sync/rcu.js';
import { prng } from '../../maple/model.js';

export const SLOTS = 24;

/** Slot k's region start: three groups of 8 around a 1 GiB boundary, a 512 GiB one, and far up. */
export function slotAddr(k: number): number {
  const bases = [PUD_SIZE - 12 * PMD_SIZE, PGDIR_SIZE - 9 * PMD_SIZE, 7 * PGDIR_SIZE + 5 * PUD_SIZE];
  return bases[k >> 3] + (k & 7) * 3 * PMD_SIZE;
}

export interface ChurnArgs {
  role: 'writer' | 'reader';
  pt: PageTablesDescriptor;
  /** Word 0: CPUs ready; word 1: writer done. */
  sync: SharedArrayBuffer;
  seed: number;
  deadlineMs: number;
}

export interface ChurnResult {
  operations: number;
  /** Writer: tables freed by freePgtables; reader: leaf entries seen (non-zero). */
  freed: number;
  checks: number;
  hugeSeen: number;
}

/** The problem with `entry` seen at `addr`, or undefined if the writer could have installed it there. */
export function badEntry(entry: number, addr: number): string | undefined {
  if (entry === 0) return undefined;
  const flags = entry & 0xfff & ~PTE_WRITE;
  const pfn = entry >>> 12;
  if ((flags & PTE_HUGE) !== 0) {
    if (flags !== (PTE_PRESENT | PTE_USER | PTE_HUGE) || pfn % 512 !== 0 || pfn === 0) {
      return `huge entry ${entry.toString(16)} at ${addr} was never installed`;
    }
    return undefined;
  }
  const page = ((addr % PMD_SIZE) / PAGE_SIZE) | 0;
  if (flags !== (PTE_PRESENT | PTE_USER) || pfn % 512 !== page || pfn < 512) {
    return `entry ${entry.toString(16)} at ${addr} (page ${page}) was never installed`;
  }
  return undefined;
}

export default function churn(_cpu: number, args: ChurnArgs): ChurnResult {
  const sync = new Int32Array(args.sync);
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 0) < 2 && Date.now() < args.deadlineMs) {
    // Start together.
  }
  try {
    return args.role === 'writer' ? write(args, sync) : read(args, sync);
  } catch (error) {
    Atomics.store(sync, 1, 1);
    (error as Error).message = `seed ${args.seed}: ${(error as Error).message}`;
    throw error;
  }
}

class Writer {
  readonly pt: PageTables;
  readonly random: () => number;
  readonly mapped = new Uint8Array(SLOTS);
  tag = 0;
  freed = 0;

  constructor(args: ChurnArgs) {
    this.pt = PageTables.attach(args.pt);
    this.random = prng(args.seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  nextTag(): number {
    this.tag = (this.tag % 2046) + 1;
    return this.tag;
  }

  /** allocPte, waiting for the frees of earlier grace periods when the arena is short. */
  allocPte(addr: number): number {
    let t = this.pt.allocPte(addr);
    if (t === 0) {
      rcuBarrier();
      t = this.pt.allocPte(addr);
    }
    if (t === 0) throw new Error(`allocPte(${addr}): out of tables`);
    return t;
  }

  populate(k: number): void {
    const r = slotAddr(k);
    const tag = this.nextTag();
    const n = this.random() < 0.2 ? 512 : 1 + this.int(40);
    const write = this.random() < 0.5 ? PTE_WRITE : 0;
    for (let i = 0; i < n; i++) {
      const page = n === 512 ? i : this.int(512);
      const addr = r + page * PAGE_SIZE;
      const t = this.allocPte(addr);
      if (t < 0) return; // mapped huge
      this.pt.setPte(t, pteIndex(addr), makePte((tag << 9) | page, PTE_USER | write));
    }
  }

  huge(k: number): void {
    const entry = makePte(this.nextTag() << 9, PTE_USER | PTE_HUGE | (this.random() < 0.5 ? PTE_WRITE : 0));
    let got = this.pt.installHugePmd(slotAddr(k), entry);
    if (got === -12) {
      rcuBarrier();
      got = this.pt.installHugePmd(slotAddr(k), entry);
    }
    if (got !== 0 && got !== -17) throw new Error(`installHugePmd: ${got}`);
  }

  /** Floor and ceiling for unmapping slot k: the nearest mapped slots (slots ascend with k). */
  unmap(k: number): void {
    const r = slotAddr(k);
    this.mapped[k] = 0;
    let floor = 0;
    let ceiling = 0;
    for (let j = k - 1; j >= 0 && floor === 0; j--) if (this.mapped[j]) floor = slotAddr(j) + PMD_SIZE;
    for (let j = k + 1; j < SLOTS && ceiling === 0; j++) if (this.mapped[j]) ceiling = slotAddr(j);
    this.pt.zapRange(r, r + PMD_SIZE, noop);
    this.freed += this.pt.freePgtables(r, r + PMD_SIZE, floor, ceiling);
  }

  move(k: number): void {
    let j = this.int(SLOTS);
    for (let n = 0; n < SLOTS && this.mapped[j]; n++) j = (j + 1) % SLOTS;
    if (this.mapped[j]) return;
    const a = this.random() < 0.5 ? 0 : this.int(512) * PAGE_SIZE;
    const len = a === 0 ? PMD_SIZE : (1 + this.int(512 - a / PAGE_SIZE)) * PAGE_SIZE;
    let got = this.pt.movePtes(slotAddr(k) + a, slotAddr(j) + a, len);
    if (got !== 0) {
      rcuBarrier();
      got = this.pt.movePtes(slotAddr(k) + a, slotAddr(j) + a, len);
    }
    if (got !== 0) throw new Error(`movePtes: ${got}`);
    this.mapped[j] = 1;
    this.unmap(k);
  }

  step(): void {
    const k = this.int(SLOTS);
    if (!this.mapped[k]) {
      this.mapped[k] = 1;
      return;
    }
    const op = this.random();
    if (op < 0.35) this.populate(k);
    else if (op < 0.45) this.huge(k);
    else if (op < 0.5) this.pt.splitHugePmd(slotAddr(k));
    else if (op < 0.6) {
      const r = slotAddr(k) + this.int(512) * PAGE_SIZE;
      this.pt.writeProtectRange(r, Math.min(r + this.int(300) * PAGE_SIZE, slotAddr(k) + PMD_SIZE));
    } else if (op < 0.65) {
      const r = slotAddr(k) + this.int(512) * PAGE_SIZE;
      this.pt.zapRange(r, r + PAGE_SIZE * (1 + this.int(8)), noop);
    } else if (op < 0.85) this.unmap(k);
    else this.move(k);
  }
}

function noop(): void {}

function write(args: ChurnArgs, sync: Int32Array): ChurnResult {
  const w = new Writer(args);
  let n = 0;
  for (; Atomics.load(sync, 1) === 0; n++) {
    if ((n & 31) === 0 && Date.now() > args.deadlineMs) break;
    w.step();
    rcuQuiescent();
    if (n % 997 === 996) {
      for (let k = 0; k < SLOTS; k++) if (w.mapped[k]) w.unmap(k);
    }
  }
  Atomics.store(sync, 1, 1);
  rcuBarrier();
  return { operations: n, freed: w.freed, checks: 0, hugeSeen: 0 };
}

function read(args: ChurnArgs, sync: Int32Array): ChurnResult {
  const pt = PageTables.attach(args.pt);
  const random = prng(args.seed ^ 0x5a5a);
  let checks = 0;
  let seen = 0;
  let hugeSeen = 0;
  let n = 0;
  for (; Atomics.load(sync, 1) === 0; n++) {
    if ((n & 15) === 0 && Date.now() > args.deadlineMs) break;
    rcuReadLock();
    try {
      for (let i = 0; i < 64; i++) {
        const k = Math.floor(random() * SLOTS);
        const addr = slotAddr(k) + Math.floor(random() * 514 - 1) * PAGE_SIZE;
        const entry = i === 0 ? checkedWalk(pt, addr) : pt.lookupPte(addr);
        const problem = badEntry(entry, addr);
        if (problem !== undefined) throw new Error(problem);
        if (entry !== 0) seen++;
        if ((entry & PTE_HUGE) !== 0) hugeSeen++;
        checks++;
      }
    } finally {
      rcuReadUnlock();
    }
  }
  return { operations: n, freed: seen, checks, hugeSeen };
}

/** lookupPte by hand: every table reached must be live and free of poison. */
function checkedWalk(pt: PageTables, addr: number): number {
  const e = pt.entries;
  const hi = Math.floor(addr / PUD_SIZE);
  const lo = addr - hi * PUD_SIZE;
  const indices = [hi >>> 9, hi & 511, lo >>> 21, (lo >>> 12) & 511];
  let table = pt.rootTable;
  for (let level = 0; level < 4; level++) {
    if (!pt.arena.isLive(table)) throw new Error(`walk of ${addr}: level ${level} table ${table} was freed`);
    const x = Atomics.load(e, (table << 9) | indices[level]);
    if (x === POISON_WORD) throw new Error(`walk of ${addr}: level ${level} table ${table} is poisoned`);
    if (x === 0 || level === 3 || (level === 2 && (x & PTE_HUGE) !== 0)) return x;
    table = x >>> 12;
  }
  return 0;
}
