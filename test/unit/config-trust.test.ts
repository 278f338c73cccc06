// Trust checks ported from auditd: config, rules, plugins and *_exe programs must be root's alone, path and all.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { checkConfig, loadConfig } from '../../src/config';
import { assertTrustedConfig, fileTrustProblem, pathTrustProblem, programTrustProblem } from '../../src/trust';
import { ConfigError, ExitCode, RuleError } from '../../src/errors';
import { loadRulesPath } from '../../src/rules';
import { main } from '../../src/cli/main';

const isRoot = process.geteuid?.() === 0;
const notRoot = isRoot ? undefined : 'needs root to give files to another user';
const S_IFREG = fs.constants.S_IFREG;
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-trust-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));

let n = 0;
function dir(mode = 0o755): string {
  const d = path.join(base, `d${n++}`);
  fs.mkdirSync(d);
  fs.chmodSync(d, mode);
  return d;
}
function file(d: string, name: string, text: string, mode: number): string {
  const p = path.join(d, name);
  fs.writeFileSync(p, text);
  fs.chmodSync(p, mode);
  return p;
}
const CONFIG = 'version: 1\nhost:\n  control_socket: /nonexistent/auditmux-trust/control.sock\n';

describe('fileTrustProblem on fs.Stats (what readBounded returns)', () => {
  it('accepts root-owned regular files that only root can write', () => {
    for (const mode of [0o644, 0o600, 0o444, 0o755, 0o750, 0o555, 0o550, 0o700]) {
      assert.equal(fileTrustProblem({ mode: S_IFREG | mode, uid: 0 }), null, mode.toString(8));
    }
  });
  it('refuses group or world writable, another owner, symlinks and non-regular files, as audispd does', () => {
    assert.match(fileTrustProblem({ mode: S_IFREG | 0o664, uid: 0 }) ?? '', /group writable \(mode 0664\)/);
    assert.match(fileTrustProblem({ mode: S_IFREG | 0o646, uid: 0 }) ?? '', /world writable/);
    assert.match(fileTrustProblem({ mode: S_IFREG | 0o666, uid: 0 }) ?? '', /group and world writable/);
    assert.match(fileTrustProblem({ mode: S_IFREG | 0o644, uid: 4242 }) ?? '', /owned by uid 4242, not root/);
    assert.match(fileTrustProblem({ mode: fs.constants.S_IFLNK | 0o777, uid: 0 }) ?? '', /symlink/);
    assert.match(fileTrustProblem({ mode: fs.constants.S_IFIFO | 0o600, uid: 0 }) ?? '', /not a regular file/);
    assert.match(fileTrustProblem({ mode: fs.constants.S_IFDIR | 0o755, uid: 0 }) ?? '', /not a regular file/);
  });
  it('a program must be executable by its owner', () => {
    assert.match(fileTrustProblem({ mode: S_IFREG | 0o644, uid: 0 }, { exec: true }) ?? '', /not executable/);
    assert.equal(fileTrustProblem({ mode: S_IFREG | 0o744, uid: 0 }, { exec: true }), null);
  });
  it('checks the Stats of a real file as given', () => {
    const p = file(dir(), 'x', 'a', 0o620);
    assert.match(fileTrustProblem(fs.statSync(p)) ?? '', /group writable/);
  });
});

