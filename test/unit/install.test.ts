// scripts/install.sh into a scratch root: CLI, runtime files, default config (rules path rewritten), unit, log dir;
// root owns what it installs, and a link or someone else's directory where the log directory goes is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  type Stats,
} from 'node:fs';
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

  it(
    'gives root the installed tree, not the building user (a checkout owned by nobody, a file of it mode 0666)',
    { skip: notRoot() },
    () => {
      const src = tempDir('amsrc-');
      const root = tempDir('amroot-');
      try {
        // A built checkout as an unprivileged user leaves it: every file theirs.
        for (const p of [
          'scripts',
          'dist',
          'bin',
          'package.json',
          'package-lock.json',
          'README.md',
          'config',
          'systemd',
        ])
          cpSync(join(repoRoot, p), join(src, p), { recursive: true, verbatimSymlinks: true });
        mkdirSync(join(src, 'build/Release'), { recursive: true });
        cpSync(join(repoRoot, 'build/Release/auditmux_netlink.node'), join(src, 'build/Release/auditmux_netlink.node'));
        chmodSync(join(src, 'dist/src/cli/oci-hook.js'), 0o666);
        chmodSync(join(src, 'dist/src'), 0o777);
        chownTree(src, 65534, 65534);
        const r = spawnSync(join(src, 'scripts', 'install.sh'), ['--no-start', '--root', root], {
          encoding: 'utf8',
          timeout: 300000,
        });
        assert.equal(r.status, 0, r.stderr);
        const bad: string[] = [];
        walk(root, (p, st) => {
          if (st.uid !== 0 || st.gid !== 0) bad.push(`${p}: owner ${st.uid}:${st.gid}`);
          if (!st.isSymbolicLink() && (st.mode & 0o022) !== 0) bad.push(`${p}: mode ${(st.mode & 0o7777).toString(8)}`);
        });
        assert.deepEqual(bad, []);
        assert.ok(existsSync(join(root, 'usr/local/lib/auditmux/dist/src/cli/oci-hook.js')));
      } finally {
        rmSync(src, { recursive: true, force: true });
        rmSync(root, { recursive: true, force: true });
      }
    },
  );

  it('refuses a symlink where the log directory goes, and leaves its target as it was', () => {
    const root = tempDir('amroot-');
    try {
      const target = join(root, 'elsewhere');
      mkdirSync(target, { mode: 0o755 });
      chmodSync(target, 0o755);
      mkdirSync(join(root, 'var/log'), { recursive: true });
      symlinkSync(target, join(root, 'var/log/auditmux'));
      const r = spawnSync(join(repoRoot, 'scripts', 'install.sh'), ['--no-start', '--root', root], {
        encoding: 'utf8',
        timeout: 300000,
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /var\/log\/auditmux is a symbolic link: refusing to install/);
      assert.equal(statSync(target).mode & 0o7777, 0o755, 'the link target keeps its mode');
      assert.ok(lstatSync(join(root, 'var/log/auditmux')).isSymbolicLink());
      assert.ok(!existsSync(join(root, 'usr/local/lib/auditmux')), 'refused before anything is installed');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("refuses another user's directory where the log directory goes", { skip: notRoot() }, () => {
    const root = tempDir('amroot-');
    try {
      const d = join(root, 'var/log/auditmux');
      mkdirSync(d, { recursive: true, mode: 0o755 });
      chownSync(d, 65534, 65534);
      chmodSync(d, 0o755);
      const r = spawnSync(join(repoRoot, 'scripts', 'install.sh'), ['--no-start', '--root', root], {
        encoding: 'utf8',
        timeout: 300000,
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /var\/log\/auditmux is owned by uid 65534, not 0: refusing to install/);
      assert.equal(statSync(d).mode & 0o7777, 0o755);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

function notRoot(): string | undefined {
  return process.geteuid?.() === 0 ? undefined : 'needs root (chown)';
}

/** Every entry under `dir` (not `dir` itself), lstat'ed; links are not followed. */
function walk(dir: string, f: (p: string, st: Stats) => void): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    f(p, st);
    if (st.isDirectory()) walk(p, f);
  }
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  walk(dir, (p, st) => (st.isSymbolicLink() ? undefined : chownSync(p, uid, gid)));
}
