// Type=notify on the real kernel: READY=1 comes only once the kernel names the daemon, its rules are in and its
// control socket answers; STOPPING=1 comes on SIGTERM.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditClient } from '../../src/kernel/client';
import { controlRequest } from '../../src/daemon/control';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { cliPath, kernelDaemonPid, tempDir } from '../helpers/daemon';
import { listenNotify } from '../helpers/notify-socket';

describe('systemd readiness', { skip: kernelSkipReason() }, () => {
  it('READY=1 after registration, rules and control socket; STOPPING=1 on SIGTERM', () =>
    withKernel(async () => {
      const dir = tempDir('amnotify-e2e-');
      const l = await listenNotify(join(dir, 'notify.sock'));
      try {
        writeFileSync(join(dir, 'host.rules'), '-a always,exit -F arch=b64 -S getppid -F uid=4000001 -k amnotify\n');
        const conf = join(dir, 'auditmux.yaml');
        writeFileSync(
          conf,
          [
            'host:',
            '  kernel: { enabled: 1 }',
            `  rules: ${join(dir, 'host.rules')}`,
            `  log: { file: ${join(dir, 'log', 'audit.log')} }`,
            `  control_socket: ${join(dir, 'control.sock')}`,
          ].join('\n') + '\n',
        );
        const child = spawn(process.execPath, [cliPath, 'daemon', '--config', conf, '--log-level', 'warn'], {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: l.path },
        });
        let err = '';
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        const exited = once(child, 'exit');
        try {
          const ready = await l.waitFor(
            (m) => m.split('\n').includes('READY=1'),
            15000,
            () => err,
          );
          // What READY promises, checked right after it arrived.
          assert.equal(await kernelDaemonPid(), child.pid, 'the kernel names the daemon');
          const c = await AuditClient.open();
          try {
            const rules = await c.listRules();
            assert.ok(
              rules.some((r) => r.includes('amnotify')),
              'rules are loaded',
            );
          } finally {
            c.close();
          }
          await controlRequest(join(dir, 'control.sock'), 'status', {}, 2000);
          assert.match(ready, new RegExp(`MAINPID=${child.pid}`));
          assert.equal(l.messages.filter((m) => m.includes('READY=1')).length, 1);
          child.kill('SIGTERM');
          const [code] = await exited;
          assert.equal(code, 0, err);
          await l.waitFor((m) => m === 'STOPPING=1');
        } finally {
          if (child.exitCode === null) child.kill('SIGKILL');
        }
      } finally {
        await l.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
