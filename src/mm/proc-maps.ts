/**
 * Views of an address space in Linux's formats: /proc/PID/maps lines and a short smaps-like
 * summary (Size, Locked hint and the VmFlags line in kernel order). Device and inode columns are
 * 00:00 0 (vmspace files have none); names follow the kernel: the file's name, [heap] for an
 * anonymous VMA meeting (start_brk, brk), the special mapping's name, or nothing.
 */
import type { AddressSpace } from './address-space.js';
import { PAGE_SIZE, permsText, vmFlagsText } from './vm-flags.js';
import { NAME_FILE, NAME_SPECIAL } from './vma-record.js';

const LIMIT = 2 ** 53 - 1;

export interface VmaView {
  start: bigint;
  end: bigint;
  perms: string;
  /** The maps offset column in bytes (vm_pgoff * 4096 for file and shmem VMAs, else 0). */
  offset: bigint;
  name: string;
  vmflags: string;
}

/** Every VMA in address order (caller holds mmap_lock). */
export function vmaViews(mm: AddressSpace): VmaView[] {
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
    if (kind === NAME_FILE) name = mm.files.get(a.file(h)).name;
    else if (kind === NAME_SPECIAL) name = mm.specialNames[a.nameId(h)];
    else if (start < mm.curBrk && end > mm.startBrk) name = '[heap]';
    views.push({
      start: BigInt(start),
      end: BigInt(end),
      perms: permsText(a.flags(h)),
      offset: a.file(h) !== 0 ? BigInt(a.pgoff(h) * PAGE_SIZE) : 0n,
      name,
      vmflags: vmFlagsText(a.flags(h)),
    });
    q = out.last + 1;
  }
  for (const v of mm.outsideVmas) {
    views.push({
      start: v.start,
      end: v.end,
      perms: permsText(v.flags),
      offset: 0n,
      name: v.name,
      vmflags: vmFlagsText(v.flags),
    });
  }
  return views;
}

function hex(v: bigint, width: number): string {
  return v.toString(16).padStart(width, '0');
}

/** One /proc/PID/maps line. */
export function mapsLine(v: VmaView): string {
  const head = `${hex(v.start, 8)}-${hex(v.end, 8)} ${v.perms} ${hex(v.offset, 8)} 00:00 0 `;
  return v.name === '' ? head : head.padEnd(73, ' ') + v.name;
}

/** /proc/PID/maps text. */
export function mapsText(mm: AddressSpace): string {
  return mm
    .vmas()
    .map((v) => `${mapsLine(v)}\n`)
    .join('');
}

/** A short /proc/PID/smaps: each maps line, its size and its VmFlags. */
export function smapsText(mm: AddressSpace): string {
  let text = '';
  for (const v of mm.vmas()) {
    text += `${mapsLine(v)}\nSize:           ${String((v.end - v.start) / 1024n).padStart(8)} kB\nVmFlags: ${v.vmflags}\n`;
  }
  return text;
}
