/**
 * The lock validator the locks call through src/lockhooks.ts. Steady state (every dependency of
 * this acquisition already recorded): one scan of this CPU's held locks with a lock-free hash probe
 * per held lock, and a push or a pop; no allocation, no stack capture. A new dependency captures
 * the call site once, records the edge in the shared graph and searches for a cycle through it.
 *
 * One instance per thread (per CPU); all state it reads and writes is shared (see graph.ts,
 * held.ts, checks.ts), except `site`, which carries a captured stack from `acquire` to `acquired`.
 */
import { currentCpu } from '../cpu/current.js';
import { LOCK_ATOMIC, LOCK_RECURSIVE_READ, LOCK_SLEEPS, type LockValidator, WRITE } from '../lockhooks.js';
import { lockClass, MAX_CLASSES } from '../sync/lockclass.js';
import {
  BAD_UNLOCK,
  CHECKS,
  CIRCULAR,
  COUNT,
  countViolation,
  firstReport,
  HELD_AT_RETURN,
  hashText,
  type LockdepCheck,
  MMAP_SLEEP,
  modeOf,
  OFF,
  RECURSIVE,
  SLEEP_IN_ATOMIC,
  THROW,
  WARN,
} from './checks.js';
import { addDependency, hasDependency, kindOf, SEEN_WRITE, type Step, SUBCLASSES } from './graph.js';
import {
  atomicHeld,
  depthOf,
  findHeld,
  forgetHeld,
  HELD_MMAP,
  heldFlags,
  heldLocks,
  heldNode,
  mmapHeld,
  pushHeld,
  removeHeld,
  rowOf,
} from './held.js';
import { reportLog, stackLog } from './logs.js';
import {
  badUnlockReport,
  circularReport,
  heldAtReturnReport,
  lockName,
  mmapReport,
  recursiveReport,
  showAllHeld,
  sleepInAtomicReport,
} from './report.js';
import { countSite, SITE_ALLOC, SITE_IO, SITE_SLEEP, siteIndex } from './sites.js';
import { captureStack } from './stack.js';

const KIND_BITS = WRITE | LOCK_ATOMIC | LOCK_SLEEPS | LOCK_RECURSIVE_READ;

/** A report raised in `throw` mode; `message` is the whole report. */
export class LockdepError extends Error {
  readonly check: LockdepCheck;
  constructor(check: number, report: string) {
    super(report);
    this.name = 'LockdepError';
    this.check = CHECKS[check];
  }
}

export class Validator implements LockValidator {
  /** Stack-log id captured by the current `acquire` (0: none), stored with the held lock. */
  private site = 0;
  private readonly mmapClass = lockClass('mmap_lock');
  private readonly rcuClass = lockClass('rcu_read_lock');

  acquire(classId: number, subclass: number, lockId: number, mode: number, trylock: boolean): void {
    const row = rowOf(currentCpu());
    const node = nodeOf(classId, subclass);
    const flags = this.flagsOf(classId, mode);
    this.site = 0;
    if (trylock) return;
    if ((flags & LOCK_SLEEPS) !== 0 && atomicHeld(row)) this.sleepInAtomic(`acquires ${lockName(node)}`);
    const depth = depthOf(row);
    for (let i = 0; i < depth; i++) {
      const held = heldNode(row, i);
      const heldMode = heldFlags(row, i);
      if (held === node) {
        const readInRead = (flags & LOCK_RECURSIVE_READ) !== 0 && (heldMode & WRITE) === 0;
        if (!readInRead) this.recursive(i, node, lockId, flags);
        continue;
      }
      const kind = kindOf((heldMode & WRITE) === 0, (flags & LOCK_RECURSIVE_READ) !== 0);
      if (!hasDependency(held, node, kind)) this.newDependency(i, node, lockId, flags, kind);
    }
  }

  acquired(classId: number, subclass: number, lockId: number, mode: number): void {
    const row = rowOf(currentCpu());
    const flags = this.flagsOf(classId, mode) | (classId === this.mmapClass ? HELD_MMAP : 0);
    pushHeld(row, nodeOf(classId, subclass), lockId, flags, this.site);
    this.site = 0;
  }

  release(classId: number, lockId: number): void {
    const row = rowOf(currentCpu());
    const i = findHeld(row, classId, lockId);
    if (i >= 0) removeHeld(row, i);
    else this.badUnlock(classId, lockId);
  }

  mightSleep(site: string): void {
    const row = rowOf(currentCpu());
    if (atomicHeld(row)) this.sleepInAtomic(`calls mightSleep('${site}')`);
    if (mmapHeld(row)) this.mmapViolation(SITE_SLEEP, site);
  }

  /** Allocation never sleeps here (arenas are preallocated): only the mmap_lock check applies. */
  mightAlloc(site: string): void {
    if (mmapHeld(rowOf(currentCpu()))) this.mmapViolation(SITE_ALLOC, site);
  }

  /** Not an mmap_lock violation (Linux waits for its flush IPIs under mmap_lock too): atomic context only. */
  mightWaitCpus(site: string): void {
    if (atomicHeld(rowOf(currentCpu()))) this.sleepInAtomic(`calls mightWaitCpus('${site}')`);
  }

  mightIO(site: string): void {
    const row = rowOf(currentCpu());
    if (atomicHeld(row)) this.sleepInAtomic(`calls mightIO('${site}')`);
    if (mmapHeld(row)) this.mmapViolation(SITE_IO, site);
  }

