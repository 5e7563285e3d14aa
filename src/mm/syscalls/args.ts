/**
 * Syscall arguments as the kernel sees them. Addresses, lengths and offsets are `unsigned long`:
 * a JS number n >= 0 below 2^64 stands for itself, a negative n for 2^64 + n (two's complement,
 * so -1 is the all-ones value). Values of 2^53 and more are kept as (inexact) doubles: they only
 * ever compare above every address, except near 2^64 where page rounding wraps to 0, which
 * `pageAlign` reproduces. Non-integers, NaN, infinities and values outside [-2^63, 2^64) cannot
 * be passed to Linux at all; the public API rejects them with EINVAL (vmspace's choice).
 * `int` arguments (advice, flags) keep the low 32 bits, as C's conversion does.
 */
export const U64 = 2 ** 64;

import { PAGE_SIZE as PAGE } from '../../mem/page.js';

/** The unsigned long `x` stands for, or NaN when it stands for none. */
export function ulong(x: number): number {
  if (!Number.isInteger(x)) return Number.NaN;
  if (x >= 0) return x < U64 ? x : Number.NaN;
  if (x < -(2 ** 63)) return Number.NaN;
  return U64 + x;
}

/** The C int `x` converts to (low 32 bits), or NaN for a non-integer. */
export function cint(x: number): number {
  if (!Number.isInteger(x) || x >= U64 || x < -(2 ** 63)) return Number.NaN;
  // ToInt32 keeps the low 32 bits exactly for safe integers; huge doubles take the slow path.
  if (Number.isSafeInteger(x)) return x | 0;
  return Number(BigInt.asIntN(32, BigInt(x)));
}

/** PAGE_ALIGN on 64 bits: rounds up; values within a page of 2^64 wrap to 0. */
export function pageAlign(len: number): number {
  if (len > U64 - PAGE) return 0;
  return Math.ceil(len / PAGE) * PAGE;
}

/** a + b modulo 2^64 (exact for page-aligned values below 2^53; huge sums stay huge). */
export function addWrap(a: number, b: number): number {
  const s = a + b;
  return s >= U64 ? s - U64 : s;
}
