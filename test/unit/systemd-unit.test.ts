// The shipped systemd unit: ordered like auditd's, conflicts with it, no restart on config errors, verifies, and is
// hardened.
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
  return unitText
    .split('\n')
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));
}

describe('systemd unit', () => {
  it('starts early like auditd, conflicts with auditd, and does not restart on config, rules or busy exits', () => {
    assert.deepEqual(directive('DefaultDependencies'), ['no']);
    assert.match(directive('Before').join(' '), /sysinit\.target/);
    assert.match(directive('Conflicts').join(' '), /auditd\.service/);
    // Without an ordering systemd runs auditd's stop and this start in parallel.
    assert.ok(directive('After').join(' ').split(/\s+/).includes('auditd.service'), 'ordered after auditd');
    assert.deepEqual(directive('Restart'), ['on-failure']);
    const prevent = directive('RestartPreventExitStatus').join(' ').split(/\s+/).map(Number);
    for (const code of [ExitCode.USAGE, ExitCode.CONFIG, ExitCode.RULES, ExitCode.BUSY])
      assert.ok(prevent.includes(code), `exit ${code} prevents restart`);
    assert.equal(directive('MemoryDenyWriteExecute').length, 0, 'V8 needs W+X pages');
  });

  it('learns readiness from the daemon itself (sd_notify), not from a delay', () => {
    assert.deepEqual(directive('Type'), ['notify']);
    assert.deepEqual(directive('NotifyAccess'), ['main']);
  });

  it('keeps the registered netlink socket across a crash restart (file descriptor store), restarting at once', () => {
    assert.deepEqual(directive('FileDescriptorStoreMax'), ['1']);
    assert.equal(directive('FileDescriptorStorePreserve').length, 0, 'the default: kept only while restarting');
    assert.deepEqual(directive('RestartSec'), ['100ms']);
  });

  it('keeps /run/auditmux (containers.state, hook failures) across restarts, crash restarts too', () => {
    assert.deepEqual(directive('RuntimeDirectoryPreserve'), ['restart']);
  });

  it('has systemd restart a daemon whose event loop stopped answering (watchdog)', () => {
    assert.deepEqual(directive('WatchdogSec'), ['30s']);
    assert.deepEqual(directive('NotifyAccess'), ['main'], 'WATCHDOG=1 comes from the main process');
  });

  it(
    'passes systemd-analyze verify',
    { skip: spawnSync('systemd-analyze', ['--version']).status === 0 ? undefined : 'no systemd-analyze' },
    () => {
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
    },
  );

  it('grants only the capabilities the daemon uses, each justified in a comment', () => {
    const caps = directive('CapabilityBoundingSet')
      .join(' ')
      .split(/\s+/)
      .filter((c) => c.length > 0)
      .sort();
    assert.deepEqual(caps, [
      'CAP_AUDIT_CONTROL',
      'CAP_CHOWN',
      'CAP_DAC_OVERRIDE',
      'CAP_KILL',
      'CAP_NET_ADMIN',
      'CAP_SETGID',
      'CAP_SETUID',
    ]);
    const comments = unitText.split('\n').filter((l) => l.startsWith('#'));
    for (const c of caps)
      assert.ok(
        comments.some((l) => new RegExp(`^#\\s+(?:CAP_\\w+ )*${c}\\b.*\\s{2,}\\S`).test(l)),
        `${c} has a reason`,
      );
    assert.deepEqual(directive('AmbientCapabilities'), ['']);
  });

  it('filters system calls and protects kernel tunables, devices and the file system', () => {
    assert.deepEqual(directive('SystemCallFilter'), ['@system-service pkey_alloc pkey_free pkey_mprotect']);
    assert.deepEqual(directive('SystemCallErrorNumber'), ['EPERM']);
    assert.deepEqual(directive('ProtectKernelTunables'), ['true']);
    assert.deepEqual(directive('PrivateDevices'), ['true']);
    assert.deepEqual(directive('ProtectSystem'), ['strict']);
    // ProtectProc/ProcSubset would hide other users' /proc/PID from the contid tracker, or /proc/stat from search.
    assert.equal(directive('ProtectProc').length, 0);
    assert.equal(directive('ProcSubset').length, 0);
    // Everything the daemon writes by default stays writable: logs, control socket, spools.
    assert.deepEqual(directive('LogsDirectory'), ['auditmux']);
    assert.deepEqual(directive('RuntimeDirectory'), ['auditmux']);
    assert.ok(directive('ReadWritePaths').join(' ').split(/\s+/).includes('-/var/spool/auditmux'));
  });

  it("scores at most 3.2 in systemd-analyze security (Debian's auditd.service: 8.9)", { skip: analyzeSkip() }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'amunit-'));
    try {
      const unit = join(dir, 'auditmux.service');
      writeFileSync(unit, unitText.replace('/usr/local/sbin/auditmux', join(repo, 'bin', 'auditmux')));
      const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
      const m = /Overall exposure level for auditmux\.service: ([0-9.]+)/.exec(r.stdout + r.stderr);
      assert.ok(m, r.stdout + r.stderr);
      assert.ok(Number(m[1]) <= 3.2, `exposure ${m[1]}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `security --offline` needs systemd 250 or later; systemd need not be PID 1. */
function analyzeSkip(): string | undefined {
  const v = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return 'no systemd-analyze';
  const n = Number(/systemd (\d+)/.exec(v.stdout)?.[1] ?? 0);
  return n >= 250 ? undefined : `systemd ${n} has no security --offline`;
}
