// Config, rules and account files chosen by an operator or a tenant: FIFOs, devices, huge files and lines, many keys.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError, IoError, RuleError } from '../../src/errors';
import { analyzeConfig, loadConfig, MAX_CONFIG_BYTES } from '../../src/config';
import { duplicateKeyErrors, MAX_MAP_KEYS } from '../../src/config/walk';
import { loadRulesPath, parseRules } from '../../src/rules';
import { MAX_RULES_BYTES, MAX_RULES_LINES } from '../../src/rules/loader';
import { MAX_RULE_LINE_BYTES } from '../../src/rules/parser';
import { accountFiles, userId } from '../../src/rules/accounts';
import { lookupUser } from '../../src/daemon/users';
import { isolated, mkfifoSync } from '../helpers/isolated';
import { prng, intBelow } from '../helpers/prng';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'ambounded-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The remedy the trust check's refusals end with. */
const FIX = 'only root may be able to change it (chown root, chmod go-w, no symlink, in root-owned directories)';

describe('config file reading', () => {
  it('a FIFO as the config file is refused at once (the daemon used to block forever in readFileSync)', () => {
    withDir((dir) => {
      const fifo = mkfifoSync(join(dir, 'auditmux.yaml'));
      const r = isolated(`require(SRC + '/config').loadConfig(${JSON.stringify(fifo)}); out('loaded');`);
      assert.equal(r.killed, false, 'loadConfig hung on a FIFO');
      assert.deepEqual(r.value, {
        threw: 'ConfigError',
        code: 'E_CONFIG',
        // Refused by the trust check, before it is opened.
        message: `${fifo}:1:1: config file refused: ${fifo} is not a regular file; auditmux runs it as root, so ${FIX}`,
      });
      // config check reports it the same way instead of hanging.
      const c = isolated(
        `out(require(SRC + '/config').checkConfig(${JSON.stringify(fifo)}).errors.map((e) => e.reason));`,
      );
      assert.equal(c.killed, false);
      assert.deepEqual(c.value, [`config file ${fifo} is not a regular file (refused)`]);
    });
  });

  it('/dev/zero as the config file is refused without reading it (it used to grow the daemon by gigabytes)', () => {
    const r = isolated(`require(SRC + '/config').loadConfig('/dev/zero'); out('loaded');`);
    assert.equal(r.killed, false, 'loadConfig ran away on /dev/zero');
    assert.deepEqual(r.value, {
      threw: 'ConfigError',
      code: 'E_CONFIG',
      message: `/dev/zero:1:1: config file refused: /dev/zero is not a regular file; auditmux runs it as root, so ${FIX}`,
    });
  });

  it('a config file over the limit is refused before it is read whole; a symlinked config is refused as auditd does', () => {
    withDir((dir) => {
      const big = join(dir, 'big.yaml');
      writeFileSync(big, `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
      assert.throws(
        () => loadConfig(big),
        (e: unknown) => e instanceof ConfigError && /over the 1048576-byte limit/.test(e.reason) && e.pos.line === 1,
      );
      const real = join(dir, 'real.yaml');
      writeFileSync(real, 'host:\n  keep: all\n');
      assert.equal(loadConfig(real).host.keep, 'all');
      symlinkSync(real, join(dir, 'link.yaml'));
      assert.throws(
        () => loadConfig(join(dir, 'link.yaml')),
        (e: unknown) => e instanceof ConfigError && /config file refused: .* is a symlink/.test(e.reason),
      );
    });
  });

  it('a mapping with more keys than any config has is one positioned error; the file is parsed in linear time', () => {
    // ~80k keys in one mapping fit in the 1 MiB cap. yaml's own unique-key check compared every key with every
    // earlier one (minutes for this file); the cap error comes from one pass.
    const n = 80_000;
    const lines = ['host:'];
    for (let i = 0; i < n; i++) lines.push(`  k${i}: 1`);
    const text = lines.join('\n') + '\n';
    assert.ok(text.length < MAX_CONFIG_BYTES);
    const r = analyzeConfig(text, '/etc/auditmux/keys.yaml');
    assert.equal(r.config, undefined);
    assert.equal(
      r.errors[0]?.message,
      `/etc/auditmux/keys.yaml:${MAX_MAP_KEYS + 2}:3: more than ${MAX_MAP_KEYS} keys in one mapping`,
    );
  });

  it('duplicate keys are found as yaml finds them, at the duplicate, in block and flow maps and at any depth', () => {
    const at = (text: string): string[] =>
      analyzeConfig(text, 'f.yaml').errors.map((e) => `${e.pos.line}:${e.pos.col} ${e.reason}`);
    const dup = 'YAML DUPLICATE_KEY: Map keys must be unique';
    assert.deepEqual(at('host:\n  keep: all\n  keep: unrouted\n'), [`3:3 ${dup}`]);
    assert.deepEqual(at('host: {keep: all, "keep": unrouted}\n'), [`1:19 ${dup}`]);
    assert.deepEqual(at('daemons:\n  - name: a\n    queue: {depth: 1, depth: 2}\n    name: b\n'), [
      `3:23 ${dup}`,
      `4:5 ${dup}`,
    ]);
    // Same scalar value, different spelling: yaml calls these duplicates too.
    assert.deepEqual(
      at('x:\n  1: a\n  0x1: b\n  ~: c\n  null: d\n').filter((e) => e.includes('DUPLICATE')),
      [`3:3 ${dup}`, `5:3 ${dup}`],
    );
  });

  it('property: the linear duplicate check agrees with yaml uniqueKeys on random small documents (seeded)', () => {
    const rand = prng(0xd0b1e);
    const keys = ['a', '"a"', "'a'", 'b', '1', '0x1', '01', '~', 'null', 'true', 'True', '1.0', '"1"', '-0', '0'];
    for (let i = 0; i < 2000; i++) {
      const depth = 1 + intBelow(rand, 3);
      const lines: string[] = [];
      for (let d = 0; d < depth; d++) {
        for (let j = intBelow(rand, 5); j > 0; j--)
          lines.push(`${'  '.repeat(d)}${keys[intBelow(rand, keys.length)]}: v`);
        lines.push(`${'  '.repeat(d)}n${d}:`);
      }
      lines.push(
        `flow: {${Array.from({ length: intBelow(rand, 4) }, () => `${keys[intBelow(rand, keys.length)]}: 1`).join(', ')}}`,
      );
      const text = lines.join('\n') + '\n';
      const theirs = parseDocument(text, { uniqueKeys: true, strict: true, version: '1.2', prettyErrors: false })
        .errors.filter((e) => e.code === 'DUPLICATE_KEY')
        .map((e) => e.pos[0]);
      const mine = duplicateKeyErrors(
        parseDocument(text, { uniqueKeys: false, strict: true, version: '1.2', prettyErrors: false }),
      ).map((e) => e.offset);
      assert.deepEqual(mine, theirs, `#${i}: ${JSON.stringify(text)}`);
    }
  });
});

describe('rules file reading', () => {
  it('a FIFO as a rules file or inside rules.d is refused at once', () => {
    withDir((dir) => {
      const fifo = mkfifoSync(join(dir, 'tenant.rules'));
      const r = isolated(`require(SRC + '/rules').loadRulesPath(${JSON.stringify(fifo)}); out('loaded');`);
      assert.equal(r.killed, false, 'loadRulesPath hung on a FIFO');
      // Refused by the trust check, before it is opened.
      assert.deepEqual(r.value, {
        threw: 'RuleError',
        code: 'E_UNTRUSTED',
        message: `${fifo}:1:1: rules refused: ${fifo} is not a regular file; they go into the kernel as root, so ${FIX}`,
      });
      const d = isolated(`require(SRC + '/rules').loadRulesPath(${JSON.stringify(dir)}); out('loaded');`);
      assert.equal(d.killed, false, 'loadRulesPath hung on a FIFO in rules.d');
      assert.equal((d.value as { code: string }).code, 'E_UNTRUSTED');
    });
  });

  it('/dev/zero as a rules file is refused without reading it', () => {
    const r = isolated(`require(SRC + '/rules').loadRulesPath('/dev/zero'); out('loaded');`);
    assert.equal(r.killed, false);
    assert.deepEqual(r.value, {
      threw: 'RuleError',
      code: 'E_UNTRUSTED',
      message: `/dev/zero:1:1: rules refused: /dev/zero is not a regular file; they go into the kernel as root, so ${FIX}`,
    });
  });

  it(`a line longer than auditctl's ${MAX_RULE_LINE_BYTES} bytes is a RuleError at its line; one of exactly that length is read`, () => {
    const ok = `-w /etc/passwd -p wa -k k${' '.repeat(MAX_RULE_LINE_BYTES - 25)}`;
    assert.equal(Buffer.byteLength(ok), MAX_RULE_LINE_BYTES);
    assert.equal(parseRules(`${ok}\n`, 'r.rules').length, 1);
    const long = `# ${'\u00e9'.repeat(MAX_RULE_LINE_BYTES / 2)}`;
    assert.throws(
      () => parseRules(`-D\n${long}\n`, 'r.rules'),
      (e: unknown) =>
        e instanceof RuleError &&
        e.code === 'E_RULE_TOO_LONG' &&
        e.pos?.line === 2 &&
        e.message === `r.rules:2: line is longer than auditctl's ${MAX_RULE_LINE_BYTES}-byte limit`,
    );
    // With -c the bad line is kept as invalid (truncated in the command) and the rest is read, as for any bad line.
    const cmds = parseRules(`-c\n${'x'.repeat(10 << 20)}\n-D\n`, 'r.rules');
    assert.deepEqual(cmds.map((c) => c.kind).slice(-2), ['invalid', 'deleteAll']);
    const inv = cmds.find((c) => c.kind === 'invalid');
    assert.ok(inv && inv.text.length < 100);
  });

  it('a rules file over the size cap, or a rule set over the line cap, is refused before parsing', () => {
    withDir((dir) => {
      const big = join(dir, 'big.rules');
      writeFileSync(big, Buffer.alloc(MAX_RULES_BYTES + 1, 0x23));
      assert.throws(
        () => loadRulesPath(big),
        (e: unknown) => e instanceof IoError && e.code === 'E_TOO_LARGE',
      );
      const many = join(dir, 'many.rules');
      writeFileSync(many, '-D\n'.repeat(MAX_RULES_LINES + 1));
      assert.throws(
        () => loadRulesPath(many),
        (e: unknown) => e instanceof IoError && e.code === 'E_TOO_LARGE' && /more than 65536 lines/.test(e.message),
      );
      // rules.d: the caps apply to the directory as a whole, not per file.
      const d = join(dir, 'rules.d');
      mkdirSync(d);
      writeFileSync(join(d, '10-a.rules'), '-D\n'.repeat(MAX_RULES_LINES / 2 + 1));
      writeFileSync(join(d, '20-b.rules'), '-D\n'.repeat(MAX_RULES_LINES / 2 + 1));
      assert.throws(
        () => loadRulesPath(d),
        (e: unknown) => e instanceof IoError && e.code === 'E_TOO_LARGE' && /20-b\.rules/.test(e.message),
      );
      writeFileSync(join(d, '20-b.rules'), '-D\n');
      assert.equal(loadRulesPath(d).length > 0, true);
    });
  });
});

describe('account files (passwd, group)', () => {
  it('a FIFO or /dev/zero as passwd makes names unknown instead of hanging rules, config check or aux users', () => {
    withDir((dir) => {
      const etc = join(dir, 'etc');
      mkdirSync(etc);
      mkfifoSync(join(etc, 'passwd'));
      mkfifoSync(join(etc, 'group'));
      const conf = join(dir, 'auditmux.yaml');
      writeFileSync(conf, `host:\n  rules: null\ndaemons:\n  - { name: t, user: someone }\n`);
      const r = isolated(`const { checkConfig } = require(SRC + '/config');
        const { lookupUser } = require(SRC + '/daemon/users');
        const acc = require(SRC + '/rules/accounts');
        acc.accountFiles.passwd = ${JSON.stringify(join(etc, 'passwd'))};
        const c = checkConfig(${JSON.stringify(conf)}, { etcDir: ${JSON.stringify(etc)} });
        let u; try { lookupUser('someone', { file: 'x', line: 1 }, ${JSON.stringify(etc)}); } catch (e) { u = e.message; }
        out({ check: c.errors.length, user: u, rule: acc.userId('root') === undefined });`);
      assert.equal(r.killed, false, 'an account file read hung on a FIFO');
      assert.deepEqual(r.value, { check: 0, user: 'x:1: unknown user "someone"', rule: true });
    });
    const saved = accountFiles.passwd;
    try {
      accountFiles.passwd = '/dev/zero';
      assert.equal(userId('root'), undefined);
    } finally {
      accountFiles.passwd = saved;
    }
    assert.throws(() => lookupUser('root', { file: 'x', line: 1 }, '/dev'), /unknown user "root"/);
  });
});

describe('syslog output TLS files', () => {
  it('a FIFO or /dev/zero as the CA file is refused at once instead of blocking or filling the daemon', () => {
    withDir((dir) => {
      const fifo = mkfifoSync(join(dir, 'ca.pem'));
      for (const ca of [fifo, '/dev/zero']) {
        const spec = {
          type: 'syslog',
          name: 's',
          format: 'RAW',
          spool: { dir: null, maxBytes: 1 << 20, fullAction: 'syslog', fullExe: null },
          host: '127.0.0.1',
          port: 1,
          tls: { ca, cert: null, key: null, serverName: null, verify: true },
          facility: 13,
          severity: 6,
          appName: 'auditmux',
          hostname: null,
          networkRetryMs: 1000,
          networkFailureAction: 'ignore',
          networkFailureExe: null,
          resendWindowMs: 0,
        };
        const diag = '{ debug() {}, info() {}, warn() {}, error() {} }';
        const r = isolated(
          `setImmediate(() => process.exit(0)); const { SyslogOutput } = require(SRC + '/output/syslog'); new SyslogOutput(${JSON.stringify(spec)}, { contidKernel: false, diag: ${diag} }); out('opened');`,
        );
        assert.equal(r.killed, false, `SyslogOutput hung or ran away on ${ca}`);
        assert.deepEqual(
          r.value,
          { threw: 'IoError', code: 'E_NOT_REGULAR', message: `syslog CA file ${ca} is not a regular file (refused)` },
          r.stderr,
        );
      }
    });
  });
});
