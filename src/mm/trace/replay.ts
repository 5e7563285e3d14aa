/**
 * Replays a trace against a fresh AddressSpace: seeds it from the header and the layout (the
 * recorder's own VMAs are opaque but present, FORMAT.md section 4), runs every op through the raw
 * syscalls and compares the result and the full VMA list (vmflags too in strict mode) after each.
 * The first divergence is reported as a readable diff.
 */

import { errnoName } from '../../errno.js';
import { FdTable } from '../../fs/fd-table.js';
import { FileTable, PLACE_GENERIC, PLACE_SHMEM, PLACE_THP } from '../../fs/file-table.js';
import type { RangeIndex } from '../../maple/api.js';
import { AddressSpace, defaultPhysMem } from '../address-space.js';
import { DEFAULT_FAULT_DESIGN, type FaultDesign } from '../fault-design.js';
import { mapsLine, type VmaView } from '../proc-maps.js';
import { cint, ulong } from '../syscalls/args.js';
import {
  MADV_NAMES,
  MAP_NAMES,
  MLOCK_NAMES,
  MREMAP_NAMES,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_NAMES,
  parseVmFlags,
} from '../vm-flags.js';
import { NAME_ANON, NAME_FILE, NAME_SPECIAL, specialNameId } from '../vma-record.js';
import type { Trace, TraceOp, TraceVma } from './format.js';

export interface ReplayOptions {
  /** Compare vmflags too (FORMAT.md's strict mode). */
  strict: boolean;
  /** The VMA index to use (a fresh one per trace). */
  newIndex: () => RangeIndex;
  /** The fault-locking design of the address space (fault-design.ts; default vma-lock). */
  design?: FaultDesign;
}

export interface ReplayResult {
  ok: boolean;
  ops: number;
  /** Index of the first diverging op (-1 when the trace replayed identically). */
  failedOp: number;
  report: string;
}

const LIMIT = 2n ** 53n;

/** Builds the address space a trace starts from (its descriptors as trace fd name -> descriptor). */
export function seedAddressSpace(
  trace: Trace,
  index: RangeIndex,
  design: FaultDesign = DEFAULT_FAULT_DESIGN,
): { mm: AddressSpace; fds: Map<string, number> } {
  const h = trace.header;
  if (h.pageSize !== PAGE_SIZE) throw new Error(`${trace.name}: page size ${h.pageSize} is not supported`);
  // The trace's files are memory files of the header's sizes (their touches fault the page cache).
  const mem = defaultPhysMem();
  const files = FileTable.create({ mem });
  const fdTable = FdTable.create(files);
  const fds = new Map<string, number>();
  for (const f of h.files) {
    const thp = f.fs === 'ext4' || f.fs === 'xfs' || f.fs === 'btrfs';
    const id = files.add({
      size: Number(f.size),
      writable: f.writable,
      name: `file:${f.id}`,
      placement: thp ? PLACE_THP : f.fs === 'tmpfs' ? PLACE_SHMEM : PLACE_GENERIC,
      syncUnsupported: f.fs === 'ext4' || f.fs === 'xfs',
    });
    fds.set(f.id, fdTable.install(id));
    files.put(id);
  }
  const mm = new AddressSpace({
    index,
    mem,
    fds: fdTable,
    rcuFree: false,
    config: {
      taskSize: Number(h.taskSize),
      mmapBase: Number(h.mmapBase),
      mmapMinAddr: Number(h.mmapMinAddr),
      thpEnabled: h.thpEnabled,
      thpShmemEnabled: h.thpShmemEnabled,
      zeroPage: h.zeroPage,
      stackGuardGap: h.stackGuardGapPages * PAGE_SIZE,
      rlimitStack: Number(h.rlimitStack),
      overcommitMemory: h.overcommitMemory,
      privileged: h.euid === 0,
      startBrk: Number(h.initialBrk),
      design,
    },
  });
  const fileIds = new Map<string, number>();
  for (const v of trace.layout) {
    if (v.end > LIMIT) {
      if (v.name !== '[vsyscall]') throw new Error(`${trace.name}: ${v.name} lies beyond 2^53`);
      mm.setGate(parseVmFlags(v.vmflags));
      continue;
    }
    const start = Number(v.start);
    let nameKind = NAME_ANON;
    let nameId = 0;
    let file = 0;
    let pgoff = start / PAGE_SIZE;
    if (v.name.startsWith('[') && v.name !== '[heap]') {
      nameKind = NAME_SPECIAL;
      nameId = specialNameId(v.name);
      if (v.name !== '[stack]') pgoff = Number(v.offset) / PAGE_SIZE;
    } else if (v.name !== '' && v.name !== '[heap]') {
      file = fileIds.get(v.name) ?? 0;
      if (file === 0) {
        file = files.add({ size: 2 ** 40, writable: false, name: v.name });
        fileIds.set(v.name, file);
      }
      nameKind = NAME_FILE;
      pgoff = Number(v.offset) / PAGE_SIZE;
    }
    const fields = {
      start,
      end: Number(v.end),
      pgoff,
      flags: parseVmFlags(v.vmflags),
      file,
      anon: 0,
      nameKind,
      nameId,
    };
    mm.insertVma(fields, v.hasAnonPages);
  }
  // The VMAs hold the libraries' files now; the seeding's own references go.
  for (const id of fileIds.values()) files.put(id);
  markRecorderPageTables(mm, trace.layout);
  return { mm, fds };
}

