// The host daemon on the real kernel: N audited syscalls give N events in a log that real ausearch/aureport read.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditClient } from '../../src/kernel/client';
import { kernelSkipReason, snapshotKernel, withKernel } from '../helpers/kernel';
import {
  buildSyscallProgram,
  kernelDaemonPid,
  readText,
  startDaemon,
  stopDaemon,
  syscallSerials,
  tempDir,
  cliPath,
  cli,
} from '../helpers/daemon';

function writeConfig(dir: string, opts: { format?: string; rules: string; extra?: string }): string {
  const file = join(dir, 'auditmux.yaml');
  writeFileSync(
    file,
    [
      'host:',
      '  kernel: { enabled: 1, failure: 1, backlog_limit: 8192, backlog_wait_time: 60000 }',
      `  rules: ${opts.rules}`,
      `  log: { file: ${join(dir, 'log', 'audit.log')}, format: ${opts.format ?? 'ENRICHED'}, flush: incremental_async, freq: 50, max_log_file: 100, max_log_file_action: rotate, num_logs: 5 }`,
      `  control_socket: ${join(dir, 'control.sock')}`,
      opts.extra ?? '',
    ].join('\n') + '\n',
  );
  return file;
}

describe('host daemon on the real kernel', { skip: kernelSkipReason() }, () => {
  for (const format of ['ENRICHED', 'RAW']) {
    it(`logs exactly N events for N audited syscalls (${format}); ausearch and aureport read the log`, () =>
      withKernel(async () => {
        const dir = tempDir('amd-');
        try {
          const prog = buildSyscallProgram(dir);
          const key = `am-e2e-${format.toLowerCase()}`;
          writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${key}\n`);
          const before = await snapshotKernel();
          const conf = writeConfig(dir, { format, rules: join(dir, 'host.rules') });
          const d = await startDaemon(conf);
          const N = 3000;
          execFileSync(prog, [String(N), '200']);
          await new Promise((r) => setTimeout(r, 300));
          // incremental_async: the addon's fsync thread did the syncs the batches asked for (none failed).
          const st = (await cli(conf, 'status')).stdout.split('\n');
          const num = (k: string): number => Number(st.find((l) => l.startsWith(`${k} `))?.split(' ')[1]);
          assert.ok(num('log.syncRequests') > 0, st.join('\n'));
          assert.ok(num('log.fsyncs') > 0 && num('log.fsyncs') <= num('log.syncRequests'), st.join('\n'));
          assert.equal(num('log.errors'), 0, st.join('\n'));
          assert.equal(await stopDaemon(d), 0, d.stderr());
          const log = join(dir, 'log', 'audit.log');
          const text = readText(log);
          assert.equal(syscallSerials(text, key).size, N, 'every syscall is one event in the log');
          assert.match(text, /^type=DAEMON_START msg=audit\(\d+\.\d{3}:\d+\): op=start /m);
          assert.match(
            text,
            /type=DAEMON_END msg=audit\(\d+\.\d{3}:\d+\): op=terminate auid=\d+ uid=\d+ ses=\d+ pid=\d+ res=success/,
          );
          assert.doesNotMatch(text, /type=EOE/);
          if (format === 'ENRICHED') assert.match(text, /\x1dARCH=x86_64 SYSCALL=getppid /);
          else assert.doesNotMatch(text, /\x1d/);

          const raw = spawnSync('ausearch', ['-if', log, '-k', key, '--raw'], { encoding: 'utf8', maxBuffer: 1 << 28 });
          assert.equal(raw.status, 0, raw.stderr);
          assert.equal(syscallSerials(raw.stdout, key).size, N, 'ausearch finds the same events');
          const rep = spawnSync('aureport', ['-if', log, '--summary', '-i'], { encoding: 'utf8' });
          assert.equal(rep.status, 0, rep.stderr);
          assert.match(rep.stdout, /Number of events: \d+/);
          const events = Number(/Number of events: (\d+)/.exec(rep.stdout)![1]);
          assert.ok(events >= N, `aureport counts ${events} events`);

          // The kernel is handed back as found.
          const after = await snapshotKernel();
          assert.deepEqual(after.status, before.status);
          assert.equal(after.rules.length, before.rules.length);
          assert.equal(await kernelDaemonPid(), 0);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }));
  }

  it('SIGHUP with a bad config keeps the old one; SIGUSR1 rotates; a second daemon is refused naming the first', () =>
    withKernel(async () => {
      const dir = tempDir('amd-');
      try {
        writeFileSync(join(dir, 'host.rules'), '-w /etc/auditmux-e2e-nonexistent-dir -p wa -k am-e2e-watch\n');
        const conf = writeConfig(dir, { rules: join(dir, 'host.rules') });
        const d = await startDaemon(conf);
        try {
          const second = spawnSync(process.execPath, [cliPath, 'daemon', '--config', conf, '--log-level', 'silent'], {
            encoding: 'utf8',
            timeout: 20000,
          });
          assert.equal(second.status, 6, second.stderr);
          assert.match(second.stderr, new RegExp(`pid ${d.child.pid}`));

          writeFileSync(conf, 'host:\n  kernel: { enabled: 7 }\n');
          d.child.kill('SIGHUP');
          await new Promise((r) => setTimeout(r, 500));
          assert.equal(d.child.exitCode, null, 'still running after a bad reload');
          assert.match(d.stderr(), /reload refused/);

          d.child.kill('SIGUSR1');
          for (let i = 0; i < 50 && !existsSync(join(dir, 'log', 'audit.log.1')); i++)
            await new Promise((r) => setTimeout(r, 50));
          assert.ok(readdirSync(join(dir, 'log')).includes('audit.log.1'), 'rotated');
          assert.match(
            readText(join(dir, 'log', 'audit.log.1')),
            /type=DAEMON_CONFIG msg=audit\([^)]*\): op=reconfigure state=no-change .*res=failed/,
          );
          // As auditd does, the rotation record opens the new log.
          assert.match(
            readText(join(dir, 'log', 'audit.log')),
            /^type=DAEMON_ROTATE msg=audit\([^)]*\): op=rotate-logs auid=\d+ uid=\d+ ses=\d+ pid=\d+ res=success/,
          );
        } finally {
          assert.equal(await stopDaemon(d), 0, d.stderr());
        }
        assert.doesNotMatch(
          readText(join(dir, 'log', 'audit.log.1')) + readText(join(dir, 'log', 'audit.log')),
          /start-failed/,
          'the refused instance wrote nothing',
        );
        assert.equal(await kernelDaemonPid(), 0);
        const c = await AuditClient.open();
        try {
          assert.equal((await c.listRules()).length, 0, 'the daemon removed the rules it loaded');
        } finally {
          c.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
