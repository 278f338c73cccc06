// The constants every layer shares are defined once (src/shared.ts) and agree with what they describe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NAME_PATTERN, NAME_RE, VERSION } from '../../src/shared';

test('VERSION is package.json version (DAEMON_START ver= and --version print it)', () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.equal(VERSION, pkg.version);
});

test('daemon and output names: the one pattern, 1..63 characters of a safe alphabet', () => {
  assert.equal(NAME_RE.source, `^${NAME_PATTERN}$`);
  for (const ok of ['a', 'tenant-1', 'x_y', '0', 'a'.repeat(63)]) assert.ok(NAME_RE.test(ok), ok);
  for (const bad of ['', 'A', '-a', '_a', 'a/b', 'a.b', 'a b', 'a'.repeat(64), '..'])
    assert.ok(!NAME_RE.test(bad), bad);
});
