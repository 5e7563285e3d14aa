import nodeAssert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { assert, assertEqual, DEBUG, debugAssert, unreachable, VmAssertionError } from '../../src/assert.js';

test('assert passes a truthy condition and throws VmAssertionError with the message otherwise', () => {
  assert(true);
  assert(1, 'not thrown');
  nodeAssert.throws(() => assert(false, 'arena: the free list loops'), {
    name: 'VmAssertionError',
    message: 'arena: the free list loops',
  });
  nodeAssert.throws(() => assert(0), { name: 'VmAssertionError', message: 'assertion failed' });
  const error = captured(() => assert(null, 'x'));
  nodeAssert.ok(error instanceof VmAssertionError && error instanceof Error);
  nodeAssert.match(error.stack ?? '', /VmAssertionError: x/);
});

test('assert narrows the type of what it checked', () => {
  const found: string | undefined = ['a', 'bc'].find((s) => s.length === 2);
  assert(found !== undefined, 'a two-letter word');
  nodeAssert.equal(found.length, 2); // compiles only because assert narrowed `found`
});

test('assertEqual compares with === (NaN equals itself) and shows both values on failure', () => {
  assertEqual(3, 3);
  assertEqual('x', 'x');
  assertEqual(Number.NaN, Number.NaN);
  nodeAssert.throws(() => assertEqual(1, 2), { name: 'VmAssertionError', message: 'expected 2, got 1' });
  nodeAssert.throws(() => assertEqual<string>('a', 'b', 'class name'), {
    message: 'class name: expected "b", got "a"',
  });
  nodeAssert.throws(() => assertEqual<unknown>({ a: 1 }, { a: 1 }), /expected \{"a":1\}, got \{"a":1\}/);
});

test('unreachable closes a switch over a union and throws if a value outside it arrives anyway', () => {
  type Kind = 'read' | 'write';
  const name = (kind: Kind): string => {
    switch (kind) {
      case 'read':
        return 'r';
      case 'write':
        return 'w';
      default:
        return unreachable(kind, 'lock kind');
    }
  };
  nodeAssert.equal(name('write'), 'w');
  nodeAssert.throws(() => name('upgrade' as Kind), {
    name: 'VmAssertionError',
    message: 'lock kind: unreachable: "upgrade"',
  });
  nodeAssert.throws(() => unreachable(7 as never), { message: 'unreachable: 7' });
});

test('DEBUG follows VMSPACE_DEBUG=1, and debugAssert runs its check only in debug mode', () => {
  nodeAssert.equal(DEBUG, process.env.VMSPACE_DEBUG === '1');
  const seen: number[] = [];
  const positive = (n: number): string | undefined => {
    seen.push(n);
    return n > 0 ? undefined : `${n} is not positive`;
  };
  debugAssert(positive, 1);
  if (DEBUG) {
    nodeAssert.throws(() => debugAssert(positive, -1), {
      name: 'VmAssertionError',
      message: 'positive: -1 is not positive',
    });
    nodeAssert.deepEqual(seen, [1, -1]);
  } else {
    debugAssert(positive, -1);
    nodeAssert.deepEqual(seen, [], 'no check runs with debug off');
  }
});

test('debugAssert in both modes (fresh processes): off it never calls the check, on it reports false and strings', () => {
  const url = new URL('../../src/assert.js', import.meta.url).href;
  const script = `
    import { DEBUG, debugAssert } from ${JSON.stringify(url)};
    let calls = 0;
    function sorted(a) { calls++; return a.every((x, i) => i === 0 || a[i - 1] <= x); }
    function noDuplicates(a) { calls++; return new Set(a).size === a.length ? undefined : 'a value repeats'; }
    const out = [];
    for (const [check, subject] of [[sorted, [1, 2]], [sorted, [2, 1]], [noDuplicates, [1, 1]]]) {
      try { debugAssert(check, subject); out.push('ok'); } catch (e) { out.push(e.name + ': ' + e.message); }
    }
    console.log(JSON.stringify({ debug: DEBUG, calls, out }));
  `;
  const run = (value: string) => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, VMSPACE_DEBUG: value },
      encoding: 'utf8',
    });
    nodeAssert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout) as { debug: boolean; calls: number; out: string[] };
  };
  nodeAssert.deepEqual(run('0'), { debug: false, calls: 0, out: ['ok', 'ok', 'ok'] });
  nodeAssert.deepEqual(run('1'), {
    debug: true,
    calls: 3,
    out: ['ok', 'VmAssertionError: sorted failed', 'VmAssertionError: noDuplicates: a value repeats'],
  });
});

function captured(f: () => void): Error {
  try {
    f();
  } catch (error) {
    return error as Error;
  }
  throw new Error('nothing was thrown');
}
