// Plugins and *_exe programs run as root: refused unless only root can change them, started with an empty environment.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { PluginOutputSpec } from '../../src/config/schema';
import { ConfigError, ExitCode } from '../../src/errors';
import { DiskSpaceGuard, runAdminAction } from '../../src/output/diskspace';
import { defaultDiskSpace } from '../../src/config/schema';
import { parseConfig } from '../../src/config';
import { userIds } from '../../src/rules/accounts';
import { PluginOutput } from '../../src/output/plugin';
import { captureDiag, tmpDir, waitFor } from '../helpers/peers';

const notRoot = process.geteuid?.() === 0 ? undefined : 'needs root to give the plugin to another user';
const base = tmpDir('plugtrust');
after(() => fs.rmSync(base, { recursive: true, force: true }));

/** Records the environment it was started with (what execve got), its pid, then reads stdin to the end. */
const ENV_PLUGIN = [
  '#!/bin/sh',
  '/bin/cat /proc/$$/environ > "$1.tmp" && /bin/mv "$1.tmp" "$1"',
  'echo $$ > "$1.pid"',
  'exec /bin/cat > /dev/null',
  '',
].join('\n');

let n = 0;
function script(mode: number, text = ENV_PLUGIN): { dir: string; prog: string } {
  const dir = path.join(base, `p${n++}`);
  fs.mkdirSync(dir, { mode: 0o755 });
  const prog = path.join(dir, 'plugin.sh');
  fs.writeFileSync(prog, text);
  fs.chmodSync(prog, mode);
  return { dir, prog };
}

function spec(dir: string, prog: string, args: string[] = []): PluginOutputSpec {
  return {
    type: 'plugin',
    name: 'trusted',
    format: 'RAW',
    spool: { dir: path.join(dir, 'spool'), maxBytes: 1024 * 1024, fullAction: 'syslog', fullExe: null },
    pos: { file: '/etc/auditmux/auditmux.yaml', line: 12, col: 7 },
    path: prog,
    args,
    pluginFormat: 'string',
    maxRestarts: 2,
  };
}

/** Builds the output expecting a refusal; one that was built anyway (the old code) is closed, then the test fails. */
async function assertRefused(sp: PluginOutputSpec, p: string, reason: RegExp): Promise<void> {
  let built: PluginOutput | undefined;
  try {
    built = new PluginOutput(sp, { contidKernel: false, diag: captureDiag() });
  } catch (e) {
    refused(p, reason)(e);
    return;
  }
  await built.close();
  assert.fail(`plugin ${p} was started`);
}

function refused(p: string, reason: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.deepEqual(e.pos, { file: '/etc/auditmux/auditmux.yaml', line: 12, col: 7 });
    assert.equal(e.exitCode, ExitCode.CONFIG);
    assert.match(e.message, new RegExp(`^/etc/auditmux/auditmux.yaml:12:7: plugin trusted refused: ${p}`));
    assert.match(e.message, reason);
    return true;
  };
}

