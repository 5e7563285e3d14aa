/**
 * Views of an address space in Linux's formats: /proc/PID/maps lines and a short smaps-like
 * summary (Size and the VmFlags line in kernel order). Device and inode columns are 00:00 0
 * (vmspace files have none) except for shared anonymous memory, which Linux shows as the deleted
 * /dev/zero of its shmem object (00:01, inode = object number); names follow the kernel: the
 * file's name, [heap] for an anonymous VMA meeting (start_brk, brk), the special mapping's name,
 * or nothing. A view's `name` is the identity the traces use (`anon_shared:N` for shmem).
 */
import type { PhysMem } from '../mem/frames.js';
import { PG_ANON, ZERO_PFN } from '../mem/page.js';
import { ptePfn, USER_ADDR_LIMIT } from '../mem/pte.js';
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
  /** Resident pages (mapped frames; the zero page is not counted, as Linux's vm_normal_page). */
  rss: number;
  /** Resident anonymous pages. */
  anonymous: number;
}

/** The [vsyscall] gate page's range (x86_64's fixed legacy vsyscall address). */
const GATE_START = 0xffffffffff600000n;
const GATE_END = 0xffffffffff601000n;

/**
 * Every VMA in address order, then the gate page if any; with `resident`, their resident pages
 * are counted from the page tables (else rss and anonymous are 0). Preconditions: mmap_lock held.
 */
export function vmaViews(mm: MmShared, resident = false): VmaView[] {
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
    countResident(mm, resident ? start : end, end);
    views.push({
      start: BigInt(start),
      end: BigInt(end),
      perms: permsText(a.flags(h)),
      offset: a.file(h) !== 0 ? BigInt(a.pgoff(h) * PAGE_SIZE) : 0n,
      name,
      shmem,
      vmflags: vmFlagsText(a.flags(h)),
      rss: pages.rss,
      anonymous: pages.anonymous,
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
      rss: 0,
      anonymous: 0,
    });
  }
  return views;
}

function hex(v: bigint, width: number): string {
  return v.toString(16).padStart(width, '0');
}

/** One /proc/PID/maps line. */
export function mapsLine(v: Pick<VmaView, 'start' | 'end' | 'perms' | 'offset' | 'name' | 'shmem'>): string {
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

/** Resident pages of [start, end), counted by countResident. */
const pages = { rss: 0, anonymous: 0, mem: null as PhysMem | null };
const countPage = (_addr: number, entry: number): void => {
  const pfn = ptePfn(entry);
  if (pfn === ZERO_PFN) return;
  pages.rss++;
  if (pages.mem?.testFlag(pfn, PG_ANON)) pages.anonymous++;
};

function countResident(mm: MmShared, start: number, end: number): void {
  pages.rss = 0;
  pages.anonymous = 0;
  pages.mem = mm.mem;
  if (start < end && end <= USER_ADDR_LIMIT) mm.pt.forEachPresent(start, end, countPage);
}

function kB(pages: number): string {
  return `${String(pages * 4).padStart(8)} kB`;
}

/** A short /proc/PID/smaps: each maps line, then Size, Rss, Anonymous and VmFlags. */
export function smapsText(mm: { vmas(resident?: boolean): VmaView[] }): string {
  let text = '';
  for (const v of mm.vmas(true)) {
    const size = `${String((v.end - v.start) / 1024n).padStart(8)} kB`;
    text += `${mapsLine(v)}\nSize:           ${size}\nRss:            ${kB(v.rss)}\nAnonymous:      ${kB(v.anonymous)}\nVmFlags: ${v.vmflags}\n`;
  }
  return text;
}

/** The memory lines of /proc/PID/status: VmSize, VmLck, VmRSS, RssAnon, RssFile, RssShmem. */
export function statusText(mm: { vmas(resident?: boolean): VmaView[]; lockedPages(): number }): string {
  let size = 0;
  let rss = 0;
  let anon = 0;
  for (const v of mm.vmas(true)) {
    size += Number(v.end - v.start) / PAGE_SIZE;
    rss += v.rss;
    anon += v.anonymous;
  }
  const line = (name: string, pages: number) => `${`${name}:`.padEnd(12)}${kB(pages)}\n`;
  return (
    line('VmSize', size) +
    line('VmLck', mm.lockedPages()) +
    line('VmRSS', rss) +
    line('RssAnon', anon) +
    line('RssFile', rss - anon) +
    line('RssShmem', 0)
  );
}
