// Import graph of src/output: no import circle inside it and no import of a higher layer (daemon, search, cli...).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as ts from 'typescript';

const ROOT = resolve(__dirname, '..', '..', '..');
const OUTPUT = join(ROOT, 'src', 'output');
/** Layers above output/ (docs/design.md): an import of one of them from output/ points up. */
const HIGHER = ['daemon', 'search', 'collect', 'cli'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

/** Relative imports of a file (type-only imports and require() included), resolved to .ts paths. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  const out: string[] = [];
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const base = resolve(dirname(file), fileName);
    const hit = [`${base}.ts`, join(base, 'index.ts')].find((p) => existsSync(p));
    assert.ok(hit, `${relative(ROOT, file)}: cannot resolve ${fileName}`);
    out.push(hit);
  }
  return out;
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sources(OUTPUT)) g.set(f, importsOf(f));
  return g;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function circles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(relative(ROOT, w));
    } while (w !== v);
    if (scc.length > 1 || (g.get(v) ?? []).includes(v)) found.push(scc.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('src/output has no import circle', () => {
  assert.deepEqual(circles(graph()), []);
});

test('src/output imports nothing from a higher layer', () => {
  const up: string[] = [];
  for (const [file, deps] of graph()) {
    for (const d of deps) {
      const top = relative(join(ROOT, 'src'), d).split('/')[0]!;
      if (HIGHER.includes(top)) up.push(`${relative(ROOT, file)} -> ${relative(ROOT, d)}`);
    }
  }
  assert.deepEqual(up, []);
});

test('the circle finder sees a circle (two files that import each other)', () => {
  const a = join(OUTPUT, 'a.ts');
  const b = join(OUTPUT, 'b.ts');
  const c = join(OUTPUT, 'c.ts');
  assert.deepEqual(
    circles(
      new Map([
        [a, [b]],
        [b, [a, c]],
        [c, []],
      ]),
    ),
    [['src/output/a.ts', 'src/output/b.ts']],
  );
});
