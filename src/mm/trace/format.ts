/**
 * Reading linux-mm-trace files (test/mm/fixtures/linux/FORMAT.md): gzip-compressed or plain JSON
 * Lines with a header, a layout, one op per line and an end record. A file whose last line is not
 * an `end` record counting exactly its op lines is truncated and rejected. Errors name the file
 * and say which of these it is: not gzip (a .gz name without gzip data), corrupt gzip, not JSON
 * (with the line), not a trace, or truncated (the gzip stream, or the lines, end early). Hex numbers are 64-bit
 * and parsed with BigInt here, at the boundary; the replayer converts them to syscall arguments.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface TraceFile {
  id: string;
  size: bigint;
  writable: boolean;
  fs: string;
}

export interface TraceHeader {
  kernel: string;
  pageSize: number;
  taskSize: bigint;
  mmapBase: bigint;
  mmapMinAddr: bigint;
  thpEnabled: string;
  thpShmemEnabled: string;
  stackGuardGapPages: number;
  rlimitStack: bigint;
  overcommitMemory: number;
  /** `zero_page`: false when read faults on private anonymous memory allocate (absent = true). */
  zeroPage: boolean;
  euid: number;
  initialBrk: bigint;
  files: TraceFile[];
  profile: string;
  seed: number;
}

export interface TraceVma {
  start: bigint;
  end: bigint;
  perms: string;
  offset: bigint;
  name: string;
  vmflags: string;
  hasAnonPages: boolean;
}

export interface TraceOp {
  i: number;
  op: string;
  args: Record<string, unknown>;
  /** Exactly one of ret and errno is set. */
  ret: bigint | null;
  errno: string | null;
  vmas: TraceVma[];
}

export interface Trace {
  name: string;
  header: TraceHeader;
  layout: TraceVma[];
  ops: TraceOp[];
}

/** Parses a lowercase 0x-prefixed hex string as an unsigned 64-bit value. */
export function hex(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^0x[0-9a-f]+$/.test(value))
    throw new Error(`${what}: not a hex string: ${String(value)}`);
  const v = BigInt(value);
  if (v >= 1n << 64n) throw new Error(`${what}: ${value} does not fit 64 bits`);
  return v;
}

function record(line: string, lineNo: number, name: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error(`${name}: line ${lineNo}: not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`${name}: line ${lineNo}: not a JSON object`);
  return parsed as Record<string, unknown>;
}

function vma(raw: unknown, where: string): TraceVma {
  const v = raw as Record<string, unknown>;
  return {
    start: hex(v.start, `${where} start`),
    end: hex(v.end, `${where} end`),
    perms: String(v.perms),
    offset: hex(v.offset, `${where} offset`),
    name: String(v.name),
    vmflags: String(v.vmflags),
    hasAnonPages: v.has_anon_pages === true,
  };
}

/** The header's `zero_page`: added after version 1 was published, so a missing key means true. */
function zeroPageKey(v: unknown): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'boolean') throw new Error(`header: zero_page is not a boolean: ${String(v)}`);
  return v;
}

function header(h: Record<string, unknown>, name: string): TraceHeader {
  if (h.type !== 'header' || h.format !== 'linux-mm-trace' || h.version !== 1)
    throw new Error(`${name}: line 1: not a linux-mm-trace v1 header`);
  const files = (h.files as Array<Record<string, unknown>>).map((f) => ({
    id: String(f.id),
    size: hex(f.size, `file ${String(f.id)} size`),
    writable: f.writable === true,
    fs: String(f.fs),
  }));
  return {
    kernel: String(h.kernel),
    pageSize: Number(h.page_size),
    taskSize: hex(h.task_size, 'task_size'),
    mmapBase: hex(h.mmap_base, 'mmap_base'),
    mmapMinAddr: hex(h.mmap_min_addr, 'mmap_min_addr'),
    thpEnabled: String(h.thp_enabled),
    thpShmemEnabled: String(h.thp_shmem_enabled),
    stackGuardGapPages: Number(h.stack_guard_gap_pages),
    rlimitStack: hex(h.rlimit_stack, 'rlimit_stack'),
    overcommitMemory: Number(h.overcommit_memory),
    zeroPage: zeroPageKey(h.zero_page),
    euid: Number(h.euid),
    initialBrk: hex(h.initial_brk, 'initial_brk'),
    files,
    profile: String(h.profile),
    seed: Number(h.seed),
  };
}

/** Parses trace text; throws with the line number on malformed or truncated input. */
export function parseTrace(text: string, name: string): Trace {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new Error(`${name}: empty`);
  // The first line decides whether this is a trace at all; only a trace can be truncated.
  const head = header(record(lines[0], 1, name), name);
  if (lines.length < 3) throw new Error(`${name}: truncated (${lines.length} lines)`);
  const layoutRec = record(lines[1], 2, name);
  if (layoutRec.type !== 'layout') throw new Error(`${name}: line 2 is not the layout`);
  const layout = (layoutRec.vmas as unknown[]).map((v, k) => vma(v, `layout vma ${k}`));
  const ops: TraceOp[] = [];
  for (let n = 2; n < lines.length - 1; n++) {
    const r = record(lines[n], n + 1, name);
    if (r.type !== 'op') throw new Error(`${name}: line ${n + 1} is not an op`);
    if (r.i !== ops.length)
      throw new Error(`${name}: line ${n + 1}: op index ${String(r.i)}, expected ${ops.length}`);
    const hasRet = 'ret' in r;
    if (hasRet === 'errno' in r)
      throw new Error(`${name}: op ${ops.length} must have exactly one of ret and errno`);
    ops.push({
      i: ops.length,
      op: String(r.op),
      args: r.args as Record<string, unknown>,
      ret: hasRet ? (typeof r.ret === 'number' ? BigInt(r.ret) : hex(r.ret, `op ${ops.length} ret`)) : null,
      errno: hasRet ? null : String(r.errno),
      vmas: (r.vmas as unknown[]).map((v, k) => vma(v, `op ${ops.length} vma ${k}`)),
    });
  }
  // A last line cut off in the middle (no newline after it) is where a truncated file stops.
  const cutOff = !text.endsWith('\n') && !isJson(lines[lines.length - 1]);
  if (cutOff) throw new Error(`${name}: truncated (line ${lines.length} is cut off)`);
  const last = record(lines[lines.length - 1], lines.length, name);
  if (last.type !== 'end' || last.ops !== ops.length)
    throw new Error(`${name}: truncated (no end record for ${ops.length} ops)`);
  return { name, header: head, layout, ops };
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** Reads a .jsonl.gz or .jsonl trace (gzip is recognised by its magic bytes, whatever the name). */
export function readTrace(path: string): Trace {
  const raw = readFileSync(path);
  const gz = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  if (!gz && path.endsWith('.gz')) throw new Error(`${path}: not gzip (no gzip magic bytes at its start)`);
  let text: string;
  try {
    text = (gz ? gunzipSync(raw) : raw).toString('utf8');
  } catch (e) {
    // zlib says Z_BUF_ERROR ("unexpected end of file") when the stream stops early.
    const cut = (e as { code?: unknown }).code === 'Z_BUF_ERROR';
    throw new Error(`${path}: ${cut ? 'truncated gzip' : 'corrupt gzip'} (${(e as Error).message})`);
  }
  return parseTrace(text, path);
}
