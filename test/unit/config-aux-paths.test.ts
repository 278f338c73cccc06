// Where an auxiliary daemon's log may go: the one placement rule, as the config loader applies it (file:line:col).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors';
import { analyzeConfig, parseConfig } from '../../src/config';
import { auxLogProblem, defaultAuxLogFile } from '../../src/config/aux-paths';

const FILE = '/etc/auditmux/test.yaml';
const HOST = ['host:', '  log: { file: /var/log/auditmux/audit.log }', 'daemons:'];

function errorsOf(...daemons: string[]): string[] {
  const r = analyzeConfig([...HOST, ...daemons].join('\n'), FILE);
  return r.errors.map((e) => e.message);
}

describe('auxiliary log placement in the config', () => {
  it('a daemon with a user and no log file gets <host log dir>/<name>/<name>.log; one without keeps <name>.log', () => {
    const c = parseConfig(
      [
        ...HOST,
        '  - { name: a, user: nobody }',
        '  - { name: b }',
        '  - { name: c, user: nobody, log: { format: RAW } }',
      ].join('\n'),
      FILE,
    );
    assert.deepEqual(
      c.daemons.map((d) => [d.name, d.log.file, d.isolation]),
      [
        ['a', '/var/log/auditmux/a/a.log', 'process'],
        ['b', '/var/log/auditmux/b.log', 'inline'],
        ['c', '/var/log/auditmux/c/c.log', 'process'],
      ],
    );
  });

  it('a log in the host log directory for a daemon with a user is refused at the file: value', () => {
    const errs = errorsOf('  - name: a', '    user: nobody', '    log: { file: /var/log/auditmux/a.log }');
    assert.equal(errs.length, 1, errs.join('\n'));
    assert.match(
      errs[0]!,
      /^\/etc\/auditmux\/test\.yaml:6:18: daemon "a" runs as user "nobody" .* which is the host's log directory; .*default \/var\/log\/auditmux\/a\/a\.log/,
    );
  });

  it('a directory above the host log directory (aux add --log /var/log/x.log) is refused', () => {
    const errs = errorsOf('  - { name: x, user: nobody, log: { file: /var/log/x.log } }');
    assert.equal(errs.length, 1, errs.join('\n'));
    assert.match(
      errs[0]!,
      /:4:43: .*would own the directory of its log \/var\/log\/x\.log, which contains the host's log directory \/var\/log\/auditmux/,
    );
    assert.match(
      errorsOf('  - { name: x, user: "65534", log: { file: /x.log } }')[0]!,
      /contains the host's log directory/,
    );
  });

  it('no daemon writes inside the directory of a daemon with a user, and two such daemons never share one', () => {
    const inside = errorsOf(
      '  - { name: a, user: nobody }',
      '  - { name: b, log: { file: /var/log/auditmux/a/sub/b.log } }',
    );
    assert.equal(inside.length, 1, inside.join('\n'));
    assert.match(
      inside[0]!,
      /:5:\d+: the log of daemon "b" .* is inside \/var\/log\/auditmux\/a, the directory of daemon "a" which user "nobody" owns/,
    );
    // The other order: the root daemon comes first, the user daemon's directory would swallow it.
    const above = errorsOf(
      '  - { name: b, log: { file: /srv/t/b/b.log } }',
      '  - { name: a, user: nobody, log: { file: /srv/t/a.log } }',
    );
    assert.equal(above.length, 1, above.join('\n'));
    assert.match(
      above[0]!,
      /:5:\d+: daemon "a" runs as user "nobody" and would own \/srv\/t, which holds the log of daemon "b"/,
    );
    const shared = errorsOf(
      '  - { name: a, user: nobody, log: { file: /srv/t/a.log } }',
      '  - { name: b, user: daemon, log: { file: /srv/t/b.log } }',
    );
    assert.equal(shared.length, 1, shared.join('\n'));
    assert.match(shared[0]!, /daemon "b" .* would own \/srv\/t, which holds the log of daemon "a"/);
  });

  it('without a file: position, the error points at user:', () => {
    const r = analyzeConfig(
      [...HOST, '  - { name: c, log: { file: /var/log/auditmux/b/c.log } }', '  - name: b', '    user: nobody'].join(
        '\n',
      ),
      FILE,
    );
    assert.equal(r.errors.length, 1);
    assert.ok(r.errors[0] instanceof ConfigError);
    assert.deepEqual([r.errors[0]!.pos.line, r.errors[0]!.pos.col], [6, 11]);
    assert.match(r.errors[0]!.reason, /would own \/var\/log\/auditmux\/b, which holds the log of daemon "c"/);
  });

  it('root daemons next to the host log, and daemons with users in their own directories, are accepted', () => {
    assert.deepEqual(
      errorsOf(
        '  - { name: a, user: nobody }',
        '  - { name: b, user: daemon, log: { file: /srv/tenants/b/audit.log } }',
        '  - { name: c }',
        '  - { name: d, log: { file: /var/log/auditmux/d/d.log } }',
      ),
      [],
    );
  });
});

