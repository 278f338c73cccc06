// overflow: block — a stalled auxiliary daemon pauses the host's kernel intake instead of dropping, and nothing is
// lost.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, sleep, startEmulatedHost, syscallSerialCounts, until } from '../helpers/emulated-host';

const EXE = '/usr/bin/amtree-block';
type AuxStatus = { pid: number; queued: number; dropped: number; delivered: number; state: string };
const serials = (text: string, key: string): Set<string> => new Set(syscallSerialCounts(text, key).keys());

describe('overflow: block (emulated mainline kernel)', () => {
  it('a stopped daemon fills its queue, the host stops reading the kernel; on SIGCONT everything arrives, none dropped', async () => {
    const h = await startEmulatedHost({
      prefix: 'amblock-',
      exe: EXE,
      untaggedPid: 4545454,
      yaml: oneAuxYaml(
        'log: { file: {dir}/a.log, format: RAW }, isolation: process, queue: { depth: 50, overflow: block, block_timeout_ms: 60000 }',
      ),
    });
    const { dir, kernel, daemon, tagged } = h;
    const aux = (): AuxStatus => (daemon.status().aux as Record<string, AuxStatus>).a!;
    const N = 300;
    let stoppedPid = 0;
    try {
      await until(() => aux().state === 'running', 'the daemon to run');
      stoppedPid = aux().pid;
      assert.ok(stoppedPid > 0);
      process.kill(stoppedPid, 'SIGSTOP');
      for (let i = 0; i < N; i++) {
        kernel.emitEvent(tagged.pid!, 'getppid', 0);
        kernel.emitEvent(h.untaggedPid, 'getppid', 0);
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(
        () => (daemon.status().daemon as { intakePausedBy: string[] }).intakePausedBy.includes('a'),
        'intake to pause',
      );
      const hostBefore = serials(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k').size;
      await sleep(300);
      assert.equal(
        serials(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k').size,
        hostBefore,
        'paused: the host reads nothing, its log does not grow',
      );
      assert.ok(hostBefore < N, `the kernel still holds records (host has ${hostBefore} of ${N})`);
      assert.ok(aux().queued >= 50, `the queue is full (${aux().queued})`);
      process.kill(stoppedPid, 'SIGCONT');
      stoppedPid = 0;
      await until(
        () =>
          aux().queued === 0 &&
          aux().delivered === N &&
          !(daemon.status().daemon as { intakePausedBy: string[] }).intakePausedBy.length,
        'the queue to drain',
      );
      assert.equal(aux().dropped, 0);
    } finally {
      if (stoppedPid) process.kill(stoppedPid, 'SIGCONT');
      await h.stop();
    }
    try {
      assert.equal(
        serials(readFileSync(join(dir, 'a.log'), 'utf8'), 'tree-a').size,
        N,
        'the daemon has every tagged event',
      );
      assert.equal(
        serials(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k').size,
        N,
        'the host every untagged one',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
