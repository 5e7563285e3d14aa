/**
 * i_mmap: the reverse map from a file to the VMAs that map it (docs/fs.md, "The reverse map").
 * One entry per live file-backed VMA record of any address space (shmem objects too), in a
 * kernel-wide arena the file table owns (`FileTable.iMmapEntries`), linked per file from its record:
 *
 *   file record words 40-44                         entry (16 bytes)
 *   I_MMAP_HEAD ----> [MM | VMA | NEXT | PREV] <-> [MM | VMA | NEXT | PREV] <-- I_MMAP_TAIL
 *   I_MMAP_COUNT      entries linked                  MM: the address space's id (mm-registry)
 *   I_MMAP_COMMITS    commits in flight on the file   VMA: the record's handle in that space
 *   I_MMAP_WAITERS    walkers sleeping on COMMITS
 *
 * Guards: HEAD, TAIL, COUNT and every entry's words are written under the file's i_mmap lock held
 * for write (plain stores: the lock orders them), and read under it held for read (COUNT also
 * without it, as a statistic: iMmapCount). The VMA records an entry names belong to its address
 * space (written under its mmap_lock held for write); a walker reads their START/END/PGOFF only
 * under i_mmap (R) with COMMITS at 0.
 *
 * The commit window (why a walker sees a commit whole): a VMA commit that changes any record of a
 * file (creates, removes, moves, resizes or re-offsets one) opens a window on that file under
 * i_mmap (W): COMMITS + 1, and links and unlinks the file's entries there, in one hold. It then
 * rewrites the records and runs its page-table work (zaps, mremap's moves, table frees) holding no
 * i_mmap lock, and closes the window with an atomic COMMITS - 1 (no lock: see below). A walker
 * takes i_mmap (R) and waits until COMMITS is 0 before it walks: while it holds R no window can
 * open, and none is open, so every record of the file and every PTE under it is as one commit left
 * it - never a split's half, never an mremap's PTEs between their old and new places. This is the
 * effect of holding i_mmap (W) across the whole commit, without nesting one i_mmap per file under
 * the commit (exit unmaps hundreds of files in one commit: no lockdep subclasses for that many):
 * the commit never takes i_mmap again after it opened its windows, so a walker that waits holding
 * R cannot block the commit it waits for, and the windows it waits for close in bounded time.
 * A commit that changes no page table opens no window on a file whose records only come and go
 * (new records, written before they are linked; removed ones): a walker can see nothing half done
 * there (VmaTxn.apply).
 * A commit opens its windows in increasing file id (one i_mmap (W) at a time, earlier windows
 * open): a commit waiting for W of file F holds windows only on files below F, and the walkers of F
 * wait only for commits that already opened F, which wait on no i_mmap (W) below their own, so no
 * chain of commits and walkers closes into a cycle. Asserted per CPU: while it holds a window, a
 * CPU takes no i_mmap (R) (even in debug checks) and no i_mmap (W) out of order.
 */
import { assert } from '../assert.js';
import { currentCpu } from '../cpu/current.js';
import { beginWait, endWait, hangError, WAIT_SEQCOUNT, WAIT_SLICE_MS, waitTooLong } from '../cpu/waits.js';
import { rcuBlockBegin, rcuBlockEnd } from '../sync/rcu.js';
import { rwsemDownRead, rwsemDownWrite, rwsemUpRead, rwsemUpWrite } from '../sync/rwsem.js';
import {
  type FileTable,
  FILE_I_MMAP_COMMITS as I_MMAP_COMMITS,
  FILE_I_MMAP_COUNT as I_MMAP_COUNT,
  I_MMAP_ENTRY_BYTES,
  FILE_I_MMAP_HEAD as I_MMAP_HEAD,
  I_MMAP_LOCK_WORD,
  FILE_I_MMAP_TAIL as I_MMAP_TAIL,
  FILE_I_MMAP_WAITERS as I_MMAP_WAITERS,
  iMmapClass,
} from './file-table.js';

