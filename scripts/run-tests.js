#!/usr/bin/env node
// Runs the compiled test suite with node's test runner. `--stress` runs the long, seeded stress
// suite instead (files named *.stress.js). Test files are found under dist/test.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const stress = process.argv.includes('--stress');
const suffix = stress ? '.stress.js' : '.test.js';

function collect(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...collect(path));
    else if (name.endsWith(suffix)) found.push(path);
  }
  return found;
}

const files = collect('dist/test');
if (files.length === 0) {
  console.error(`no ${suffix} files under dist/test`);
  process.exit(1);
}
const args = ['--enable-source-maps', '--test', '--test-concurrency=2', '--test-timeout=240000', ...files];
const result = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, VMSPACE_LOCKDEP: '1' } });
process.exit(result.status ?? 1);