/**
 * The recorder's own mappings have page tables: every 2 MiB region they meet has a PMD entry, so
 * a trace VMA sharing such a region (or moved out of one by mremap) never gets a huge page there.
 */
function markRecorderPageTables(mm: AddressSpace, layout: TraceVma[]): void {
  for (const v of layout) {
    if (v.end > LIMIT) continue;
    const end = Number(v.end);
    for (let r = Math.floor(Number(v.start) / PMD_SIZE) * PMD_SIZE; r < end; r += PMD_SIZE) {
      if (mm.pt.allocPte(r) <= 0) throw new Error("replay: no memory for the recorder's page tables");
    }
  }
}

/** An unsigned 64-bit trace value as a syscall argument (see syscalls/args.ts). */
function arg(v: bigint): number {
  return ulong(v < 1n << 63n ? Number(v) : Number(v - (1n << 64n)));
}

function hexArg(args: Record<string, unknown>, key: string): number {
  const v = args[key];
  if (typeof v !== 'string' || !/^0x[0-9a-f]+$/.test(v)) throw new Error(`argument ${key}: not a hex string`);
  return arg(BigInt(v));
}

/** A flag set (symbolic names and hex strings) as its value. */
function flagArg(
  args: Record<string, unknown>,
  key: string,
  names: ReadonlyArray<readonly [string, number]>,
): number {
  const list = args[key];
  if (!Array.isArray(list)) throw new Error(`argument ${key}: not a flag list`);
  let value = 0n;
  for (const item of list) {
    const name = String(item);
    const known = names.find(([n]) => n === name);
    if (known) value |= BigInt(known[1]);
    else if (/^0x[0-9a-f]+$/.test(name)) value |= BigInt(name);
    else throw new Error(`argument ${key}: unknown flag ${name}`);
  }
  return arg(value);
}

