// The shipped systemd unit: ordered like auditd's, conflicts with it, no restart on config errors, and it verifies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/errors';

const repo = join(__dirname, '..', '..', '..');
const unitText = readFileSync(join(repo, 'systemd', 'auditmux.service'), 'utf8');

function directive(name: string): string[] {
  return unitText.split('\n').filter((l) => l.startsWith(`${name}=`)).map((l) => l.slice(name.length + 1));
}

describe('systemd unit', () => {
  it('starts early like auditd, conflicts with auditd, and does not restart on config, rules or busy exits', () => {
    assert.deepEqual(directive('DefaultDependencies'), ['no']);
    assert.match(directive('Before').join(' '), /sysinit\.target/);
    assert.match(directive('Conflicts').join(' '), /auditd\.service/);
    assert.deepEqual(directive('Restart'), ['on-failure']);
    const prevent = directive('RestartPreventExitStatus').join(' ').split(/\s+/).map(Number);
    for (const code of [ExitCode.CONFIG, ExitCode.RULES, ExitCode.BUSY]) assert.ok(prevent.includes(code), `exit ${code} prevents restart`);
    assert.equal(directive('MemoryDenyWriteExecute').length, 0, 'V8 needs W+X pages');
  });

  it('passes systemd-analyze verify', { skip: spawnSync('systemd-analyze', ['--version']).status === 0 ? undefined : 'no systemd-analyze' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'amunit-'));
    try {
      // verify checks that ExecStart exists: point it at this checkout's CLI.
      const unit = join(dir, 'auditmux.service');
      writeFileSync(unit, unitText.replace('/usr/local/sbin/auditmux', join(repo, 'bin', 'auditmux')));
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
      const complaints = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('auditmux.service'));
      assert.deepEqual(complaints, []);
      assert.equal(r.status, 0, r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
