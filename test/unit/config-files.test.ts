// Unit tests on real files: the shipped config/auditmux.yaml and rules.d, the fixtures, loadConfig and checkConfig.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors';
import {
  checkConfig,
  configToPlain,
  defaultConfig,
  formatCheckReport,
  loadConfig,
  parseConfig,
  type Config,
} from '../../src/config';

const ROOT = resolve(__dirname, '..', '..', '..');
const SHIPPED = join(ROOT, 'config', 'auditmux.yaml');
const FIX = join(ROOT, 'test', 'fixtures', 'config');
const ETC = join(FIX, 'etc');

function stripped(c: Config): unknown {
  const { file: _f, sources: _s, ...rest } = c;
  return rest;
}

describe('config: the shipped config/auditmux.yaml', () => {
  it('loads and equals the built-in defaults, except rules relative to the file', () => {
    const c = loadConfig(SHIPPED);
    const d = defaultConfig();
    d.host.rules = join(ROOT, 'config', 'rules.d');
    assert.deepEqual(stripped(c), stripped(d));
    assert.equal(c.file, SHIPPED);
  });
  it('as installed (rules rewritten by scripts/install.sh) it points at /etc/auditmux/rules.d', () => {
    const text = readFileSync(SHIPPED, 'utf8').replace(/^(\s*rules:\s*)rules\.d\s*$/m, '$1/etc/auditmux/rules.d');
    const c = parseConfig(text, '/etc/auditmux/auditmux.yaml');
    assert.deepEqual(stripped(c), stripped(defaultConfig()));
  });
  it('passes config check with no errors', () => {
    const r = checkConfig(SHIPPED);
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [],
    );
    assert.ok(r.config);
    assert.ok(
      r.warnings.every((w) => /does not exist yet/.test(w.reason)),
      formatCheckReport(r),
    );
  });
  it('documents every key it uses in its comments (the commented examples parse too)', () => {
    // Uncomment the daemon/route/cgroup examples and check that they are valid config.
    const text = readFileSync(SHIPPED, 'utf8');
    const daemon = text
      .split('\n')
      .filter((l) => /^# {3}[- ]/.test(l) && text.indexOf(l) < text.indexOf('\ndaemons:'))
      .map((l) =>
        l
          .slice(1)
          .replace(/#.*$/, '')
          .replace(/^\s{2}/, ''),
      );
    assert.ok(daemon.length > 5);
    const c = parseConfig(
      [
        'daemons:',
        ...daemon,
        'routes:',
        '  - { contid: [100, "100-199", "100^*", unset], types: [SYSCALL, EXECVE], keys: [k1], daemons: [tenant-a] }',
        'contid:',
        '  cgroup_map:',
        '    - { pattern: "/system.slice/docker-*.scope", contid: 300 }',
        '    - { pattern: "/kubepods.slice/**/cri-containerd-*.scope", contid: 400 }',
      ].join('\n'),
      SHIPPED,
    );
    assert.equal(c.daemons[0]?.name, 'tenant-a');
    assert.equal(c.daemons[0]?.log.format, 'RAW');
    assert.equal(c.routes[0]?.contid.length, 4);
  });
  it('the shipped rules are a small set of auditctl lines with keys', () => {
    const dir = join(ROOT, 'config', 'rules.d');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.rules'))
      .sort();
    assert.ok(files.length >= 3);
    let rules = 0;
    for (const f of files) {
      const lines = readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('#'));
      for (const l of lines) {
        assert.match(
          l,
          /^-(D|b \d+|f [012]|w \/\S+ -p [rwxa]+ -k [\w-]+|a always,exit -F arch=b(32|64) -S [\w,]+ -k [\w-]+)$/,
          `${f}: ${l}`,
        );
        if (/^-[wa] /.test(l)) rules++;
      }
    }
    // A non-flooding set: no rule on hot syscalls such as execve/open, and few enough to read at a glance.
    assert.ok(rules > 5 && rules < 40, `${rules} rules`);
    const all = files.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    assert.doesNotMatch(all, /-S [\w,]*\b(execve|open|openat|read|write|connect)\b/);
  });
});

