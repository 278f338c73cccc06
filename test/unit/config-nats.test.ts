// YAML for the nats output and the collector: values, defaults, and file:line:col errors for what NATS would misread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeConfig, parseConfig } from '../../src/config';
import { parseCollectConfig } from '../../src/collect/config';
import { ConfigError } from '../../src/errors';

const F = '/etc/auditmux/auditmux.yaml';
const errs = (t: string): string[] => analyzeConfig(t, F).errors.map((e) => e.message);

test('nats output on the host and on a daemon: defaults, owner in {daemon}, spool per owner', () => {
  const c = parseConfig(
    [
      'host:',
      '  outputs:',
      '    - { type: nats, servers: [nats://10.0.0.1:4222, "tls://[::1]:4443"], creds: fleet.creds, payload: json, tls: { ca: ca.pem } }',
      'daemons:',
      '  - { name: web, outputs: [ { type: nats, name: fleet, servers: [n1:4222], subject: "t.{contid}.x", create_stream: true, replicas: 3, user: u, password: p } ] }',
      'routes: [ { contid: [1], daemons: [web] } ]',
    ].join('\n'),
    F,
  );
  const h = c.host.outputs[0];
  assert.ok(h?.type === 'nats');
  assert.deepEqual(
    [
      h.servers,
      h.creds,
      h.payload,
      h.subject,
      h.stream,
      h.createStream,
      h.streamSubjects,
      h.daemon,
      h.spool.dir,
      h.tls?.ca,
    ],
    [
      ['nats://10.0.0.1:4222', 'tls://[::1]:4443'],
      '/etc/auditmux/fleet.creds',
      'json',
      'audit.{node}.{daemon}.{contid}',
      'AUDIT',
      false,
      ['audit.*.*.*'],
      'host',
      '/var/spool/auditmux/host/nats0',
      '/etc/auditmux/ca.pem',
    ],
  );
  const d = c.daemons[0]?.outputs?.[0];
  assert.ok(d?.type === 'nats');
  assert.deepEqual(
    [d.daemon, d.subject, d.streamSubjects, d.replicas, d.user, d.password, d.spool.dir],
    ['web', 't.{contid}.x', ['t.*.x'], 3, 'u', 'p', '/var/spool/auditmux/web/fleet'],
  );
});

test('nats output errors carry positions: wildcards and dots in the subject, credentials in URLs, mixed auth', () => {
  const one = (o: string): string[] => errs(`host:\n  outputs:\n    - ${o}\n`);
  assert.match(one('{ type: nats }').join('\n'), /^\/etc\/auditmux\/auditmux\.yaml:3:\d+: .*needs servers/m);
  assert.match(one('{ type: nats, servers: [n:1], subject: "audit.>" }').join(), /token ">" must be/);
  assert.match(one('{ type: nats, servers: [n:1], subject: "audit.*.x" }').join(), /token "\*" must be/);
  assert.match(one('{ type: nats, servers: [n:1], subject: "a..b" }').join(), /token "" must be/);
  assert.match(one('{ type: nats, servers: [n:1], subject: "a.{node}x" }').join(), /token "\{node\}x" must be/);
  assert.match(
    one('{ type: nats, servers: ["nats://u:p@h:1"] }').join(),
    /credentials go in user\/password\/token\/creds/,
  );
  assert.match(
    one('{ type: nats, servers: [n:1], token: t, user: u, password: p }').join(),
    /use one of user\/password, token or creds/,
  );
  assert.match(one('{ type: nats, servers: [n:1], user: u }').join(), /needs both user and password/);
  assert.match(one('{ type: nats, servers: [n:1], stream: "a.b" }').join(), /stream must be/);
  assert.match(one('{ type: nats, servers: [n:1], stream_subjects: ["x.{node}"] }').join(), /cannot use \{node\}/);
  assert.match(one('{ type: nats, servers: [n:1], host: x }').join(), /host does not apply to a nats output/);
  assert.match(one('{ type: nats, servers: [n:1], password: "a\\nb", user: u }').join(), /without control characters/);
  // The publish window: bounded, positioned like every other key.
  assert.match(
    one('{ type: nats, servers: [n:1], max_in_flight: 0 }').join('\n'),
    /^\/etc\/auditmux\/auditmux\.yaml:3:\d+: .*max_in_flight must be between 1 and 4096/m,
  );
  assert.deepEqual(one('{ type: nats, servers: [n:1], max_in_flight: 4096 }'), []);
});

