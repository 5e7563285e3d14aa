/**
 * Issue 12's "Must hold": the designs differ only in locking. One seeded single-CPU workload
 * (designs-workload.ts: anonymous, shared and private file mappings of a host file, a memfd and a
 * shared host file; stores, mmap/munmap/mprotect/mremap/MADV_DONTNEED, pwrite/write/pread/read,
 * ftruncate, punch, fsync/msync, reclaim, a slow device now and then, fork) runs under each
 * design, each op checked against the model as it goes. At the end the process's /proc/maps and
 * a digest of every mapped page (read through the Mmu; a page that faults counts by its signal)
 * and of every file's bytes must be the same under every design, and not trivially so: many VMAs,
 * file and anonymous pages with data. The fault counters must show each design took its own path
 * (lock-free faults only under speculative, per-VMA-lock faults only under vma-lock and speculative's
 * second try, I/O under mmap_lock only under global).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { O_RDWR } from '../../src/fs/open-file.js';
import { Kernel } from '../../src/kernel/kernel.js';
import { Process } from '../../src/kernel/process.js';
import { lockdepCounts } from '../../src/lockdep/index.js';
import { lockHooks } from '../../src/lockhooks.js';
import { MemoryFault } from '../../src/mem/tlb.js';
import { FAULT_DESIGNS, type FaultDesign } from '../../src/mm/fault-design.js';
import { PROT_READ } from '../../src/mm/vm-flags.js';
import type { MmVmstat } from '../../src/mm/vmstat.js';
import { rcuBarrier } from '../../src/sync/rcu.js';
import { KERNEL_EMPTY } from '../support/leaks.js';
import { initialBytes, OWN_FILE_START, P, SHARED_FILE_PAGES, Workload } from './designs-workload.js';

const STEPS = 3000;
const SHARED_TAG = 100;

interface Outcome {
  maps: string;
  /** Digest of every mapped page's bytes (or its signal), in address order. */
  memory: number;
  /** Digest of the host files and the memfd. */
  files: number;
  pagesWithData: number;
  faultingPages: number;
  vmstat: MmVmstat;
  /** I/O under mmap_lock the validator counted during the run. */
  mmapIo: number;
  ops: Record<string, number>;
}

function fnv(h: number, bytes: Uint8Array): number {
  let x = h;
  for (let i = 0; i < bytes.length; i++) x = Math.imul(x ^ bytes[i], 0x01000193) >>> 0;
  return x;
}