describe('pathTrustProblem walks every directory and symlink on the way', () => {
  it('accepts a program in root-owned 0755 directories under the sticky /tmp', () => {
    const p = file(dir(), 'prog', '#!/bin/sh\n', 0o755);
    assert.equal(programTrustProblem(p), null);
  });
  it('refuses a file in a group-writable directory: the group could rename another file into its place', () => {
    const d = dir(0o775);
    const p = file(d, 'prog', '#!/bin/sh\n', 0o755);
    assert.equal(programTrustProblem(p), `${d} is group writable (mode 0775)`);
  });
  it('refuses a world-writable directory without the sticky bit, accepts one with it', () => {
    const d = dir(0o777);
    assert.match(programTrustProblem(file(d, 'prog', '#!/bin/sh\n', 0o755)) ?? '', /world writable/);
    const s = dir(0o1777);
    assert.equal(programTrustProblem(file(s, 'prog', '#!/bin/sh\n', 0o755)), null);
  });
  it('refuses a symlink as the last component, follows trusted symlinks on the way (like /sbin -> usr/sbin)', () => {
    const d = dir();
    const real = dir();
    const p = file(real, 'prog', '#!/bin/sh\n', 0o755);
    fs.symlinkSync(p, path.join(d, 'link'));
    assert.equal(programTrustProblem(path.join(d, 'link')), `${path.join(d, 'link')} is a symlink`);
    fs.symlinkSync(path.relative(d, real), path.join(d, 'dirlink'));
    assert.equal(programTrustProblem(path.join(d, 'dirlink', 'prog')), null);
  });
  it('refuses a path whose symlink leads through a writable directory', () => {
    const d = dir();
    const open = dir(0o777);
    file(open, 'prog', '#!/bin/sh\n', 0o755);
    fs.symlinkSync(open, path.join(d, 'via'));
    assert.match(programTrustProblem(path.join(d, 'via', 'prog')) ?? '', /world writable/);
  });
  it('refuses a missing file, a relative path and symlink loops', () => {
    assert.match(programTrustProblem(path.join(base, 'nope')) ?? '', /ENOENT/);
    assert.match(programTrustProblem('bin/sh') ?? '', /not an absolute path/);
    const d = dir();
    fs.symlinkSync('b', path.join(d, 'a'));
    fs.symlinkSync('a', path.join(d, 'b'));
    assert.match(pathTrustProblem(path.join(d, 'a', 'x')) ?? '', /too many symlinks/);
  });
  it('refuses a directory or file owned by another user, and a symlink owned by one', { skip: notRoot }, () => {
    const d = dir();
    fs.chownSync(d, 65534, 65534);
    assert.equal(programTrustProblem(file(d, 'prog', '#!/bin/sh\n', 0o755)), `${d} is owned by uid 65534, not root`);
    const d2 = dir();
    const p = file(d2, 'prog', '#!/bin/sh\n', 0o755);
    fs.chownSync(p, 65534, 0);
    assert.equal(programTrustProblem(p), `${p} is owned by uid 65534, not root`);
    const d3 = dir();
    const target = dir();
    file(target, 'prog', '#!/bin/sh\n', 0o755);
    fs.symlinkSync(target, path.join(d3, 'l'));
    fs.lchownSync(path.join(d3, 'l'), 65534, 65534);
    assert.match(programTrustProblem(path.join(d3, 'l', 'prog')) ?? '', /symlink owned by uid 65534/);
  });
  it('the shipped config, rules.d and /usr/bin/node pass', () => {
    const root = path.resolve(__dirname, '..', '..', '..');
    assert.equal(pathTrustProblem(path.join(root, 'config', 'auditmux.yaml')), null);
    assert.equal(programTrustProblem(process.execPath), null);
  });
});

