// The import graph of src/: no import points up a layer or out of src/, no import circle; known violations may only go.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as ts from 'typescript';

/**
 * Layers from the bottom up (docs/design.md, Testing): a file may import its own layer or lower ones, never a
 * higher one.
 * An entry is a folder of src/ or a file directly in src/; a new one must be placed here before it can be imported.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'errno-table.ts', 'safefs.ts', 'trust.ts', 'shared.ts', 'bytes.ts'],
  ['kernel'],
  // The container-ID vocabulary (kernel field, selectors, cgroup globs, chains): config parses it, rules encode it.
  ['contid'],
  ['records'],
  ['vocab'],
  ['rules'],
  ['config'],
  ['routing', 'containers'],
  // metrics/ renders counters it is handed and serves or writes them: an output, used by the daemon and collector.
  ['output', 'metrics'],
  ['daemon'],
  ['search', 'collect'],
  ['cli'],
];

/**
 * Violations present on this branch while the renovation (issue 12) removes them: `from -> to`, paths under src/.
 * Every entry must still exist and still be a violation (up a layer, or on an import circle), so the list only
 * shrinks; an import circle needs only the entries that, taken out, leave no circle.
 */
const KNOWN_VIOLATIONS: Readonly<Record<string, string>> = {};

const SRC = join(__dirname, '..', '..', '..', 'src');

/** Every module a TypeScript file names: import, import type, export from, import(), require(), import('x').T. */
export function importSpecifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** The src/ path a relative specifier names, as TypeScript resolves it; null for a package. */
function resolveSpecifier(from: string, spec: string, files: ReadonlyMap<string, string>): string | null {
  if (!spec.startsWith('.')) return null;
  const base = relative(SRC, resolve(dirname(join(SRC, from)), spec))
    .split(sep)
    .join('/');
  for (const c of [`${base}.ts`, `${base}.d.ts`, `${base}/index.ts`, base]) if (files.has(c)) return c;
  return base;
}

export interface Problem {
  edge: string;
  why: string;
}

/** Files (path under src/ -> text) -> every violation, and the allow-list entries that are stale. */
export function checkImports(
  files: ReadonlyMap<string, string>,
  allowed: Readonly<Record<string, string>>,
): { problems: Problem[]; stale: Problem[] } {
  const unitOf = (p: string): string => p.split('/')[0]!;
  const layerOf = (p: string): number => LAYERS.findIndex((l) => l.includes(unitOf(p)));
  const graph = new Map<string, Set<string>>();
  const problems: Problem[] = [];
  const upward = new Set<string>();
  const outside = new Set<string>();
  for (const [file, text] of files) {
    const out = new Set<string>();
    graph.set(file, out);
    if (layerOf(file) < 0) problems.push({ edge: file, why: `src/${unitOf(file)} is in no layer: add it to LAYERS` });
    for (const spec of importSpecifiers(text)) {
      const to = resolveSpecifier(file, spec, files);
      if (to === null) continue;
      const edge = `${file} -> ${to}`;
      if (!files.has(to)) {
        outside.add(edge);
        if (!allowed[edge]) problems.push({ edge, why: `imports ${spec}, which is not a file of src/` });
        continue;
      }
      out.add(to);
      const [lf, lt] = [layerOf(file), layerOf(to)];
      if (lf >= 0 && lt > lf) {
        upward.add(edge);
        if (!allowed[edge])
          problems.push({
            edge,
            why: `${unitOf(file)} (layer ${lf}) imports ${unitOf(to)} (layer ${lt}), a higher one`,
          });
      }
    }
  }
  // Circles: strongly connected components of the graph without the allowed edges.
  const without = new Map([...graph].map(([f, to]) => [f, new Set([...to].filter((t) => !allowed[`${f} -> ${t}`]))]));
  for (const scc of components(without)) {
    if (scc.length === 1 && !without.get(scc[0]!)!.has(scc[0]!)) continue;
    problems.push({ edge: circle(without, scc).join(' -> '), why: `import circle of ${scc.length} file(s)` });
  }
  // The allow-list: each entry still there and still a violation, so fixing one means deleting its line.
  const onCircle = new Set<string>();
  for (const scc of components(graph)) {
    const inScc = new Set(scc);
    for (const f of scc) for (const t of graph.get(f)!) if (inScc.has(t)) onCircle.add(`${f} -> ${t}`);
  }
  const stale: Problem[] = [];
  for (const edge of Object.keys(allowed)) {
    const [from, to] = edge.split(' -> ') as [string, string];
    if (!graph.get(from)?.has(to) && !outside.has(edge))
      stale.push({ edge, why: 'no longer imported: delete it from KNOWN_VIOLATIONS' });
    else if (!upward.has(edge) && !onCircle.has(edge) && !outside.has(edge))
      stale.push({ edge, why: 'no longer up a layer nor on a circle: delete it from KNOWN_VIOLATIONS' });
  }
  return { problems, stale };
}

