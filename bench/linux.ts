/**
 * The Linux kernel as a baseline: builds bench/linux/mmops.c with the machine's gcc (into a temp
 * dir, never into the repository) and runs it in the same bench run, so vmspace's address-space
 * figures are compared with the real kernel doing the same operations on the same machine.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LinuxFigures {
  mmap_munmap_16k: number;
  mprotect_split_merge: number;
  mremap_move: number;
  anon_write_fault: number;
}

const source = resolve(dirname(fileURLToPath(import.meta.url)), '../../bench/linux/mmops.c');

/** Nanoseconds per operation measured by the kernel program, `iterations` of each. */
export function measureLinux(iterations: number): LinuxFigures {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-mmops-'));
  try {
    const binary = join(dir, 'mmops');
    execFileSync('gcc', ['-O2', '-o', binary, source], { stdio: 'inherit' });
    const out = execFileSync(binary, [String(iterations)], { encoding: 'utf8' });
    return JSON.parse(out) as LinuxFigures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
