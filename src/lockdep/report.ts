/**
 * The text of the validator's reports, laid out like Linux's lockdep so that anyone who has read
 * one reads these: a banner, what this CPU is doing, what it holds, the dependency chain with
 * where each edge was first seen, the "possible unsafe locking scenario" table and the locks held.
 * Everything here runs only when something is reported.
 */
import { MAIN_CPU, MAX_CPUS } from '../cpu/current.js';
import { LOCK_ATOMIC, LOCK_RECURSIVE_READ, WRITE } from '../lockhooks.js';
import { lockClassName } from '../sync/lockclass.js';
import { KIND_RECURSIVE, KIND_SHARED, SEEN_WRITE, type Step, SUBCLASSES } from './graph.js';
import { depthOf, type HeldLock, heldLocks, rowOf } from './held.js';
import { stackLog } from './logs.js';
import { indentStack } from './stack.js';

/** What a CPU is doing when something is reported. */
export interface Acquisition {
  cpu: number;
  node: number;
  lockId: number;
  flags: number;
  stack: string;
}

const COLUMN = 31;

export function who(cpu: number): string {
  return cpu === MAIN_CPU ? `the main thread (CPU${MAIN_CPU})` : `CPU${cpu}`;
}

/** "i_rwsem", or "i_rwsem/1" for subclass 1. */
function nodeName(node: number): string {
  const sub = node % SUBCLASSES;
  return `${lockClassName(Math.floor(node / SUBCLASSES))}${sub === 0 ? '' : `/${sub}`}`;
}

/** "(i_rwsem)": a lock class as reports name it. */
export function lockName(node: number): string {
  return `(${nodeName(node)})`;
}

function modeText(flags: number): string {
  if ((flags & WRITE) !== 0) return 'write';
  return (flags & LOCK_RECURSIVE_READ) !== 0 ? 'recursive read' : 'read';
}

function banner(title: string): string[] {
  return ['', '='.repeat(title.length), title, '-'.repeat(title.length)];
}

function heldLine(i: number, lock: HeldLock): string {
  const line = ` #${i}: ${lockName(lock.node)}{${modeText(lock.flags)}}, lock ${lock.lockId}`;
  return lock.site === 0 ? line : `${line}, taken at:\n${indentStack(stackLog.text(lock.site), 8)}`;
}

export function heldList(cpu: number, held: HeldLock[]): string[] {
  if (held.length === 0) return [`no locks held by ${who(cpu)}.`];
  const title = `${held.length} lock${held.length === 1 ? '' : 's'} held by ${who(cpu)}:`;
  return [title, ...held.map((lock, i) => heldLine(i, lock))];
}

/** Every CPU's held locks (for a hang report: who holds what). */
export function showAllHeld(): string {
  const out: string[] = [];
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    if (depthOf(rowOf(cpu)) > 0) out.push(...heldList(cpu, heldLocks(cpu)));
  }
  return out.length === 0 ? 'no CPU holds a lock.' : out.join('\n');
}

function edgeText(from: number, to: number, kind: number, acquiredWrite: boolean): string {
  const held = (kind & KIND_SHARED) !== 0 ? 'held read' : 'held write';
  const acquired = (kind & KIND_RECURSIVE) !== 0 ? 'recursive read' : acquiredWrite ? 'write' : 'read';
  return `${lockName(from)}{${held}} -> ${lockName(to)}{${acquired}}`;
}

interface ScenarioEdge {
  from: number;
  to: number;
  kind: number;
  acquiredWrite: boolean;
}

/** Linux's layout: CPU0's cells at column 2 under a header at 7; CPU n's cells and header at 31 n. */
function cell(column: number, text: string): string {
  return ' '.repeat(column === 0 ? 2 : COLUMN * column) + text;
}

function tableHeader(columns: number): string[] {
  const row = (label: (c: number) => string) =>
    Array.from({ length: columns }, (_, c) => label(c).padEnd(c === 0 ? COLUMN - 7 : COLUMN))
      .join('')
      .trimEnd();
  return [`       ${row((c) => `CPU${c}`)}`, `       ${row(() => '----')}`];
}