describe('the host config file is refused unless only root can change it', () => {
  for (const mode of [0o664, 0o646]) {
    it(`mode ${mode.toString(8)}: ConfigError at file:1:1, exit code ${ExitCode.CONFIG}`, () => {
      const p = file(dir(), 'auditmux.yaml', CONFIG, mode);
      assert.throws(
        () => loadConfig(p),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, String(e));
          assert.deepEqual(e.pos, { file: p, line: 1, col: 1 });
          assert.equal(e.exitCode, ExitCode.CONFIG);
          assert.match(e.message, new RegExp(`^${p}:1:1: config file refused: ${p} is (group|world) writable`));
          return true;
        },
      );
    });
  }
  it('a device named as the config is refused by the trust check, before it is opened', () => {
    // Old: opened (O_NONBLOCK) and refused by the read as not a regular file; opening a device can act on it.
    assert.throws(
      () => loadConfig('/dev/null'),
      (e: unknown) => e instanceof ConfigError && /config file refused: .*not a regular file/.test(e.message),
    );
  });
  it('in a group-writable directory, or as a symlink', () => {
    const d = dir(0o770);
    const p = file(d, 'auditmux.yaml', CONFIG, 0o644);
    assert.throws(() => loadConfig(p), /config file refused: .* is group writable \(mode 0770\)/);
    const good = file(dir(), 'auditmux.yaml', CONFIG, 0o600);
    const link = path.join(dir(), 'auditmux.yaml');
    fs.symlinkSync(good, link);
    assert.throws(() => loadConfig(link), /config file .* is a symlink/);
    assert.equal(loadConfig(good).host.controlSocket, '/nonexistent/auditmux-trust/control.sock');
  });
  it('owned by another user', { skip: notRoot }, () => {
    const p = file(dir(), 'auditmux.yaml', CONFIG, 0o644);
    fs.chownSync(p, 65534, 65534);
    assert.throws(() => loadConfig(p), /config file refused: .* is owned by uid 65534, not root/);
  });
  it('assertTrustedConfig takes the Stats of an open file too', () => {
    const p = file(dir(), 'c.yaml', CONFIG, 0o644);
    assert.throws(() => assertTrustedConfig(p, { mode: S_IFREG | 0o666, uid: 0 }), /group and world writable/);
  });
  it('the CLI prints file:1:1 and exits with the config error code', async () => {
    const p = file(dir(), 'auditmux.yaml', CONFIG, 0o666);
    const err: string[] = [];
    const code = await main(['node', 'auditmux', 'aux', 'list', '--config', p], {
      out: () => undefined,
      err: (s) => err.push(s),
    });
    assert.equal(code, ExitCode.CONFIG, err.join('\n'));
    assert.match(err.join('\n'), new RegExp(`auditmux: ${p}:1:1: config file refused`));
  });
});

describe('rules files are refused unless only root can change them', () => {
  it('a group-writable rules file: RuleError at file:1:1, exit code 4', () => {
    const p = file(dir(), 'a.rules', '-w /etc/passwd -p wa -k x\n', 0o664);
    assert.throws(
      () => loadRulesPath(p),
      (e: unknown) => {
        assert.ok(e instanceof RuleError, String(e));
        assert.deepEqual(e.pos, { file: p, line: 1, col: 1 });
        assert.equal(e.exitCode, ExitCode.RULES);
        assert.match(e.message, /rules refused: .* is group writable/);
        return true;
      },
    );
  });
  it('a world-writable file in rules.d, and a group-writable rules.d', () => {
    const d = dir();
    file(d, '10-a.rules', '-w /etc/passwd -p wa -k x\n', 0o644);
    const bad = file(d, '20-b.rules', '-w /etc/shadow -p wa -k y\n', 0o646);
    assert.throws(() => loadRulesPath(d), new RegExp(`rules refused: ${bad} is world writable`));
    fs.chmodSync(bad, 0o644);
    assert.equal(loadRulesPath(d).length, 2);
    fs.chmodSync(d, 0o775);
    assert.throws(() => loadRulesPath(d), new RegExp(`rules refused: ${d} is group writable`));
  });
  it('a rules path that names a device is refused by the trust check, before it is opened', () => {
    // Opening is itself an act on a device (a watchdog starts, a tape rewinds). Old: opened first, then refused as
    // not regular (E_NOT_REGULAR), by the read rather than by the check.
    const open = dir(0o777);
    const link = path.join(open, 't.rules');
    fs.symlinkSync('/dev/null', link);
    assert.throws(
      () => loadRulesPath(link),
      (e: unknown) => e instanceof RuleError && e.code === 'E_UNTRUSTED' && /world writable/.test(e.message),
    );
    const d = dir();
    const trusted = path.join(d, 'u.rules');
    fs.symlinkSync('/dev/null', trusted);
    assert.throws(
      () => loadRulesPath(trusted),
      (e: unknown) => e instanceof RuleError && e.code === 'E_UNTRUSTED' && /not a regular file/.test(e.message),
    );
  });
  it('a trusted symlink to a rules file is followed, as auditctl -R does', () => {
    const p = file(dir(), 'a.rules', '-w /etc/passwd -p wa -k x\n', 0o644);
    const d = dir();
    fs.symlinkSync(p, path.join(d, '30-stig.rules'));
    assert.equal(loadRulesPath(d).length, 1);
  });
});

