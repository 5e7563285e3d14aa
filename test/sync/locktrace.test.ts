/**
 * The per-CPU lock trace (src/sync/locktrace.ts): a ring fills once and counts what it drops;
 * while this CPU traces, the lock statistics record every hold of a traced class (not 1 in 64),
 * with its start on the trace's time axis, and nothing of other classes; after traceEnd nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KIND_HOLD, TraceRing, traceBegin, traceEnd, tracing } from '../../src/sync/locktrace.js';
import { RwSem } from '../../src/sync/rwsem.js';

test('a ring fills once, then counts what it drops', () => {
  const ring = TraceRing.create(3);
  for (let i = 0; i < 5; i++) ring.record(i, 16, i, i * 10);
  assert.equal(ring.count, 3);
  assert.equal(ring.dropped, 2);
  assert.deepEqual(
    ring.events().map((e) => e.tMs),
    [0, 1, 2],
  );
  const again = TraceRing.attach(ring.describe());
  assert.deepEqual(again.events(), ring.events());
  ring.clear();
  assert.equal(again.count, 0);
  assert.throws(() => TraceRing.create(0), RangeError);
});

test('while tracing, every hold of a traced class goes to the ring, on the trace time axis', () => {
  const traced = RwSem.create('test.locktrace.traced');
  const other = RwSem.create('test.locktrace.other');
  const ring = TraceRing.create(64);
  const origin = performance.timeOrigin + performance.now();
  traceBegin(ring, origin, [traced.classId]);
  assert.equal(tracing(), true);
  for (let i = 0; i < 10; i++) {
    traced.downRead();
    other.downWrite();
    other.upWrite();
    traced.upRead();
  }
  traceEnd();
  traced.downWrite();
  traced.upWrite();
  const events = ring.events();
  assert.equal(events.length, 10, 'every hold, none of the other class, none after traceEnd');
  const now = performance.timeOrigin + performance.now() - origin;
  for (const e of events) {
    assert.equal(e.kind, KIND_HOLD);
    assert.equal(e.id, traced.classId);
    assert.ok(e.tMs >= 0 && e.tMs <= now && e.durationNs >= 0);
  }
});
