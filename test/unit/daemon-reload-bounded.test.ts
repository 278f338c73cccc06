// A reload or `aux add` naming a FIFO, a device or an oversized file fails at once and leaves the daemon serving as
// before.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isolated } from '../helpers/isolated';

/** The remedies the trust check's refusals end with. */
const FIX = 'only root may be able to change it (chown root, chmod go-w, no symlink, in root-owned directories)';
const GO = `they go into the kernel as root, so ${FIX}`;

describe('host daemon: bad files at reload and aux add', () => {
  it('FIFOs, /dev/zero and oversized rules fail fast; the running config, rules and daemons stay (emulated kernel, child process)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amreload-'));
    try {
      // In a child: the old daemon blocked forever (synchronously) in readFileSync on the FIFO; the guard kills it.
      const r = isolated(
        `(async () => {
        const fs = require('fs');
        const { execFileSync } = require('child_process');
        const { join } = require('path');
        const pino = require(require.resolve('pino', { paths: [SRC] }));
        const { EmulatedKernel } = require(SRC + '/../test/helpers/emulated-kernel');
        const { HostDaemon } = require(SRC + '/daemon/host');
        const dir = ${JSON.stringify(dir)};
        const conf = join(dir, 'auditmux.yaml');
        const confText = 'host:\\n  rules: ' + join(dir, 'host.rules') + '\\n  log: { file: ' + join(dir, 'audit.log') + ', format: RAW }\\n';
        fs.writeFileSync(join(dir, 'host.rules'), '-a always,exit -F arch=b64 -S getppid -k host-k\\n');
        fs.writeFileSync(conf, confText);
        const kernel = new EmulatedKernel({});
        const d = new HostDaemon({ configPath: conf, diag: pino({ level: 'silent' }), socket: kernel.socket(), noControl: true });
        await d.start();
        const res = {};
        const err = (e) => ({ type: e.constructor.name, code: e.code, message: e.message });
        const rulesBefore = kernel.rules ? kernel.rules.length : null;
        // 1. The config file swapped for a FIFO.
        fs.rmSync(conf);
        execFileSync('mkfifo', [conf]);
        res.fifoConfig = await d.reload();
        // 2. The config restored, the host rules file swapped for a FIFO.
        fs.rmSync(conf);
        fs.writeFileSync(conf, confText);
        fs.rmSync(join(dir, 'host.rules'));
        execFileSync('mkfifo', [join(dir, 'host.rules')]);
        res.fifoRules = await d.reload();
        // 3. aux add with a FIFO, /dev/zero, an oversized file and a 10 MB line as its rules.
        fs.mkdirSync(join(dir, 'logs'));
        execFileSync('mkfifo', [join(dir, 't.rules')]);
        fs.writeFileSync(join(dir, 'big.rules'), Buffer.alloc((16 << 20) + 1, 0x23));
        fs.writeFileSync(join(dir, 'line.rules'), '-a always,exit -S getppid -k ' + 'x'.repeat(10 << 20) + '\\n');
        res.aux = [];
        for (const f of [join(dir, 't.rules'), '/dev/zero', join(dir, 'big.rules'), join(dir, 'line.rules')]) {
          try { await d.auxAdd({ name: 't', rules: f, contid: ['100'], log: join(dir, 'logs', 't.log') }); res.aux.push('added'); }
          catch (e) { res.aux.push(err(e)); }
        }
        // Still serving, with what it had.
        const st = d.status();
        res.config = st.daemon.config;
        res.reloadFailures = st.daemon.reloadFailures;
        res.auxCount = Object.keys(st.aux).length;
        res.rulesKept = kernel.rules ? kernel.rules.length === rulesBefore : null;
        fs.writeFileSync(join(dir, 'ok.rules'), '-a always,exit -F arch=b64 -S getppid -k tenant-k\\n');
        res.goodAdd = (await d.auxAdd({ name: 't', rules: join(dir, 'ok.rules'), contid: ['100'], log: join(dir, 'logs', 't.log') })).name;
        await d.stop();
        out(res);
        process.exit(0);
      })().catch((e) => { out({ crashed: String(e && e.stack || e) }); process.exit(1); });`,
        60_000,
      );
      assert.equal(r.killed, false, `the daemon hung on a bad file\n${r.stderr}`);
      const v = r.value as Record<string, unknown>;
      assert.ok(!('crashed' in v), String(v.crashed));
      const conf = join(dir, 'auditmux.yaml');
      assert.deepEqual(v.fifoConfig, {
        ok: false,
        // Refused by the trust check, before it is opened.
        error: `${conf}:1:1: config file refused: ${conf} is not a regular file; auditmux runs it as root, so ${FIX}`,
      });
      assert.deepEqual(v.fifoRules, {
        ok: false,
        error: `${join(dir, 'host.rules')}:1:1: rules refused: ${join(dir, 'host.rules')} is not a regular file; ${GO}`,
      });
      assert.deepEqual(v.aux, [
        {
          type: 'RuleError',
          code: 'E_UNTRUSTED',
          message: `${join(dir, 't.rules')}:1:1: rules refused: ${join(dir, 't.rules')} is not a regular file; ${GO}`,
        },
        {
          type: 'RuleError',
          code: 'E_UNTRUSTED',
          message: `/dev/zero:1:1: rules refused: /dev/zero is not a regular file; ${GO}`,
        },
        {
          type: 'IoError',
          code: 'E_TOO_LARGE',
          message: `rules ${join(dir, 'big.rules')} is ${(16 << 20) + 1} bytes, over the ${16 << 20}-byte limit`,
        },
        {
          type: 'RuleError',
          code: 'E_RULE_TOO_LONG',
          message: `${join(dir, 'line.rules')}:1: line is longer than auditctl's 6143-byte limit`,
        },
      ]);
      assert.equal(v.config, conf);
      assert.equal(v.reloadFailures, 2);
      assert.equal(v.auxCount, 0);
      assert.equal(v.rulesKept, true);
      assert.equal(v.goodAdd, 't');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
