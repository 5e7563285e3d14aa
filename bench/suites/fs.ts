/**
 * File figures (src/kernel/file-syscalls.ts): `fs.read_cached_1m.gbps`, read() of a cached 1 MiB
 * host file into process memory (lseek to 0, then one read of the whole MiB through the page cache
 * and the CPU's Mmu), against `linux.read_cached_1m.gbps`, the Linux kernel doing lseek + read()
 * of the same cached host file in a C program (bench/linux/fileread.c) in the same run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { O_RDONLY } from '../../src/fs/open-file.js';
import { SEEK_SET } from '../../src/kernel/file-syscalls.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/mm/vm-flags.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { type BenchOptions, type BenchSuite, nsPerOp, type Report } from '../harness.js';
import { linuxUnavailable, runLinuxProgram } from '../linux.js';

const MIB = 1 << 20;

export const suite: BenchSuite = {
  name: 'fs',
  async run(report: Report, options: BenchOptions): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'vmspace-bench-fs-'));
    try {
      const path = join(dir, 'cached-1m.bin');
      const data = new Uint8Array(MIB);
      for (let i = 0; i < MIB; i++) data[i] = (i * 131) & 0xff;
      writeFileSync(path, data);
      const linux =
        linuxUnavailable() === null
          ? runLinuxProgram('fileread', [path, options.quick ? '200' : '2000']).read_cached_1m_gbps
          : Number.NaN;
      report.add('linux.read_cached_1m.gbps', linux, 'GB/s');
      report.add(
        'fs.read_cached_1m.gbps',
        await readCached(path, options),
        'GB/s',
        'linux.read_cached_1m.gbps',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** GB/s of lseek(0) + read(1 MiB) of `path`, cached, into a populated anonymous buffer. */
async function readCached(path: string, options: BenchOptions): Promise<number> {
  const kernel = Kernel.create({ frames: 2048 });
  const proc = Process.create(kernel, {});
  const fd = proc.open(path, O_RDONLY);
  const buf = proc.mm.mmap(0, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const mmu = proc.mm.mmu();
  for (let p = 0; p < MIB; p += 4096) mmu.store8(buf + p, 1);
  const once = () => {
    proc.lseek(fd, 0, SEEK_SET);
    if (proc.read(fd, buf, MIB) !== MIB) throw new Error('short read');
  };
  once();
  const ns = await nsPerOp(once, 1, options);
  if (mmu.load8(buf + 4097) !== ((4097 * 131) & 0xff)) throw new Error('read the wrong bytes');
  proc.mm.detach();
  proc.exit();
  rcuBarrier();
  return MIB / ns;
}
