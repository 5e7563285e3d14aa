/**
 * The package as a user gets it. `npm pack --ignore-scripts` (npm test has just built dist/, and
 * the prepack/prepare scripts would delete and rebuild it under the running tests) into a temp
 * dir; a fresh ESM project there installs the tarball offline; then, in that project:
 *   - a script imports 'vmspace', maps, splits, merges and unmaps memory, checks errnos, runs a
 *     Machine whose task imports 'vmspace' too, reads lock statistics and replays a trace
 *   - the README's Quick start block runs verbatim and prints what its `// prints:` comments say
 *   - the installed bin answers --help
 *   - a TypeScript file compiles against the shipped declarations
 * Every child process has a timeout; the temp dir goes whatever happens.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** dist/test/package -> the repository. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Longest any one child process may take (npm on a slow, busy machine included). */
const TIMEOUT_MS = 90_000;

/** The environment of the children: none of the outer npm's variables, no test-runner context. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('npm_') && key !== 'NODE_TEST_CONTEXT') env[key] = value;
  }
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

function run(command: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, env: childEnv(), encoding: 'utf8', timeout: TIMEOUT_MS });
  if (result.error) throw result.error;
  return result;
}

/** Runs a command that must succeed; returns its stdout. */
function runOk(command: string, args: string[], cwd: string): string {
  const result = run(command, args, cwd);
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')} exited ${result.status ?? result.signal}\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout;
}

/** npm: the one running `npm test` when there is one (npm_execpath), else npm on PATH. */
function npm(args: string[], cwd: string): string {
  const cli = process.env.npm_execpath;
  if (cli !== undefined && /npm-cli\.c?js$/.test(cli)) return runOk(process.execPath, [cli, ...args], cwd);
  return runOk('npm', args, cwd);
}

function node(args: string[], cwd: string): string {
  return runOk(process.execPath, args, cwd);
}

/** The first ```js block of the README section `## Quick start`. */
export function quickStart(readme: string): string {
  const section = /^## Quick start\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(readme);
  assert.ok(section, 'README.md has no "## Quick start" section');
  const block = /^```js\n([\s\S]*?)^```/m.exec(section[1]);
  assert.ok(block, 'the Quick start section has no ```js block');
  return block[1];
}

/**
 * What a snippet says it prints: the text after `// prints: ` on a line, and the comment lines
 * after a line ending in `// prints:`.
 */
export function claimedOutput(code: string): string[] {
  const lines = code.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const claim = /\/\/ prints:(.*)$/.exec(lines[i]);
    if (claim === null) continue;
    if (claim[1].trim() !== '') {
      out.push(claim[1].trim());
      continue;
    }
    while (i + 1 < lines.length && /^\s*\/\/ /.test(lines[i + 1]))
      out.push(lines[++i].replace(/^\s*\/\/ /, ''));
  }
  return out.map((line) => line.trimEnd());
}

const CHECK = `
import * as vmspace from 'vmspace';
import {
  createAddressSpace, createVmaTree, lockStatRows, Machine, mapsText, readTrace, replayTrace,
  MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE, VmError,
} from 'vmspace';

const P = 4096;
const out = { exports: Object.keys(vmspace).sort() };
const mm = createAddressSpace();
const a = mm.mmap(0, 8 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
const layout = () => mm.vmas().map((v) => \`\${(Number(v.start) - a) / P}-\${(Number(v.end) - a) / P} \${v.perms}\`);
mm.mprotect(a + 2 * P, 2 * P, PROT_READ);
mm.mprotect(a + 6 * P, P, PROT_NONE);
mm.munmap(a + 7 * P, P);
out.split = layout();
mm.mprotect(a + 2 * P, 2 * P, PROT_READ | PROT_WRITE);
out.merged = layout();
out.maps = mapsText(mm);
mm.munmap(a, 7 * P);
out.unmapped = layout();
out.errors = [
  () => mm.munmap(a + 1, P),
  () => mm.mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS),
  () => mm.mprotect(a, P, PROT_READ),
].map((call) => {
  try {
    call();
    return 'no error';
  } catch (e) {
    return e instanceof VmError ? \`\${e.code} \${e.errno}\` : String(e);
  }
});
out.mmapLockWrites = lockStatRows().find((r) => r.name === 'mmap_lock')?.acquisitionsWrite ?? 0;
const machine = await Machine.start({ cpus: 2 });
try {
  out.cpus = await machine.run(new URL('./task.mjs', import.meta.url), { add: 10 });
} finally {
  await machine.stop();
}
const trace = readTrace('./trace.jsonl.gz');
const replay = replayTrace(trace, { strict: true, newIndex: () => createVmaTree() });
out.replay = { ops: replay.ops, traceOps: trace.ops.length, ok: typeof replay.ok };
console.log(JSON.stringify(out));
`;

const TASK = `
import { currentCpu } from 'vmspace';
export default function task(cpu, args) {
  return { cpu, current: currentCpu(), sum: cpu + args.add };
}
`;

