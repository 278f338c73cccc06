// scripts/containerd-base-spec, and the jq route the README gives: a containerd base OCI spec whose hooks run
// `auditmux oci-hook` at createRuntime and poststop, everything else of `ctr oci spec` kept (ctr faked here).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, tempDir } from '../helpers/daemon';

const SPEC = {
  ociVersion: '1.1.0',
  process: { args: ['sh'], rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }] },
  hooks: { poststop: [{ path: '/usr/bin/other-hook' }] },
  linux: { namespaces: [{ type: 'pid' }] },
};
const CLI = join(repoRoot, 'bin', 'auditmux');

type Hook = { path: string; args: string[]; env?: string[] };
type Spec = typeof SPEC & { hooks: { createRuntime?: Hook[]; poststop: Hook[] } };

/** A fake `ctr` that prints SPEC for `ctr oci spec` (or fails when told to). */
function fakeCtr(dir: string, fail = false): string {
  const p = join(dir, 'ctr');
  writeFileSync(
    p,
    fail
      ? '#!/bin/sh\necho "ctr: containerd not running" >&2\nexit 1\n'
      : `#!/bin/sh\n[ "$1 $2" = "oci spec" ] || exit 2\ncat <<'EOF'\n${JSON.stringify(SPEC, null, 2)}\nEOF\n`,
    { mode: 0o755 },
  );
  return p;
}

function runScript(out: string, env: Record<string, string>): ReturnType<typeof spawnSync> {
  return spawnSync(join(repoRoot, 'scripts', 'containerd-base-spec'), [out], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', AUDITMUX: CLI, ...env },
  });
}

describe('containerd base spec', () => {
  it('adds the hooks at createRuntime and poststop and keeps the rest of the spec; idempotent; options pass', () => {
    const dir = tempDir('amctrd-');
    try {
      const out = join(dir, 'auditmux-base-spec.json');
      const r = runScript(out, { CTR: fakeCtr(dir) });
      assert.equal(r.status, 0, String(r.stderr));
      assert.match(String(r.stderr), /set base_runtime_spec = ".*auditmux-base-spec\.json"/);
      const s = JSON.parse(readFileSync(out, 'utf8')) as Spec;
      assert.deepEqual([s.process, s.linux, s.ociVersion], [SPEC.process, SPEC.linux, SPEC.ociVersion]);
      const ours = s.hooks.createRuntime![0]!;
      assert.deepEqual([ours.path, ours.args], [CLI, ['auditmux', 'oci-hook']]);
      assert.match(ours.env![0]!, /^PATH=.*\/usr\/bin/, 'runtimes run hooks with an empty environment');
      assert.deepEqual(s.hooks.poststop, [SPEC.hooks.poststop[0], ours], 'an existing hook is kept');
      assert.equal(statSync(out).mode & 0o777, 0o644);
      assert.equal(runScript(out, { CTR: fakeCtr(dir) }).status, 0);
      assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), s, 'the same spec again');
      assert.equal(runScript(out, { CTR: fakeCtr(dir), AUDITMUX_HOOK_ARGS: '--fail-closed --timeout 2000' }).status, 0);
      assert.deepEqual((JSON.parse(readFileSync(out, 'utf8')) as Spec).hooks.createRuntime![0]!.args, [
        'auditmux',
        'oci-hook',
        '--fail-closed',
        '--timeout',
        '2000',
      ]);
      assert.deepEqual(readdirSync(dir).sort(), ['auditmux-base-spec.json', 'ctr'], 'no temporary left');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ctr failing: non-zero exit, the old spec untouched', () => {
    const dir = tempDir('amctrd-');
    try {
      const out = join(dir, 'spec.json');
      writeFileSync(out, '{"old":true}');
      const r = runScript(out, { CTR: fakeCtr(dir, true) });
      assert.notEqual(r.status, 0);
      assert.match(String(r.stderr), /containerd not running/);
      assert.equal(readFileSync(out, 'utf8'), '{"old":true}');
      const missing = join(dir, 'never.json');
      assert.notEqual(runScript(missing, { CTR: fakeCtr(dir, true) }).status, 0);
      assert.equal(existsSync(missing), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a symlink planted at the old predictable temporary name is not written through', () => {
    const dir = tempDir('amctrd-');
    try {
      const out = join(dir, 'spec.json');
      const victim = join(dir, 'victim');
      writeFileSync(victim, 'keep\n');
      // `exec` keeps the shell's pid, so $$ in the script is the pid the link is planted for: `.spec.json.new.$$`, the
      // name the script used to cp to, which cp followed.
      const r = spawnSync(
        'sh',
        [
          '-c',
          'ln -s "$1" "$2/.spec.json.new.$$" && exec "$3" "$4"',
          'sh',
          victim,
          dir,
          join(repoRoot, 'scripts', 'containerd-base-spec'),
          out,
        ],
        { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', AUDITMUX: CLI, CTR: fakeCtr(dir) } },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(victim, 'utf8'), 'keep\n', 'the link target is untouched');
      assert.ok(lstatSync(out).isFile() && statSync(out).mode === (0o100000 | 0o644));
      assert.ok((JSON.parse(readFileSync(out, 'utf8')) as Spec).hooks.createRuntime);
      const left = readdirSync(dir).filter((n) => n.startsWith('.spec.json.'));
      assert.equal(left.length, 1, 'only the planted link is left, no temporary');
      assert.ok(lstatSync(join(dir, left[0]!)).isSymbolicLink());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the README's jq command gives the same hooks", { skip: !existsSync('/usr/bin/jq') }, () => {
    const dir = tempDir('amctrd-');
    try {
      writeFileSync(join(dir, 'spec.json'), JSON.stringify(SPEC));
      // Kept in step with README.md ("containerd / Kubernetes").
      const filter =
        '{path: $a, args: ["auditmux", "oci-hook"], env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]} as $h | .hooks.createRuntime += [$h] | .hooks.poststop += [$h]';
      const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
      assert.ok(readme.includes(filter), 'the README shows this very filter');
      const r = spawnSync('jq', ['--arg', 'a', '/usr/local/sbin/auditmux', filter, join(dir, 'spec.json')], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout) as Spec;
      assert.deepEqual(s.hooks.createRuntime, [
        {
          path: '/usr/local/sbin/auditmux',
          args: ['auditmux', 'oci-hook'],
          env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        },
      ]);
      assert.deepEqual(s.hooks.poststop[1], s.hooks.createRuntime![0]);
      assert.deepEqual(s.process, SPEC.process);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
