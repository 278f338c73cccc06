// A daemon killed -9 on the real kernel, then its successor (without the tenant) started and stopped cleanly: the
// kernel is as it was before the first one started, no rule of either left and `enabled` as found. Before the state
// file (src/daemon/kernel-state.ts), the successor took the killed daemon's rules for someone else's and its applied
// settings for those to restore.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditClient } from '../../src/kernel/client';
import { decodeRule } from '../../src/rules';
import { kernelSkipReason, snapshotKernel, withKernel } from '../helpers/kernel';
import { kernelDaemonPid, startDaemon, stopDaemon, tempDir, type RunningDaemon } from '../helpers/daemon';

async function kernelNow(): Promise<{ keys: string[]; enabled: number }> {
  const c = await AuditClient.open();
  try {
    const keys = (await c.listRules()).map((b) => decodeRule(b).keys[0] ?? '').sort();
    return { keys, enabled: (await c.getStatus()).enabled };
  } finally {
    c.close();
  }
}

describe('a crash restart on the real kernel', { skip: kernelSkipReason() }, () => {
  it("the successor's clean stop removes the killed daemon's rules and restores what it found", () =>
    withKernel(async () => {
      const dir = tempDir('amtko-');
      const running: RunningDaemon[] = [];
      try {
        const before = await snapshotKernel();
        const rule = (key: string, sc: string): string =>
          `-a always,exit -F arch=b64 -S ${sc} -F exe=/usr/bin/${key}-nonexistent -k ${key}\n`;
        writeFileSync(join(dir, 'host.rules'), rule('am-tko-host', 'getppid'), { mode: 0o644 });
        writeFileSync(join(dir, 'a.rules'), rule('am-tko-a', 'getpid'), { mode: 0o644 });
        const conf = join(dir, 'auditmux.yaml');
        const yaml = (tenant: boolean): string =>
          [
            'host:',
            // Other than what the kernel had: the successor must put back the first daemon's finding, not these.
            `  kernel: { enabled: 1, failure: 1, backlog_limit: ${before.status.backlogLimit + 1000}, backlog_wait_time: 60000 }`,
            `  rules: ${join(dir, 'host.rules')}`,
            `  log: { file: ${join(dir, 'log', 'audit.log')}, format: RAW }`,
            `  control_socket: ${join(dir, 'control.sock')}`,
            ...(tenant
              ? [
                  'daemons:',
                  `  - { name: a, rules: ${join(dir, 'a.rules')}, isolation: inline }`,
                  'routes:',
                  '  - { contid: 100, daemons: [a] }',
                ]
              : []),
          ].join('\n') + '\n';
        writeFileSync(conf, yaml(true));

        const a = await startDaemon(conf);
        running.push(a);
        const ours = (keys: string[]): string[] => keys.filter((k) => k.startsWith('am-tko-'));
        const running1 = await kernelNow();
        assert.deepEqual(ours(running1.keys), ['am-tko-a', 'am-tko-host']);
        assert.equal(running1.enabled, 1);
        a.child.kill('SIGKILL');
        await a.exited;

        writeFileSync(conf, yaml(false));
        const b = await startDaemon(conf);
        running.push(b);
        assert.deepEqual(
          ours((await kernelNow()).keys),
          ['am-tko-host'],
          "the gone tenant's rules were deleted at start",
        );
        assert.equal(await stopDaemon(b), 0, b.stderr());
        assert.match(b.stderr(), /did not stop cleanly/);

        const after = await snapshotKernel();
        assert.deepEqual(after.status, before.status, 'the settings the killed daemon found');
        assert.equal(after.rules.length, before.rules.length, 'no rule of either daemon left');
        assert.deepEqual(ours((await kernelNow()).keys), []);
        assert.equal(await kernelDaemonPid(), 0);
        assert.equal(existsSync(join(dir, 'kernel.state')), false);
      } finally {
        for (const d of running) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
        await Promise.all(running.map((d) => d.exited));
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
