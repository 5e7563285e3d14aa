/**
 * Lock classes: every lock belongs to a named class (like lockdep's lock classes); statistics and
 * the lock validator work per class. The registry lives in a shared global, so a name gets the
 * same id on every CPU whichever CPU registers it first.
 *
 *   global 'sync.lockclass':
 *   Int32 header:  LOCK  COUNT  NEXT_LOCK_ID  (5 spare)
 *   names:         MAX_CLASSES slots of NAME_BYTES: [length byte][UTF-8 bytes ...]
 *                  slot i holds class id i (slot 0 unused: id 0 means "no class")
 *
 * Invariants: ids are 1..COUNT and never reused; a name appears at most once; registration is
 * serialised by LOCK (a spin word held for a scan of at most MAX_CLASSES names).
 */
import { setLockClassNamer } from '../cpu/waits.js';
import { EINVAL, ENOSPC, VmError } from '../errno.js';
import { sharedGlobal } from '../shm/globals.js';

/** Most lock classes (ids 1..MAX_CLASSES-1). */
export const MAX_CLASSES = 256;
const NAME_BYTES = 64;
const HEADER_WORDS = 8;
const LOCK = 0;
const COUNT = 1;
const NEXT_LOCK_ID = 2;

const buffer = sharedGlobal('sync.lockclass', HEADER_WORDS * 4 + MAX_CLASSES * NAME_BYTES);
const header = new Int32Array(buffer, 0, HEADER_WORDS);
const names = new Uint8Array(buffer, HEADER_WORDS * 4);
const byName = new Map<string, number>();
const nameById: string[] = [];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The id (>= 1) of the class called `name`, registering it on first use. */
export function lockClass(name: string): number {
  const cached = byName.get(name);
  if (cached !== undefined) return cached;
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length >= NAME_BYTES) {
    throw new VmError(EINVAL, `lock class name "${name}" must have 1..${NAME_BYTES - 1} UTF-8 bytes`);
  }
  while (Atomics.compareExchange(header, LOCK, 0, 1) !== 0) {
    // A registration scans at most MAX_CLASSES short names: spin.
  }
  try {
    const id = findOrAdd(name, bytes);
    byName.set(name, id);
    nameById[id] = name;
    return id;
  } finally {
    Atomics.store(header, LOCK, 0);
  }
}

function findOrAdd(name: string, bytes: Uint8Array): number {
  const count = header[COUNT];
  for (let id = 1; id <= count; id++) {
    if (slotEquals(id, bytes)) return id;
  }
  const id = count + 1;
  if (id >= MAX_CLASSES)
    throw new VmError(ENOSPC, `lock class table full (${MAX_CLASSES - 1}) adding "${name}"`);
  const at = id * NAME_BYTES;
  names[at] = bytes.length;
  names.set(bytes, at + 1);
  Atomics.store(header, COUNT, id);
  return id;
}

function slotEquals(id: number, bytes: Uint8Array): boolean {
  const at = id * NAME_BYTES;
  if (names[at] !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (names[at + 1 + i] !== bytes[i]) return false;
  return true;
}

/** The name of class `id`; throws for an id that was never registered. */
export function lockClassName(id: number): string {
  const cached = nameById[id];
  if (cached !== undefined) return cached;
  if (!(Number.isInteger(id) && id >= 1 && id <= Atomics.load(header, COUNT))) {
    throw new VmError(EINVAL, `lock class ${id} does not exist`);
  }
  const at = id * NAME_BYTES;
  const name = decoder.decode(names.slice(at + 1, at + 1 + names[at]));
  nameById[id] = name;
  byName.set(name, id);
  return name;
}

// The watchdog's hang report (src/cpu/waits.ts, a layer below this one) names classes through this.
setLockClassNamer(lockClassName);

/** Number of registered classes (ids 1..count). */
export function lockClassCount(): number {
  return Atomics.load(header, COUNT);
}

/** Checks a class id handed to a lock constructor. */
export function assertLockClass(id: number): void {
  if (!(Number.isInteger(id) && id >= 1 && id <= Atomics.load(header, COUNT))) {
    throw new VmError(EINVAL, `lock class ${id} does not exist (register it with lockClass(name))`);
  }
}

/** A new process-wide lock instance id (>= 1), the `lockId` the validator sees. */
export function newLockId(): number {
  return Atomics.add(header, NEXT_LOCK_ID, 1) + 1;
}

/** The instance id kept in `words[index]` (0 there means none yet: one is assigned on first use). */
export function lockIdAt(words: Int32Array, index: number): number {
  const id = words[index];
  if (id !== 0) return id;
  const fresh = newLockId();
  const previous = Atomics.compareExchange(words, index, 0, fresh);
  return previous === 0 ? fresh : previous;
}
