/**
 * The Linux kernel as a baseline: builds bench/linux/mmops.c with the machine's gcc (into a temp
 * dir, never into the repository) and runs it in the same bench run, so vmspace's address-space
 * figures are compared with the real kernel doing the same operations on the same machine.
 *
 * Without gcc on PATH there is no baseline: `linuxUnavailable()` says why, bench/main.ts tells
 * the report to skip the `linux.*` figures, and `measureLinux` returns NaN for each without
 * running anything (the report drops them; the vmspace figures are printed without a ratio).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LinuxFigures {
  mmap_munmap_16k: number;
  mprotect_split_merge: number;
  mremap_move: number;
  anon_write_fault: number;
  page_fault1: number;
  cow_after_fork: number;
  page_fault2: number;
  page_fault3: number;
  page_fault3_disk: number;
  /** Not nanoseconds: pages written per minor fault in page_fault3_disk (large folios map more than 1). */
  page_fault3_disk_pages_per_fault: number;
  mmap2: number;
  /** Not nanoseconds: two threads' page_fault1 rate against one thread's. */
  scaling_2cpu: number;
}

const source = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/linux/mmops.c');

/** The first executable `name` in the directories of `path` (a PATH value), or null. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there, or not executable: look further
    }
  }
  return null;
}

/** Why the kernel baselines cannot be measured on this machine, or null when they can. */
export function linuxUnavailable(path = process.env.PATH ?? ''): string | null {
  if (process.platform !== 'linux') return `the kernel baselines need Linux, not ${process.platform}`;
  if (findOnPath('gcc', path) === null) return 'gcc not found on PATH (it builds bench/linux/mmops.c)';
  return null;
}

/**
 * Nanoseconds per operation measured by the kernel program, `iterations` of each; every figure is
 * NaN when `linuxUnavailable()` says the program cannot be built here.
 */
export function measureLinux(iterations: number): LinuxFigures {
  if (linuxUnavailable() !== null) {
    return {
      mmap_munmap_16k: Number.NaN,
      mprotect_split_merge: Number.NaN,
      mremap_move: Number.NaN,
      anon_write_fault: Number.NaN,
      page_fault1: Number.NaN,
      cow_after_fork: Number.NaN,
      page_fault2: Number.NaN,
      page_fault3: Number.NaN,
      page_fault3_disk: Number.NaN,
      page_fault3_disk_pages_per_fault: Number.NaN,
      mmap2: Number.NaN,
      scaling_2cpu: Number.NaN,
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-mmops-'));
  try {
    const binary = join(dir, 'mmops');
    execFileSync('gcc', ['-O2', '-pthread', '-o', binary, source], { stdio: 'inherit' });
    const out = execFileSync(binary, [String(iterations)], { encoding: 'utf8' });
    return JSON.parse(out) as LinuxFigures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Builds bench/linux/NAME.c with gcc (into a temp dir) and runs it with `args`: its stdout parsed
 * as JSON. Callers check `linuxUnavailable()` first.
 */
export function runLinuxProgram(name: string, args: string[]): Record<string, number> {
  const dir = mkdtempSync(join(tmpdir(), `vmspace-${name}-`));
  try {
    const binary = join(dir, name);
    execFileSync('gcc', ['-O2', '-o', binary, resolve(dirname(source), `${name}.c`)], { stdio: 'inherit' });
    return JSON.parse(execFileSync(binary, args, { encoding: 'utf8' })) as Record<string, number>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
