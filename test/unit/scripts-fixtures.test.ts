// `npm run fixtures` runs scripts that exist: the package.json line and every step of scripts/capture-fixtures.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

test('the fixtures script and the steps it runs exist', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const js = [...pkg.scripts.fixtures!.matchAll(/dist\/\S+\.js/g)].map((m) => m[0]);
  assert.ok(js.length > 0, pkg.scripts.fixtures);
  for (const p of js) assert.ok(existsSync(join(ROOT, p)), `${p} does not exist`);
  const driver = readFileSync(join(ROOT, 'scripts', 'capture-fixtures.ts'), 'utf8');
  for (const m of driver.matchAll(/join\(DIST_SCRIPTS, '([^']+)'\)/g)) {
    assert.ok(existsSync(join(ROOT, 'dist', 'scripts', m[1]!)), m[1]);
  }
  for (const m of driver.matchAll(/join\(ROOT, ('[^)]+')\)/g)) {
    const parts = m[1]!.split(',').map((s) => s.trim().replace(/^'|'$/g, ''));
    assert.ok(existsSync(join(ROOT, ...parts)), parts.join('/'));
  }
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'scripts', 'capture-fixtures.js'), 'no-such-part']);
  assert.equal(r.status, 2, String(r.stderr));
});
