/**
 * The layering checker: which src file imports which, mapped onto the layers ARCHITECTURE.md lists.
 *
 * The one list of layers is the block of ARCHITECTURE.md between `<!-- layers:begin -->` and
 * `<!-- layers:end -->`, top layer first. Each line of it is one layer; the `src/...` paths at the
 * start of a line are the units of that layer (a folder, or a single file such as src/errno.ts),
 * the rest of the line is prose. A file belongs to the unit with the longest matching path.
 *
 * What it reports (pure functions over a map of path -> source text, so a test can feed it a
 * synthetic tree as well as the real one):
 *  - upward: an import whose target's layer is above the importer's layer;
 *  - unit cycles: folders (units) that import each other, directly or around a loop (only units
 *    that share a layer can, since nothing may import upwards);
 *  - file cycles: strongly connected sets of files (each is reported as its sorted files);
 *  - unplaced files (in no layer), unresolved relative imports, imports leaving src/.
 *
 * Imports are read with the TypeScript parser (comments and strings are not imports): import and
 * export-from declarations (type-only ones too: a layer that needs another's types depends on it),
 * `import x = require('...')`, `import('...')` types, and dynamic `import('...')` of a literal.
 * A dynamic import of a computed specifier cannot be checked: it is returned in `unchecked`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import ts from 'typescript';

export const LAYERS_BEGIN = '<!-- layers:begin';
export const LAYERS_END = '<!-- layers:end';

/** Layers top first; each is the list of its units' paths (`src/mm`, `src/errno.ts`). */
export type Layers = string[][];

/** The layers block of ARCHITECTURE.md's text; throws when the block is missing or malformed. */
export function parseLayers(markdown: string): Layers {
  const lines = markdown.split('\n');
  const begin = lines.findIndex((l) => l.trimStart().startsWith(LAYERS_BEGIN));
  const end = lines.findIndex((l, i) => i > begin && l.trimStart().startsWith(LAYERS_END));
  if (begin < 0 || end < 0) throw new Error(`no ${LAYERS_BEGIN} ... ${LAYERS_END} block`);
  const layers: Layers = [];
  const seen = new Set<string>();
  for (let i = begin + 1; i < end; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('```')) continue;
    const units: string[] = [];
    for (const word of line.split(/\s+/)) {
      if (!word.startsWith('src/')) break;
      const unit = word.replace(/\/+$/, '');
      if (seen.has(unit)) throw new Error(`layers block line ${i + 1}: ${unit} is listed twice`);
      seen.add(unit);
      units.push(unit);
    }
    if (units.length === 0) throw new Error(`layers block line ${i + 1} names no src/ path: "${line}"`);
    layers.push(units);
  }
  if (layers.length === 0) throw new Error('the layers block lists no layer');
  return layers;
}

export interface ImportSite {
  specifier: string;
  /** 1-based. */
  line: number;
}

export interface SourceImports {
  imports: ImportSite[];
  /** Lines of dynamic imports whose specifier is not a literal. */
  unchecked: number[];
}

/** The module specifiers one TypeScript source names, with their lines. */
export function importsOf(path: string, text: string): SourceImports {
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports: ImportSite[] = [];
  const unchecked: number[] = [];
  const lineOf = (node: ts.Node) => file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
  const literal = (node: ts.Node | undefined): string | undefined =>
    node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node))
      ? node.text
      : undefined;
  const add = (node: ts.Node, specifier: string | undefined) => {
    if (specifier !== undefined) imports.push({ specifier, line: lineOf(node) });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      add(node, literal(node.moduleSpecifier));
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, literal(node.moduleReference.expression));
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, literal(node.argument.literal));
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const specifier = literal(node.arguments[0]);
      if (specifier === undefined) unchecked.push(lineOf(node));
      else add(node, specifier);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { imports, unchecked };
}

export interface Edge {
  from: string;
  to: string;
  line: number;
  specifier: string;
}

export interface Upward extends Edge {
  fromUnit: string;
  toUnit: string;
}

export interface Cycle {
  /** The strongly connected set, sorted. */
  members: string[];
  /** One loop through it, starting and ending at members[0]. */
  example: string[];
}

