/**
 * The registry of address spaces by mm id (docs/fs.md, "The reverse map"): how a CPU that walks a
 * file's i_mmap entries reaches the page tables, the TLB domain and the VMA records of an address
 * space it never attached (another process's), to zap or write-protect them.
 *
 *   ids      a process-wide counter (shared global 'mm.registry'): an id is never reused
 *   announce the first commit that links an i_mmap entry of an address space posts its reference
 *            {id, vmas, pt, tlb} (descriptors: SharedArrayBuffers) on one BroadcastChannel
 *   receive  each thread drains its channel synchronously (receiveMessageOnPort) when it looks
 *            up an id it does not know, and attaches the reference on first use (cached per CPU);
 *            what arrives while the thread's event loop runs comes through the channel's listener
 *            (Node hands queued messages to the listener then, and drops them if there is none)
 *   forget   the address space's destroy posts {id, null}; receivers drop their copy
 *
 * Only address spaces that map files are announced (anonymous-only ones never post: most tests
 * make thousands). One channel for the whole Node process rather than one per kernel: a thread can
 * only open a kernel's channel once it learns of the kernel, and would miss what was announced
 * before; this one is opened when the module loads, which every CPU of a Machine does before it
 * reports ready (src/machine/worker.ts), and the main thread, which loads it with the Machine,
 * hands the CPUs it starts what was announced before (`mmRegistrySnapshot` / `mmRegistryAdopt`).
 * Ids are process-wide, so kernels never mix. Messages hold no lock and are posted under
 * mmap_lock (W) (a post is a queue append, neither I/O nor a frame allocation).
 */
import { BroadcastChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { VmAssertionError } from '../assert.js';
import { PageTables, type PageTablesDescriptor } from '../mem/pgtable.js';
import { TlbDomain, type TlbDomainDescriptor } from '../mem/tlb.js';
import type { ArenaDescriptor } from '../shm/arena.js';
import { sharedGlobal } from '../shm/globals.js';
import type { MmState } from './mm-state.js';
import { VmaArena } from './vma-record.js';

/** What another CPU needs to reach an address space's page tables, TLB and VMA records. */
export interface MmRef {
  id: number;
  vmas: ArenaDescriptor;
  pt: PageTablesDescriptor;
  tlb: TlbDomainDescriptor;
}

/** An address space as a reverse-map walker sees it on this CPU. */
export interface MmView {
  readonly id: number;
  readonly arena: VmaArena;
  readonly pt: PageTables;
  readonly tlb: TlbDomain;
}

/** The parts of an address space the registry announces (an AddressSpace). */
export interface MmAnnounced {
  readonly state: MmState;
  readonly arena: VmaArena;
  readonly pt: PageTables;
  readonly tlb: TlbDomain;
}

interface RegistryMessage {
  id: number;
  /** null: the address space is gone. */
  ref: MmRef | null;
}

const NEXT_ID = 0;
const ids = new Int32Array(sharedGlobal('mm.registry', 8));
const channel = new BroadcastChannel('vmspace.mm-registry');
// Node accepts a BroadcastChannel where it takes a port (its types name only MessagePort).
const port = channel as unknown as MessagePort;
// Whenever this thread's event loop runs, Node dispatches what arrived to the listener (and drops
// it without one: measured, Node 20), so both paths apply messages, in queue order.
channel.onmessage = (event: unknown) => apply((event as { data: RegistryMessage }).data);
channel.unref();

/** This CPU's references and attached views, by id. */
const refs = new Map<number, MmRef>();
const views = new Map<number, MmView>();

/** A new address space's id (> 0, never reused in this Node process). */
export function allocMmId(): number {
  const id = Atomics.add(ids, NEXT_ID, 1) + 1;
  if (id <= 0) throw new VmAssertionError('mm-registry: the id counter wrapped');
  return id;
}

/**
 * Announces `mm` to every CPU, once (later calls return at once). Preconditions: mmap_lock held
 * for write (the commit linking its first i_mmap entry), so no walker can need it before.
 */
export function mmAnnounce(mm: MmAnnounced): void {
  if (mm.state.announced || !mm.state.markAnnounced()) return;
  const id = mm.state.mmId;
  const ref: MmRef = { id, vmas: mm.arena.describe(), pt: mm.pt.describe(), tlb: mm.tlb.describe() };
  drain();
  refs.set(id, ref);
  views.set(id, { id, arena: mm.arena, pt: mm.pt, tlb: mm.tlb });
  channel.postMessage({ id, ref } satisfies RegistryMessage);
}

/** The address space is gone (its destroy): every CPU forgets it. A no-op if it never was announced. */
export function mmForget(state: MmState): void {
  if (!state.announced) return;
  const id = state.mmId;
  drain();
  refs.delete(id);
  views.delete(id);
  channel.postMessage({ id, ref: null } satisfies RegistryMessage);
}

/**
 * The address space `id` on this CPU (attached on first use). Preconditions: an i_mmap entry
 * names it (so it was announced and is not gone). An unknown id is a bug: an assertion.
 */
export function mmLookup(id: number): MmView {
  const view = views.get(id);
  if (view !== undefined) return view;
  return attachView(id);
}

function attachView(id: number): MmView {
  let ref = refs.get(id);
  if (ref === undefined) {
    drain();
    ref = refs.get(id);
  }
  if (ref === undefined) {
    throw new VmAssertionError(
      `mm-registry: address space ${id} is unknown on this CPU (announced before its channel opened?)`,
    );
  }
  const view: MmView = {
    id,
    arena: VmaArena.attach(ref.vmas),
    pt: PageTables.attach(ref.pt),
    tlb: TlbDomain.attach(ref.tlb),
  };
  views.set(id, view);
  return view;
}

/** Takes every message waiting on this CPU's channel (bounded by what was posted). */
function drain(): void {
  for (;;) {
    const got = receiveMessageOnPort(port);
    if (got === undefined) return;
    apply(got.message as RegistryMessage);
  }
}

function apply(m: RegistryMessage): void {
  if (m.ref !== null) refs.set(m.id, m.ref);
  else {
    refs.delete(m.id);
    views.delete(m.id);
  }
}

/** Every address space this CPU knows of (after draining): for a CPU that starts now. */
export function mmRegistrySnapshot(): MmRef[] {
  drain();
  return [...refs.values()];
}

/** Adopts what a snapshot says (a new CPU, once its own channel is open). */
export function mmRegistryAdopt(snapshot: MmRef[]): void {
  drain();
  for (const ref of snapshot) if (!refs.has(ref.id)) refs.set(ref.id, ref);
}

/** Address spaces this CPU knows of (tests: announced ones go, and come back to none). */
export function mmRegistryKnown(): number {
  drain();
  return refs.size;
}