function runOnce(design: FaultDesign, seed: number): Outcome {
  const dir = mkdtempSync(join(tmpdir(), 'vmspace-same-'));
  try {
    const ownPath = join(dir, 'own.bin');
    const sharedPath = join(dir, 'shared.bin');
    writeFileSync(ownPath, initialBytes(0, OWN_FILE_START));
    writeFileSync(sharedPath, initialBytes(SHARED_TAG, SHARED_FILE_PAGES));
    const kernel = Kernel.create({ frames: 8192 });
    const proc = Process.create(kernel, { config: { design, privileged: true } });
    const fds = [proc.open(ownPath, O_RDWR), proc.memfdCreate('same'), proc.open(sharedPath, O_RDWR)];
    const ids = fds.map((fd) => {
      const id = proc.fds.fget(fd);
      kernel.files.put(id);
      return id;
    });
    const w = new Workload(proc, 0, seed, {
      fds,
      ids,
      ownPath,
      sharedPath,
      ownTag: 0,
      sharedTag: SHARED_TAG,
    });
    const before = lockdepCounts().mmap_io;
    w.start();
    for (let i = 0; i < STEPS; i++) w.step();
    const mmapIo = lockdepCounts().mmap_io - before;
    w.checkAll();
    w.checkHostFiles();
    const out = snapshot(proc, fds, [ownPath, sharedPath]);
    out.maps = out.maps.replaceAll(dir, '$DIR');
    proc.exit();
    proc.detach();
    rcuBarrier();
    kernel.mem.drainAll();
    assert.deepEqual(kernel.counts(), KERNEL_EMPTY);
    return { ...out, mmapIo, ops: w.counts.ops };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The maps, then every mapped page (made readable first: mprotect after the maps were taken). */
function snapshot(proc: Process, fds: number[], paths: string[]): Omit<Outcome, 'ops' | 'mmapIo'> {
  const mm = proc.mm;
  const maps = proc.maps();
  const vmstat = mm.vmstat();
  const ranges = maps
    .trim()
    .split('\n')
    .map((line) =>
      line
        .split(' ')[0]
        .split('-')
        .map((x) => Number.parseInt(x, 16)),
    );
  for (const [start, end] of ranges) mm.mprotect(start, end - start, PROT_READ);
  const mmu = mm.mmu();
  const page = new Uint8Array(P);
  let memory = 0x811c9dc5;
  let pagesWithData = 0;
  let faultingPages = 0;
  for (const [start, end] of ranges) {
    for (let a = start; a < end; a += P) {
      try {
        mmu.load32(a);
      } catch (error) {
        if (!(error instanceof MemoryFault)) throw error;
        faultingPages++;
        memory = fnv(memory, new TextEncoder().encode(`${a}:${error.code}`));
        continue;
      }
      assert.equal(mmu.copyIn(a, page), 0);
      if (page.some((b) => b !== 0)) pagesWithData++;
      memory = fnv(fnv(memory, new Uint8Array(new Float64Array([a]).buffer)), page);
    }
  }
  mmu.offline();
  let files = 0x811c9dc5;
  for (const path of paths) files = fnv(files, new Uint8Array(readFileSync(path)));
  const memfdSize = proc.fstat(fds[1]).size;
  const buf = mm.mmap(0, Math.max(P, memfdSize), PROT_READ | 2, 0x22);
  assert.equal(proc.pread(fds[1], buf, memfdSize, 0), memfdSize);
  const bytes = new Uint8Array(memfdSize);
  assert.equal(mm.mmu().copyIn(buf, bytes), 0);
  mm.mmu().offline();
  files = fnv(files, bytes);
  return { maps, memory, files, pagesWithData, faultingPages, vmstat };
}

test('the same seeded workload gives the same maps, memory and files under every design', () => {
  const seed = Number(process.env.VMSPACE_SEED ?? 4242);
  const outs = FAULT_DESIGNS.map((design) => runOnce(design, seed));
  const [first] = outs;
  const vmas = first.maps.trim().split('\n').length;
  if (process.env.DESIGNS_VERBOSE) {
    for (const [i, o] of outs.entries())
      console.log(
        FAULT_DESIGNS[i],
        vmas,
        'VMAs',
        o.pagesWithData,
        'pages with data',
        o.faultingPages,
        'faulting',
        o.mmapIo,
        'I/O under mmap_lock',
        o.vmstat,
        o.ops,
      );
  }
  assert.ok(vmas >= 8, `only ${vmas} VMAs at the end:\n${first.maps}`);
  assert.ok(first.pagesWithData >= 8, `only ${first.pagesWithData} mapped pages hold data`);
  assert.ok(/\.bin/.test(first.maps) && /memfd:same/.test(first.maps), 'file mappings at the end');
  for (const [i, o] of outs.entries()) {
    const design = FAULT_DESIGNS[i];
    assert.equal(o.maps, first.maps, `${design}: /proc/maps differs from ${FAULT_DESIGNS[0]}'s`);
    assert.equal(o.memory, first.memory, `${design}: the mapped pages differ`);
    assert.equal(o.files, first.files, `${design}: the files differ`);
    assert.deepEqual(o.ops, first.ops, `${design}: the ops made differ`);
    assert.equal(o.vmstat.design, design);
    assert.ok(o.vmstat.faults > 100, `${design}: ${o.vmstat.faults} faults`);
    const v = o.vmstat;
    if (design === 'speculative') assert.ok(v.faultsSpeculative > 0, 'speculative: faults with no lock');
    else assert.equal(v.faultsSpeculative, 0, `${design}: no speculative fault`);
    if (design === 'vma-lock') assert.ok(v.faultsVmaLock > 0, 'vma-lock: faults on the per-VMA lock');
    else if (design !== 'speculative')
      assert.equal(v.faultsVmaLock, 0, `${design}: no fault on the per-VMA lock`);
    // Every design runs an I/O fault again after its I/O (global with mmap_lock held throughout).
    assert.ok(o.vmstat.faultRetries > 0, `${design}: faults ran again after their I/O`);
    if (!lockHooks.on) continue;
    if (design === 'global')
      assert.ok(o.mmapIo > 0, 'global: the slow device was waited for under mmap_lock');
    else assert.equal(o.mmapIo, 0, `${design}: no I/O under mmap_lock`);
  }
});
