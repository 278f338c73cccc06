// `daemon_templates:`: parsing, defaults, every error at its file:line:col, and a fixed-seed property test of the
// sanitiser that turns untrusted values into daemon names and log paths.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../src/errors';
import { checkEnvironment, parseConfig } from '../../src/config';
import { NAME_RE } from '../../src/shared';
import {
  logPatternProblem,
  parseDuration,
  patternBaseDir,
  sameTemplateDaemons,
  templateDaemonName,
  templateLogFile,
  templateValuePart,
} from '../../src/config/templates';
import { prng, intBelow } from '../helpers/prng';
import { budget } from '../helpers/fuzz';

const FILE = '/etc/auditmux/test.yaml';
const parse = (...lines: string[]): ReturnType<typeof parseConfig> => parseConfig(lines.join('\n'), FILE);

function errAt(line: number, col: number, reason: RegExp, ...lines: string[]): void {
  let err: unknown;
  try {
    parse(...lines);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, `expected a ConfigError for:\n${lines.join('\n')}`);
  assert.equal(err.pos.file, FILE);
  assert.deepEqual({ line: err.pos.line, col: err.pos.col }, { line, col }, `wrong position for: ${err.message}`);
  assert.match(err.reason, reason);
}

describe('daemon_templates: config', () => {
  it('reads a template with its key, selector, cap, idle policy, rules, log pattern and queue', () => {
    const c = parse(
      'daemon_templates:',
      '  - name: tenant',
      '    key: namespace',
      '    container: { runtime: [podman, containerd] }',
      '    max: 10',
      '    idle: { after: 10m, action: stop }',
      '    rules: tenant.rules',
      '    log: { file: "/var/log/auditmux/tenants/{value}/audit.log", format: RAW }',
      '    queue: { depth: 500, overflow: drop_oldest }',
      '  - name: team',
      '    key: label.io.example/team',
    );
    const [t, u] = c.templates!;
    assert.equal(t!.name, 'tenant');
    assert.deepEqual(t!.key, { field: 'namespace' });
    assert.equal(t!.container!.text, 'runtime=podman|containerd');
    assert.equal(t!.max, 10);
    assert.deepEqual(t!.idle, { afterMs: 600_000, action: 'stop' });
    assert.equal(t!.rules, '/etc/auditmux/tenant.rules');
    assert.equal(t!.logPattern, '/var/log/auditmux/tenants/{value}/audit.log');
    assert.equal(t!.log.format, 'RAW');
    assert.deepEqual([t!.queue.depth, t!.queue.overflow], [500, 'drop_oldest']);
    assert.deepEqual(u!.key, { label: 'io.example/team' });
    assert.deepEqual([u!.max, u!.idle.action, u!.logPattern, u!.isolation], [64, 'keep', null, 'inline']);
  });

  it('refuses bad templates at file:line:col', () => {
    const head = ['daemon_templates:', '  - name: tenant'];
    errAt(2, 5, /needs a name and a key/, ...head);
    errAt(3, 10, /key must be one of name, image, runtime, pod, namespace or label/, ...head, '    key: colour');
    errAt(2, 11, /must match/, 'daemon_templates:', '  - name: Tenant/x', '    key: name');
    errAt(4, 5, /unknown key "maxx"/, ...head, '    key: name', '    maxx: 3');
    errAt(4, 10, /max must be between 1 and 1000/, ...head, '    key: name', '    max: 0');
    errAt(4, 20, /idle.after must be a duration/, ...head, '    key: name', '    idle: { after: soon }');
    errAt(
      4,
      32,
      /idle.action must be one of stop, keep/,
      ...head,
      '    key: name',
      '    idle: { after: 1m, action: kill }',
    );
    errAt(4, 18, /must contain \{value\} or \{name\}/, ...head, '    key: name', '    log: { file: /var/log/t.log }');
    errAt(4, 18, /placeholders/, ...head, '    key: name', '    log: { file: "/var/log/{pod}/{value}.log" }');
    // The path is normalised first: `{value}/..` cancels the placeholder, and every daemon would share one file.
    errAt(4, 18, /must contain \{value\}/, ...head, '    key: name', '    log: { file: "/var/log/{value}/../a.log" }');
    assert.equal(logPatternProblem('/var/log/../{value}.log'), 'may not contain . or .. components');
    errAt(
      4,
      13,
      /also the name of a daemon/,
      'daemons: [{ name: tenant }]',
      'daemon_templates:',
      '  - { name: x, key: name }',
      '  - { name: tenant, key: name }',
    );
    errAt(
      3,
      13,
      /would make daemons of the same names/,
      'daemon_templates:',
      '  - { name: a, key: name }',
      '  - { name: a-b, key: pod }',
    );
  });

  it('config check finds the missing rules file and unknown user of a template at their positions', () => {
    const c = parse(
      'host: { rules: null }',
      'daemon_templates:',
      '  - name: tenant',
      '    key: namespace',
      '    rules: /nonexistent/auditmux-tenant.rules',
      '    user: nosuchuser-amtpl',
    );
    const r = checkEnvironment(c, FILE);
    const msgs = r.errors.map((e) => `${e.pos.line}:${e.pos.col ?? 0} ${e.reason}`);
    assert.ok(
      msgs.some((m) => /^5:12 daemon_templates\[0\]\.rules: .* does not exist/.test(m)),
      msgs.join('\n'),
    );
    assert.ok(
      msgs.some((m) => /^6:11 daemon_templates\[0\]\.user: no user named/.test(m)),
      msgs.join('\n'),
    );
  });

  it('the commented example in the shipped config/auditmux.yaml parses', () => {
    const text = readFileSync(join(__dirname, '..', '..', '..', 'config', 'auditmux.yaml'), 'utf8');
    const block = text.slice(text.indexOf('# Daemon templates'), text.indexOf('\ndaemon_templates: []'));
    const lines = block
      .split('\n')
      .filter((l) => /^# {3}[- ]/.test(l))
      .map((l) =>
        l
          .slice(1)
          .replace(/ {2,}# .*$/, '')
          .replace(/ {3,}#.*$/, ''),
      )
      .filter((l) => l.trim() !== '');
    const c = parse('daemon_templates:', ...lines);
    const t = c.templates![0]!;
    assert.deepEqual([t.name, t.keyText, t.max, t.idle.action], ['tenant', 'namespace', 64, 'keep']);
    assert.equal(t.logPattern, '/var/log/auditmux/tenants/{value}/audit.log');
  });

  it('durations and patterns', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('30'), 30_000);
    assert.equal(parseDuration('-1m'), null);
    assert.equal(patternBaseDir('/var/log/auditmux/tenants/{value}/audit.log'), '/var/log/auditmux/tenants/');
    assert.equal(patternBaseDir('/var/log/t-{value}.log'), '/var/log/');
    assert.equal(logPatternProblem('relative/{value}.log'), 'must be an absolute path');
    const a = parse('daemon_templates: [{ name: t, key: name, max: 1 }]').templates![0]!;
    const b = parse('daemon_templates: [{ name: t, key: name, max: 9, idle: { after: 1s, action: stop } }]')
      .templates![0]!;
    const c = parse('daemon_templates: [{ name: t, key: pod }]').templates![0]!;
    assert.ok(sameTemplateDaemons(a, b), 'the cap and idle policy do not change the daemons');
    assert.ok(!sameTemplateDaemons(a, c));
  });
});

/** Values as a hostile or careless runtime writes them: paths, dots, unicode, controls, long ones, safe ones. */
function randomValue(next: () => number): string {
  const pieces = [
    '..',
    '/',
    '.',
    '-',
    '_',
    'a',
    'Z',
    '0',
    ' ',
    '\0',
    '\n',
    '%2e',
    'é',
    '日本',
    '\u202e',
    '{value}',
    '*',
  ];
  const shapes = [
    () => 'shop',
    () => `team-${intBelow(next, 1000)}`,
    () => '../'.repeat(1 + intBelow(next, 5)) + 'etc',
    () => 'x'.repeat(1 + intBelow(next, 200)),
    () => String.fromCharCode(...Array.from({ length: 1 + intBelow(next, 30) }, () => intBelow(next, 0x3000))),
  ];
  if (next() < 0.4) return shapes[intBelow(next, shapes.length)]!();
  let s = '';
  const n = intBelow(next, 12);
  for (let i = 0; i < n; i++) s += pieces[intBelow(next, pieces.length)];
  return s;
}

describe('daemon_templates: the value sanitiser (fixed-seed property test)', () => {
  it('every value gives a daemon name of the daemon-name pattern and a log path inside the pattern directory, or none', () => {
    const next = prng(0x7e3a1c);
    const patterns = ['/var/log/auditmux/tenants/{value}/audit.log', '/var/log/auditmux/t/{template}-{name}.log'];
    const seen = new Map<string, string>();
    const n = budget(20_000);
    for (let i = 0; i < n; i++) {
      const value = randomValue(next);
      const tname = ['tenant', 'a', 't'.repeat(24)][intBelow(next, 3)]!;
      const name = templateDaemonName(tname, value);
      if (value.length === 0) {
        assert.equal(name, null, 'an empty value is no tenant');
        continue;
      }
      assert.ok(name !== null, `value ${JSON.stringify(value)} got no name`);
      assert.match(name, NAME_RE, `value ${JSON.stringify(value)} -> ${name}`);
      assert.ok(name.startsWith(`${tname}-`));
      const part = templateValuePart(value, 62 - tname.length)!;
      assert.equal(`${tname}-${part}`, name);
      assert.ok(!part.includes('/') && !part.includes('.'), 'no path separator or dot');
      assert.equal(templateDaemonName(tname, value), name, 'deterministic');
      // Injective in practice: two different values never share a daemon (per template).
      const k = `${tname}\0${name}`;
      const before = seen.get(k);
      if (before !== undefined) assert.equal(before, value, `${JSON.stringify(before)} and ${JSON.stringify(value)}`);
      seen.set(k, value);
      for (const pattern of patterns) {
        const file: string | null = templateLogFile(pattern, tname, part, name);
        if (file === null) assert.fail(`no file for ${name}`);
        assert.ok(file.startsWith(patternBaseDir(pattern)), `${file} escaped ${pattern}`);
        assert.ok(!file.split('/').includes('..'));
        assert.equal(dirname(file).startsWith(dirname(patternBaseDir(pattern) + 'x')), true);
      }
    }
    assert.ok(seen.size > n / 4, 'the generator made many distinct values');
  });

  it('a safe value is kept as it is; others get a slug and a hash', () => {
    assert.equal(templateDaemonName('tenant', 'shop'), 'tenant-shop');
    assert.match(templateDaemonName('tenant', '../x')!, /^tenant-x-[0-9a-f]{8}$/);
    assert.match(templateDaemonName('tenant', 'Shop')!, /^tenant-shop-[0-9a-f]{8}$/);
    assert.notEqual(templateDaemonName('tenant', 'Shop'), templateDaemonName('tenant', 'shop'));
    assert.match(templateDaemonName('tenant', '/')!, /^tenant-[0-9a-f]{8}$/);
    assert.equal(templateDaemonName('tenant', 'x'.repeat(2000)), null, 'too long');
    assert.equal(templateLogFile('/var/log/t/{value}/a.log', 't', '..', 't-..'), null, 'the last check catches ..');
  });

  it('a safe value that looks hashed is hashed too: it can never be the name another value is given', () => {
    // Old: `team-a-e52fa1d7` was kept as it is, and it is what `Team.A` becomes: whoever came first took the name.
    const hashed = templateDaemonName('tenant', 'Team.A')!;
    const part = hashed.slice('tenant-'.length);
    assert.match(part, /^team-a-[0-9a-f]{8}$/);
    assert.notEqual(templateDaemonName('tenant', part), hashed);
    assert.match(templateDaemonName('tenant', part)!, /^tenant-team-a-[0-9a-f]{8}-[0-9a-f]{8}$/);
    assert.match(templateDaemonName('tenant', 'deadbeef')!, /^tenant-deadbeef-[0-9a-f]{8}$/);
    const bare = templateDaemonName('tenant', '/')!.slice('tenant-'.length);
    assert.notEqual(templateDaemonName('tenant', bare), `tenant-${bare}`);
    // Other safe values are still themselves.
    assert.equal(templateDaemonName('tenant', 'shop-2024'), 'tenant-shop-2024');
    assert.equal(templateDaemonName('tenant', 'abc-deadbee'), 'tenant-abc-deadbee');
  });
});

describe('daemon_templates: two templates never share a log directory unless both name files by {name}', () => {
  const two = (a: string, b: string): string[] => [
    'daemon_templates:',
    '  - name: ns',
    '    key: namespace',
    `    log: { file: "${a}" }`,
    '  - name: team',
    '    key: label.team',
    `    log: { file: "${b}" }`,
  ];
  it('refuses patterns whose directories are the same or nested, at the second one', () => {
    // Old: accepted; a label team=payments made team-payments write ns-payments' log.
    errAt(
      7,
      18,
      /can name the same file as daemon template "ns"/,
      ...two('/l/tt/{value}/audit.log', '/l/tt/{value}/audit.log'),
    );
    errAt(7, 18, /can name the same file/, ...two('/l/tt/{value}/audit.log', '/l/tt/x/{value}.log'));
    errAt(7, 18, /can name the same file/, ...two('/l/tt/{value}.log', '/l/tt/{name}.log'));
  });
  it('accepts directories apart, {template} putting them apart, and {name} in both', () => {
    parse(...two('/l/ns/{value}/audit.log', '/l/team/{value}/audit.log'));
    parse(...two('/l/t/{template}/{value}.log', '/l/t/{template}/{value}.log'));
    parse(...two('/l/t/{name}.log', '/l/t/{name}/audit.log'));
  });
});
