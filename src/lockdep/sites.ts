/**
 * Call sites of the mmap_lock checks (`mightSleep/mightAlloc/mightIO(site)`), each with how often
 * it ran while its CPU held mmap_lock, so the lab can say *where* a design sleeps, allocates or
 * does I/O under the lock.
 *
 *   global 'lockdep.sites':
 *   Int32 header: LOCK COUNT (2 pad)
 *   counts (Int32):  MAX_SITES rows of [SLEEP ALLOC IO pad]
 *   names (bytes):   MAX_SITES slots of NAME_BYTES: [length byte][UTF-8 bytes ...]
 *
 * Site 0 is "(other sites)", which absorbs counts once the table is full. Invariants: a name
 * appears at most once; indexes are never reused (a reset zeroes counts and keeps names, so every
 * CPU's cache of name -> index stays valid); registration is serialised by LOCK.
 */
import { sharedGlobal } from '../shm/globals.js';
import { lockWord, unlockWord } from './wordlock.js';

const MAX_SITES = 256;
const NAME_BYTES = 64;
const HEADER_WORDS = 4;
const ROW = 4;
const LOCK = 0;
const COUNT = 1;
const OTHER = '(other sites)';

const buffer = sharedGlobal('lockdep.sites', HEADER_WORDS * 4 + MAX_SITES * ROW * 4 + MAX_SITES * NAME_BYTES);
const header = new Int32Array(buffer, 0, HEADER_WORDS);
const counts = new Int32Array(buffer, HEADER_WORDS * 4, MAX_SITES * ROW);
const names = new Uint8Array(buffer, HEADER_WORDS * 4 + MAX_SITES * ROW * 4);
const cache = new Map<string, number>();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a site's count is for: index into a site's row. */
export const SITE_SLEEP = 0;
export const SITE_ALLOC = 1;
export const SITE_IO = 2;

/** The index of site `name`, registering it on first use (0 when the table is full). */
export function siteIndex(name: string): number {
  const cached = cache.get(name);
  if (cached !== undefined) return cached;
  const bytes = encoder.encode(name).slice(0, NAME_BYTES - 1);
  lockWord(header, LOCK);
  try {
    if (header[COUNT] === 0) writeName(0, encoder.encode(OTHER));
    let index = findName(bytes);
    if (index < 0) index = header[COUNT] < MAX_SITES ? addName(bytes) : 0;
    cache.set(name, index);
    return index;
  } finally {
    unlockWord(header, LOCK);
  }
}

function findName(bytes: Uint8Array): number {
  for (let i = 1; i < header[COUNT]; i++) {
    const at = i * NAME_BYTES;
    if (names[at] !== bytes.length) continue;
    let same = true;
    for (let b = 0; b < bytes.length && same; b++) same = names[at + 1 + b] === bytes[b];
    if (same) return i;
  }
  return -1;
}

function addName(bytes: Uint8Array): number {
  const index = header[COUNT];
  writeName(index, bytes);
  return index;
}

function writeName(index: number, bytes: Uint8Array): void {
  const at = index * NAME_BYTES;
  names[at] = bytes.length;
  names.set(bytes, at + 1);
  Atomics.store(header, COUNT, index + 1);
}

export function countSite(index: number, what: number): void {
  Atomics.add(counts, index * ROW + what, 1);
}

export interface SiteCount {
  site: string;
  sleep: number;
  alloc: number;
  io: number;
}

/** Sites with a non-zero count, busiest first. */
export function siteCounts(): SiteCount[] {
  const out: SiteCount[] = [];
  const count = Atomics.load(header, COUNT);
  for (let i = 0; i < count; i++) {
    const sleep = Atomics.load(counts, i * ROW + SITE_SLEEP);
    const alloc = Atomics.load(counts, i * ROW + SITE_ALLOC);
    const io = Atomics.load(counts, i * ROW + SITE_IO);
    if (sleep + alloc + io === 0) continue;
    const at = i * NAME_BYTES;
    out.push({ site: decoder.decode(names.slice(at + 1, at + 1 + names[at])), sleep, alloc, io });
  }
  return out.sort((a, b) => b.sleep + b.alloc + b.io - (a.sleep + a.alloc + a.io));
}

export function clearSiteCounts(): void {
  for (let i = 0; i < counts.length; i++) Atomics.store(counts, i, 0);
}
