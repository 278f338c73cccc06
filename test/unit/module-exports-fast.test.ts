// Every module of src/ (barrels aside) keeps its exports object in V8's fast mode: a re-export makes it a dictionary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

// Why: tsc writes `exports.X = void 0` for every exported name, then `Object.defineProperty(exports, 'X', { get })`
// for a re-exported one; turning a data property into an accessor puts the object in dictionary mode. A read of
// `format_1.MAX_LINE_BYTES` or of a module's own `exports.INTERP_SEPARATOR` from optimised code is then a call to
// V8's generic LoadIC instead of a constant: 4% of the host's main thread at flat out (perf, 2026-12-03) went there.
// Barrels (index.ts) only re-export and are read at start, never per record.

const SRC = join(__dirname, '..', '..', 'src');
/** Modules that run something when required. */
const ENTRY_POINTS = new Set(['daemon/aux-main.js']);

function modules(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...modules(p));
    else if (name.endsWith('.js') && name !== 'index.js' && !ENTRY_POINTS.has(relative(SRC, p))) out.push(p);
  }
  return out;
}

test('no module of src/ has its exports object in dictionary mode (no value re-exports outside barrels)', () => {
  const files = modules(SRC);
  assert.ok(files.length > 100, `found only ${files.length} modules under ${SRC}`);
  // %HasFastProperties needs --allow-natives-syntax, which a test process should not run with: a child checks.
  const script = `
    const slow = [];
    for (const f of JSON.parse(process.argv[1])) {
      const e = require(f);
      if (!%HasFastProperties(e)) slow.push(f);
    }
    process.stdout.write(JSON.stringify(slow));`;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '-e', script, JSON.stringify(files)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const slow = (JSON.parse(out) as string[]).map((f) => relative(SRC, f));
  assert.deepEqual(slow, [], `exports in dictionary mode (a value re-export?): ${slow.join(', ')}`);
});