test('collector config: defaults, relative paths from the file, positioned errors', () => {
  const c = parseCollectConfig(
    'servers: [nats://127.0.0.1:4222]\ndir: fleet\ntoken: s3cret\nlog: { max_log_file: 100, num_logs: 9 }\n',
    '/etc/auditmux/collect.yaml',
  );
  assert.deepEqual(
    [
      c.stream,
      c.consumer,
      c.dir,
      c.statusFile,
      c.token,
      c.ackWaitMs,
      c.batch,
      c.log.flush,
      c.log.maxLogFileMiB,
      c.log.numLogs,
      c.createConsumer,
      c.startWaitMs,
    ],
    [
      'AUDIT',
      'auditmux-collect',
      '/etc/auditmux/fleet',
      '/etc/auditmux/fleet/collect.status',
      's3cret',
      30000,
      256,
      'data',
      100,
      9,
      true,
      60000,
    ],
  );
  const bad = (t: string): ConfigError => {
    try {
      parseCollectConfig(t, '/c.yaml');
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e;
    }
    throw new Error('accepted');
  };
  assert.match(bad('servers: [n:1]\nconsumer: "a.b"\n').message, /^\/c\.yaml:2:11: consumer must be/);
  assert.match(bad('servers: [n:1]\nfilter_subject: "a.>.b"\n').message, /^\/c\.yaml:2:\d+: filter_subject must be/);
  assert.match(bad('servers: [n:1]\nbatchs: 3\n').message, /^\/c\.yaml:2:1: .*batchs/);
  assert.match(bad('dir: /x\n').message, /needs servers/);
  assert.match(bad('servers: [n:1]\nstart_wait: -1\n').message, /^\/c\.yaml:2:13: start_wait /);
  assert.equal(parseCollectConfig('servers: [n:1]\nstart_wait: 0\n', '/c.yaml').startWaitMs, 0);
  assert.equal(c.nodeToken, 2, "the node is checked against the subject's second token by default");
  assert.equal(parseCollectConfig('servers: [n:1]\nnode_token: 0\n', '/c.yaml').nodeToken, 0);
  assert.match(bad('servers: [n:1]\nnode_token: 17\n').message, /^\/c\.yaml:2:13: node_token must be between 0 and 16/);
});

test('collector metrics: listen address or textfile, with positions for what is wrong', () => {
  const m = (t: string): unknown => parseCollectConfig(`servers: [n:1]\n${t}`, '/etc/am/c.yaml').metrics;
  assert.equal(m(''), null);
  assert.deepEqual(m('metrics: { listen: "9464" }\n'), { listen: { host: '127.0.0.1', port: 9464 } });
  assert.deepEqual(m('metrics: { listen: "[::1]:9464" }\n'), { listen: { host: '::1', port: 9464 } });
  assert.deepEqual(m('metrics: { textfile: p/c.prom }\n'), { textfile: '/etc/am/p/c.prom' });
  assert.deepEqual(m('prometheus_textfile: c.prom\n'), { textfile: '/etc/am/c.prom' });
  const bad = (t: string): string => {
    try {
      parseCollectConfig(`servers: [n:1]\n${t}`, '/c.yaml');
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.message;
    }
    throw new Error('accepted');
  };
  assert.match(bad('metrics: { listen: "localhost:9464" }\n'), /^\/c\.yaml:2:\d+: metrics\.listen must be PORT/);
  assert.match(bad('metrics: { listen: "127.0.0.1:70000" }\n'), /^\/c\.yaml:2:\d+: metrics\.listen: the port/);
  assert.match(bad('metrics: { textfile: c.txt }\n'), /^\/c\.yaml:2:\d+: metrics\.textfile must end in \.prom/);
  assert.match(bad('metrics: { listen: "1", textfile: c.prom }\n'), /not both/);
  assert.match(bad('metrics: {}\n'), /needs listen or textfile/);
  assert.match(bad('metrics: { port: 1 }\n'), /unknown key "port"/);
  assert.match(bad('prometheus_textfile: c.prom\nmetrics: { listen: "1" }\n'), /^\/c\.yaml:3:1: give metrics or/);
});
