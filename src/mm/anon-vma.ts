/**
 * Anonymous identities (struct anon_vma): one shared record per identity, named by its arena
 * handle in the VMA records' ANON word (0 = none). Two VMAs can merge only with compatible
 * identities, so the identity is part of the VMA layer's semantics; the records are shared (not
 * per-process counters) so that fork can hand a child the parent's identities and the reverse map
 * of the memory layer can hang pages off them.
 *
 *   anon_vma record (64 bytes): REFCNT | (spare words for the rmap lock and tree)
 *
 * Guards: REFCNT is atomic. A VMA record naming the identity holds one reference; so does its
 * creator until it puts it (a transaction that made it, see VmaTxn). The last put frees the record.
 */
import { Arena, type ArenaDescriptor, type FailureInjector } from '../shm/arena.js';

const RECORD_BYTES = 64;
const REFCNT = 0;

export class AnonVmaTable {
  readonly arena: Arena;
  private readonly i32: Int32Array;
  private readonly per: number;

  static create(injector?: FailureInjector, capacity = 64): AnonVmaTable {
    return new AnonVmaTable(
      Arena.create({ name: 'anon_vma', recordBytes: RECORD_BYTES, capacity, maxCapacity: 1 << 20, injector }),
    );
  }

  static attach(desc: ArenaDescriptor): AnonVmaTable {
    return new AnonVmaTable(Arena.attach(desc));
  }

  private constructor(arena: Arena) {
    if (arena.recordBytes !== RECORD_BYTES) throw new Error('anon_vma table: wrong record size');
    this.arena = arena;
    this.i32 = arena.i32;
    this.per = arena.i32PerRecord;
  }

  describe(): ArenaDescriptor {
    return this.arena.describe();
  }

  /** anon_vma_alloc: a new identity holding the caller's reference, or 0 when allocation fails. */
  alloc(): number {
    const id = this.arena.alloc();
    if (id !== 0) Atomics.store(this.i32, id * this.per + REFCNT, 1);
    return id;
  }

  get(id: number): void {
    const old = Atomics.add(this.i32, id * this.per + REFCNT, 1);
    if (old <= 0) throw new Error(`anon_vma ${id}: get without a reference (${old})`);
  }

  put(id: number): void {
    const old = Atomics.sub(this.i32, id * this.per + REFCNT, 1);
    if (old === 1) this.arena.free(id);
    else if (old <= 0) throw new Error(`anon_vma ${id}: put without a reference (${old})`);
  }

  refs(id: number): number {
    return Atomics.load(this.i32, id * this.per + REFCNT);
  }

  get live(): number {
    return this.arena.live;
  }
}
