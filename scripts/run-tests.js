#!/usr/bin/env node
// Runs the compiled test suite with node's test runner, with the lock validator on: every test
// process gets VMSPACE_LOCKDEP=1 and preloads dist/src/lockdep/register.js (node's test runner
// passes --import on to each test file's process); Machine CPUs switch it on in their worker entry.
// `--stress` runs the long, seeded stress suite instead (files named *.stress.js). Other arguments
// pick test areas or files (`node scripts/run-tests.js test/sync test/machine/machine.test.ts`);
// default: everything under dist/test.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const stress = process.argv.includes('--stress');
const suffix = stress ? '.stress.js' : '.test.js';
const REGISTER = './dist/src/lockdep/register.js';

function collect(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...collect(path));
    else if (name.endsWith(suffix)) found.push(path);
  }
  return found;
}

/** `test/sync` -> dist/test/sync; `test/x.test.ts` -> dist/test/x.test.js. */
function compiled(arg) {
  const path = arg.startsWith('dist/') ? arg : join('dist', arg.replace(/\.ts$/, '.js'));
  if (!existsSync(path)) {
    console.error(`${arg}: ${path} does not exist (build first: npx tsc -p .)`);
    process.exit(1);
  }
  return statSync(path).isDirectory() ? collect(path) : [path];
}

const picked = process.argv.slice(2).filter((a) => a !== '--stress');
const files = picked.length === 0 ? collect('dist/test') : picked.flatMap(compiled);
if (files.length === 0) {
  console.error(`no ${suffix} files under ${picked.length === 0 ? 'dist/test' : picked.join(' ')}`);
  process.exit(1);
}
if (!existsSync(REGISTER)) {
  console.error(`${REGISTER} is missing: build first (npx tsc -p .)`);
  process.exit(1);
}
const args = [
  '--enable-source-maps',
  '--import',
  pathToFileURL(resolve(REGISTER)).href,
  '--test',
  '--test-concurrency=2',
  '--test-timeout=240000',
  ...files,
];
// Debug mode: every arena poisons freed records and checks the poison when it reuses them.
const env = { ...process.env, VMSPACE_LOCKDEP: '1', VMSPACE_DEBUG: '1' };
const result = spawnSync(process.execPath, args, { stdio: 'inherit', env });
process.exit(result.status ?? 1);