  showHeld(): string {
    return showAllHeld();
  }

  /**
   * A task or syscall (`context`) must not return with locks held beyond the first `base` (the
   * locks its caller held: a fault under a file's read/write path). What it held is forgotten once
   * reported, so the CPU's next context starts clean.
   */
  assertNoneHeld(context: string, base = 0): void {
    const cpu = currentCpu();
    const row = rowOf(cpu);
    if (depthOf(row) <= base) return;
    const held = heldLocks(cpu).slice(base);
    forgetHeld(row, base);
    const mode = this.count(HELD_AT_RETURN, Math.floor(held[0].node / SUBCLASSES));
    if (mode <= COUNT) return;
    const text = heldAtReturnReport(cpu, context, captureStack(), held);
    this.emit(HELD_AT_RETURN, mode, firstReport(HELD_AT_RETURN, hashText(context), 0), text);
  }

  private flagsOf(classId: number, mode: number): number {
    const flags = mode & KIND_BITS;
    return classId === this.rcuClass ? flags | LOCK_ATOMIC | LOCK_RECURSIVE_READ : flags;
  }

  private newDependency(heldIndex: number, node: number, lockId: number, flags: number, kind: number): void {
    if (this.site === 0) this.site = stackLog.append(0, captureStack());
    const cpu = currentCpu();
    const row = rowOf(cpu);
    const from = heldNode(row, heldIndex);
    const seen = cpu | ((flags & WRITE) !== 0 ? SEEN_WRITE : 0);
    const chain = addDependency(from, node, kind, this.site, seen, modeOf(CIRCULAR) !== OFF);
    if (chain !== null) this.circular(heldIndex, node, lockId, flags, kind, chain);
  }

  private circular(
    heldIndex: number,
    node: number,
    lockId: number,
    flags: number,
    kind: number,
    chain: Step[],
  ): void {
    const mode = this.count(CIRCULAR, Math.floor(node / SUBCLASSES));
    if (mode <= COUNT) return;
    const cpu = currentCpu();
    const held = heldLocks(cpu);
    const a = { cpu, node, lockId, flags, stack: stackLog.text(this.site) };
    const text = circularReport(a, held[heldIndex], kind, chain, held);
    this.emit(CIRCULAR, mode, firstReport(CIRCULAR, held[heldIndex].node, node), text);
  }

  private recursive(heldIndex: number, node: number, lockId: number, flags: number): void {
    const mode = this.count(RECURSIVE, Math.floor(node / SUBCLASSES));
    if (mode <= COUNT) return;
    const cpu = currentCpu();
    const held = heldLocks(cpu);
    const text = recursiveReport({ cpu, node, lockId, flags, stack: captureStack() }, held[heldIndex], held);
    this.emit(RECURSIVE, mode, firstReport(RECURSIVE, node, flags & WRITE), text);
  }

  private badUnlock(classId: number, lockId: number): void {
    const mode = this.count(BAD_UNLOCK, classId);
    if (mode <= COUNT) return;
    const cpu = currentCpu();
    const text = badUnlockReport(cpu, classId, lockId, captureStack(), heldLocks(cpu));
    this.emit(BAD_UNLOCK, mode, firstReport(BAD_UNLOCK, classId, 0), text);
  }

  private sleepInAtomic(what: string): void {
    const cpu = currentCpu();
    const held = heldLocks(cpu);
    const atomic = held.findLast((lock) => (lock.flags & LOCK_ATOMIC) !== 0);
    const mode = this.count(SLEEP_IN_ATOMIC, atomic === undefined ? 0 : Math.floor(atomic.node / SUBCLASSES));
    if (mode <= COUNT) return;
    const text = sleepInAtomicReport(cpu, what, captureStack(), held);
    this.emit(SLEEP_IN_ATOMIC, mode, firstReport(SLEEP_IN_ATOMIC, hashText(what), atomic?.node ?? 0), text);
  }

  /** `what` is SITE_SLEEP, SITE_ALLOC or SITE_IO (the check is MMAP_SLEEP + what). */
  private mmapViolation(what: number, site: string): void {
    const check = MMAP_SLEEP + what;
    const mode = this.count(check, this.mmapClass);
    if (mode === OFF) return;
    countSite(siteIndex(site), what);
    if (mode === COUNT) return;
    const cpu = currentCpu();
    const text = mmapReport(what, cpu, site, captureStack(), heldLocks(cpu));
    this.emit(check, mode, firstReport(check, hashText(site), 0), text);
  }

  /** Counts a violation unless the check is off; returns the check's mode. */
  private count(check: number, classId: number): number {
    const mode = modeOf(check);
    if (mode !== OFF) countViolation(check, classId);
    return mode;
  }

  /** Logs (and in warn mode prints) a report the first time; throws it in throw mode. */
  private emit(check: number, mode: number, first: boolean, text: string): void {
    if (first) reportLog.append(check, text);
    if (mode === WARN && first) console.warn(text);
    if (mode === THROW) throw new LockdepError(check, text);
  }
}

/** The graph node of (class, subclass); throws on ids out of range. */
export function nodeOf(classId: number, subclass: number): number {
  if (!(classId >= 1 && classId < MAX_CLASSES && subclass >= 0 && subclass < SUBCLASSES)) {
    throw new RangeError(`lockdep: lock class ${classId} / subclass ${subclass} out of range`);
  }
  return classId * SUBCLASSES + subclass;
}
