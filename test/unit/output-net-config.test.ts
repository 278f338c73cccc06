// YAML `outputs:`, `host.listen` and the log's disk-space options: values, defaults and file:line:col errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeConfig, parseConfig } from '../../src/config';

const F = '/etc/auditmux/auditmux.yaml';
const errs = (t: string): string[] => analyzeConfig(t, F).errors.map((e) => e.message);

test('outputs on host and daemons, with defaults and spool dirs per owner', () => {
  const c = parseConfig(
    [
      'host:',
      '  outputs:',
      '    - { type: remote, name: agg, host: 10.0.0.5, port: 60, heartbeat_timeout: 30, window: 1 }',
      '    - type: syslog',
      '      host: logs.example',
      '      port: 6514',
      '      facility: local3',
      '      tls: { ca: ca.pem }',
      '    - { type: plugin, path: /sbin/audisp-syslog, args: [LOG_INFO], format: binary, max_restarts: 2, spool: { dir: null } }',
      '  listen: { port: 60, address: 127.0.0.1, client_ports: 1-1023 }',
      'daemons:',
      '  - { name: web, outputs: [ { type: remote, name: agg, host: h } ] }',
      'routes: [ { contid: [1], daemons: [web] } ]',
    ].join('\n'),
    F,
  );
  const [r, s, p] = c.host.outputs;
  assert.equal(r?.type, 'remote');
  assert.deepEqual(r?.type === 'remote' && [r.host, r.port, r.heartbeatTimeout, r.window, r.spool.dir, r.format], [
    '10.0.0.5',
    60,
    30,
    1,
    '/var/spool/auditmux/host/agg',
    'RAW',
  ]);
  assert.ok(
    s?.type === 'syslog' &&
      s.facility === 19 &&
      s.severity === 6 &&
      s.tls?.ca === '/etc/auditmux/ca.pem' &&
      s.name === 'syslog1',
  );
  assert.ok(
    p?.type === 'plugin' &&
      p.pluginFormat === 'binary' &&
      p.args[0] === 'LOG_INFO' &&
      p.spool.dir === null &&
      p.maxRestarts === 2,
  );
  assert.deepEqual(c.host.listen && [c.host.listen.port, c.host.listen.address, c.host.listen.clientPorts], [
    60,
    '127.0.0.1',
    { min: 1, max: 1023 },
  ]);
  assert.equal(c.daemons[0]?.outputs?.[0]?.spool.dir, '/var/spool/auditmux/web/agg');
});

test('disk-space options on log: MiB and percentages, exec needs an absolute exe, admin below space_left', () => {
  const c = parseConfig(
    'host: { log: { space_left: 25%, admin_space_left: 10%, space_left_action: exec, space_left_exe: /usr/local/bin/x, disk_full_action: rotate } }',
    F,
  );
  assert.deepEqual(c.host.log.diskSpace?.spaceLeft, { value: 25, unit: '%' });
  assert.equal(c.host.log.diskSpace?.diskFullAction, 'rotate');
  assert.equal(parseConfig('host: {}', F).host.log.diskSpace, undefined);
  assert.match(
    errs('host: { log: { space_left: 10, admin_space_left: 20 } }')[0] ?? '',
    /space_left \(10MiB\) must be larger than admin_space_left/,
  );
  assert.match(errs('host: { log: { space_left_action: exec } }')[0] ?? '', /exec needs host\.log\.space_left_exe/);
  assert.match(errs('host: { log: { space_left: lots } }')[0] ?? '', /^.*must be MiB/);
  assert.match(
    errs('host: { log: { disk_error_action: rotate } }')[0] ?? '',
    /must be one of ignore, syslog, exec, suspend, single, halt/,
  );
});

test('output errors carry file:line:col', () => {
  const r = analyzeConfig(
    [
      'host:',
      '  outputs:',
      '    - { type: remote, host: h, port: 70000 }',
      '    - { type: smtp }',
      '    - { type: plugin, path: rel/x, heartbeat_timeout: 3 }',
    ].join('\n'),
    F,
  );
  const m = r.errors.map((e) => `${e.pos.line}:${e.pos.col} ${e.message}`);
  assert.ok(
    m.some((x) => x.startsWith('3:') && x.includes('port must be between 1 and 65535')),
    m.join('\n'),
  );
  assert.ok(
    m.some((x) => x.startsWith('4:') && x.includes('type must be one of remote, syslog, plugin')),
    m.join('\n'),
  );
  assert.ok(
    m.some((x) => x.startsWith('5:') && x.includes('heartbeat_timeout does not apply to a plugin output')),
    m.join('\n'),
  );
  assert.ok(
    m.some((x) => x.startsWith('5:') && x.includes('must be an absolute path')),
    m.join('\n'),
  );
  assert.match(
    errs('host: { outputs: [ { type: remote, name: a, host: h }, { type: syslog, name: a, host: h } ] }')[0] ?? '',
    /duplicate output name "a"/,
  );
  assert.match(
    errs(
      'host: { outputs: [ { type: remote, host: h, spool: { dir: /s } } ] }\ndaemons: [ { name: d, outputs: [ { type: syslog, host: h, spool: { dir: /s } } ] } ]\nroutes: [ { contid: [1], daemons: [d] } ]',
    ).join('\n'),
    /uses spool \/s, which output/,
  );
});
