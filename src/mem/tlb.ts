/**
 * The software TLB's shared half (docs/mem.md, "TLB and shootdown"): one `TlbDomain` per address
 * space holds every CPU's tag row and the shootdown handshake; `Mmu` (mmu.ts) is one CPU's user of
 * it. Only the tags are shared: a CPU fills its own row, any CPU may clear any row.
 *
 *   control (Int32, page-aligned SharedArrayBuffer, one 64-byte line per row below):
 *     line 0        GEN | WAITERS | EVENT | USED (2 words)     written by shootdowns (and Mmu creation)
 *     line 1 + c    ACK[c]                                      written by CPU c alone
 *   tags    (Int32, page-aligned SharedArrayBuffer):   row c = tags[c * TLB_ENTRIES, +TLB_ENTRIES)
 *
 *   tag of slot s in a row: INVALID_TAG, or floor(addr / 2 MiB) of the page cached there; the slot
 *   is vpn & (TLB_ENTRIES - 1), so tag and slot together name the vpn (tag * 512 + slot).
 *   GEN: shootdowns started (starts at 1, grows by one per shootdown, compared modulo 2^32).
 *   ACK[c]: ACK_IDLE (0): CPU c is not using this address space (no translation held, never
 *   waited for); otherwise the newest GEN CPU c has seen at a quiescent point.
 *
 * Shootdown (the writer, after changing or clearing the PTEs under their PTL):
 *   1. in every row, each slot whose tag names a page of [startVpn, endVpn) is cleared with a
 *      compare-exchange to INVALID_TAG (a slot refilled meanwhile with another page stays);
 *   2. g = ++GEN;
 *   3. wait until every ACK[c] is ACK_IDLE or >= g (the writer's own row is quiescent: it acks).
 * A CPU acknowledges at its quiescent points - a TLB miss, `quiesce()`, every QUIESCE_EVERY
 * fast-path accesses, going offline - by an Atomics.load of GEN and a store of it into ACK[c].
 * Why no CPU reads the old frame after step 3: see docs/mem.md.
 *
 * Each ACK[c] has its own cache line: a CPU stores its ACK twice per page fault (offline for the
 * miss handler, online again), and with the ACKs of all CPUs in one line every fault on one CPU
 * took that line away from the others (measured on fault.scaling_2cpu).
 */
import { currentCpu, MAX_CPUS } from '../cpu/current.js';
import { beginWait, endWait, hangError, WAIT_SLICE_MS, waitTooLong } from '../cpu/waits.js';
import { mightWaitCpus, rcuBlockBegin, rcuBlockEnd } from '../sync/rcu.js';
import { pageAligned } from './page.js';

/** Slots per CPU row (direct-mapped by vpn). */
export const TLB_ENTRIES = 512;
export const TLB_SHIFT = 9;
/** A slot holding nothing: no address has this tag (floor(addr / 2 MiB) is it only near -2^52). */
export const INVALID_TAG = -0x80000000;
/** Fast-path accesses between two looks at GEN (the countdown's period). */
export const QUIESCE_EVERY = 1024;

const GEN = 0;
const WAITERS = 1;
const EVENT = 2;
/** USED, USED + 1: bit c of the 64-bit mask = CPU c has had an Mmu on this domain (its row may hold tags). */
const USED = 3;
/** ACK[c] is control[ACK + c * ACK_STRIDE]: one 64-byte line per CPU. */
const ACK = 16;
const ACK_STRIDE = 16;
const CONTROL_WORDS = ACK + MAX_CPUS * ACK_STRIDE;
export const ACK_IDLE = 0;
/** Polls of the acknowledgements before the writer sleeps. */
const SPIN_POLLS = 256;
/** The watchdog's wait kind for a shootdown (shown by describeCpus as a number). */
const WAIT_SHOOTDOWN = 5;

/** Fault codes a miss handler returns (0 = the translation is now present). */
export const FAULT_SEGV_MAPERR = -1;
export const FAULT_SEGV_ACCERR = -2;
export const FAULT_SIGBUS = -3;

export type AccessKind = 'read' | 'write' | 'exec';

/** A user access that could not be translated: what a signal handler would receive (siginfo). */
export class MemoryFault extends Error {
  readonly signal: 'SIGSEGV' | 'SIGBUS';
  /** 11 or 7 (Linux x86-64). */
  readonly signo: number;
  readonly code: 'SEGV_MAPERR' | 'SEGV_ACCERR' | 'BUS_ADRERR';
  /** si_code: SEGV_MAPERR 1, SEGV_ACCERR 2, BUS_ADRERR 2. */
  readonly sicode: number;
  /** The first faulting byte's address (si_addr). */
  readonly address: number;
  readonly access: AccessKind;

