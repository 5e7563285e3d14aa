/**
 * A reader CPU over one file's page index (test/fs/page-index-cpus.test.ts) while the main thread
 * inserts and erases. Keys come from a shared table (`keys`); the value stored for key slot p is
 * (p + 1) * 256 + generation % 256, so a lookup of key p may return 0 or a value naming p, and
 * anything else is a torn or foreign read (a freed node reused, or poison). Gang lookups are
 * checked the same way: nextPresent(k) must be >= k and name a key of the table (or nothing).
 */
import { FileTable, type FileTableDescriptor } from '../../../src/fs/file-table.js';
import { pageIndexLookup, pageIndexNextPresent } from '../../../src/fs/page-index.js';
import { Rng } from '../../../src/rng.js';
import { rcuReadLock, rcuReadUnlock } from '../../../src/sync/rcu.js';

export interface IndexReaderArgs {
  files: FileTableDescriptor;
  id: number;
  /** Float64: the key of each slot. */
  keys: SharedArrayBuffer;
  /** Int32: word 0 readers ready, word 1 stop. */
  sync: SharedArrayBuffer;
  seed: number;
}

export interface IndexReaderResult {
  lookups: number;
  hits: number;
  gangs: number;
  bad: number;
  firstBad: string;
}

export default function read(cpu: number, args: IndexReaderArgs): IndexReaderResult {
  const files = FileTable.attach(args.files);
  const keys = new Float64Array(args.keys);
  const slotOf = new Map<number, number>();
  for (let p = 0; p < keys.length; p++) slotOf.set(keys[p], p);
  const sync = new Int32Array(args.sync);
  const rng = new Rng(args.seed + cpu);
  const out: IndexReaderResult = { lookups: 0, hits: 0, gangs: 0, bad: 0, firstBad: '' };
  const bad = (what: string): void => {
    if (out.bad++ === 0) out.firstBad = what;
  };
  Atomics.add(sync, 0, 1);
  while (Atomics.load(sync, 1) === 0) {
    for (let i = 0; i < 256; i++) {
      const p = rng.below(keys.length);
      rcuReadLock();
      const v = pageIndexLookup(files, args.id, keys[p]);
      rcuReadUnlock();
      out.lookups++;
      if (v === 0) continue;
      out.hits++;
      if ((v >> 8) - 1 !== p) bad(`lookup of key ${keys[p]} (slot ${p}) gave ${v}`);
    }
    const from = keys[rng.below(keys.length)] - rng.below(3);
    rcuReadLock();
    const next = pageIndexNextPresent(files, args.id, Math.max(0, from));
    const v = next < 0 ? 0 : pageIndexLookup(files, args.id, next);
    rcuReadUnlock();
    out.gangs++;
    if (next >= 0 && (next < from || !slotOf.has(next))) bad(`nextPresent(${from}) gave ${next}, not a key`);
    else if (v !== 0 && (v >> 8) - 1 !== slotOf.get(next)) bad(`key ${next} found by nextPresent holds ${v}`);
  }
  return out;
}
