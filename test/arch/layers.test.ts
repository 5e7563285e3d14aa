/**
 * The layering of src/, checked against the one list of layers in ARCHITECTURE.md (the block
 * between `<!-- layers:begin -->` and `<!-- layers:end -->`): no import goes up a layer, no
 * folders import each other in a cycle, no files do either (but for KNOWN_FILE_CYCLES), every src
 * file is in a layer. Reads the .ts sources from the repository (found from dist/test/arch), so it
 * checks what is committed, not what was compiled. See test/arch/layers.ts for how.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type Cycle,
  checkLayers,
  existsInRepo,
  type LayerReport,
  type Layers,
  parseLayers,
  readSources,
  repoRoot,
} from './layers.js';

/**
 * File-level import cycles that exist today and are being removed: each entry is exactly the files
 * of one cycle as the check reports it. Any other cycle fails the test, and so does an entry that
 * no longer matches a cycle exactly, so the list can only shrink. Empty: the mm cycle (the facade
 * and the syscall files importing each other) went when syscall bodies moved onto SyscallContext.
 */
const KNOWN_FILE_CYCLES: readonly (readonly string[])[] = [];

const root = repoRoot(dirname(fileURLToPath(import.meta.url)));
let checked: { layers: Layers; report: LayerReport } | undefined;

