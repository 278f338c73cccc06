// scripts/install.sh into a scratch root: CLI, runtime files, default config (rules path rewritten), unit, log dir.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config';
import { repoRoot, tempDir } from '../helpers/daemon';

describe('install script', () => {
  it('installs a runnable CLI, the shipped config and rules, the unit and the log directory', () => {
    const root = tempDir('amroot-');
    try {
      const r = spawnSync(join(repoRoot, 'scripts', 'install.sh'), ['--root', root], {
        encoding: 'utf8',
        timeout: 300000,
      });
      assert.equal(r.status, 0, r.stderr);
      const lib = join(root, 'usr/local/lib/auditmux');
      assert.equal(readlinkSync(join(root, 'usr/local/sbin/auditmux')), '/usr/local/lib/auditmux/bin/auditmux');
      const version = spawnSync(join(lib, 'bin/auditmux'), ['--version'], { encoding: 'utf8' });
      assert.equal(version.stdout.trim(), '0.1.0', version.stderr);
      assert.ok(existsSync(join(lib, 'build/Release/auditmux_netlink.node')), 'the addon is installed');
      const conf = readFileSync(join(root, 'etc/auditmux/auditmux.yaml'), 'utf8');
      const cfg = parseConfig(conf, '/etc/auditmux/auditmux.yaml');
      assert.equal(cfg.host.rules, '/etc/auditmux/rules.d', 'the rules path points at the installed rules');
      assert.ok(existsSync(join(root, 'etc/auditmux/rules.d/30-identity.rules')));
      assert.equal(
        readFileSync(join(root, 'etc/systemd/system/auditmux.service'), 'utf8'),
        readFileSync(join(repoRoot, 'systemd/auditmux.service'), 'utf8'),
      );
      assert.equal(statSync(join(root, 'var/log/auditmux')).mode & 0o777, 0o700);
      // podman and CRI-O find the OCI hook here; it runs the installed CLI.
      const hook = JSON.parse(readFileSync(join(root, 'usr/share/containers/oci/hooks.d/auditmux.json'), 'utf8')) as {
        hook: { path: string; args: string[] };
        stages: string[];
      };
      assert.equal(hook.hook.path, '/usr/local/sbin/auditmux');
      assert.deepEqual(hook.hook.args, ['auditmux', 'oci-hook']);
      assert.deepEqual(hook.stages, ['createRuntime', 'poststop']);
      assert.equal(
        statSync(join(root, 'usr/local/sbin/runc-auditmux')).mode & 0o777,
        0o755,
        'the runc wrapper for docker',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