/** Tarjan's strongly connected components, iterative (no recursion limit on long chains). */
function components(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { node: string; edges: string[]; i: number }[] = [];
    const enter = (n: string): void => {
      index.set(n, next);
      low.set(n, next++);
      stack.push(n);
      onStack.add(n);
      work.push({ node: n, edges: [...(graph.get(n) ?? [])].sort(), i: 0 });
    };
    enter(start);
    while (work.length) {
      const top = work.at(-1)!;
      if (top.i < top.edges.length) {
        const t = top.edges[top.i++]!;
        if (!index.has(t)) enter(t);
        else if (onStack.has(t)) low.set(top.node, Math.min(low.get(top.node)!, index.get(t)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work.at(-1)!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) === index.get(top.node)) {
        const scc: string[] = [];
        let n: string;
        do {
          n = stack.pop()!;
          onStack.delete(n);
          scc.push(n);
        } while (n !== top.node);
        out.push(scc.sort());
      }
    }
  }
  return out;
}

/** One shortest circle through the component's first file, as a chain that ends where it starts. */
function circle(graph: ReadonlyMap<string, ReadonlySet<string>>, scc: string[]): string[] {
  const inScc = new Set(scc);
  const first = scc[0]!;
  const prev = new Map<string, string>();
  const queue = [first];
  while (queue.length) {
    const n = queue.shift()!;
    for (const t of [...graph.get(n)!].sort()) {
      if (!inScc.has(t)) continue;
      if (t === first) {
        const back: string[] = [];
        for (let c = n; c !== first; c = prev.get(c)!) back.push(c);
        return [first, ...back.reverse(), first];
      }
      if (!prev.has(t)) {
        prev.set(t, n);
        queue.push(t);
      }
    }
  }
  return [...scc, first];
}

function srcFiles(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts')) out.set(relative(SRC, p).split(sep).join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(SRC);
  return out;
}

const report = (ps: Problem[]): string => ps.map((p) => `  ${p.edge}\n    ${p.why}`).join('\n');

describe('import graph of src/', () => {
  it('reads every kind of import, and nothing in comments or strings', () => {
    const text = [
      "import type { A } from './a';",
      'import { B } from "./b";',
      "export * from './c';",
      "export { D } from './d';",
      "const e = require('./e');",
      "const f = () => import('./f');",
      "type G = import('./g').G;",
      "// import { H } from './h';",
      'const i = "import(\'./i\')";',
      "import './j';",
      "import * as fs from 'node:fs';",
    ].join('\n');
    assert.deepEqual(importSpecifiers(text), ['./a', './b', './c', './d', './e', './f', './g', './j', 'node:fs']);
  });

  it('finds an import up a layer, out of src/, a circle with its chain, and stale allow-list entries', () => {
    const files = new Map([
      ['errors.ts', ''],
      ['kernel/a.ts', "import type { X } from '../rules/b';"],
      ['rules/b.ts', "import { E } from '../errors';"],
      ['output/p.ts', "import { Q } from './q';"],
      ['output/q.ts', "const r = () => import('./r');"],
      ['output/r.ts', "export * from './p';"],
      ['config/c.ts', "import { K } from '../../test/helpers/k';"],
      ['daemon/d.ts', "import { B } from '../rules/b';"],
    ]);
    const { problems, stale } = checkImports(files, {});
    assert.deepEqual(
      problems.map((p) => p.edge),
      [
        'kernel/a.ts -> rules/b.ts',
        'config/c.ts -> ../test/helpers/k',
        'output/p.ts -> output/q.ts -> output/r.ts -> output/p.ts',
      ],
      report(problems),
    );
    assert.deepEqual(stale, []);
    // Allowed, the same edges pass; an entry for an edge that is gone or harmless is stale.
    const allowed = {
      'kernel/a.ts -> rules/b.ts': 'up',
      'config/c.ts -> ../test/helpers/k': 'out',
      'output/q.ts -> output/r.ts': 'circle',
      'daemon/d.ts -> rules/b.ts': 'downward: never a violation',
      'kernel/a.ts -> records/z.ts': 'gone',
    };
    const again = checkImports(files, allowed);
    assert.deepEqual(again.problems, [], report(again.problems));
    assert.deepEqual(
      again.stale.map((p) => p.edge),
      ['daemon/d.ts -> rules/b.ts', 'kernel/a.ts -> records/z.ts'],
    );
  });

  it('no import up a layer or out of src/, no circle, beyond KNOWN_VIOLATIONS; each of those still there', () => {
    const { problems, stale } = checkImports(srcFiles(), KNOWN_VIOLATIONS);
    assert.deepEqual(
      { problems, stale },
      { problems: [], stale: [] },
      `imports that break the layering:\n${report(problems)}\nKNOWN_VIOLATIONS entries to delete:\n${report(stale)}`,
    );
  });

  it('the host daemon stays a coordinator: src/daemon/host.ts under 300 lines (issue 12)', () => {
    const lines = readFileSync(join(SRC, 'daemon', 'host.ts'), 'utf8')
      .trimEnd()
      .split('\n').length;
    assert.ok(lines < 300, `host.ts has ${lines} lines: give the new work to a collaborator`);
  });
});
