/**
 * Allocation failure injected at every allocation site of every syscall (VMA records and the
 * index's preallocation share one FailureInjector): the call reports ENOMEM (brk: the old break)
 * and the maps text is identical before and after; once the k-th allocation is past the last
 * site, the call behaves exactly like an undisturbed run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EAGAIN, ENOMEM } from '../../src/errno.js';
import type { AddressSpace } from '../../src/mm/address-space.js';
import { mapsText } from '../../src/mm/proc-maps.js';
import {
  MADV_RANDOM,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MCL_CURRENT,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from '../../src/mm/vm-flags.js';
import { BASE, newInjectedSpace, P } from '../support/mm-fixture.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/** A layout with several VMAs, holes, an anon_vma and a shared mapping. */
function prepare(mm: AddressSpace): void {
  mm.mmap(BASE, 16 * P, RW, ANON);
  mm.mprotect(BASE + 4 * P, 2 * P, PROT_READ);
  mm.mprotect(BASE + 8 * P, 2 * P, PROT_READ | PROT_EXEC);
  mm.touch(BASE, P, true);
  mm.mmap(BASE + 20 * P, 8 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
  mm.mmap(BASE + 30 * P, 4 * P, PROT_READ, ANON);
  mm.mmap(BASE + 36 * P, 4 * P, RW, ANON | MAP_LOCKED);
}

const SCENARIOS: Array<[string, (mm: AddressSpace) => number]> = [
  ['mmap new', (mm) => mm.sysMmap(0, 5 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)],
  ['mmap fixed over many', (mm) => mm.sysMmap(BASE + 2 * P, 20 * P, PROT_READ, ANON | MAP_POPULATE, -1, 0)],
  [
    'mmap shared',
    (mm) => mm.sysMmap(BASE + 40 * P, 3 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
  ],
  ['munmap middle', (mm) => mm.sysMunmap(BASE + P, 2 * P)],
  ['munmap many', (mm) => mm.sysMunmap(BASE + 3 * P, 30 * P)],
  ['mprotect split', (mm) => mm.sysMprotect(BASE + 11 * P, 2 * P, PROT_READ)],
  ['mprotect merge', (mm) => mm.sysMprotect(BASE, 16 * P, RW)],
  ['mprotect over a hole', (mm) => mm.sysMprotect(BASE + 14 * P, 10 * P, PROT_READ)],
  ['mremap grow', (mm) => mm.sysMremap(BASE + 30 * P, 4 * P, 6 * P, 0, 0)],
  ['mremap move', (mm) => mm.sysMremap(BASE + 10 * P, 3 * P, 9 * P, MREMAP_MAYMOVE, 0)],
  [
    'mremap fixed',
    (mm) => mm.sysMremap(BASE + 11 * P, 3 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, BASE + 50 * P),
  ],
  ['mremap multi', (mm) => mm.sysMremap(BASE, 34 * P, 34 * P, MREMAP_MAYMOVE | MREMAP_FIXED, BASE + 100 * P)],
  [
    'mremap dontunmap',
    (mm) =>
      mm.sysMremap(
        BASE + 21 * P,
        2 * P,
        2 * P,
        MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
        BASE + 60 * P,
      ),
  ],
  ['mremap shrink', (mm) => mm.sysMremap(BASE, 12 * P, P, 0, 0)],
  ['madvise', (mm) => mm.sysMadvise(BASE + 5 * P, 6 * P, MADV_RANDOM)],
  ['mlock', (mm) => mm.sysMlock2(BASE + P, 3 * P, 0)],
  ['munlock', (mm) => mm.sysMunlock(BASE + 37 * P, P)],
  ['mlockall', (mm) => mm.sysMlockall(MCL_CURRENT)],
  ['brk grow', (mm) => mm.sysBrk(mm.startBrk + 5 * P)],
];

for (const [name, op] of SCENARIOS) {
  test(`allocation failure in ${name}: ENOMEM and an unchanged address space`, () => {
    const reference = newInjectedSpace({ startBrk: BASE - 64 * P });
    prepare(reference.mm);
    const expectedRet = op(reference.mm);
    const expectedMaps = mapsText(reference.mm);
    for (let k = 0; ; k++) {
      const { mm, injector } = newInjectedSpace({ startBrk: BASE - 64 * P });
      prepare(mm);
      const before = mapsText(mm);
      const live = mm.arena.arena.live;
      injector.failAfter(k);
      const ret = op(mm);
      const hit = injector.injected > 0;
      injector.disarm();
      if (!hit) {
        assert.equal(ret, expectedRet);
        assert.equal(mapsText(mm), expectedMaps);
        break;
      }
      assert.ok(k < 4096, 'too many allocation sites');
      const refused = name.startsWith('brk') ? mm.startBrk : -ENOMEM;
      if (ret !== refused && mapsText(mm) === expectedMaps) {
        // The failure hit the populate stage, after the commit: Linux ignores it there (mmap,
        // mlockall) or reports it as mlock does (ENOMEM from a fault -> EAGAIN).
        assert.equal(ret, name === 'mlock' ? -EAGAIN : expectedRet, `failure at allocation ${k} (populate)`);
        continue;
      }
      assert.equal(ret, refused, `failure at allocation ${k}`);
      assert.equal(mapsText(mm), before, `failure at allocation ${k} changed the maps`);
      assert.equal(mm.arena.arena.live, live, `failure at allocation ${k} leaked records`);
    }
  });
}