describe('plugin binaries are checked like audispd checks them', () => {
  it('a group-writable plugin is refused before it is run or its spool is made', async () => {
    const { dir, prog } = script(0o775);
    const out = path.join(dir, 'env');
    await assertRefused(spec(dir, prog, [out]), prog, /is group writable \(mode 0775\)/);
    assert.equal(fs.existsSync(path.join(dir, 'spool')), false);
    assert.equal(fs.existsSync(`${out}.pid`), false);
  });
  it('a world-writable plugin is refused', async () => {
    const { dir, prog } = script(0o757);
    await assertRefused(spec(dir, prog, [path.join(dir, 'env')]), prog, /world writable/);
  });
  it('a plugin path that is a symlink is refused, even to a good binary', async () => {
    const { dir, prog } = script(0o755);
    const link = path.join(dir, 'link');
    fs.symlinkSync(prog, link);
    await assertRefused(spec(dir, link, [path.join(dir, 'env')]), link, /is a symlink/);
  });
  it('a plugin in a directory another user may write is refused', async () => {
    const { dir, prog } = script(0o755);
    fs.chmodSync(dir, 0o777);
    await assertRefused(spec(dir, prog, [path.join(dir, 'env')]), dir, /world writable/);
  });
  it('a plugin not owned by root is refused', { skip: notRoot }, async () => {
    const { dir, prog } = script(0o755);
    fs.chownSync(prog, 65534, 65534);
    await assertRefused(spec(dir, prog, [path.join(dir, 'env')]), prog, /owned by uid 65534, not root/);
  });

  it(
    "a plugin gets an empty environment, as auditd execs it, and none of the daemon's variables",
    { timeout: 30000 },
    async () => {
      const { dir, prog } = script(0o755);
      const out = path.join(dir, 'env');
      process.env.AUDITMUX_TEST_SECRET = 'do-not-leak';
      const p = new PluginOutput(spec(dir, prog, [out]), { contidKernel: false, diag: captureDiag() });
      try {
        await waitFor(() => fs.existsSync(out), 20000, 'the plugin recorded its environment');
        assert.deepEqual(
          fs
            .readFileSync(out, 'latin1')
            .split('\0')
            .filter((v) => v.length > 0),
          [],
        );
      } finally {
        delete process.env.AUDITMUX_TEST_SECRET;
        await p.close();
      }
    },
  );

  it(
    'the check runs again before every restart: a plugin made group-writable meanwhile is not started again',
    { timeout: 30000 },
    async () => {
      const { dir, prog } = script(0o755);
      const out = path.join(dir, 'env');
      const diag = captureDiag();
      const p = new PluginOutput(spec(dir, prog, [out]), { contidKernel: false, diag });
      try {
        await waitFor(
          () => fs.existsSync(`${out}.pid`) && fs.readFileSync(`${out}.pid`, 'latin1').endsWith('\n'),
          20000,
          'plugin started',
        );
        const pid = Number(fs.readFileSync(`${out}.pid`, 'latin1'));
        fs.rmSync(`${out}.pid`);
        fs.chmodSync(prog, 0o775);
        process.kill(pid, 'SIGKILL');
        await waitFor(() => diag.lines.some((l) => l.m?.startsWith('plugin refused')), 20000, 'restart refused');
        await waitFor(() => p.stats().gaveUp === true, 20000, 'plugin given up');
        assert.equal(fs.existsSync(`${out}.pid`), false, 'the changed binary never ran');
        assert.match(String(p.stats().lastError), /plugin refused: .* is group writable/);
      } finally {
        await p.close();
      }
    },
  );
});

describe("*_exe programs (space_left_exe and the rest) are checked like auditd's check_exe_name", () => {
  it('a group-writable program is refused and not run', () => {
    const { dir, prog } = script(0o775, '#!/bin/sh\ntouch "$0.ran"\n');
    const diag = captureDiag();
    runAdminAction('exec', prog, diag);
    assert.equal(diag.lines.length, 1);
    assert.equal(diag.lines[0]?.m, 'exec action refused: only root may be able to change the program');
    assert.match(String((diag.lines[0]?.o as { reason: string }).reason), /group writable/);
    assert.equal(fs.existsSync(path.join(dir, 'plugin.sh.ran')), false);
  });
  it('a symlinked program is refused', () => {
    const { dir, prog } = script(0o755, '#!/bin/sh\n');
    fs.symlinkSync(prog, path.join(dir, 'l'));
    const diag = captureDiag();
    runAdminAction('exec', path.join(dir, 'l'), diag);
    assert.match(String((diag.lines[0]?.o as { reason: string }).reason), /is a symlink/);
  });
  it("a trusted program runs with an empty environment, as auditd's safe_exec", { timeout: 30000 }, async () => {
    const { dir, prog } = script(
      0o755,
      '#!/bin/sh\n/bin/cat /proc/$$/environ > "$0.tmp" && /bin/mv "$0.tmp" "$0.env"\n',
    );
    process.env.AUDITMUX_TEST_SECRET = 'do-not-leak';
    const diag = captureDiag();
    try {
      runAdminAction('exec', prog, diag);
    } finally {
      delete process.env.AUDITMUX_TEST_SECRET;
    }
    await waitFor(() => fs.existsSync(`${prog}.env`), 20000, 'the program ran');
    assert.deepEqual(diag.lines, []);
    assert.equal(fs.readFileSync(`${prog}.env`, 'latin1'), '');
    assert.ok(dir);
  });
});