const TYPED = `
import { type AddressSpace, createAddressSpace, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, type VmaView, VmError } from 'vmspace';
const mm: AddressSpace = createAddressSpace({ config: { privileged: true } });
export const addr: number = mm.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
export const views: VmaView[] = mm.vmas();
export const code: string = new VmError(22, 'x').code;
// @ts-expect-error: lengths are numbers
mm.munmap(addr, '4096');
`;

let dir = '';
let project = '';
let packedFiles: string[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmspace-pack-'));
  const packed = JSON.parse(
    npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT),
  ) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  packedFiles = packed[0].files.map((f) => f.path);
  project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  );
  npm(
    [
      'install',
      '--offline',
      '--no-audit',
      '--no-fund',
      '--cache',
      join(dir, 'npm-cache'),
      join(dir, packed[0].filename),
    ],
    project,
  );
});

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('the tarball ships the built library, its types, the bin and the docs, and no tests or sources', () => {
  for (const path of [
    'package.json',
    'README.md',
    'bin/vmspace.js',
    'docs/api.md',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/machine/worker.js',
    'dist/src/cli/main.js',
  ]) {
    assert.ok(packedFiles.includes(path), `${path} is not in the tarball`);
  }
  const stray = packedFiles.filter(
    (p) =>
      !/^(dist\/src\/|bin\/|docs\/)/.test(p) && !['package.json', 'README.md', 'ARCHITECTURE.md'].includes(p),
  );
  assert.deepEqual(stray, []);
  assert.deepEqual(
    packedFiles.filter((p) => p.endsWith('.map') || p.endsWith('.ts') !== p.endsWith('.d.ts')),
    [],
  );
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(pkg.dependencies, undefined, 'vmspace has no runtime dependencies');
});

test("an ESM project that installed the tarball imports 'vmspace' and uses it", async () => {
  writeFileSync(join(project, 'check.mjs'), CHECK);
  writeFileSync(join(project, 'task.mjs'), TASK);
  const fixtures = join(ROOT, 'test/mm/fixtures');
  const smallest = readdirSync(fixtures)
    .filter((f) => f.endsWith('.jsonl.gz'))
    .sort((x, y) => statSync(join(fixtures, x)).size - statSync(join(fixtures, y)).size)[0];
  copyFileSync(join(fixtures, smallest), join(project, 'trace.jsonl.gz'));
  const out = JSON.parse(node(['check.mjs'], project));

  const built = Object.keys(await import(pathToFileURL(join(ROOT, 'dist/src/index.js')).href)).sort();
  assert.deepEqual(out.exports, built);
  for (const name of [
    'AddressSpace',
    'createAddressSpace',
    'Machine',
    'MapleTree',
    'VmError',
    'EINVAL',
    'MAP_FIXED',
  ])
    assert.ok(out.exports.includes(name), `'vmspace' does not export ${name}`);
  assert.deepEqual(out.split, ['0-2 rw-p', '2-4 r--p', '4-6 rw-p', '6-7 ---p']);
  assert.deepEqual(out.merged, ['0-6 rw-p', '6-7 ---p']);
  assert.match(
    out.maps,
    /^[0-9a-f]+-[0-9a-f]+ rw-p 00000000 00:00 0 \n[0-9a-f]+-[0-9a-f]+ ---p 00000000 00:00 0 \n$/,
  );
  assert.deepEqual(out.unmapped, []);
  assert.deepEqual(out.errors, ['EINVAL 22', 'EINVAL 22', 'ENOMEM 12']);
  assert.ok(out.mmapLockWrites >= 6, `mmap_lock write acquisitions: ${out.mmapLockWrites}`);
  assert.deepEqual(out.cpus, [
    { cpu: 0, current: 0, sum: 10 },
    { cpu: 1, current: 1, sum: 11 },
  ]);
  assert.ok(out.replay.ops > 0 && out.replay.ops <= out.replay.traceOps, JSON.stringify(out.replay));
  assert.equal(out.replay.ok, 'boolean');
});

test('the README Quick start runs verbatim and prints what it says', () => {
  const code = quickStart(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  assert.match(code, /from 'vmspace'/);
  const claimed = claimedOutput(code);
  assert.ok(claimed.length >= 2, 'the Quick start says nothing about its output');
  writeFileSync(join(project, 'quickstart.mjs'), code);
  const printed = node(['quickstart.mjs'], project)
    .trimEnd()
    .split('\n')
    .map((line) => line.trimEnd());
  assert.deepEqual(printed, claimed);
});

test('the installed bin prints its help', () => {
  const bin = join(project, 'node_modules/.bin/vmspace');
  assert.match(node([bin, '--help'], project), /^usage: vmspace/);
  assert.match(node([bin, 'replay', '--help'], project), /^usage: vmspace replay/);
});

test('a TypeScript project compiles against the shipped declarations', () => {
  writeFileSync(join(project, 'typed.ts'), TYPED);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      files: ['typed.ts'],
    }),
  );
  node([join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], project);
});
