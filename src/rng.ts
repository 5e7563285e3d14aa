/**
 * Xorshift32: a small seeded generator for workloads that must be reproducible from a seed (the
 * demo's CPUs, tests, stress runs). Deterministic per seed and allocation-free; not for anything
 * that needs statistical quality.
 */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed | 0 || 0x9e3779b9;
  }

  /** The next value, 0 .. 2^32 - 1. */
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    return x >>> 0;
  }

  /** 0 .. n - 1 (n <= 2^32). */
  below(n: number): number {
    return this.next() % n;
  }
}