describe('config check reports what the daemon would refuse to obey or run, at its position', () => {
  const rulesLine = '-w /etc/passwd -p wa -k x\n';
  it('an untrusted config file: error at file:1:1, no config', () => {
    const d = dir(0o775);
    const p = file(d, 'auditmux.yaml', CONFIG, 0o644);
    const r = checkConfig(p);
    assert.equal(r.config, undefined);
    assert.deepEqual([r.errors[0]?.pos.line, r.errors[0]?.pos.col], [1, 1]);
    assert.match(r.errors[0]?.message ?? '', new RegExp(`config file refused: ${d} is group writable`));
  });
  it('untrusted rules file, rules.d entry, plugin: errors at their settings; untrusted *_exe: warning', () => {
    const d = dir();
    const rules = file(d, 'host.rules', rulesLine, 0o664);
    const rd = dir();
    file(rd, '10-a.rules', rulesLine, 0o644);
    const bad = file(rd, '20-b.rules', rulesLine, 0o646);
    const plugin = file(dir(0o777), 'plug', '#!/bin/sh\n', 0o755);
    const exe = file(d, 'full.sh', '#!/bin/sh\n', 0o757);
    const p = file(
      d,
      'auditmux.yaml',
      [
        'version: 1',
        'host:',
        `  rules: ${rules}`,
        `  log: { file: ${path.join(d, 'audit.log')}, disk_full_action: exec, disk_full_exe: ${exe} }`,
        `  listen: { port: 60, log: { file: ${path.join(d, 'remote', 'remote.log')}, disk_error_action: exec, disk_error_exe: ${exe} } }`,
        '  control_socket: /nonexistent/auditmux-trust/control.sock',
        '  outputs:',
        `    - { type: plugin, name: p1, path: ${plugin} }`,
        'daemons:',
        '  - name: a',
        `    rules: ${rd}`,
        `    log: { file: ${path.join(d, 'a.log')} }`,
        'routes:',
        '  - { contid: 5, daemons: [a] }',
        '',
      ].join('\n'),
      0o644,
    );
    const r = checkConfig(p);
    assert.equal(r.config, undefined);
    const got = r.errors.map((e) => [e.pos.line, e.message.replace(`${p}:`, 'F:')]);
    assert.equal(got.length, 3, JSON.stringify(got));
    assert.match(String(got[0]?.[1]), new RegExp(`^F:3:10: host.rules: rules refused: ${rules} is group writable`));
    assert.match(
      String(got[1]?.[1]),
      new RegExp(`^F:8:\\d+: plugin p1 refused: ${path.dirname(plugin)} is group and world writable`),
    );
    assert.match(
      String(got[2]?.[1]),
      new RegExp(`^F:11:12: daemons\\[0\\].rules: rules refused: ${bad} is world writable`),
    );
    assert.ok(
      r.warnings.some((w) => /host\.log\.disk_full_exe: will not be run: .* is world writable/.test(w.message)),
      r.warnings.map((w) => w.message).join('\n'),
    );
    assert.ok(
      r.warnings.some((w) =>
        /:5:\d+: host\.listen\.log\.disk_error_exe: will not be run: .* is world writable/.test(w.message),
      ),
      r.warnings.map((w) => w.message).join('\n'),
    );
    // Once fixed, the same file checks clean.
    fs.chmodSync(rules, 0o644);
    fs.chmodSync(bad, 0o644);
    fs.chmodSync(path.dirname(plugin), 0o755);
    fs.chmodSync(exe, 0o755);
    const ok = checkConfig(p);
    assert.deepEqual(
      ok.errors.map((e) => e.message),
      [],
    );
    assert.ok(ok.config);
  });
});