  constructor(fault: number, address: number, access: AccessKind) {
    const bus = fault === FAULT_SIGBUS;
    const code = bus ? 'BUS_ADRERR' : fault === FAULT_SEGV_ACCERR ? 'SEGV_ACCERR' : 'SEGV_MAPERR';
    super(`${bus ? 'SIGBUS' : 'SIGSEGV'} (${code}): ${access} at 0x${address.toString(16)}`);
    this.name = 'MemoryFault';
    this.signal = bus ? 'SIGBUS' : 'SIGSEGV';
    this.signo = bus ? 7 : 11;
    this.code = code;
    this.sicode = code === 'SEGV_MAPERR' ? 1 : 2;
    this.address = address;
    this.access = access;
  }
}

export interface TlbDomainDescriptor {
  control: SharedArrayBuffer;
  tags: SharedArrayBuffer;
}

export interface ShootdownStats {
  /** Shootdowns started in this domain. */
  shootdowns: number;
  /** CPUs currently using it (ACK not idle). */
  online: number;
}

/** The shared TLB state of one address space. */
export class TlbDomain {
  readonly control: Int32Array;
  readonly tags: Int32Array;
  private readonly desc: TlbDomainDescriptor;

  static create(): TlbDomain {
    const control = pageAligned(CONTROL_WORDS * 4);
    const tags = pageAligned(MAX_CPUS * TLB_ENTRIES * 4);
    new Int32Array(tags).fill(INVALID_TAG);
    new Int32Array(control)[GEN] = 1;
    return new TlbDomain({ control, tags });
  }

  static attach(desc: TlbDomainDescriptor): TlbDomain {
    return new TlbDomain(desc);
  }

  private constructor(desc: TlbDomainDescriptor) {
    this.desc = desc;
    // An explicit length: a view that tracks a growable buffer's length is slower to access.
    this.control = new Int32Array(desc.control, 0, desc.control.byteLength >> 2);
    this.tags = new Int32Array(desc.tags, 0, desc.tags.byteLength >> 2);
  }

  describe(): TlbDomainDescriptor {
    return { ...this.desc };
  }

  /** CPU `cpu`'s tag row (a view; only that CPU fills it). */
  row(cpu: number): Int32Array {
    return new Int32Array(this.desc.tags, cpu * TLB_ENTRIES * 4, TLB_ENTRIES);
  }

  /**
   * CPU `cpu` is about to fill its row (the Mmu's constructor, before any tag): shootdowns examine
   * only the rows of CPUs marked here, and skip everything while no CPU ever was (`inUse`).
   */
  markUsed(cpu: number): void {
    Atomics.or(this.control, USED + (cpu >>> 5), 1 << (cpu & 31));
  }

  /** Some CPU has had an Mmu on this domain: page-table changes need shootdowns. */
  inUse(): boolean {
    return (Atomics.load(this.control, USED) | Atomics.load(this.control, USED + 1)) !== 0;
  }

  /** The newest shootdown generation (an Atomics.load: it synchronises with the writer's clears). */
  generation(): number {
    return Atomics.load(this.control, GEN);
  }

  /** CPU `cpu` has passed a quiescent point after seeing generation `gen` (or goes idle: ACK_IDLE). */
  acknowledge(cpu: number, gen: number): void {
    Atomics.store(this.control, ACK + cpu * ACK_STRIDE, gen);
    if (Atomics.load(this.control, WAITERS) !== 0) this.wakeWaiters();
  }

  /** ACK[cpu] (ACK_IDLE or a generation). */
  acked(cpu: number): number {
    return Atomics.load(this.control, ACK + cpu * ACK_STRIDE);
  }

  /**
   * Invalidates every CPU's cached translations of pages [startVpn, endVpn) and returns once no CPU
   * can use one any more (every CPU idle or past a quiescent point after the invalidation). The
   * caller has already changed or cleared the PTEs. Blocks: not inside an RCU read section; the
   * calling CPU's own Mmu, if any, must not be in the middle of an access (it is acknowledged here).
   * Throws the watchdog's hang error if a CPU never acknowledges.
   *
   * When no CPU but the caller ever had an Mmu here, only the caller's row is cleared and nobody
   * is waited for (Linux flushes only the local TLB when mm_cpumask holds only this CPU): no other
   * row holds a tag, and a CPU that marks itself used after the mask was read fills its row by
   * walks that come after the caller's PTE changes. GEN still moves, so the caller's Mmu moves its
   * epoch at its next quiescent point, as after any shootdown.
   */
  shootdown(startVpn: number, endVpn: number): void {
    mightWaitCpus('tlb_shootdown');
    if (!(endVpn > startVpn)) return;
    const self = currentCpu();
    const lo = Atomics.load(this.control, USED);
    const hi = Atomics.load(this.control, USED + 1);
    const others = self < 32 ? (lo & ~(1 << self)) | hi : lo | (hi & ~(1 << (self & 31)));
    if (others === 0) {
      if (lo !== 0 || hi !== 0) this.invalidateRow(self, startVpn, endVpn);
      Atomics.add(this.control, GEN, 1);
      return;
    }
    this.invalidateUsed(lo, hi, startVpn, endVpn);
    const gen = (Atomics.add(this.control, GEN, 1) + 1) | 0;
    // A writer asleep in waitAcks re-acknowledges (lateCpu) when woken: it is not late for us then.
    if (Atomics.load(this.control, WAITERS) !== 0) this.wakeWaiters();
    this.waitAcks(gen);
  }