function runOp(mm: AddressSpace, fds: Map<string, number>, op: TraceOp): number {
  const a = op.args;
  switch (op.op) {
    case 'mmap': {
      const fd = a.fd === null ? -1 : fds.get(String(a.fd));
      if (fd === undefined) throw new Error(`mmap: unknown fd ${String(a.fd)}`);
      return mm.sysMmap(
        hexArg(a, 'addr'),
        hexArg(a, 'len'),
        flagArg(a, 'prot', PROT_NAMES),
        flagArg(a, 'flags', MAP_NAMES),
        fd,
        hexArg(a, 'offset'),
      );
    }
    case 'munmap':
      return mm.sysMunmap(hexArg(a, 'addr'), hexArg(a, 'len'));
    case 'mprotect':
      return mm.sysMprotect(hexArg(a, 'addr'), hexArg(a, 'len'), flagArg(a, 'prot', PROT_NAMES));
    case 'mremap':
      return mm.sysMremap(
        hexArg(a, 'old_addr'),
        hexArg(a, 'old_len'),
        hexArg(a, 'new_len'),
        flagArg(a, 'flags', MREMAP_NAMES),
        hexArg(a, 'new_addr'),
      );
    case 'brk':
      return mm.sysBrk(hexArg(a, 'addr'));
    case 'madvise': {
      const advice = String(a.advice);
      const value =
        MADV_NAMES[advice] ?? (/^0x[0-9a-f]+$/.test(advice) ? Number(BigInt(advice)) : Number.NaN);
      if (Number.isNaN(value)) throw new Error(`madvise: unknown advice ${advice}`);
      return mm.sysMadvise(hexArg(a, 'addr'), hexArg(a, 'len'), cint(value));
    }
    case 'mlock':
      return mm.sysMlock2(hexArg(a, 'addr'), hexArg(a, 'len'), cint(flagArg(a, 'flags', MLOCK_NAMES)));
    case 'munlock':
      return mm.sysMunlock(hexArg(a, 'addr'), hexArg(a, 'len'));
    case 'touch':
      return mm.sysTouch(hexArg(a, 'addr'), hexArg(a, 'len'), a.write === true);
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

function resultText(ret: bigint | null, errno: string | null): string {
  return errno !== null ? errno : ret !== null ? `0x${ret.toString(16)}` : '?';
}

function viewKey(v: VmaView | TraceVma, strict: boolean): string {
  // Compared by the traces' names (anon_shared:N), not by the maps text's /dev/zero.
  return mapsLine({ ...v, shmem: -1 }) + (strict ? `  [${v.vmflags}]` : '');
}

/** The VMA lists differ? Returns a diff ('-' expected only, '+' replay only), or '' if equal. */
function diffVmas(expected: TraceVma[], actual: VmaView[], strict: boolean): string {
  const e = expected.filter((v) => v.name !== '[stack]').map((v) => viewKey(v, strict));
  const a = actual.filter((v) => v.name !== '[stack]').map((v) => viewKey(v, strict));
  if (e.length === a.length && e.every((line, k) => line === a[k])) return '';
  const inA = new Set(a);
  const inE = new Set(e);
  const lines: string[] = [];
  for (const line of e) lines.push(`${inA.has(line) ? ' ' : '-'} ${line}`);
  for (const line of a) if (!inE.has(line)) lines.push(`+ ${line}`);
  return lines.join('\n');
}

/**
 * Runs one op and compares its result and the VMA list after it with the trace's: '' when they
 * match, else a readable report of the divergence.
 */
export function replayOp(mm: AddressSpace, fds: Map<string, number>, op: TraceOp, strict: boolean): string {
  const ret = runOp(mm, fds, op);
  const got = ret < 0 ? errnoName(-ret) : null;
  const gotRet = ret < 0 ? null : BigInt(ret);
  const resultOk = op.errno !== null ? got === op.errno : gotRet === op.ret;
  const diff = diffVmas(op.vmas, mm.vmas(), strict);
  if (resultOk && diff === '') return '';
  const lines = [
    `op ${op.i}: ${op.op} ${JSON.stringify(op.args)}`,
    `  expected ${resultText(op.ret, op.errno)}, got ${resultText(gotRet, got)}`,
  ];
  if (diff !== '') lines.push('  VMAs (- Linux only, + replay only):', diff);
  return lines.join('\n');
}

export function replayTrace(trace: Trace, options: ReplayOptions): ReplayResult {
  const { mm, fds } = seedAddressSpace(trace, options.newIndex(), options.design);
  const initial = diffVmas(trace.layout, mm.vmas(), options.strict);
  if (initial !== '')
    return { ok: false, ops: 0, failedOp: -1, report: `initial layout differs:\n${initial}` };
  for (const op of trace.ops) {
    const report = replayOp(mm, fds, op, options.strict);
    if (report !== '') {
      mm.destroy();
      return { ok: false, ops: op.i, failedOp: op.i, report };
    }
  }
  // Its pages and the files' caches go back (the files go with their last VMA and descriptor).
  mm.destroy();
  mm.fds.closeAll();
  return { ok: true, ops: trace.ops.length, failedOp: -1, report: '' };
}