/** An entry: 4 Int32 words. */
const E_MM = 0;
const E_VMA = 1;
const E_NEXT = 2;
const E_PREV = 3;
const E_WORDS = I_MMAP_ENTRY_BYTES / 4;

// ---- entries -----------------------------------------------------------------------------------

/** A zeroed entry, or 0 when allocation fails (the file table's injector reaches it). */
export function iMmapAlloc(files: FileTable): number {
  return files.iMmapEntries.alloc();
}

/** Frees an entry. Preconditions: it is not linked. */
export function iMmapFree(files: FileTable, e: number): void {
  files.iMmapEntries.free(e);
}

export function iMmapEntryMm(files: FileTable, e: number): number {
  return files.iMmapEntries.i32[e * E_WORDS + E_MM];
}
export function iMmapEntryVma(files: FileTable, e: number): number {
  return files.iMmapEntries.i32[e * E_WORDS + E_VMA];
}
/** The entry after e in its file's list (0 = none). Preconditions: i_mmap held. */
export function iMmapNext(files: FileTable, e: number): number {
  return files.iMmapEntries.i32[e * E_WORDS + E_NEXT];
}
/** The file's first entry (0 = none). Preconditions: i_mmap held. */
export function iMmapFirst(files: FileTable, id: number): number {
  return files.words[files.word(id, I_MMAP_HEAD)];
}
/** Entries linked to the file (a statistic unless i_mmap is held). */
export function iMmapCount(files: FileTable, id: number): number {
  return Atomics.load(files.words, files.word(id, I_MMAP_COUNT));
}

/**
 * Links entry e, naming record `vma` of address space `mm`, at the tail of the file's list (a
 * walker meets an older mapping before a newer one, as Linux's vma_interval_tree_insert_after).
 * Preconditions: i_mmap held for write; e allocated and unlinked.
 */
export function iMmapLinkLocked(files: FileTable, id: number, e: number, mm: number, vma: number): void {
  const w = files.words;
  const x = files.iMmapEntries.i32;
  const b = e * E_WORDS;
  assert(mm > 0 && vma > 0 && x[b + E_VMA] === 0, 'i_mmap link: bad entry');
  const tail = w[files.word(id, I_MMAP_TAIL)];
  x[b + E_MM] = mm;
  x[b + E_VMA] = vma;
  x[b + E_NEXT] = 0;
  x[b + E_PREV] = tail;
  if (tail === 0) w[files.word(id, I_MMAP_HEAD)] = e;
  else x[tail * E_WORDS + E_NEXT] = e;
  w[files.word(id, I_MMAP_TAIL)] = e;
  w[files.word(id, I_MMAP_COUNT)]++;
}

/** Unlinks entry e from the file's list and zeroes it. Preconditions: i_mmap held for write; e linked there. */
export function iMmapUnlinkLocked(files: FileTable, id: number, e: number): void {
  const w = files.words;
  const x = files.iMmapEntries.i32;
  const b = e * E_WORDS;
  const next = x[b + E_NEXT];
  const prev = x[b + E_PREV];
  assert(x[b + E_VMA] !== 0 && w[files.word(id, I_MMAP_COUNT)] > 0, 'i_mmap unlink: not linked');
  if (prev === 0) w[files.word(id, I_MMAP_HEAD)] = next;
  else x[prev * E_WORDS + E_NEXT] = next;
  if (next === 0) w[files.word(id, I_MMAP_TAIL)] = prev;
  else x[next * E_WORDS + E_PREV] = prev;
  x[b + E_MM] = 0;
  x[b + E_VMA] = 0;
  x[b + E_NEXT] = 0;
  x[b + E_PREV] = 0;
  w[files.word(id, I_MMAP_COUNT)]--;
}

// ---- the lock and the commit window ------------------------------------------------------------

/**
 * Commit windows this CPU holds open, and the file of the last one it opened (per thread: a
 * window is closed by the CPU that opened it). While it holds one, a CPU takes no i_mmap lock but
 * the write lock of the next window to open, of a file with a larger id: a walker waits for a
 * window holding i_mmap (R), so a window holder waiting for R, or for W out of order, could close
 * a cycle (see the file comment).
 */
