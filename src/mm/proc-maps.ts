/**
 * Views of an address space in Linux's formats: /proc/PID/maps lines and a short smaps-like
 * summary (Size and the VmFlags line in kernel order). Device and inode columns are 00:00 0
 * (vmspace files have none) except for shared anonymous memory, which Linux shows as the deleted
 * /dev/zero of its shmem object (00:01, inode = object number); names follow the kernel: the
 * file's name, [heap] for an anonymous VMA meeting (start_brk, brk), the special mapping's name,
 * or nothing. A view's `name` is the identity the traces use (`anon_shared:N` for shmem).
 */
import type { MmShared } from './context.js';
import { PAGE_SIZE, permsText, vmFlagsText } from './vm-flags.js';
import { NAME_FILE, NAME_SPECIAL, SPECIAL_NAMES } from './vma-record.js';

const LIMIT = 2 ** 53 - 1;
/** Where the kernel's show_map_vma starts the name (the fields are padded to 72, then a space). */
const NAME_COLUMN = 73;

export interface VmaView {
  start: bigint;
  end: bigint;
  perms: string;
  /** The maps offset column in bytes (vm_pgoff * 4096 for file and shmem VMAs, else 0). */
  offset: bigint;
  name: string;
  /** The shmem object's number for shared anonymous memory, else -1. */
  shmem: number;
  vmflags: string;
}

/** The [vsyscall] gate page's range (x86_64's fixed legacy vsyscall address). */
const GATE_START = 0xffffffffff600000n;
const GATE_END = 0xffffffffff601000n;

/** Every VMA in address order, then the gate page if any. Preconditions: mmap_lock held. */
export function vmaViews(mm: MmShared): VmaView[] {
  const views: VmaView[] = [];
  const out = { first: 0, last: 0, value: 0 };
  const a = mm.arena;
  let q = 0;
  while (mm.index.next(q, LIMIT, out) !== 0) {
    const h = out.value;
    const kind = a.nameKind(h);
    const start = a.start(h);
    const end = a.end(h);
    let name = '';
    let shmem = -1;
    if (kind === NAME_FILE) {
      name = mm.files.name(a.file(h));
      shmem = mm.files.shmemIndex(a.file(h));
    } else if (kind === NAME_SPECIAL) name = SPECIAL_NAMES[a.nameId(h)];
    else if (start < mm.state.brk && end > mm.state.startBrk) name = '[heap]';
    views.push({
      start: BigInt(start),
      end: BigInt(end),
      perms: permsText(a.flags(h)),
      offset: a.file(h) !== 0 ? BigInt(a.pgoff(h) * PAGE_SIZE) : 0n,
      name,
      shmem,
      vmflags: vmFlagsText(a.flags(h)),
    });
    q = out.last + 1;
  }
  const gate = mm.state.gateFlags;
  if (gate !== 0) {
    views.push({
      start: GATE_START,
      end: GATE_END,
      perms: permsText(gate),
      offset: 0n,
      name: '[vsyscall]',
      shmem: -1,
      vmflags: vmFlagsText(gate),
    });
  }
  return views;
}

function hex(v: bigint, width: number): string {
  return v.toString(16).padStart(width, '0');
}

/** One /proc/PID/maps line. */
export function mapsLine(v: VmaView): string {
  const range = `${hex(v.start, 8)}-${hex(v.end, 8)} ${v.perms} ${hex(v.offset, 8)}`;
  if (v.shmem >= 0) return `${`${range} 00:01 ${v.shmem + 1}`.padEnd(NAME_COLUMN)}/dev/zero (deleted)`;
  const head = `${range} 00:00 0 `;
  return v.name === '' ? head : `${head.padEnd(NAME_COLUMN)}${v.name}`;
}

/** /proc/PID/maps text. */
export function mapsText(mm: { vmas(): VmaView[] }): string {
  return mm
    .vmas()
    .map((v) => `${mapsLine(v)}\n`)
    .join('');
}

/** A short /proc/PID/smaps: each maps line, its size and its VmFlags. */
export function smapsText(mm: { vmas(): VmaView[] }): string {
  let text = '';
  for (const v of mm.vmas()) {
    text += `${mapsLine(v)}\nSize:           ${String((v.end - v.start) / 1024n).padStart(8)} kB\nVmFlags: ${v.vmflags}\n`;
  }
  return text;
}
