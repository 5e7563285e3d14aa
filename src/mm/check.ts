/**
 * The address space's invariant checker: whole-structure checks that debug mode
 * (VMSPACE_DEBUG=1, on in `npm test`) runs after every commit, and that tests call directly.
 *
 *   - the maple tree's own invariants (node order, pivots, gap hints: MapleTree.validate);
 *   - the tree maps every VMA's [start, end - 1] to its record, in ascending, non-overlapping order,
 *     and every record it names is ATTACHED with page-aligned START < END;
 *   - mm->map_count equals the number of VMAs; mm->locked_vm equals the size of the VM_LOCKED ones;
 *   - every file and anon_vma a VMA names is live and holds at least one reference per such VMA;
 *   - the reverse map (src/fs/i-mmap.ts): every file-backed record has exactly one i_mmap entry,
 *     naming (this mm, it), linked in its file's list; no entry names this mm but for such a record
 *     (none is left for a freed one);
 *   - the per-2 MiB state agrees with the VMAs (the page tables hold it: docs/mem.md, "THP
 *     regions"): every region with a PMD entry meets a VMA (free_pgtables freed the others), and a
 *     region mapping a THP (PMD_THP_TABLE or a huge entry) lies whole inside one private
 *     anonymous VMA (a VMA edge inside it split it; an unmap zapped it).
 *
 * Preconditions: mmap_lock held (read or write) by the caller, or no other CPU running.
 * Throws an Error naming the first broken invariant.
 */
import {
  iMmapEntryMm,
  iMmapEntryVma,
  iMmapFirst,
  iMmapLockRead,
  iMmapNext,
  iMmapUnlockRead,
} from '../fs/i-mmap.js';
import { rangeOut } from '../maple/api.js';
import { MapleTree } from '../maple/tree.js';
import { PMD_THP_TABLE, PTE_HUGE, USER_ADDR_LIMIT } from '../mem/pte.js';
import type { MmShared } from './context.js';
import { PAGE_SIZE, PMD_SIZE, VM_LOCKED, VM_SHARED } from './vm-flags.js';
import { NAME_ANON, NAME_SPECIAL, SPECIAL_STACK, VMA_ATTACHED } from './vma-record.js';

const LIMIT = 2 ** 53 - 1;

export function checkMmLocked(mm: MmShared): void {
  if (mm.index instanceof MapleTree) mm.index.validate();
  const a = mm.arena;
  const out = rangeOut();
  const fileUses = new Map<number, number>();
  const anonUses = new Map<number, number>();
  let count = 0;
  let locked = 0;
  let prevEnd = 0;
  for (let q = 0; q <= LIMIT && mm.index.next(q, LIMIT, out) !== 0; q = out.last + 1) {
    const h = out.value;
    const start = a.start(h);
    const end = a.end(h);
    const where = `VMA [${start.toString(16)}, ${end.toString(16)}) (record ${h})`;
    if (a.state(h) !== VMA_ATTACHED) fail(`${where} is in the tree but not attached`);
    if (out.first !== start || out.last !== end - 1) {
      fail(`${where}: the tree maps [${out.first.toString(16)}, ${(out.last + 1).toString(16)}) to it`);
    }
    if (!(start < end) || start % PAGE_SIZE !== 0 || end % PAGE_SIZE !== 0)
      fail(`${where} is empty or unaligned`);
    if (start < prevEnd) fail(`${where} overlaps the VMA before it`);
    prevEnd = end;
    count++;
    if ((a.flags(h) & VM_LOCKED) !== 0) locked += (end - start) / PAGE_SIZE;
    if (a.file(h) !== 0) fileUses.set(a.file(h), (fileUses.get(a.file(h)) ?? 0) + 1);
    if (a.anon(h) !== 0) anonUses.set(a.anon(h), (anonUses.get(a.anon(h)) ?? 0) + 1);
  }
  if (count !== mm.state.mapCount) fail(`map_count is ${mm.state.mapCount}, the tree holds ${count} VMAs`);
  if (locked !== mm.state.lockedVm)
    fail(`locked_vm is ${mm.state.lockedVm} pages, the VM_LOCKED VMAs have ${locked}`);
  for (const [id, uses] of fileUses) {
    if (!mm.files.isFile(id) || mm.files.refs(id) < uses) {
      fail(
        `file ${id} is named by ${uses} VMAs but has ${mm.files.isFile(id) ? mm.files.refs(id) : 'no'} references`,
      );
    }
  }
  for (const [id, uses] of anonUses) {
    if (!mm.anonVmas.arena.isLive(id) || mm.anonVmas.refs(id) < uses) {
      fail(`anon_vma ${id} is named by ${uses} VMAs but holds ${mm.anonVmas.refs(id)} references`);
    }
  }
  checkPmdEntries(mm);
  checkRmap(mm, fileUses);
}

/** The reverse map against the records (see the file comment); fileUses: VMAs per file. */
function checkRmap(mm: MmShared, fileUses: Map<number, number>): void {
  const a = mm.arena;
  const files = mm.files;
  const me = mm.state.mmId;
  let mapped = 0;
  for (const [id, uses] of fileUses) {
    mapped += uses;
    let mine = 0;
    iMmapLockRead(files, id);
    try {
      for (let e = iMmapFirst(files, id); e !== 0; e = iMmapNext(files, e)) {
        if (iMmapEntryMm(files, e) !== me) continue;
        const h = iMmapEntryVma(files, e);
        if (a.state(h) !== VMA_ATTACHED || a.file(h) !== id || a.rmapEntry(h) !== e) {
          fail(`i_mmap entry ${e} of file ${id} names record ${h}, which is not its live mapping`);
        }
        mine++;
      }
    } finally {
      iMmapUnlockRead(files, id);
    }
    if (mine !== uses)
      fail(`file ${id}: ${uses} VMAs map it, its i_mmap list has ${mine} entries of this mm`);
  }
  // Entries naming this mm are written only by its commits (mmap_lock): a plain scan is stable.
  const entries = files.iMmapEntries;
  let named = 0;
  const capacity = entries.stats().capacity;
  for (let e = 1; e <= capacity; e++) {
    if (entries.isLive(e) && iMmapEntryMm(files, e) === me) named++;
  }
  if (named !== mapped) fail(`${named} i_mmap entries name this mm, ${mapped} file-backed VMAs exist`);
}

/** The PMD entries against the VMAs (see the file comment). */
function checkPmdEntries(mm: MmShared): void {
  const a = mm.arena;
  const out = rangeOut();
  mm.pt.forEachPmd(0, USER_ADDR_LIMIT, (r, x) => {
    const where = `2 MiB region ${r.toString(16)} (PMD entry ${x.toString(16)})`;
    if (mm.index.next(r, r + PMD_SIZE - 1, out) === 0) fail(`${where} has page tables but meets no VMA`);
    if ((x & (PMD_THP_TABLE | PTE_HUGE)) === 0) return;
    const h = out.value;
    if (a.start(h) > r || a.end(h) < r + PMD_SIZE) fail(`${where} maps a THP across VMA edges`);
    const kind = a.nameKind(h);
    const anon = kind === NAME_ANON || (kind === NAME_SPECIAL && a.nameId(h) === SPECIAL_STACK);
    if (a.file(h) !== 0 || (a.flags(h) & VM_SHARED) !== 0 || !anon) {
      fail(`${where} maps a THP in a VMA that is not private anonymous`);
    }
  });
}

function fail(message: string): never {
  throw new Error(`address space invariant: ${message}`);
}
