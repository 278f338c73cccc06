// Unit tests for parseConfig: every option's parsing and defaults, and every error with its exact file:line:col.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors';
import { AUDIT_CID_UNSET } from '../../src/kernel/constants';
import { analyzeConfig, defaultConfig, parseConfig, type Config } from '../../src/config';

const FILE = '/etc/auditmux/test.yaml';

function cfg(...lines: string[]): Config {
  return parseConfig(lines.join('\n'), FILE);
}

function fail(lines: string[]): ConfigError {
  try {
    parseConfig(lines.join('\n'), FILE);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail(`expected a ConfigError for:\n${lines.join('\n')}`);
}

/** Asserts the first error's position and that its reason matches. */
function errAt(line: number, col: number, reason: RegExp | string, ...lines: string[]): ConfigError {
  const e = fail(lines);
  assert.equal(e.pos.file, FILE);
  assert.deepEqual({ line: e.pos.line, col: e.pos.col }, { line, col }, `wrong position for: ${e.message}`);
  if (typeof reason === 'string') assert.ok(e.reason.includes(reason), `"${e.reason}" lacks "${reason}"`);
  else assert.match(e.reason, reason);
  assert.equal(e.message, `${FILE}:${line}:${col}: ${e.reason}`);
  assert.equal(e.exitCode, 3);
  return e;
}

/** A Config as defaults would give it, minus the per-parse fields. */
function stripped(c: Config): unknown {
  const { file: _f, sources: _s, ...rest } = c;
  return rest;
}

describe('config: meaning one thing', () => {
  it('a %YAML 1.1 directive is refused: yes, n and 010 would mean something else than in YAML 1.2', () => {
    // Old: accepted, `compress: yes` was true and `n:` the key false.
    errAt(1, 1, /%YAML 1\.1: auditmux reads YAML 1\.2 only/, '%YAML 1.1', '---', 'version: 1');
    cfg('%YAML 1.2', '---', 'version: 1');
  });
  it('numeric accounts past 32 bits are refused where they are written', () => {
    // Old: accepted by config check, failing only at start (log_group) or meaning "no change" to setuid (user).
    errAt(
      2,
      21,
      /log_group must be a user\/group name or a numeric id up to 4294967294/,
      'host:',
      '  log: { log_group: "9999999999" }',
    );
    errAt(
      4,
      11,
      /user must be a user\/group name or a numeric id up to 4294967294/,
      'daemons:',
      '  - name: a',
      '    isolation: process',
      '    user: "4294967295"',
    );
  });
});

describe('config: defaults', () => {
  it('an empty file gives the built-in defaults', () => {
    assert.deepEqual(stripped(cfg('')), stripped(defaultConfig()));
  });
  it('a comment-only file and an explicit null document give the defaults', () => {
    assert.deepEqual(stripped(cfg('# nothing here', '')), stripped(defaultConfig()));
    assert.deepEqual(stripped(cfg('~')), stripped(defaultConfig()));
  });
  it('empty sections (every child commented out) read as empty mappings', () => {
    const c = cfg('host:', '  kernel:', '  log:', '  reassembly:', 'daemons:', 'routes:', 'contid:');
    assert.deepEqual(stripped(c), stripped(defaultConfig()));
  });
  it('defaultConfig returns independent copies with absolute paths', () => {
    const a = defaultConfig();
    a.host.kernel.enabled = 0;
    assert.equal(defaultConfig().host.kernel.enabled, 1);
    assert.equal(a.file, null);
    assert.equal(a.host.rules, '/etc/auditmux/rules.d');
    assert.equal(a.host.log.file, '/var/log/auditmux/audit.log');
    assert.equal(a.host.controlSocket, '/run/auditmux/control.sock');
  });
  it('records the absolute file name', () => {
    assert.equal(parseConfig('', 'rel/dir/x.yaml').file, `${process.cwd()}/rel/dir/x.yaml`);
  });
});

describe('config: top level', () => {
  it('version 1 is accepted, anything else is an error', () => {
    assert.equal(cfg('version: 1').version, 1);
    errAt(1, 10, 'version must be between 1 and 1', 'version: 2');
  });
  it('the document must be a mapping', () => {
    errAt(1, 1, 'the top level must be a mapping, got a list', '- a', '- b');
    errAt(1, 1, 'the top level must be a mapping, got the string "hello"', 'hello');
  });
  it('unknown top-level keys are errors with a hint', () => {
    errAt(2, 1, 'unknown key "hots" in the top level (did you mean "host"?)', 'version: 1', 'hots: {}');
    errAt(1, 1, /^unknown key "zzzzzz" in the top level$/, 'zzzzzz: 1');
  });
  it('non-scalar keys are errors', () => {
    errAt(1, 3, 'keys must be plain names', '? [a]', ': 1');
  });
  it('rejects files over 1 MiB without parsing them', () => {
    const e = fail([`# ${'x'.repeat((1 << 20) + 1)}`]);
    assert.deepEqual([e.pos.line, e.pos.col], [1, 1]);
    assert.match(e.reason, /larger than/);
  });
});

describe('config: YAML syntax errors carry positions', () => {
  it('duplicate keys', () => {
    errAt(3, 3, 'DUPLICATE_KEY', 'host:', '  keep: all', '  keep: unrouted');
  });
  it('bad indentation', () => {
    const e = fail(['host:', '  keep: all', ' rules: x']);
    assert.equal(e.pos.line, 3);
    assert.match(e.reason, /^YAML [A-Z_]+: /);
  });
  it('an unterminated quoted string', () => {
    const e = fail(['host:', '  keep: "all']);
    assert.equal(e.pos.line, 2);
    assert.match(e.reason, /^YAML /);
  });
  it('more than one document', () => {
    const e = fail(['host: {}', '---', 'host: {}']);
    assert.equal(e.pos.line, 2);
    assert.match(e.reason, /document/i);
  });
  it('unknown tags are errors, not silently strings', () => {
    errAt(2, 9, 'TAG_RESOLVE_FAILED', 'host:', '  keep: !weird all');
  });
  it('an undefined alias', () => {
    const e = fail(['host:', '  keep: *nope']);
    assert.equal(e.pos.line, 2);
  });
  it('CRLF line endings keep the same line numbers', () => {
    const e = fail(['host:\r', '  kernel:\r', '    enabled: 9\r', '']);
    assert.deepEqual([e.pos.line, e.pos.col], [3, 14]);
  });
});

describe('config: host.node_name', () => {
  it('format values, case-insensitive', () => {
    assert.equal(cfg('host:', '  node_name: { format: FQD }').host.nodeName.format, 'fqd');
    for (const f of ['none', 'hostname', 'numeric'])
      assert.equal(cfg(`host: { node_name: { format: ${f} } }`).host.nodeName.format, f);
  });
  it('format user takes name', () => {
    assert.deepEqual(cfg('host:', '  node_name:', '    format: user', '    name: web-01.example').host.nodeName, {
      format: 'user',
      name: 'web-01.example',
    });
  });
  it('format user without a name is an error at format', () => {
    errAt(3, 13, 'format: user needs host.node_name.name', 'host:', '  node_name:', '    format: user');
  });
  it('a name without format user is an error at the name', () => {
    errAt(2, 40, 'only used with format: user', 'host:', '  node_name: { format: hostname, name: x }');
  });
  it('a name that would break `node=NAME` parsing', () => {
    errAt(2, 36, 'must be 1-64 characters', 'host:', '  node_name: { format: user, name: "a b" }');
  });
  it('unknown format with hint', () => {
    errAt(2, 24, '(did you mean "hostname"?)', 'host:', '  node_name: { format: hostnme }');
  });
});

describe('config: host.kernel', () => {
  it('reads every key', () => {
    const k = cfg(
      'host:',
      '  kernel:',
      '    enabled: 2',
      '    failure: 0',
      '    backlog_limit: 4294967295',
      '    rate_limit: 0x10',
      '    backlog_wait_time: 600000',
      '    loginuid_immutable: true',
      '    reset_lost_on_start: true',
    ).host.kernel;
    assert.deepEqual(k, {
      enabled: 2,
      failure: 0,
      backlogLimit: 4294967295,
      rateLimit: 16,
      backlogWaitTime: 600000,
      loginuidImmutable: true,
      resetLostOnStart: true,
    });
  });
  it('range errors point at the value', () => {
    errAt(3, 14, 'host.kernel.enabled must be between 0 and 2, got 3', 'host:', '  kernel:', '    enabled: 3');
    errAt(3, 14, 'host.kernel.failure must be between 0 and 2, got -1', 'host:', '  kernel:', '    failure: -1');
    errAt(3, 20, 'got 4294967296', 'host:', '  kernel:', '    backlog_limit: 4294967296');
    errAt(3, 24, 'between 0 and 600000', 'host:', '  kernel:', '    backlog_wait_time: 600001');
  });
  it('huge numbers are reported exactly, not as floats', () => {
    errAt(
      3,
      17,
      'got 123456789012345678901234567890',
      'host:',
      '  kernel:',
      '    rate_limit: 123456789012345678901234567890',
    );
  });
  it('type errors', () => {
    errAt(3, 20, 'must be an integer, got 1.5', 'host:', '  kernel:', '    backlog_limit: 1.5');
    errAt(3, 20, 'must be an integer, got the string "lots"', 'host:', '  kernel:', '    backlog_limit: lots');
    errAt(3, 20, 'must be an integer, got the string "8192"', 'host:', '  kernel:', '    backlog_limit: "8192"');
    errAt(3, 20, 'must be an integer, got 1e3', 'host:', '  kernel:', '    backlog_limit: 1e3');
    errAt(3, 20, 'must be an integer, got 0o17', 'host:', '  kernel:', '    backlog_limit: 0o17');
    errAt(3, 20, 'must be a single value, got a list', 'host:', '  kernel:', '    backlog_limit: [1]');
    errAt(3, 5, 'host.kernel.backlog_limit needs a value', 'host:', '  kernel:', '    backlog_limit:');
  });
  it('booleans are YAML 1.2 true/false, with a hint for yes/no', () => {
    errAt(
      3,
      25,
      'must be true or false, got the string "yes" (YAML 1.2: write true)',
      'host:',
      '  kernel:',
      '    loginuid_immutable: yes',
    );
    errAt(3, 26, '(YAML 1.2: write false)', 'host:', '  kernel:', '    reset_lost_on_start: off');
    errAt(3, 25, /must be true or false, got 1$/, 'host:', '  kernel:', '    loginuid_immutable: 1');
  });
  it('unknown kernel keys', () => {
    errAt(
      3,
      5,
      'unknown key "backlog" in host.kernel (did you mean "backlog_limit"?)',
      'host:',
      '  kernel:',
      '    backlog: 5',
    );
  });
  it('kernel must be a mapping', () => {
    errAt(2, 11, 'host.kernel must be a mapping, got the boolean true', 'host:', '  kernel: true');
  });
});

describe('config: host.rules and paths', () => {
  it('relative paths resolve against the config file directory', () => {
    assert.equal(cfg('host: { rules: rules.d }').host.rules, '/etc/auditmux/rules.d');
    assert.equal(cfg('host: { rules: ../x/audit.rules }').host.rules, '/etc/x/audit.rules');
    assert.equal(cfg('host: { rules: /srv/r }').host.rules, '/srv/r');
  });
  it('null leaves the kernel rules alone', () => {
    assert.equal(cfg('host:', '  rules: ~').host.rules, null);
    assert.equal(cfg('host:', '  rules:').host.rules, null);
  });
  it('empty and NUL-containing paths are errors', () => {
    errAt(2, 10, 'host.rules is an empty path', 'host:', '  rules: ""');
    errAt(2, 10, 'NUL byte', 'host:', '  rules: "a\\0b"');
  });
  it('a path over PATH_MAX', () => {
    errAt(2, 10, 'longer than PATH_MAX', 'host:', `  rules: /${'a'.repeat(5000)}`);
  });
  it('numbers are taken as path text', () => {
    assert.equal(cfg('host: { rules: 42 }').host.rules, '/etc/auditmux/42');
  });
});

describe('config: host.log (the output object)', () => {
  const base = ['host:', '  log:'];
  it('reads every key, values case-insensitively', () => {
    const l = cfg(
      ...base,
      '    file: log/a.log',
      '    format: raw',
      '    flush: DATA',
      '    freq: 7',
      '    max_log_file: 100',
      '    max_log_file_action: keep_logs',
      '    num_logs: 999',
      '    log_group: adm',
    ).host.log;
    assert.deepEqual(l, {
      file: '/etc/auditmux/log/a.log',
      format: 'RAW',
      flush: 'data',
      freq: 7,
      maxLogFileMiB: 100,
      maxLogFileAction: 'keep_logs',
      numLogs: 999,
      logGroup: 'adm',
    });
  });
  it('omitted keys keep their defaults', () => {
    const l = cfg(...base, '    format: RAW').host.log;
    assert.equal(l.file, '/var/log/auditmux/audit.log');
    assert.equal(l.flush, 'incremental_async');
    assert.equal(l.freq, 50);
  });
  it('every flush and max_log_file_action value', () => {
    for (const f of ['none', 'incremental', 'incremental_async', 'data', 'sync'])
      assert.equal(cfg(`host: { log: { flush: ${f} } }`).host.log.flush, f);
    for (const a of ['ignore', 'syslog', 'suspend', 'rotate', 'keep_logs'])
      assert.equal(cfg(`host: { log: { max_log_file_action: ${a} } }`).host.log.maxLogFileAction, a);
  });
  it('enum errors list the choices and suggest', () => {
    errAt(3, 13, 'must be one of RAW, ENRICHED, JSON; got "XML"', ...base, '    format: XML');
    assert.equal(cfg('host: { log: { format: json } }').host.log.format, 'JSON');
    errAt(3, 12, '(did you mean "incremental"?)', ...base, '    flush: incremntal');
    errAt(3, 26, 'got "exec"', ...base, '    max_log_file_action: exec');
  });
  it('freq 0 is refused with incremental flushing only', () => {
    errAt(
      4,
      11,
      'freq must be at least 1 with flush: incremental_async',
      ...base,
      '    flush: incremental_async',
      '    freq: 0',
    );
    assert.equal(cfg(...base, '    flush: none', '    freq: 0').host.log.freq, 0);
  });
  it('ranges', () => {
    errAt(3, 15, 'num_logs must be between 0 and 999', ...base, '    num_logs: 1000');
    errAt(3, 19, 'max_log_file must be between 0 and 1048576', ...base, '    max_log_file: 2000000');
  });
  it('log_group must look like a group', () => {
    assert.equal(cfg(...base, '    log_group: 4').host.log.logGroup, '4');
    errAt(3, 16, 'log_group must be a user/group name or a numeric id', ...base, '    log_group: "adm; rm -rf"');
  });
  it('file must name a file', () => {
    errAt(3, 11, 'must name a file, not a directory', ...base, '    file: /var/log/');
  });
  it('unknown output keys', () => {
    errAt(3, 5, 'unknown key "num_log" in host.log (did you mean "num_logs"?)', ...base, '    num_log: 4');
  });
});

describe('config: other host keys', () => {
  it('keep', () => {
    assert.equal(cfg('host: { keep: unrouted }').host.keep, 'unrouted');
    errAt(2, 9, 'host.keep must be one of all, unrouted', 'host:', '  keep: some');
  });
  it('control_socket resolves and is limited to sun_path', () => {
    assert.equal(cfg('host: { control_socket: ctl.sock }').host.controlSocket, '/etc/auditmux/ctl.sock');
    errAt(2, 19, 'a unix socket path is at most 107', 'host:', `  control_socket: /run/${'s'.repeat(120)}`);
  });
  it('reassembly', () => {
    assert.deepEqual(cfg('host: { reassembly: { timeout_ms: 10, max_in_flight: 1000000 } }').host.reassembly, {
      timeoutMs: 10,
      maxInFlight: 1000000,
    });
    errAt(3, 17, 'timeout_ms must be between 10 and 600000', 'host:', '  reassembly:', '    timeout_ms: 5');
    errAt(3, 20, 'max_in_flight must be between 1 and 1000000', 'host:', '  reassembly:', '    max_in_flight: 0');
  });
  it('receive_buffer', () => {
    assert.equal(cfg('host: { receive_buffer: 0 }').host.receiveBuffer, 0);
    assert.equal(cfg('host: { receive_buffer: 1073741824 }').host.receiveBuffer, 1073741824);
    errAt(2, 19, 'between 0 and 1073741824', 'host:', '  receive_buffer: 1073741825');
  });

  it('priority_boost', () => {
    assert.equal(cfg('host: {}').host.priorityBoost, 4);
    assert.equal(cfg('host: { priority_boost: 0 }').host.priorityBoost, 0);
    errAt(2, 19, 'between 0 and 20', 'host:', '  priority_boost: 21');
  });
  it('diagnostics.level', () => {
    for (const l of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      assert.equal(cfg(`host: { diagnostics: { level: ${l} } }`).host.diagnostics.level, l);
    errAt(3, 12, '(did you mean "warn"?)', 'host:', '  diagnostics:', '    level: warning');
  });
  it('unknown host keys', () => {
    errAt(2, 3, 'unknown key "log_file" in host', 'host:', '  log_file: /x');
  });
});

describe('config: daemons', () => {
  it('defaults for an auxiliary daemon', () => {
    const [d] = cfg('daemons:', '  - name: t1', 'routes:', '  - { contid: 1, daemons: [t1] }').daemons;
    assert.ok(d);
    assert.equal(d.name, 't1');
    assert.equal(d.rules, null);
    assert.equal(d.log.file, '/var/log/auditmux/t1.log');
    assert.equal(d.log.format, 'ENRICHED');
    assert.deepEqual(d.queue, { depth: 10000, overflow: 'drop_newest', blockTimeoutMs: 1000 });
    assert.equal(d.user, null);
    assert.equal(d.isolation, 'inline');
    assert.equal(d.maxRestarts, 10);
    assert.deepEqual(d.pos, { file: FILE, line: 2, col: 5 });
  });
  it('default log file follows host.log.file directory', () => {
    const c = cfg('host: { log: { file: /srv/a/host.log } }', 'daemons: [{ name: x }]');
    assert.equal(c.daemons[0]?.log.file, '/srv/a/x.log');
  });
  it('reads every key', () => {
    const [d] = cfg(
      'daemons:',
      '  - name: a-b_9',
      '    rules: aux.rules',
      '    log: { file: /l/a.log, format: RAW, num_logs: 2 }',
      '    queue: { depth: 1, overflow: drop_oldest }',
      '    user: "65534"',
      '    max_restarts: 0',
    ).daemons;
    assert.ok(d);
    assert.equal(d.rules, '/etc/auditmux/aux.rules');
    assert.equal(d.log.file, '/l/a.log');
    assert.equal(d.log.numLogs, 2);
    assert.deepEqual(d.queue, { depth: 1, overflow: 'drop_oldest', blockTimeoutMs: 1000 });
    assert.equal(d.user, '65534');
    assert.equal(d.isolation, 'process', 'a daemon with a user gets a process of its own');
    assert.equal(d.maxRestarts, 0);
  });
  it('name rules', () => {
    errAt(2, 11, 'must match [a-z0-9][a-z0-9_-]{0,62}', 'daemons:', '  - name: Tenant');
    errAt(2, 11, 'must match', 'daemons:', '  - name: -x');
    errAt(2, 11, 'must match', 'daemons:', `  - name: ${'a'.repeat(64)}`);
    errAt(2, 11, '"host" is reserved', 'daemons:', '  - name: host');
    errAt(2, 5, 'daemons[0] needs a name', 'daemons:', '  - rules: x');
  });
  it('duplicate names point at the second and name the first', () => {
    errAt(3, 11, 'duplicate daemon name "a" (first defined at line 2:11)', 'daemons:', '  - name: a', '  - name: a');
  });
  it('block_timeout_ms needs overflow: block', () => {
    errAt(
      3,
      37,
      'only applies to overflow: block (overflow is drop_newest)',
      'daemons:',
      '  - name: a',
      '    queue: { overflow: drop_newest, block_timeout_ms: 5 }',
    );
  });
  it('queue ranges and enums', () => {
    errAt(3, 21, 'depth must be between 1 and 10000000', 'daemons:', '  - name: a', '    queue: { depth: 0 }');
    errAt(3, 24, '(did you mean "drop_oldest"?)', 'daemons:', '  - name: a', '    queue: { overflow: drop_old }');
  });
  it('user and max_restarts', () => {
    errAt(3, 11, 'user must be a user/group name or a numeric id', 'daemons:', '  - name: a', '    user: "bad user"');
    errAt(3, 19, 'between 0 and 10000', 'daemons:', '  - name: a', '    max_restarts: 10001');
  });
  it('isolation', () => {
    assert.equal(cfg('daemons:', '  - name: a', '    isolation: process').daemons[0]?.isolation, 'process');
    assert.equal(cfg('daemons:', '  - name: a', '    isolation: inline').daemons[0]?.isolation, 'inline');
    errAt(
      3,
      16,
      'isolation: inline cannot run as user "nobody" (use isolation: process)',
      'daemons:',
      '  - name: a',
      '    isolation: inline',
      '    user: nobody',
    );
    errAt(3, 16, '(did you mean "process"?)', 'daemons:', '  - name: a', '    isolation: proces');
  });
  it('unknown daemon keys', () => {
    errAt(3, 5, 'unknown key "rule" in daemons[0] (did you mean "rules"?)', 'daemons:', '  - name: a', '    rule: x');
  });
  it('daemons must be a list of mappings', () => {
    errAt(1, 10, 'daemons must be a list, got a mapping', 'daemons: { name: a }');
    errAt(2, 5, 'daemons[0] must be a mapping, got the string "a"', 'daemons:', '  - a');
  });
  it('two writers on one log file', () => {
    errAt(
      3,
      5,
      'writes /var/log/auditmux/audit.log, which host.log already uses',
      'daemons:',
      '  - name: a',
      '  - name: b',
      '    log: { file: /var/log/auditmux/audit.log }',
    );
    errAt(
      3,
      5,
      'which daemon "a" already uses',
      'daemons:',
      '  - name: a',
      '  - name: b',
      '    log: { file: /var/log/auditmux/a.log }',
    );
  });
});

describe('config: routes', () => {
  const d = ['daemons:', '  - name: ta', '  - name: tb', 'routes:'];
  const route = (...lines: string[]) => cfg(...d, ...lines).routes;
  it('contid selector forms', () => {
    const [r] = route('  - contid: [1, 0x10, "5-7", "100^*", "0x10-0x1F^*", unset]', '    daemons: [ta]');
    assert.ok(r);
    assert.deepEqual(
      r.contid.map((p) => [p.kind, p.lo, p.hi, p.nested]),
      [
        ['range', 1n, 1n, false],
        ['range', 16n, 16n, false],
        ['range', 5n, 7n, false],
        ['range', 100n, 100n, true],
        ['range', 16n, 31n, true],
        ['unset', AUDIT_CID_UNSET, AUDIT_CID_UNSET, false],
      ],
    );
    assert.deepEqual(r.pos, { file: FILE, line: 5, col: 5 });
    assert.equal(r.index, 0);
    assert.equal(r.continue, false);
    assert.equal(r.types, null);
    assert.equal(r.keys, null);
  });
  it('a single selector or daemon needs no list', () => {
    const [r] = route('  - { contid: 7, daemons: tb }');
    assert.deepEqual(
      r?.contid.map((p) => p.lo),
      [7n],
    );
    assert.deepEqual(r?.daemons, ['tb']);
  });
  it('u64 contids keep full precision (YAML alone would round them)', () => {
    const [r] = route('  - contid: 18446744073709551614', '    daemons: [ta]');
    assert.equal(r?.contid[0]?.lo, 18446744073709551614n);
    const [h] = route('  - contid: 0xfffffffffffffffe', '    daemons: [ta]');
    assert.equal(h?.contid[0]?.hi, 0xfffffffffffffffen);
    const [q] = route('  - contid: "9007199254740993"', '    daemons: [ta]');
    assert.equal(q?.contid[0]?.lo, 9007199254740993n);
  });
  it('contid errors point at the offending selector', () => {
    errAt(5, 13, 'write "unset" instead', ...d, '  - contid: 18446744073709551615', '    daemons: [ta]');
    errAt(5, 13, 'above the u64 range', ...d, '  - contid: 18446744073709551616', '    daemons: [ta]');
    errAt(5, 13, 'contids are unsigned, got -1', ...d, '  - contid: -1', '    daemons: [ta]');
    errAt(5, 17, 'range 9-3 is empty', ...d, '  - contid: [1, "9-3"]', '    daemons: [ta]');
    errAt(5, 13, 'is not a contid selector', ...d, '  - contid: 1.5', '    daemons: [ta]');
    errAt(5, 13, 'is not a contid selector', ...d, '  - contid: abc', '    daemons: [ta]');
    errAt(5, 13, '"unset" cannot have nested containers', ...d, '  - contid: unset^*', '    daemons: [ta]');
    errAt(5, 13, 'is an empty list', ...d, '  - contid: []', '    daemons: [ta]');
    errAt(5, 14, 'must be a single value, got a mapping', ...d, '  - contid: [{a: 1}]', '    daemons: [ta]');
  });
  it('types by name (any case) or number', () => {
    const [r] = route(
      '  - contid: 1',
      '    types: [SYSCALL, execve, 1400, "UNKNOWN[1999]", SYSCALL]',
      '    daemons: [ta]',
    );
    assert.deepEqual(r?.types, [1300, 1309, 1400, 1999]);
  });
  it('unknown types suggest a name', () => {
    errAt(
      6,
      21,
      'unknown record type "SYSCAL" (did you mean "SYSCALL"?)',
      ...d,
      '  - contid: 1',
      '    types: [EXECVE, SYSCAL]',
      '    daemons: [ta]',
    );
    errAt(6, 12, 'unknown record type "70000"', ...d, '  - contid: 1', '    types: 70000', '    daemons: [ta]');
  });
  it('keys', () => {
    const [r] = route('  - contid: 1', '    keys: [identity, "time-change", identity]', '    daemons: [ta]');
    assert.deepEqual(r?.keys, ['identity', 'time-change']);
    errAt(
      6,
      11,
      'a rule key is 1 to 256 bytes',
      ...d,
      '  - contid: 1',
      `    keys: ${'k'.repeat(257)}`,
      '    daemons: [ta]',
    );
    errAt(6, 12, 'a rule key is 1 to 256 bytes', ...d, '  - contid: 1', '    keys: [""]', '    daemons: [ta]');
  });
  it('daemons must be defined', () => {
    errAt(
      6,
      19,
      'no daemon named "tc" is defined (did you mean "ta"?)',
      ...d,
      '  - contid: 1',
      '    daemons: [ta, tc]',
    );
    errAt(6, 14, 'the host log is controlled by host.keep', ...d, '  - contid: 1', '    daemons: host');
    errAt(6, 14, 'daemons is an empty list', ...d, '  - contid: 1', '    daemons: []');
    errAt(2, 28, 'no daemon named "x"', 'routes:', '  - { contid: 1, daemons: [x] }');
  });
  it('required keys', () => {
    errAt(5, 5, 'routes[0] needs a contid selector', ...d, '  - daemons: [ta]');
    errAt(5, 5, 'routes[0] needs daemons', ...d, '  - contid: 1');
  });
  it('continue and order', () => {
    const rs = route('  - { contid: 1, daemons: ta, continue: true }', '  - { contid: 2, daemons: tb }');
    assert.deepEqual(
      rs.map((r) => [r.index, r.continue]),
      [
        [0, true],
        [1, false],
      ],
    );
    errAt(5, 41, 'must be true or false', ...d, '  - { contid: 1, daemons: ta, continue: maybe }');
  });
  it('unknown route keys', () => {
    errAt(5, 18, 'unknown key "daemon" in routes[0] (did you mean "daemons"?)', ...d, '  - { contid: 1, daemon: ta }');
  });
});

describe('config: contid.cgroup_map', () => {
  it('full-path patterns', () => {
    const m = cfg(
      'contid:',
      '  cgroup_map:',
      '    - { pattern: "/system.slice/docker-*.scope", contid: 300 }',
      '    - { pattern: "/kubepods.slice/**/x-?.scope", contid: "0x20" }',
    ).contid.cgroupMap;
    assert.deepEqual(
      m.map((e) => [e.pattern, e.segments, e.contid]),
      [
        ['/system.slice/docker-*.scope', ['system.slice', 'docker-*.scope'], 300n],
        ['/kubepods.slice/**/x-?.scope', ['kubepods.slice', '**', 'x-?.scope'], 32n],
      ],
    );
    assert.deepEqual(m[1]?.pos, { file: FILE, line: 4, col: 7 });
  });
  it('patterns a user or a delegated subtree could match are refused where they are written', () => {
    // Old: accepted; `docker-*.scope` then mapped a host user's `systemd-run --user --scope --unit=docker-x` (and a
    // container's own `docker-<other id>.scope` below its cgroup) to the entry's contid.
    const map = (p: string): string[] => [
      'contid:',
      '  cgroup_map:',
      '    - { contid: 300,',
      `        pattern: "${p}" }`,
    ];
    errAt(
      4,
      18,
      /^contid\.cgroup_map\[0\]\.pattern: a pattern must be an absolute cgroup path/,
      ...map('docker-*.scope'),
    );
    errAt(4, 18, /first component \("\/\*\*"\) must be a literal name/, ...map('/**/docker-*.scope'));
    errAt(4, 18, /first component \("\/\*"\) must be a literal name/, ...map('/*/**/docker-*.scope'));
    errAt(4, 18, /first component \("\/docker-\*"\) must be a literal name/, ...map('/docker-*'));
    errAt(4, 18, /first component \("\/\?ser\.slice"\) must be a literal name/, ...map('/?ser.slice/**/x'));
    cfg(...map('/system.slice/docker-*.scope'));
  });
  it('pattern errors', () => {
    errAt(3, 18, 'must be an absolute cgroup path', 'contid:', '  cgroup_map:', '    - { pattern: "a/b", contid: 1 }');
    errAt(
      3,
      18,
      '"**" must be a whole path component',
      'contid:',
      '  cgroup_map:',
      '    - { pattern: "/a**/b", contid: 1 }',
    );
    errAt(3, 18, 'must be an absolute cgroup path', 'contid:', '  cgroup_map:', '    - { pattern: "**", contid: 1 }');
    errAt(3, 18, 'pattern is empty', 'contid:', '  cgroup_map:', '    - { pattern: "", contid: 1 }');
    errAt(
      3,
      18,
      'more than 16 wildcards',
      'contid:',
      '  cgroup_map:',
      `    - { pattern: "${'*'.repeat(17)}", contid: 1 }`,
    );
  });
  it('contid must be one settable id', () => {
    errAt(3, 32, 'is not a contid', 'contid:', '  cgroup_map:', '    - { pattern: "/x", contid: unset }');
    errAt(3, 32, 'is not a contid', 'contid:', '  cgroup_map:', '    - { pattern: "/x", contid: "1-2" }');
    errAt(
      3,
      32,
      'write "unset" instead',
      'contid:',
      '  cgroup_map:',
      '    - { pattern: "/x", contid: 18446744073709551615 }',
    );
  });
  it('required keys and unknown keys', () => {
    errAt(3, 7, 'needs a contid', 'contid:', '  cgroup_map:', '    - { pattern: "x" }');
    errAt(3, 7, 'needs a pattern', 'contid:', '  cgroup_map:', '    - { contid: 1 }');
    errAt(3, 20, 'unknown key "regex"', 'contid:', '  cgroup_map:', '    - { contid: 1, regex: x }');
    errAt(2, 3, 'unknown key "cgroupmap" in contid (did you mean "cgroup_map"?)', 'contid:', '  cgroupmap: []');
  });
});

describe('config: anchors, aliases and merge keys', () => {
  it('an aliased output and a merged one', () => {
    const c = cfg(
      'host:',
      '  log: &l { format: RAW, num_logs: 2 }',
      'daemons:',
      '  - name: a',
      '    log:',
      '      <<: *l',
      '      file: /x/a.log',
      '  - name: b',
      '    log: { <<: [*l], file: /x/b.log, num_logs: 9 }',
    );
    assert.equal(c.daemons[0]?.log.format, 'RAW');
    assert.equal(c.daemons[0]?.log.numLogs, 2);
    assert.equal(c.daemons[1]?.log.numLogs, 9);
    assert.equal(c.daemons[1]?.log.file, '/x/b.log');
  });
  it('an error reached through an alias points at the anchored node', () => {
    errAt(
      2,
      27,
      'timeout_ms must be between 10 and 600000, got 2',
      'host:',
      '  kernel: { enabled: &two 2 }',
      '  reassembly: { timeout_ms: *two }',
    );
  });
  it('a merge of a non-mapping', () => {
    errAt(3, 10, '"<<" needs a mapping', 'host:', '  log:', '    <<: [1, 2]');
  });
  it('alias bombs are cut off with an error, not expanded', () => {
    const lines = ['x0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]'];
    for (let i = 1; i < 12; i++)
      lines.push(`x${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(', ')}]`);
    lines.push('routes:', '  - { contid: [*a11], daemons: [x] }');
    const started = Date.now();
    const r = analyzeConfig(lines.join('\n'), FILE);
    assert.ok(r.errors.length > 0);
    assert.ok(Date.now() - started < 2000);
  });
});

describe('config: analyzeConfig collects everything', () => {
  it('several errors at once, in file order per section', () => {
    const r = analyzeConfig(
      ['host:', '  kernel: { enabled: 5 }', '  keep: nope', 'daemons:', '  - name: A'].join('\n'),
      FILE,
    );
    assert.equal(r.config, undefined);
    assert.deepEqual(
      r.errors.map((e) => [e.pos.line, e.pos.col]),
      [
        [2, 22],
        [3, 9],
        [5, 11],
      ],
    );
  });
  it('warns about daemons no route reaches and routes that can never match', () => {
    const r = analyzeConfig(
      [
        'daemons: [{ name: a }, { name: b }]',
        'routes:',
        '  - { contid: [unset, "0-0xfffffffffffffffe"], daemons: [b] }',
        '  - { contid: 1, daemons: [b] }',
      ].join('\n'),
      FILE,
    );
    assert.ok(r.config);
    assert.deepEqual(
      r.warnings.map((w) => [w.pos.line, w.pos.col, w.reason]),
      [
        [1, 11, 'daemon "a" is not named by any route; it receives no events'],
        [4, 5, 'route 1 can never match: route 0 matches every event first'],
      ],
    );
  });
  it('records where each setting was written', () => {
    const c = cfg('host:', '  rules: r.d', '  log:', '    file: a.log');
    assert.deepEqual(c.sources.get('host.rules'), { file: FILE, line: 2, col: 10 });
    assert.deepEqual(c.sources.get('host.log.file'), { file: FILE, line: 4, col: 11 });
  });
});