describe("a log's disk-space guard names an untrusted *_exe when it starts, not when the disk fills", () => {
  it('admin_space_left_exe group-writable: an error at construction', () => {
    const { prog } = script(0o775, '#!/bin/sh\n');
    const diag = captureDiag();
    const cfg = { ...defaultDiskSpace(), adminSpaceLeftAction: 'exec' as const, adminSpaceLeftExe: prog };
    const writer = {
      suspend: () => undefined,
      resume: () => undefined,
      rotateNow: () => undefined,
      flush: () => undefined,
      isSuspended: false,
      counters: { lost: 0 },
    };
    new DiskSpaceGuard(path.join(base, 'audit.log'), cfg, writer, diag);
    assert.equal(diag.lines.length, 1);
    assert.equal(diag.lines[0]?.m, 'admin_space_left_exe will not be run: only root may be able to change it');
    assert.match(String((diag.lines[0]?.o as { reason: string }).reason), /group writable/);
    new DiskSpaceGuard(
      path.join(base, 'audit.log'),
      { ...cfg, adminSpaceLeftExe: script(0o755, '#!/bin/sh\n').prog },
      writer,
      diag,
    );
    assert.equal(diag.lines.length, 1);
  });
});

describe('plugin user: least privilege for plugins that need no root', () => {
  it('parses `user` on a plugin output and refuses a malformed one with its position', () => {
    const yaml = (u: string): string => `host:\n  outputs:\n    - { type: plugin, path: /usr/bin/true, user: ${u} }\n`;
    const c = parseConfig(yaml('nobody'), '/etc/auditmux/auditmux.yaml');
    assert.equal((c.host.outputs[0] as PluginOutputSpec).user, 'nobody');
    assert.throws(
      () => parseConfig(yaml('"no body"'), '/etc/auditmux/auditmux.yaml'),
      /auditmux\.yaml:3:\d+: .*user must be a user name or a numeric uid/,
    );
  });
  it('an unknown user is a config error at the plugin', async () => {
    const { dir, prog } = script(0o755);
    let built: PluginOutput | undefined;
    try {
      built = new PluginOutput(
        { ...spec(dir, prog, [path.join(dir, 'env')]), user: 'no-such-user-auditmux' },
        { contidKernel: false, diag: captureDiag() },
      );
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, '/etc/auditmux/auditmux.yaml:12:7: plugin trusted: unknown user "no-such-user-auditmux"');
      assert.equal(fs.existsSync(path.join(dir, 'spool')), false);
    }
    await built?.close();
    assert.equal(built, undefined, 'refused');
  });
  it(
    'runs as the user and its primary group, with no supplementary groups and no capabilities',
    { skip: notRoot, timeout: 30000 },
    async () => {
      const top = tmpDir('plugtrust-user');
      try {
        fs.chmodSync(top, 0o755);
        fs.mkdirSync(path.join(top, 'bin'), { mode: 0o755 });
        fs.mkdirSync(path.join(top, 'out'), { mode: 0o777 });
        fs.chmodSync(path.join(top, 'out'), 0o777);
        const prog = path.join(top, 'bin', 'plugin.sh');
        const status = "/bin/grep -E '^(Uid|Gid|Groups|CapPrm|CapEff|CapAmb|NoNewPrivs)' /proc/$$/status";
        fs.writeFileSync(
          prog,
          `#!/bin/sh\n${status} > "$1.tmp" && /bin/mv "$1.tmp" "$1"\nexec /bin/cat > /dev/null\n`,
          { mode: 0o755 },
        );
        const out = path.join(top, 'out', 'status');
        const nobody = userIds('nobody');
        assert.ok(nobody, 'the machine has a nobody user');
        const p = new PluginOutput(
          {
            ...spec(top, prog, [out]),
            user: 'nobody',
            spool: { dir: path.join(top, 'spool'), maxBytes: 1 << 20, fullAction: 'syslog', fullExe: null },
          },
          { contidKernel: false, diag: captureDiag() },
        );
        try {
          await waitFor(() => fs.existsSync(out), 20000, 'the plugin recorded its credentials');
        } finally {
          await p.close();
        }
        const st = Object.fromEntries(
          fs
            .readFileSync(out, 'latin1')
            .trim()
            .split('\n')
            .map((l) => l.split(/:\s*/) as [string, string]),
        );
        assert.deepEqual(st.Uid?.split(/\s+/), Array(4).fill(String(nobody.uid)));
        assert.deepEqual(st.Gid?.split(/\s+/), Array(4).fill(String(nobody.gid)));
        assert.equal(st.Groups ?? '', '');
        assert.equal(st.CapPrm, '0000000000000000');
        assert.equal(st.CapEff, '0000000000000000');
        assert.equal(st.CapAmb, '0000000000000000');
      } finally {
        fs.rmSync(top, { recursive: true, force: true });
      }
    },
  );
});
