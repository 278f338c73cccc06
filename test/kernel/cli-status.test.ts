// `auditmux status` prints what `auditctl -s` prints, then the running daemon's counters.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { cliPath, startDaemon, stopDaemon, tempDir } from '../helpers/daemon';

const status = (...args: string[]): string =>
  spawnSync(process.execPath, [cliPath, 'status', ...args], { encoding: 'utf8' }).stdout;
const auditctl = (): string => spawnSync('auditctl', ['-s'], { encoding: 'utf8' }).stdout;
// `lost` and `backlog` move on their own on a live kernel; every other line must be identical.
const stable = (t: string): string[] =>
  t
    .split('\n')
    .filter((l) => /^[a-z_]+ /.test(l) && !/^(lost|backlog) /.test(l))
    .slice(0, 8);

describe('auditmux status (real kernel)', { skip: kernelSkipReason() }, () => {
  it('matches auditctl -s without a daemon, and adds the daemon counters with one', () =>
    withKernel(async () => {
      const dir = tempDir('amstat-');
      try {
        const conf = join(dir, 'auditmux.yaml');
        writeFileSync(
          conf,
          `host:\n  rules: ~\n  log: { file: ${join(dir, 'audit.log')} }\n  control_socket: ${join(dir, 'control.sock')}\n`,
        );
        const alone = status('--config', conf);
        assert.deepEqual(stable(alone), stable(auditctl()));
        assert.match(alone, /auditmux daemon not running/);
        const d = await startDaemon(conf);
        try {
          const up = status('--config', conf);
          assert.deepEqual(stable(up), stable(auditctl()));
          assert.match(up, new RegExp(`^pid ${d.child.pid}$`, 'm'));
          assert.match(up, /^daemon\.records \d+$/m);
          assert.match(up, /^log\.records \d+$/m);
        } finally {
          assert.equal(await stopDaemon(d), 0, d.stderr());
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