export interface LayerReport {
  edges: Edge[];
  upward: Upward[];
  unitCycles: Cycle[];
  fileCycles: Cycle[];
  unplaced: string[];
  /** Relative imports that name no file of the tree, or leave src/. */
  unresolved: Edge[];
  unchecked: { file: string; line: number }[];
}

/**
 * Checks `files` (repo-relative posix path -> TypeScript source, every file under src/) against
 * `layers`.
 */
export function checkLayers(files: ReadonlyMap<string, string>, layers: Layers): LayerReport {
  const layerOf = new Map<string, number>();
  layers.forEach((units, index) => {
    for (const unit of units) layerOf.set(unit, index);
  });
  const units = [...layerOf.keys()].sort((a, b) => b.length - a.length);
  const unitOf = (file: string) => units.find((u) => file === u || file.startsWith(`${u}/`));

  const report: LayerReport = {
    edges: [],
    upward: [],
    unitCycles: [],
    fileCycles: [],
    unplaced: [],
    unresolved: [],
    unchecked: [],
  };
  for (const [from, text] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (unitOf(from) === undefined) report.unplaced.push(from);
    const found = importsOf(from, text);
    for (const line of found.unchecked) report.unchecked.push({ file: from, line });
    for (const { specifier, line } of found.imports) {
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue; // node: and packages
      const target = posix.normalize(posix.join(posix.dirname(from), specifier));
      const to =
        target.endsWith('.js') && files.has(`${target.slice(0, -3)}.ts`)
          ? `${target.slice(0, -3)}.ts`
          : target;
      const edge = { from, to, line, specifier };
      if (!to.startsWith('src/') || !files.has(to)) {
        report.unresolved.push(edge);
        continue;
      }
      report.edges.push(edge);
      const fromUnit = unitOf(from);
      const toUnit = unitOf(to);
      if (fromUnit === undefined || toUnit === undefined) continue;
      if (layerOf.get(toUnit)! < layerOf.get(fromUnit)!) report.upward.push({ ...edge, fromUnit, toUnit });
    }
  }

  const unitEdges = new Map<string, Set<string>>();
  const fileEdges = new Map<string, Set<string>>();
  const link = (graph: Map<string, Set<string>>, a: string, b: string) => {
    let out = graph.get(a);
    if (out === undefined) {
      out = new Set();
      graph.set(a, out);
    }
    out.add(b);
  };
  for (const { from, to } of report.edges) {
    link(fileEdges, from, to);
    const a = unitOf(from);
    const b = unitOf(to);
    if (a !== undefined && b !== undefined && a !== b) link(unitEdges, a, b);
  }
  report.unitCycles = cyclesOf(unitEdges);
  report.fileCycles = cyclesOf(fileEdges);
  return report;
}

/** Strongly connected sets of more than one node (Tarjan), each with one loop through it. */
export function cyclesOf(graph: ReadonlyMap<string, ReadonlySet<string>>): Cycle[] {
  const nodes = new Set<string>();
  for (const [a, out] of graph) {
    nodes.add(a);
    for (const b of out) nodes.add(b);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) connect(v);
  return components
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map((members) => ({ members, example: loopThrough(graph, members) }));
}

/** The shortest loop from members[0] back to itself inside the component (breadth first). */
function loopThrough(graph: ReadonlyMap<string, ReadonlySet<string>>, members: string[]): string[] {
  const inside = new Set(members);
  const start = members[0];
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i];
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at = v; at !== start; at = parent.get(at)!) path.push(at);
        return [start, ...path.slice(1).reverse(), start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return members; // unreachable for a strongly connected set
}

/** The repository root: the nearest directory above `from` holding ARCHITECTURE.md and src/. */
export function repoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'ARCHITECTURE.md')) && existsSync(join(dir, 'src'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no ARCHITECTURE.md and src/ above ${from}`);
  }
}

/** Every .ts file under `root`/src (not .d.ts), by repo-relative posix path. */
export function readSources(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const path = `${relative}/${name}`;
      if (statSync(join(root, path)).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts'))
        files.set(path, readFileSync(join(root, path), 'utf8'));
    }
  };
  walk('src');
  return files;
}

/** `path` (repo-relative posix) exists under `root`. */
export function existsInRepo(root: string, path: string): boolean {
  return existsSync(join(root, ...path.split('/')));
}
