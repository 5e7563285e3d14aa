/**
 * Helpers for address-space tests: a fresh AddressSpace over the maple tree, compact VMA listings,
 * and a pure-layer rig (arena + reference index + transaction, no AddressSpace) for vma.ts tests.
 */
import type { FileSpec } from '../../src/fs/file-table.js';
import { MapleTree } from '../../src/maple/tree.js';
import { AddressSpace } from '../../src/mm/address-space.js';
import type { MmConfig } from '../../src/mm/config.js';
import { mapsText } from '../../src/mm/proc-maps.js';
import { VmaLayer } from '../../src/mm/vma.js';
import { VmaArena, type VmaFields, vmaFields } from '../../src/mm/vma-record.js';
import { VmaTxn } from '../../src/mm/vma-txn.js';
import { FailureInjector } from '../../src/shm/arena.js';
import { ArrayRangeIndex } from './array-range-index.js';

export const P = 4096;
export const BASE = 0x7f0000000000;

/** The VMA index of test address spaces: the maple tree, with mmap_lock as its external lock. */
export function newIndex(injector?: FailureInjector): MapleTree {
  return MapleTree.create({ externalLock: 'mmap_lock', injector });
}

export function newSpace(config: Partial<MmConfig> = {}): AddressSpace {
  return new AddressSpace({
    index: newIndex(),
    rcuFree: false,
    config: { privileged: true, ...config },
  });
}

/** Registers a file in the space's file table and opens it; returns the descriptor. */
export function openFile(mm: AddressSpace, spec: FileSpec): number {
  const id = mm.files.add(spec);
  const fd = mm.fds.install(id);
  mm.files.put(id);
  return fd;
}

/** An address space whose VMA arena and index share a FailureInjector. */
export function newInjectedSpace(config: Partial<MmConfig> = {}): {
  mm: AddressSpace;
  injector: FailureInjector;
} {
  const injector = new FailureInjector();
  const mm = new AddressSpace({
    index: newIndex(injector),
    injector,
    rcuFree: false,
    config: { privileged: true, ...config },
  });
  return { mm, injector };
}

/** "start-end perms" per VMA (relative to BASE, in pages) plus a marker for named ones. */
export function layout(mm: AddressSpace): string[] {
  return mm.vmas().map((v) => {
    const s = (Number(v.start) - BASE) / P;
    const e = (Number(v.end) - BASE) / P;
    return `${s}-${e} ${v.perms}${v.name === '' ? '' : ` ${v.name}`}`;
  });
}

export function maps(mm: AddressSpace): string {
  return mapsText(mm);
}

/** The pure VMA layer on its own: arena, reference index, transaction. */
export class Rig {
  readonly arena = VmaArena.create(64, 4096);
  readonly index = new ArrayRangeIndex();
  readonly txn = new VmaTxn(this.arena, this.index, (h) => this.arena.arena.free(h));
  readonly layer = new VmaLayer(this.txn, 65530);
  mapCount = 0;

  /** Adds and commits an anonymous VMA over pages [s, e) of BASE. */
  add(s: number, e: number, flags: number, extra: Partial<VmaFields> = {}): void {
    this.begin();
    this.txn.insert({
      ...vmaFields(),
      start: BASE + s * P,
      end: BASE + e * P,
      pgoff: (BASE + s * P) / P,
      flags,
      ...extra,
    });
    this.commit();
  }

  begin(): VmaTxn {
    this.txn.reset();
    this.layer.mapCountBase = this.mapCount;
    return this.txn;
  }

  commit(): number {
    const r = this.txn.commit();
    if (r === 0) this.mapCount += this.txn.mapCountDelta;
    this.txn.reset();
    return r;
  }

  /** The committed VMAs: "s-e pgoffDelta anon" in pages relative to BASE. */
  list(): string[] {
    const out: string[] = [];
    const r = { first: 0, last: 0, value: 0 };
    let q = 0;
    while (this.index.next(q, 2 ** 53 - 1, r) !== 0) {
      const h = r.value;
      const s = (this.arena.start(h) - BASE) / P;
      const e = (this.arena.end(h) - BASE) / P;
      const off = this.arena.pgoff(h) - BASE / P;
      out.push(
        `${s}-${e}@${off}${this.arena.anon(h) !== 0 ? ` a${this.arena.anon(h)}` : ''} f${this.arena.flags(h).toString(16)}`,
      );
      q = r.last + 1;
    }
    return out;
  }

  /** The slot of the VMA containing page p of BASE (loads it into the open transaction). */
  at(p: number): number {
    return this.txn.vmaAt(BASE + p * P);
  }
}
