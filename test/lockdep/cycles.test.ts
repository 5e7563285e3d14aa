/**
 * The dependency graph and its cycle reports, driven through the lock hooks on the main thread:
 * AB-BA, a three-lock cycle, the rwsem read-recursion hazards, and no report for consistent
 * orders, subclass nesting, trylocks and recursive readers.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import {
  LockdepError,
  lockdepCounts,
  lockdepDependencies,
  lockdepReports,
  lockdepShowHeld,
} from '../../src/lockdep/index.js';
import { LOCK_ATOMIC, LOCK_RECURSIVE_READ, LOCK_SLEEPS } from '../../src/lockhooks.js';
import { FakeLock, fresh } from './util.js';

function isReport(pattern: RegExp) {
  return (e: unknown) => e instanceof LockdepError && pattern.test(e.message);
}

describe('lockdep cycles', () => {
  beforeEach(() => fresh());

  it('reports AB-BA on the acquisition that closes the cycle, once', () => {
    const a = new FakeLock('cyc.A');
    const b = new FakeLock('cyc.B');
    a.lock();
    b.lock();
    b.unlock();
    a.unlock();
    b.lock();
    assert.throws(() => a.lock(), isReport(/possible circular locking dependency detected/));
    assert.match(lockdepShowHeld(), /#0: \(cyc\.B\)\{write\}/, 'the failed acquisition is not held');
    b.unlock();
    const reports = lockdepReports();
    assert.equal(reports.length, 1);
    assert.equal(reports[0].check, 'circular');
    const text = reports[0].text;
    assert.match(text, /is trying to acquire lock:\n \(cyc\.A\)\{write\}/);
    assert.match(text, /but this CPU is already holding lock:\n \(cyc\.B\)\{write\}/);
    assert.match(
      text,
      /-> #1 \(cyc\.A\)\{held write\} -> \(cyc\.B\)\{write\}, first seen on the main thread/,
    );
    assert.match(text, /-> #0 \(cyc\.B\)\{held write\} -> \(cyc\.A\)\{write\}: the new dependency/);
    const table = [
      '  lock(cyc.B);',
      `${' '.repeat(31)}lock(cyc.A);`,
      `${' '.repeat(31)}lock(cyc.B);`,
      '  lock(cyc.A);',
    ];
    assert.ok(text.includes(table.join('\n')), `scenario table missing in:\n${text}`);
    assert.match(text, /\*\*\* DEADLOCK \*\*\*/);
    assert.match(text, /at .*cycles\.test\.(ts|js)/, 'edges carry the stack where they were first seen');

    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
    assert.equal(lockdepCounts().circular, 1, 'the edge is recorded: the same inversion reports once');
  });

  it('reports a three-lock cycle with its whole chain', () => {
    const [a, b, c] = ['cyc3.A', 'cyc3.B', 'cyc3.C'].map((n) => new FakeLock(n));
    const nest = (outer: FakeLock, inner: FakeLock) => {
      outer.lock();
      inner.lock();
      inner.unlock();
      outer.unlock();
    };
    nest(a, b);
    nest(b, c);
    c.lock();
    assert.throws(() => a.lock(), isReport(/circular locking dependency/));
    c.unlock();
    const [report] = lockdepReports();
    assert.match(
      report.text,
      /Chain exists of:\n {3}\(cyc3\.C\) --> \(cyc3\.A\) --> \(cyc3\.B\) --> \(cyc3\.C\)/,
    );
    assert.match(report.text, /-> #2 \(cyc3\.B\)\{held write\} -> \(cyc3\.C\)/);
    assert.match(report.text, /-> #1 \(cyc3\.A\)\{held write\} -> \(cyc3\.B\)/);
    assert.match(report.text, / {7}CPU0 {20}CPU1 {27}CPU2\n/, 'one scenario column per edge of the cycle');
  });

  it('records consistent orders and nesting with subclasses without a report', () => {
    const outer = new FakeLock('ok.outer');
    const parent = new FakeLock('ok.inode', LOCK_SLEEPS, 0);
    const child = new FakeLock('ok.inode', LOCK_SLEEPS, 1);
    const leaf = new FakeLock('ok.leaf', LOCK_ATOMIC);
    for (let round = 0; round < 3; round++) {
      outer.lock();
      parent.lock();
      child.lock();
      leaf.lock();
      leaf.unlock();
      child.unlock();
      parent.unlock();
      outer.unlock();
      parent.lock();
      leaf.lock();
      leaf.unlock();
      parent.unlock();
    }
    assert.deepEqual(lockdepReports(), []);
    const edges = lockdepDependencies().map((d) => `${d.from}->${d.to}`);
    for (const e of [
      '(ok.outer)->(ok.inode)',
      '(ok.inode)->(ok.inode/1)',
      '(ok.inode/1)->(ok.leaf)',
      '(ok.inode)->(ok.leaf)',
    ]) {
      assert.ok(edges.includes(e), `edge ${e} recorded (have ${edges.join(', ')})`);
    }
  });

  it('reports nesting two locks of one class without a subclass', () => {
    const first = new FakeLock('rec.inode');
    const second = new FakeLock('rec.inode');
    first.lock();
    assert.throws(
      () => second.lock(),
      isReport(
        /possible recursive locking detected[\s\S]*another lock of the same class[\s\S]*missing lock nesting notation/,
      ),
    );
    first.unlock();
  });

  it('reports reading an rwsem this CPU already reads (a queued writer deadlocks it)', () => {
    const sem = new FakeLock('rec.rwsem');
    sem.read();
    assert.throws(() => sem.read(), isReport(/possible recursive locking detected/));
    sem.unlock();
    const [report] = lockdepReports();
    assert.match(report.text, /the same lock/);
    assert.match(report.text, / {2}rlock\(rec\.rwsem\);\n {31}lock\(rec\.rwsem\);\n {2}rlock\(rec\.rwsem\);/);
    assert.match(report.text, /rwsem readers queue behind a waiting writer/);
  });

  it('reports a read-read cycle through an rwsem, with the writer it needs', () => {
    const sem = new FakeLock('rr.rwsem');
    const mutex = new FakeLock('rr.mutex');
    sem.read();
    mutex.lock();
    mutex.unlock();
    sem.unlock();
    mutex.lock();
    assert.throws(() => sem.read(), isReport(/circular locking dependency/));
    mutex.unlock();
    const [report] = lockdepReports();
    assert.match(report.text, /-> #1 \(rr\.rwsem\)\{held read\} -> \(rr\.mutex\)\{write\}/);
    assert.match(report.text, /CPU2 queues for write on \(rr\.rwsem\)/);
    assert.match(report.text, /\n {62}lock\(rr\.rwsem\);/, 'a writer column');
  });

  it('does not report readers of a recursive read side (RCU) in either order', () => {
    const rcu = new FakeLock('rcu_read_lock', 0);
    const other = new FakeLock('rr2.rcuish', LOCK_RECURSIVE_READ);
    const mutex = new FakeLock('rr2.mutex', 0);
    for (const reader of [rcu, other]) {
      reader.read();
      reader.read();
      mutex.lock();
      mutex.unlock();
      reader.unlock();
      reader.unlock();
      mutex.lock();
      reader.read();
      reader.unlock();
      mutex.unlock();
    }
    assert.deepEqual(lockdepReports(), []);
    assert.equal(lockdepCounts().circular + lockdepCounts().recursive, 0);
  });

  it('reports a recursive reader against a writer of the same side', () => {
    const seq = new FakeLock('rr3.seq', LOCK_RECURSIVE_READ);
    const mutex = new FakeLock('rr3.mutex');
    seq.lock();
    mutex.lock();
    mutex.unlock();
    seq.unlock();
    mutex.lock();
    assert.throws(() => seq.read(), isReport(/circular locking dependency/));
    mutex.unlock();
  });

  it('adds no dependency into a trylock, but one out of it', () => {
    const a = new FakeLock('try.A');
    const b = new FakeLock('try.B');
    const c = new FakeLock('try.C');
    a.lock();
    b.tryLock();
    c.lock();
    c.unlock();
    b.unlock();
    a.unlock();
    b.lock();
    a.lock();
    a.unlock();
    b.unlock();
    assert.deepEqual(lockdepReports(), []);
    const edges = lockdepDependencies().map((d) => `${d.from}->${d.to}`);
    assert.ok(!edges.includes('(try.A)->(try.B)'));
    assert.ok(edges.includes('(try.B)->(try.C)'));
    c.lock();
    assert.throws(() => b.lock(), isReport(/circular/), 'the edge out of the trylock closes C -> B -> C');
    c.unlock();
  });
});