/**
 * The "possible unsafe locking scenario": one column per edge of the cycle (that CPU holds the
 * edge's first lock and wants its second), plus a writer column for every lock that two of them
 * only read (rwsem readers deadlock only behind a queued writer).
 */
function scenario(edges: ScenarioEdge[]): string[] {
  const k = edges.length;
  const writers: number[] = [];
  for (let j = 0; j < k; j++) {
    const e = edges[j];
    const next = edges[(j + 1) % k];
    const readsNonRecursively = !e.acquiredWrite && (e.kind & KIND_RECURSIVE) === 0;
    if (readsNonRecursively && (next.kind & KIND_SHARED) !== 0) writers.push(e.to);
  }
  const columns = k + writers.length;
  const lines = [' Possible unsafe locking scenario:', '', ...tableHeader(columns)];
  for (let j = 0; j < k; j++) {
    const verb = (edges[j].kind & KIND_SHARED) !== 0 ? 'rlock' : 'lock';
    lines.push(cell(j, `${verb}(${nodeName(edges[j].from)});`));
  }
  writers.forEach((node, w) => {
    lines.push(cell(k + w, `lock(${nodeName(node)});`));
  });
  for (let n = 1; n <= k; n++) {
    const j = n % k;
    const verb = edges[j].acquiredWrite ? 'lock' : 'rlock';
    lines.push(cell(j, `${verb}(${nodeName(edges[j].to)});`));
  }
  lines.push('', ' *** DEADLOCK ***');
  for (const [w, node] of writers.entries()) {
    lines.push(
      '',
      ` CPU${k + w} queues for write on ${lockName(node)} between the two reads of it: rwsem readers`,
      ' wait behind a queued writer, so the second reader waits for the writer, which waits for the first.',
    );
  }
  return lines;
}

/** "possible circular locking dependency": `a` wants a lock that `holding` must come after. */
export function circularReport(
  a: Acquisition,
  holding: HeldLock,
  kind: number,
  chain: Step[],
  held: HeldLock[],
): string {
  const lines = banner('WARNING: possible circular locking dependency detected');
  lines.push(
    `${who(a.cpu)} is trying to acquire lock:`,
    ` ${lockName(a.node)}{${modeText(a.flags)}}, lock ${a.lockId}, at:`,
    indentStack(a.stack),
    '',
    'but this CPU is already holding lock:',
    ` ${lockName(holding.node)}{${modeText(holding.flags)}}, lock ${holding.lockId}`,
    '',
    'which lock already depends on the new lock.',
    '',
    'the existing dependency chain (in reverse order) is:',
    '',
  );
  for (let j = chain.length - 1; j >= 0; j--) {
    const s = chain[j];
    const seenOn = who(s.seen & 0xff);
    lines.push(
      `-> #${j + 1} ${edgeText(s.from, s.to, s.kind, (s.seen & SEEN_WRITE) !== 0)}, first seen on ${seenOn} at:`,
    );
    lines.push(indentStack(stackLog.text(s.stack)), '');
  }
  const acquiredWrite = (a.flags & WRITE) !== 0;
  lines.push(
    `-> #0 ${edgeText(holding.node, a.node, kind, acquiredWrite)}: the new dependency, seen now (stack above)`,
  );
  lines.push('', 'other info that might help us debug this:', '');
  if (chain.length > 1) {
    const nodes = [holding.node, a.node, ...chain.map((s) => s.to)];
    lines.push(' Chain exists of:', `   ${nodes.map(lockName).join(' --> ')}`, '');
  }
  const cycle: ScenarioEdge[] = [{ from: holding.node, to: a.node, kind, acquiredWrite }];
  for (const s of chain)
    cycle.push({ from: s.from, to: s.to, kind: s.kind, acquiredWrite: (s.seen & SEEN_WRITE) !== 0 });
  lines.push(...scenario(cycle), '', ...heldList(a.cpu, held));
  return lines.join('\n');
}

