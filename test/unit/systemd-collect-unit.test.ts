// The collector's systemd unit: unprivileged, config passed as a credential, no restart on config errors, and it
// verifies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors';

const repo = join(__dirname, '..', '..', '..');
const unitText = readFileSync(join(repo, 'systemd', 'auditmux-collect.service'), 'utf8');
const directive = (name: string): string[] =>
  unitText
    .split('\n')
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));

describe('collector systemd unit', () => {
  it('runs the collect command as a dynamic user without capabilities, writing only its logs directory', () => {
    assert.match(directive('ExecStart').join(''), / collect --config \$\{CREDENTIALS_DIRECTORY\}\/collect\.yaml$/);
    assert.deepEqual(directive('DynamicUser'), ['yes']);
    assert.deepEqual(directive('CapabilityBoundingSet'), ['']);
    assert.deepEqual(directive('ProtectSystem'), ['strict']);
    assert.deepEqual(directive('LogsDirectory'), ['auditmux-fleet']);
    assert.ok(directive('RestartPreventExitStatus').join(' ').split(/\s+/).map(Number).includes(ExitCode.CONFIG));
    assert.equal(directive('MemoryDenyWriteExecute').length, 0, 'V8 needs W+X pages');
  });

  it(
    'passes systemd-analyze verify',
    { skip: spawnSync('systemd-analyze', ['--version']).status === 0 ? undefined : 'no systemd-analyze' },
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'amunit-'));
      try {
        const unit = join(dir, 'auditmux-collect.service');
        writeFileSync(unit, unitText.replace('/usr/local/sbin/auditmux', join(repo, 'bin', 'auditmux')));
        const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
        const complaints = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('auditmux-collect.service'));
        assert.deepEqual(complaints, []);
        assert.equal(r.status, 0, r.stderr);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
