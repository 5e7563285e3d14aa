/**
 * Helpers for the page-index tests: one-call insert/erase/lookup taking the locks the index needs
 * (i_pages for writers, an RCU read section for readers), and a snapshot for "nothing changed".
 */
import type { FileTable } from '../../src/fs/file-table.js';
import {
  lockIPages,
  pageIndexEraseLocked,
  pageIndexInsertLocked,
  pageIndexLookup,
  pageIndexNextPresent,
  unlockIPages,
} from '../../src/fs/page-index.js';
import { rcuReadLock, rcuReadUnlock } from '../../src/sync/rcu.js';

export function insert(files: FileTable, id: number, index: number, value: number): number {
  lockIPages(files, id);
  try {
    return pageIndexInsertLocked(files, id, index, value);
  } finally {
    unlockIPages(files, id);
  }
}

export function erase(files: FileTable, id: number, index: number): number {
  lockIPages(files, id);
  try {
    return pageIndexEraseLocked(files, id, index);
  } finally {
    unlockIPages(files, id);
  }
}

export function lookup(files: FileTable, id: number, index: number): number {
  rcuReadLock();
  try {
    return pageIndexLookup(files, id, index);
  } finally {
    rcuReadUnlock();
  }
}

export function nextPresent(files: FileTable, id: number, from: number): number {
  rcuReadLock();
  try {
    return pageIndexNextPresent(files, id, from);
  } finally {
    rcuReadUnlock();
  }
}

/** Every present (index, value) in order, through nextPresent. */
export function entries(files: FileTable, id: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = nextPresent(files, id, 0); i >= 0; i = nextPresent(files, id, i + 1)) {
    out.push([i, lookup(files, id, i)]);
    if (i === 0xffffffff) break;
  }
  return out;
}