  private wakeWaiters(): void {
    Atomics.add(this.control, EVENT, 1);
    Atomics.notify(this.control, EVENT);
  }

  /** Step 1: clears the tags naming pages of [startVpn, endVpn) in every row that may hold tags. */
  invalidate(startVpn: number, endVpn: number): void {
    // The mask is read once: a CPU marked used after this read fills its row from walks that come
    // after it, so they see the entries the caller changed before calling.
    this.invalidateUsed(
      Atomics.load(this.control, USED),
      Atomics.load(this.control, USED + 1),
      startVpn,
      endVpn,
    );
  }

  /** The rows of the CPUs whose bits are set in the mask (lo: CPUs 0-31, hi: 32-63). */
  private invalidateUsed(lo: number, hi: number, startVpn: number, endVpn: number): void {
    for (let m = lo; m !== 0; m &= m - 1) this.invalidateRow(31 - Math.clz32(m & -m), startVpn, endVpn);
    for (let m = hi; m !== 0; m &= m - 1) this.invalidateRow(63 - Math.clz32(m & -m), startVpn, endVpn);
  }

  private invalidateRow(cpu: number, startVpn: number, endVpn: number): void {
    const tags = this.tags;
    const row = cpu * TLB_ENTRIES;
    if (endVpn - startVpn >= TLB_ENTRIES) {
      for (let s = 0; s < TLB_ENTRIES; s++) {
        const tag = Atomics.load(tags, row + s);
        if (tag === INVALID_TAG) continue;
        const vpn = tag * TLB_ENTRIES + s;
        if (vpn >= startVpn && vpn < endVpn) Atomics.compareExchange(tags, row + s, tag, INVALID_TAG);
      }
    } else {
      for (let vpn = startVpn; vpn < endVpn; vpn++) {
        const tag = Math.floor(vpn / TLB_ENTRIES);
        Atomics.compareExchange(tags, row + (vpn % TLB_ENTRIES), tag, INVALID_TAG);
      }
    }
  }

  /** Step 3: waits for every CPU's acknowledgement of `gen`. */
  private waitAcks(gen: number): void {
    const self = currentCpu();
    for (let i = 0; i < SPIN_POLLS; i++) if (this.lateCpu(gen, self) < 0) return;
    const wasOnline = rcuBlockBegin();
    beginWait(self, WAIT_SHOOTDOWN, 0, 0, gen);
    Atomics.add(this.control, WAITERS, 1);
    try {
      for (;;) {
        const event = Atomics.load(this.control, EVENT);
        const late = this.lateCpu(gen, self);
        if (late < 0) return;
        const r = Atomics.wait(this.control, EVENT, event, WAIT_SLICE_MS);
        if (r === 'timed-out' && waitTooLong(self, late, gen)) {
          throw hangError(self, `tlb shootdown ${gen} (cpus not yet quiescent: ${this.lateCpus(gen, self)})`);
        }
      }
    } finally {
      Atomics.sub(this.control, WAITERS, 1);
      endWait(self);
      rcuBlockEnd(wasOnline);
    }
  }

  /**
   * A CPU that has not acknowledged `gen`, or -1. The caller's own CPU, if online here, first
   * acknowledges the newest generation: a waiting writer holds no translation, so it is quiescent
   * for every generation, and two online CPUs shooting down at once (copy-on-write faults run the
   * miss handler online) must each see the other's acknowledgement, whatever the CPUs' order.
   */
  private lateCpu(gen: number, self: number): number {
    const control = this.control;
    if (self >= 0 && self < MAX_CPUS) {
      const mine = Atomics.load(control, ACK + self * ACK_STRIDE);
      const now = Atomics.load(control, GEN);
      if (mine !== ACK_IDLE && mine !== now) this.acknowledge(self, now);
    }
    // Only a CPU that had an Mmu here ever acknowledges (markUsed comes first): the others are skipped.
    for (let half = 0; half < 2; half++) {
      for (let m = Atomics.load(control, USED + half); m !== 0; m &= m - 1) {
        const cpu = half * 32 + 31 - Math.clz32(m & -m);
        if (cpu === self) continue;
        const ack = Atomics.load(control, ACK + cpu * ACK_STRIDE);
        if (ack !== ACK_IDLE && ((ack - gen) | 0) < 0) return cpu;
      }
    }
    return -1;
  }

  private lateCpus(gen: number, self: number): string {
    const late: number[] = [];
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
      const ack = this.acked(cpu);
      if (cpu !== self && ack !== ACK_IDLE && ((ack - gen) | 0) < 0) late.push(cpu);
    }
    return late.join(', ');
  }

  stats(): ShootdownStats {
    let online = 0;
    for (let cpu = 0; cpu < MAX_CPUS; cpu++) if (this.acked(cpu) !== ACK_IDLE) online++;
    return { shootdowns: (Atomics.load(this.control, GEN) - 1) >>> 0, online };
  }
}