let windowsHeld = 0;
let lastWindowFile = 0;
/** Windows this CPU has opened (a statistic for tests: which commits take one). */
let windowsOpened = 0;

/** The number of commit windows this CPU has opened so far. */
export function iMmapWindowsOpened(): number {
  return windowsOpened;
}

/** i_mmap_lock_write (no lock object: the commit's hot path). */
export function iMmapLockWrite(files: FileTable, id: number): void {
  assert(windowsHeld === 0 || id > lastWindowFile, 'i_mmap: windows opened out of file order');
  rwsemDownWrite(files.words, files.word(id, I_MMAP_LOCK_WORD), iMmapClass);
}
export function iMmapUnlockWrite(files: FileTable, id: number): void {
  rwsemUpWrite(files.words, files.word(id, I_MMAP_LOCK_WORD), iMmapClass);
}
/** i_mmap_lock_read. Preconditions: this CPU holds no commit window. */
export function iMmapLockRead(files: FileTable, id: number): void {
  assert(windowsHeld === 0, 'i_mmap: read lock taken while holding a commit window');
  rwsemDownRead(files.words, files.word(id, I_MMAP_LOCK_WORD), iMmapClass);
}
export function iMmapUnlockRead(files: FileTable, id: number): void {
  rwsemUpRead(files.words, files.word(id, I_MMAP_LOCK_WORD), iMmapClass);
}

/** Opens a commit window on the file (see the file comment). Preconditions: i_mmap held for write. */
export function iMmapCommitBeginLocked(files: FileTable, id: number): void {
  Atomics.add(files.words, files.word(id, I_MMAP_COMMITS), 1);
  windowsHeld++;
  windowsOpened++;
  lastWindowFile = id;
}

/** Closes a window this CPU opened: no lock needed (a walker waiting under R only reads COMMITS). */
export function iMmapCommitEnd(files: FileTable, id: number): void {
  const w = files.words;
  const old = Atomics.sub(w, files.word(id, I_MMAP_COMMITS), 1);
  assert(old > 0 && windowsHeld > 0, 'i_mmap: commit window closed twice');
  windowsHeld--;
  if (Atomics.load(w, files.word(id, I_MMAP_WAITERS)) !== 0)
    Atomics.notify(w, files.word(id, I_MMAP_COMMITS));
}

/** Commit windows open on the file (0: its records and their PTEs are as commits left them). */
export function iMmapCommits(files: FileTable, id: number): number {
  return Atomics.load(files.words, files.word(id, I_MMAP_COMMITS));
}

/**
 * Returns once no commit window is open on the file. Preconditions: i_mmap held for read (so none
 * opens until the caller drops it); no spinlock held. Bounded by the watchdog's limit: a window is
 * closed by a commit that needs no lock the caller could hold.
 */
export function iMmapWaitCommitsLocked(files: FileTable, id: number): void {
  const w = files.words;
  const at = files.word(id, I_MMAP_COMMITS);
  if (Atomics.load(w, at) === 0) return;
  const cpu = currentCpu();
  const wasOnline = rcuBlockBegin();
  beginWait(cpu, WAIT_SEQCOUNT, iMmapClass, 0, id);
  Atomics.add(w, files.word(id, I_MMAP_WAITERS), 1);
  try {
    for (;;) {
      const seen = Atomics.load(w, at);
      if (seen === 0) return;
      if (Atomics.wait(w, at, seen, WAIT_SLICE_MS) === 'timed-out' && waitTooLong(cpu, 0, id)) {
        throw hangError(cpu, `the VMA commits on file ${id} (i_mmap commit window)`);
      }
    }
  } finally {
    Atomics.sub(w, files.word(id, I_MMAP_WAITERS), 1);
    endWait(cpu);
    rcuBlockEnd(wasOnline);
  }
}
