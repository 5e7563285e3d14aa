/**
 * The shared parts of the per-VMA lock race: control words, the address window, and a seeded PRNG.
 *
 *   control (Int32): WRITER_DONE | ERRORS | READERS_READY | OPS
 */
import type { AddressSpaceDescriptor } from '../../../src/mm/address-space.js';

export const WRITER_DONE = 0;
export const ERRORS = 1;
export const READERS_READY = 2;
export const OPS = 3;
export const CONTROL_WORDS = 8;
/** Bound on any wait of the race's own (for readers to start, for the writer to finish). */
export const GIVE_UP_MS = 30_000;

export const P = 4096;
/** The window the writer changes and the readers probe: pages [BASE, BASE + WINDOW_PAGES). */
export const BASE = 0x100000000;
export const WINDOW_PAGES = 512;

export interface RaceArgs {
  /** The writer attaches all of it; the readers only its fault side (attachFaultMm). */
  mm: AddressSpaceDescriptor;
  control: SharedArrayBuffer;
  seed: number;
  /** How long the writer runs once every reader is ready. */
  durationMs: number;
  maxOps: number;
  readers: number;
}

/** The seeded generator of the race's workloads. */
export { Rng } from '../../../src/rng.js';