function repo(): { layers: Layers; report: LayerReport } {
  if (checked === undefined) {
    const layers = parseLayers(readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8'));
    checked = { layers, report: checkLayers(readSources(root), layers) };
  }
  return checked;
}

function layerName(layers: Layers, unit: string): string {
  const index = layers.findIndex((units) => units.includes(unit));
  return `${unit} (layer ${layers.length - index} from the bottom)`;
}

function fail(title: string, problems: string[]): void {
  if (problems.length > 0) assert.fail(`${title}:\n  ${problems.join('\n  ')}`);
}

const showCycle = (c: Cycle) => `${c.example.join(' -> ')}   [${c.members.length}: ${c.members.join(' ')}]`;

test('ARCHITECTURE.md lists the layers, each unit exists, and every src file is in one layer', (t) => {
  const { layers, report } = repo();
  assert.ok(layers.length >= 2, 'the layers block lists the layers');
  fail(
    'the layers block of ARCHITECTURE.md names what does not exist',
    layers.flat().filter((unit) => !existsInRepo(root, unit)),
  );
  fail('src files in no layer of ARCHITECTURE.md (add their folder to the layers block)', report.unplaced);
  assert.ok(report.edges.length > 100, `the checker saw the imports of src (${report.edges.length})`);
  for (const { file, line } of report.unchecked) {
    t.diagnostic(`${file}:${line}: dynamic import of a computed specifier, not checked`);
  }
});

test('no import in src goes up a layer', () => {
  const { layers, report } = repo();
  fail(
    'imports that go up a layer (use a seam instead: see ARCHITECTURE.md)',
    report.upward.map(
      (u) =>
        `${u.from}:${u.line} imports ${u.to}: ${layerName(layers, u.fromUnit)} uses ${layerName(layers, u.toUnit)}, which is above it`,
    ),
  );
  fail(
    'relative imports that name no file of src',
    report.unresolved.map((e) => `${e.from}:${e.line} imports '${e.specifier}'`),
  );
});

test('no import cycle between folders', () => {
  fail('import cycles between layer units', repo().report.unitCycles.map(showCycle));
});

test('no import cycle between files, but for the allow-listed ones', () => {
  const { fileCycles } = repo().report;
  const key = (files: readonly string[]) => [...files].sort().join(' ');
  const known = new Set(KNOWN_FILE_CYCLES.map(key));
  const found = new Set(fileCycles.map((c) => key(c.members)));
  fail('file-level import cycles', fileCycles.filter((c) => !known.has(key(c.members))).map(showCycle));
  fail(
    'KNOWN_FILE_CYCLES entries that no longer match a cycle exactly (shrink or remove them)',
    KNOWN_FILE_CYCLES.filter((files) => !found.has(key(files))).map((files) => files.join(' ')),
  );
});

test('self-test: the checker reports an upward import, folder and file cycles, stray and broken imports', () => {
  const doc = [
    '# a synthetic tree',
    '<!-- layers:begin -->',
    '```',
    ' src/top             the top layer',
    ' src/mid src/side    two units of one layer',
    ' src/low             below them',
    ' src/base.ts         the bottom',
    '```',
    '<!-- layers:end -->',
  ].join('\n');
  const layers = parseLayers(doc);
  assert.deepEqual(layers, [['src/top'], ['src/mid', 'src/side'], ['src/low'], ['src/base.ts']]);
  const files = new Map<string, string>([
    [
      'src/low/a.ts',
      [
        "// import '../top/app.js' in a comment is not an import",
        'const text = "import(\'../top/app.js\') in a string is not one either";',
        "import type { App } from '../top/app.js';",
        "export const load = () => import('../top/app.js');",
        "export const later = () => import('../base.js');",
        'export const size = (app: App) => text.length + app.length;',
      ].join('\n'),
    ],
    ['src/base.ts', 'export const base = 0;\n'],
    [
      'src/top/app.ts',
      "import { b } from '../mid/b.js';\nexport type App = string;\nexport const app = b;\n",
    ],
    ['src/mid/b.ts', "import { c } from '../side/c.js';\nexport const b = c + 1;\n"],
    ['src/side/c.ts', "export const c = 1;\nexport { b as again } from '../mid/b.js';\n"],
    ['src/stray/x.ts', 'export const x = 0;\n'],
    ['src/lowly/z.ts', 'export const z = 0;\n'],
    [
      'src/top/bad.ts',
      "import '../nowhere.js';\nimport '../../test/helper.js';\nimport 'node:fs';\nexport const load = (name: string) => import(name);\n",
    ],
  ]);
  const report = checkLayers(files, layers);
  const upward = { from: 'src/low/a.ts', to: 'src/top/app.ts', specifier: '../top/app.js' };
  assert.deepEqual(report.upward, [
    { ...upward, line: 3, fromUnit: 'src/low', toUnit: 'src/top' },
    { ...upward, line: 4, fromUnit: 'src/low', toUnit: 'src/top' },
  ]);
  assert.deepEqual(report.unitCycles, [
    { members: ['src/mid', 'src/side'], example: ['src/mid', 'src/side', 'src/mid'] },
  ]);
  assert.deepEqual(report.fileCycles, [
    {
      members: ['src/mid/b.ts', 'src/side/c.ts'],
      example: ['src/mid/b.ts', 'src/side/c.ts', 'src/mid/b.ts'],
    },
  ]);
  assert.deepEqual(report.unplaced, ['src/lowly/z.ts', 'src/stray/x.ts']);
  assert.deepEqual(
    report.unresolved.map((e) => [e.line, e.to]),
    [
      [1, 'src/nowhere.js'],
      [2, 'test/helper.js'],
    ],
  );
  assert.deepEqual(report.unchecked, [{ file: 'src/top/bad.ts', line: 4 }]);
  assert.ok(
    report.edges.some((e) => e.from === 'src/low/a.ts' && e.to === 'src/base.ts' && e.line === 5),
    'a dynamic import of a literal is an edge',
  );
});

test('self-test: the layers block must exist, and each of its lines must start with src/ paths', () => {
  assert.throws(() => parseLayers('# no block here'), /no <!-- layers:begin/);
  assert.throws(
    () => parseLayers('<!-- layers:begin -->\n src/a  x\n bench/  y\n<!-- layers:end -->'),
    /line 3 names no src\/ path/,
  );
  assert.throws(
    () => parseLayers('<!-- layers:begin -->\n src/a\n src/b src/a\n<!-- layers:end -->'),
    /src\/a is listed twice/,
  );
});
