/**
 * PhysMem's whole-structure check (`PhysMem.check()`, `checkPhysMem`): run when no CPU runs (in
 * debug mode, and by the leak checks of tests). It walks the zone's home lists, every CPU's row and every
 * descriptor, and returns a description of the first broken invariant (frames.ts lists them), or
 * undefined. Cost: one pass over the descriptors, and over the frames' bytes when poisoning is on.
 */
import { MAX_CPUS } from '../cpu/current.js';
import {
  describeFrame,
  FIRST_PFN,
  type FrameViews,
  firstBadByte,
  KIND_FREE,
  KIND_NAMES,
  KIND_ZERO,
  KINDS,
  NO_PFN,
  PG_STALE,
  ZERO_PFN,
} from './page.js';
import {
  BUMP,
  H_COUNT,
  H_HEAD,
  HOMES,
  NEXT,
  P_COUNT,
  P_SLOTS,
  PCP_BASE,
  PCP_ROW,
  PCP_SLOTS,
  ZONE_COUNT,
  type Zone,
} from './zone.js';

export interface CheckedMem extends FrameViews {
  readonly frames: number;
  readonly poison: boolean;
}

export function checkFrames(mem: CheckedMem, lists: Zone): string | undefined {
  const c = lists.control;
  const stats = lists.stats();
  const frames = mem.frames;
  const bump = c[BUMP];
  if (!(bump >= FIRST_PFN && bump <= frames)) return `BUMP ${bump} is outside ${FIRST_PFN}..${frames}`;
  const listed = new Uint8Array(frames);
  const zone = c[ZONE_COUNT];
  let cached = 0;
  let homed = 0;
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    const problem = walkHome(c, cpu, listed, bump);
    if (problem !== undefined) return problem;
    homed += c[HOMES + 2 * cpu + H_COUNT];
  }
  if (homed !== zone) return `ZONE_COUNT is ${zone}, the home lists hold ${homed} frames`;
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    const row = PCP_BASE + cpu * PCP_ROW;
    const count = c[row + P_COUNT];
    if (!(count >= 0 && count <= PCP_SLOTS)) return `cpu ${cpu}'s row holds ${count} frames`;
    cached += count;
    for (let i = 0; i < count; i++) {
      const problem = list(listed, c[row + P_SLOTS + i], bump, `cpu ${cpu}'s row`);
      if (problem !== undefined) return problem;
    }
  }
  const counts = new Array<number>(KINDS).fill(0);
  for (let pfn = FIRST_PFN; pfn < frames; pfn++) {
    const kind = mem.kind[pfn];
    const free =
      kind === KIND_FREE && mem.refcount[pfn] === 0 && mem.mapcount[pfn] === 0 && mem.owner[pfn] === 0;
    if (pfn >= bump || listed[pfn] !== 0) {
      // Free: PG_STALE once handed out before; a never-used frame (from BUMP on, or taken from
      // BUMP into a row) has no flag at all.
      const flags = mem.flags[pfn];
      if (
        !free ||
        mem.index[pfn] !== 0 ||
        (flags !== PG_STALE && flags !== 0) ||
        (pfn >= bump && flags !== 0)
      ) {
        return `free pfn ${pfn} has a used descriptor (${describeFrame(mem, pfn)})`;
      }
      const bad = mem.poison ? firstBadByte(mem, pfn, flags === PG_STALE) : -1;
      if (bad >= 0) return `free pfn ${pfn} was written while free (byte ${bad})`;
      counts[KIND_FREE]++;
      continue;
    }
    if (kind === KIND_FREE) return `pfn ${pfn} is free but on no free list (leaked by the allocator)`;
    if (!(kind > KIND_FREE && kind < KINDS && kind !== KIND_ZERO)) return `pfn ${pfn} has kind ${kind}`;
    if (mem.refcount[pfn] <= 0 || mem.mapcount[pfn] < 0) {
      return `pfn ${pfn} is in use with ${describeFrame(mem, pfn)}`;
    }
    counts[kind]++;
  }
  if (mem.kind[ZERO_PFN] !== KIND_ZERO || mem.refcount[ZERO_PFN] < 1 || mem.mapcount[ZERO_PFN] < 0) {
    return `the zero page's descriptor is ${describeFrame(mem, ZERO_PFN)}`;
  }
  if (firstBadByte(mem, ZERO_PFN, false) >= 0) return 'the zero page was written';
  if (mem.refcount[NO_PFN] !== 0 || mem.kind[NO_PFN] !== KIND_FREE) return 'pfn 0 has a descriptor';
  const byKind = [stats.free, stats.anon, stats.file, stats.pagetable, 0, stats.other];
  for (let k = 0; k < KINDS; k++) {
    if (k !== KIND_ZERO && byKind[k] !== counts[k]) {
      return `stats count ${byKind[k]} ${KIND_NAMES[k]} frames, the descriptors ${counts[k]}`;
    }
  }
  if (stats.free !== zone + cached + stats.untouched) {
    return `${stats.free} free frames, but ${zone} in the zone + ${cached} cached + ${stats.untouched} untouched`;
  }
  if (stats.allocs - stats.frees !== stats.usable - stats.free) {
    return `${stats.allocs} allocations - ${stats.frees} frees, but ${stats.usable - stats.free} frames in use`;
  }
  return undefined;
}

/** CPU `cpu`'s home list: exactly COUNT frames, linked through NEXT, ending with NO_PFN. */
function walkHome(c: Int32Array, cpu: number, listed: Uint8Array, bump: number): string | undefined {
  const where = `cpu ${cpu}'s home list`;
  const count = c[HOMES + 2 * cpu + H_COUNT];
  if (!(count >= 0 && count <= bump - FIRST_PFN)) return `${where} counts ${count} frames`;
  let pfn = c[HOMES + 2 * cpu + H_HEAD];
  for (let i = 0; i < count; i++) {
    // A pfn listed twice (a cycle included) is caught by list() before the walk could loop.
    const problem = list(listed, pfn, bump, where);
    if (problem !== undefined) return problem;
    pfn = c[NEXT + pfn];
  }
  if (pfn !== NO_PFN) return `${where} goes on past its ${count} frames (to pfn ${pfn})`;
  return undefined;
}

function list(listed: Uint8Array, pfn: number, bump: number, where: string): string | undefined {
  if (!(pfn >= FIRST_PFN && pfn < bump)) return `${where} holds pfn ${pfn}, never handed out`;
  if (listed[pfn] !== 0) return `pfn ${pfn} is on the free lists twice (again in ${where})`;
  listed[pfn] = 1;
  return undefined;
}
