// Adding auditmux's hooks to a bundle's config.json (the runc wrapper for docker): idempotent, no symlinks, atomic.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { addHooksToBundle, withAuditmuxHooks } from '../../src/containers/bundle-hooks';

const HOOK = { path: '/usr/local/sbin/auditmux', args: ['auditmux', 'oci-hook'] };

describe('bundle hooks', () => {
  it("adds createRuntime and poststop hooks once, keeping the runtime's own", () => {
    const cfg = Buffer.from(
      JSON.stringify({ ociVersion: '1.0.2', process: { args: ['sh'] }, hooks: { poststop: [{ path: '/bin/other' }] } }),
    );
    const a = withAuditmuxHooks(cfg, HOOK);
    assert.ok(a.changed);
    const doc = JSON.parse(a.text) as { hooks: Record<string, unknown[]>; process: unknown };
    assert.deepEqual(doc.hooks.createRuntime, [HOOK]);
    assert.deepEqual(doc.hooks.poststop, [{ path: '/bin/other' }, HOOK]);
    assert.deepEqual(doc.process, { args: ['sh'] });
    assert.equal(withAuditmuxHooks(Buffer.from(a.text), HOOK).changed, false, 'a second create adds nothing');
    assert.throws(
      () => withAuditmuxHooks(Buffer.from('{"hooks":[]}'), HOOK),
      /"hooks" in config.json must be an object/,
    );
    assert.throws(() => withAuditmuxHooks(Buffer.from('{"hooks":{"poststop":{}}}'), HOOK), /must be an array/);
  });

  it('rewrites the file in place with its mode, and refuses a symlink or a hard link', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ambundle-'));
    try {
      const b = join(dir, 'b');
      mkdirSync(b);
      writeFileSync(join(b, 'config.json'), '{"ociVersion":"1.0.2"}');
      chmodSync(join(b, 'config.json'), 0o640);
      assert.equal(addHooksToBundle(b, HOOK), true);
      assert.equal(addHooksToBundle(b, HOOK), false);
      assert.equal(statSync(join(b, 'config.json')).mode & 0o777, 0o640);
      assert.deepEqual(readdirSync(b), ['config.json'], 'no temporary left behind');
      assert.deepEqual(
        (JSON.parse(readFileSync(join(b, 'config.json'), 'utf8')) as { hooks: Record<string, unknown> }).hooks
          .createRuntime,
        [HOOK],
      );
      const s = join(dir, 's');
      mkdirSync(s);
      writeFileSync(join(dir, 'target.json'), '{}');
      symlinkSync(join(dir, 'target.json'), join(s, 'config.json'));
      assert.throws(() => addHooksToBundle(s, HOOK), /symlink/);
      assert.equal(readFileSync(join(dir, 'target.json'), 'utf8'), '{}');
      const h = join(dir, 'h');
      mkdirSync(h);
      linkSync(join(dir, 'target.json'), join(h, 'config.json'));
      assert.throws(() => addHooksToBundle(h, HOOK), /hard links/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runc-auditmux finds the command and the bundle as docker calls runc, and passes everything on unchanged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amwrap-'));
    try {
      const rec = (name: string): string => {
        const p = join(dir, name);
        writeFileSync(p, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${join(dir, name + '.log')}\n`);
        chmodSync(p, 0o755);
        return p;
      };
      const env = {
        PATH: '/usr/bin:/bin',
        AUDITMUX: rec('auditmux'),
        RUNC: rec('runc'),
        AUDITMUX_HOOK_ARGS: '--fail-closed',
      };
      const wrap = (args: string[]): void => {
        const r = spawnSync(join(__dirname, '..', '..', '..', 'scripts', 'runc-auditmux'), args, {
          env,
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
      };
      // dockerd via containerd-shim: global options with values, a boolean one, then create --bundle.
      wrap([
        '--root',
        '/run/docker/runtime-runc/moby',
        '--log',
        '/x/log.json',
        '--log-format',
        'json',
        '--systemd-cgroup',
        'create',
        '--bundle',
        '/b/1',
        '--pid-file',
        '/b/1/pid',
        'id1',
      ]);
      wrap(['--root=/r', 'run', '--bundle=/b/2', 'id2']);
      wrap(['--root', '/r', 'state', 'id1']);
      wrap(['--root', 'create', 'delete', 'create']);
      const log = (n: string): string[] =>
        readFileSync(join(dir, n + '.log'), 'utf8')
          .trim()
          .split('\n');
      assert.deepEqual(
        log('auditmux'),
        ['oci-bundle-hooks /b/1 --fail-closed', 'oci-bundle-hooks /b/2 --fail-closed'],
        'hooks only at create and run',
      );
      assert.equal(log('runc').length, 4);
      assert.equal(
        log('runc')[0],
        '--root /run/docker/runtime-runc/moby --log /x/log.json --log-format json --systemd-cgroup create --bundle /b/1 --pid-file /b/1/pid id1',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