describe('config: fixtures', () => {
  it('full.yaml sets every option away from its default', () => {
    const c = loadConfig(join(FIX, 'full.yaml'));
    assert.deepEqual(c.host.nodeName, { format: 'user', name: 'web-01' });
    assert.deepEqual(c.host.kernel, {
      enabled: 2,
      failure: 2,
      backlogLimit: 65536,
      rateLimit: 1000,
      backlogWaitTime: 0,
      loginuidImmutable: true,
      resetLostOnStart: true,
    });
    assert.equal(c.host.rules, join(FIX, 'rules.d'));
    assert.deepEqual(c.host.log, {
      file: join(FIX, 'logs', 'host.log'),
      format: 'RAW',
      flush: 'sync',
      freq: 0,
      maxLogFileMiB: 64,
      maxLogFileAction: 'keep_logs',
      numLogs: 10,
      logGroup: 'adm',
    });
    assert.equal(c.host.keep, 'unrouted');
    assert.equal(c.host.controlSocket, '/run/auditmux-test/control.sock');
    assert.deepEqual(c.host.reassembly, { timeoutMs: 500, maxInFlight: 100 });
    assert.equal(c.host.receiveBuffer, 0);
    assert.equal(c.host.diagnostics.level, 'debug');
    assert.deepEqual(
      c.daemons.map((d) => [
        d.name,
        d.rules,
        d.log.file,
        d.log.format,
        d.log.numLogs,
        d.queue,
        d.user,
        d.isolation,
        d.maxRestarts,
      ]),
      [
        [
          'tenant-a',
          join(FIX, 'aux', 'tenant-a.rules'),
          join(FIX, 'logs', 'tenant-a', 'tenant-a.log'),
          'RAW',
          3,
          { depth: 500, overflow: 'drop_oldest', blockTimeoutMs: 1000 },
          'nobody',
          'process',
          3,
        ],
        [
          'tenant_b',
          null,
          join(FIX, 'logs', 'tenant-b.log'),
          'RAW',
          3,
          { depth: 10000, overflow: 'block', blockTimeoutMs: 250 },
          null,
          'process',
          10,
        ],
      ],
    );
    assert.equal(c.routes.length, 3);
    assert.deepEqual(
      c.routes[1]?.contid.map((p) => p.text),
      ['0x10', '200-299', '300^*', '18446744073709551614'],
    );
    assert.deepEqual(c.routes[1]?.types, [1300, 1309, 1400]);
    assert.deepEqual(c.routes[2]?.daemons, ['tenant_b']);
    assert.deepEqual(
      c.contid.cgroupMap.map((e) => e.contid),
      [300n, 0xfffffffffffffffen],
    );
  });
  it('full.yaml passes config check against the fixture passwd/group', () => {
    const r = checkConfig(join(FIX, 'full.yaml'), { etcDir: ETC });
    assert.deepEqual(
      r.errors.map((e) => e.message),
      [],
    );
    assert.deepEqual(
      r.warnings.map((e) => e.message),
      [],
    );
    assert.match(formatCheckReport(r), /full\.yaml: OK$/);
  });
  it('configToPlain is JSON-safe', () => {
    const plain = configToPlain(loadConfig(join(FIX, 'full.yaml'))) as { routes: { contid: { lo: string }[] }[] };
    assert.equal(plain.routes[1]?.contid[3]?.lo, '18446744073709551614');
    assert.doesNotThrow(() => JSON.stringify(plain));
  });
  it('bad-many.yaml: config check reports every error with its position', () => {
    const r = checkConfig(join(FIX, 'bad-many.yaml'), { etcDir: ETC });
    assert.equal(r.config, undefined);
    const f = join(FIX, 'bad-many.yaml');
    assert.deepEqual(
      r.errors.map((e) => e.message.replace(f, 'F')),
      [
        'F:4:14: host.kernel.enabled must be between 0 and 2, got 3',
        'F:6:5: unknown key "num_log" in host.log (did you mean "num_logs"?)',
        'F:8:11: daemons[0].name "Tenant" must match [a-z0-9][a-z0-9_-]{0,62}',
        'F:10:13: routes[0].contid: contids are unsigned, got -1; write "unset" for processes without a contid',
        'F:11:15: routes[0].daemons: no daemon named "nobody" is defined',
      ],
    );
    assert.equal(formatCheckReport(r).split('\n').length, 5);
  });
  it('loadConfig throws the first of them', () => {
    assert.throws(
      () => loadConfig(join(FIX, 'bad-many.yaml')),
      (e: unknown) => e instanceof ConfigError && e.pos.line === 4 && e.pos.col === 14,
    );
  });
  it('missing-paths.yaml: machine checks point at the settings', () => {
    const f = join(FIX, 'missing-paths.yaml');
    const r = checkConfig(f, { etcDir: ETC });
    assert.equal(r.config, undefined);
    assert.deepEqual(
      r.errors.map((e) => e.message.replace(f, 'F').replace(FIX, 'D')),
      [
        'F:3:10: host.rules: D/does-not-exist.d does not exist',
        'F:6:16: host.log.log_group: no group named "nosuchgroup" in D/etc/group',
        'F:9:12: daemons[0].rules: D/aux/missing.rules does not exist',
        'F:10:11: daemons[0].user: no user named "nosuchuser" in D/etc/passwd',
      ],
    );
    assert.deepEqual(
      r.warnings.map((e) => [e.pos.line, e.pos.col, e.reason]),
      [[8, 5, 'daemon "lonely" is not named by any route; it receives no events']],
    );
  });
  it('an unreadable or missing file is a ConfigError at 1:1', () => {
    assert.throws(
      () => loadConfig(join(FIX, 'nope.yaml')),
      (e: unknown) => e instanceof ConfigError && /ENOENT/.test(e.reason) && e.pos.line === 1,
    );
    const r = checkConfig(join(FIX, 'nope.yaml'));
    assert.equal(r.errors.length, 1);
    assert.throws(
      () => loadConfig(FIX),
      (e: unknown) => e instanceof ConfigError && /is not a regular file/.test(e.reason),
    );
  });
});