/** "possible recursive locking": `a` wants a lock of a class (and subclass) it already holds. */
export function recursiveReport(a: Acquisition, holding: HeldLock, held: HeldLock[]): string {
  const lines = banner('WARNING: possible recursive locking detected');
  const name = nodeName(a.node);
  const same = holding.lockId === a.lockId ? 'the same lock' : 'another lock of the same class';
  lines.push(
    `${who(a.cpu)} is trying to acquire lock:`,
    ` ${lockName(a.node)}{${modeText(a.flags)}}, lock ${a.lockId}, at:`,
    indentStack(a.stack),
    '',
    `but this CPU is already holding ${same}:`,
    ` ${lockName(holding.node)}{${modeText(holding.flags)}}, lock ${holding.lockId}`,
    '',
    'other info that might help us debug this:',
    ' Possible unsafe locking scenario:',
    '',
  );
  const readRead = (a.flags & WRITE) === 0 && (holding.flags & WRITE) === 0;
  if (readRead) {
    lines.push(
      ...tableHeader(2),
      cell(0, `rlock(${name});`),
      cell(1, `lock(${name});`),
      cell(0, `rlock(${name});`),
      '',
      ' *** DEADLOCK ***',
      '',
      ' rwsem readers queue behind a waiting writer: the second read waits for CPU1, which waits for CPU0.',
    );
  } else {
    const first = (holding.flags & WRITE) !== 0 ? 'lock' : 'rlock';
    const second = (a.flags & WRITE) !== 0 ? 'lock' : 'rlock';
    lines.push(...tableHeader(1), cell(0, `${first}(${name});`), cell(0, `${second}(${name});`));
    lines.push(
      '',
      ' *** DEADLOCK ***',
      '',
      ' May be due to missing lock nesting notation (give the inner lock a subclass).',
    );
  }
  lines.push('', ...heldList(a.cpu, held));
  return lines.join('\n');
}

export function badUnlockReport(
  cpu: number,
  classId: number,
  lockId: number,
  stack: string,
  held: HeldLock[],
): string {
  const lines = banner('WARNING: bad unlock balance detected!');
  lines.push(
    `${who(cpu)} is trying to release lock (${lockClassName(classId)}), lock ${lockId}, at:`,
    indentStack(stack),
    held.length === 0 ? 'but there are no more locks to release!' : 'but this CPU does not hold it.',
    '',
    ...heldList(cpu, held),
  );
  return lines.join('\n');
}

export function heldAtReturnReport(cpu: number, context: string, stack: string, held: HeldLock[]): string {
  const lines = banner(`WARNING: lock held when returning from ${context}!`);
  lines.push(
    `${who(cpu)} is leaving ${context} at:`,
    indentStack(stack),
    'with locks still held:',
    ...heldList(cpu, held),
  );
  return lines.join('\n');
}

/** Something that may sleep (`what`) inside an RCU read section or under a spinning lock. */
export function sleepInAtomicReport(cpu: number, what: string, stack: string, held: HeldLock[]): string {
  const atomic = held.filter((lock) => (lock.flags & LOCK_ATOMIC) !== 0);
  const inside = atomic.map((lock) => lockName(lock.node)).join(', ');
  const lines = banner('BUG: sleeping function called from invalid context');
  lines.push(
    `${who(cpu)} ${what}, which may sleep, in atomic context: inside ${inside}`,
    '(an RCU read section or a spinlock; nothing may sleep until it ends) at:',
    indentStack(stack),
    '',
    ...heldList(cpu, held),
  );
  return lines.join('\n');
}

const MMAP_WHAT = ['sleeps', 'allocates memory', 'does I/O'];
const MMAP_CALL = ['mightSleep', 'mightAlloc', 'mightIO'];

/** `what` is 0 sleep, 1 alloc, 2 I/O; `site` is the annotation's call-site label. */
export function mmapReport(what: number, cpu: number, site: string, stack: string, held: HeldLock[]): string {
  const title = ['WARNING: sleeping', 'WARNING: memory allocation', 'WARNING: I/O'][what];
  const lines = banner(`${title} while holding mmap_lock`);
  lines.push(
    `${who(cpu)} ${MMAP_WHAT[what]} (${MMAP_CALL[what]}('${site}')) while holding mmap_lock: every fault and`,
    'mmap call on this address space waits behind it. Drop mmap_lock first (pin what you need and',
    'return RETRY) or do it before taking the lock. Call site:',
    indentStack(stack),
    '',
    ...heldList(cpu, held),
  );
  return lines.join('\n');
}