describe('auxLogProblem (shared with aux add)', () => {
  const host = '/var/log/auditmux/audit.log';
  it('matches the config defaults and refusals', () => {
    assert.equal(defaultAuxLogFile(host, 't', 'nobody'), '/var/log/auditmux/t/t.log');
    assert.equal(defaultAuxLogFile(host, 't', null), '/var/log/auditmux/t.log');
    assert.equal(auxLogProblem({ name: 't', user: 'nobody', file: '/var/log/auditmux/t/t.log' }, host, []), null);
    assert.match(
      auxLogProblem({ name: 't', user: 'nobody', file: '/var/log/auditmux/t.log' }, host, [])!,
      /host's log directory/,
    );
    assert.match(
      auxLogProblem({ name: 't', user: 'nobody', file: '/var/log/x.log' }, host, [])!,
      /contains the host's log directory/,
    );
    // A prefix that is not a parent is not "inside".
    assert.equal(
      auxLogProblem({ name: 'u', user: null, file: '/var/log/auditmux/tt/u.log' }, host, [
        { name: 't', user: 'nobody', file: '/var/log/auditmux/t/t.log' },
      ]),
      null,
    );
  });
});

describe('spools of daemons with a user', () => {
  const out = (o: string): string => `    outputs: [ ${o} ]`;
  it('default to <own directory>/spool/<output>; root daemons and the host keep /var/spool/auditmux/<owner>/<output>', () => {
    const c = parseConfig(
      [
        'host:',
        '  log: { file: /var/log/auditmux/audit.log }',
        '  outputs: [ { type: remote, name: r, host: 192.0.2.1 } ]',
        'daemons:',
        '  - name: a',
        '    user: nobody',
        out('{ type: remote, name: r, host: 192.0.2.1 }, { type: plugin, name: p, path: /bin/true }'),
        '  - name: b',
        out('{ type: remote, name: r, host: 192.0.2.1 }'),
      ].join('\n'),
      FILE,
    );
    assert.deepEqual(
      c.host.outputs.map((o) => o.spool.dir),
      ['/var/spool/auditmux/host/r'],
    );
    assert.deepEqual(
      c.daemons[0]?.outputs?.map((o) => o.spool.dir),
      ['/var/log/auditmux/a/spool/r', '/var/log/auditmux/a/spool/p'],
    );
    assert.deepEqual(
      c.daemons[1]?.outputs?.map((o) => o.spool.dir),
      ['/var/spool/auditmux/b/r'],
    );
  });
  it('a spool a daemon with a user could not write, or that is its log directory itself, is refused at the output', () => {
    for (const dir of [
      '/var/spool/auditmux/a/r',
      '/var/log/auditmux',
      '/var/log/auditmux/a',
      '/var/log/auditmux/b/spool',
    ]) {
      const errs = errorsOf(
        '  - name: a',
        '    user: nobody',
        out(`{ type: remote, name: r, host: 192.0.2.1, spool: { dir: ${dir} } }`),
        '  - { name: b, user: nobody }',
      );
      assert.equal(errs.length, 1, `${dir}: ${errs.join('\n')}`);
      assert.match(
        errs[0]!,
        new RegExp(
          `^/etc/auditmux/test\\.yaml:6:16: output "r" of daemon "a" spools in ${dir}, but the daemon runs as user "nobody" and may write only below its own directory /var/log/auditmux/a \\(default /var/log/auditmux/a/spool/r\\)`,
        ),
      );
    }
    assert.deepEqual(
      errorsOf(
        '  - name: a',
        '    user: nobody',
        out('{ type: remote, name: r, host: 192.0.2.1, spool: { dir: /var/log/auditmux/a/q } }'),
      ),
      [],
    );
  });
  it("a spool written as root (host or a daemon without user) inside a user daemon's directory is refused", () => {
    const host = analyzeConfig(
      [
        'host:',
        '  log: { file: /var/log/auditmux/audit.log }',
        '  outputs: [ { type: remote, name: r, host: 192.0.2.1, spool: { dir: /var/log/auditmux/a/spool/x } } ]',
        'daemons:',
        '  - { name: a, user: nobody }',
      ].join('\n'),
      FILE,
    );
    assert.deepEqual(
      host.errors.map((e) => e.message.replace(/:\d+:\d+:/, ':L:C:')),
      [
        `${FILE}:L:C: output "r" of the host spools in /var/log/auditmux/a/spool/x, which overlaps /var/log/auditmux/a, the directory of daemon "a" which user "nobody" owns; choose another directory`,
      ],
    );
    const errs = errorsOf(
      '  - { name: a, user: nobody }',
      '  - name: b',
      out('{ type: syslog, name: s, host: 192.0.2.1, spool: { dir: /var/log/auditmux/a } }'),
    );
    assert.equal(errs.length, 1, errs.join('\n'));
    assert.match(
      errs[0]!,
      /output "s" of daemon "b" spools in \/var\/log\/auditmux\/a, which overlaps \/var\/log\/auditmux\/a, the directory of daemon "a"/,
    );
  });
  it("a daemon named like the host still has its spools checked against the host's outputs", () => {
    const r = analyzeConfig(
      [
        'host:',
        '  log: { file: /var/log/auditmux/audit.log }',
        '  outputs: [ { type: remote, name: r, host: 192.0.2.1, spool: { dir: /var/log/auditmux/host/s } } ]',
        'daemons:',
        '  - { name: host, user: nobody }',
      ].join('\n'),
      FILE,
    );
    assert.equal(r.errors.length, 1, r.errors.map((e) => e.message).join('\n'));
  });
});

describe("the aggregator's remote log", () => {
  it('is refused inside the directory of a daemon with a user, who could delete or replace it', () => {
    const conf = (f: string): string[] =>
      analyzeConfig(
        [
          'host:',
          '  log: { file: /var/log/auditmux/audit.log }',
          `  listen: { port: 60, log: { file: ${f} } }`,
          'daemons:',
          '  - { name: a, user: nobody }',
        ].join('\n'),
        FILE,
      ).errors.map((e) => e.message);
    const errs = conf('/var/log/auditmux/a/remote.log');
    assert.equal(errs.length, 1, errs.join('\n'));
    assert.match(
      errs[0]!,
      /^\/etc\/auditmux\/test\.yaml:3:\d+: the remote log \/var\/log\/auditmux\/a\/remote\.log is inside \/var\/log\/auditmux\/a, the directory of daemon "a" which user "nobody" owns/,
    );
    assert.deepEqual(conf('/var/log/auditmux/remote/remote.log'), []);
  });
});
