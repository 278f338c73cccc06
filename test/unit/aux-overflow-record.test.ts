// A full auxiliary queue that drops events says so in the host log (as auditd's dispatcher logs a full queue):
// counted records, not one per event, whose counts add up to what the queue dropped.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { oneAuxYaml, startEmulatedHost, syscallSerialCounts, until } from '../helpers/emulated-host';

const EXE = '/usr/bin/amtree-overflow';
type AuxStatus = { pid: number; queued: number; dropped: number; delivered: number; state: string };

describe('overflow: drop_newest (emulated mainline kernel)', () => {
  it('a stalled daemon drops past its depth; the host log tells how many, and the daemon gets the rest', async () => {
    const h = await startEmulatedHost({
      prefix: 'amovf-',
      exe: EXE,
      untaggedPid: 4545455,
      yaml: oneAuxYaml(
        'log: { file: {dir}/a.log, format: RAW }, isolation: process, queue: { depth: 20, overflow: drop_newest }',
      ),
    });
    const { dir, kernel, daemon, tagged } = h;
    const aux = (): AuxStatus => (daemon.status().aux as Record<string, AuxStatus>).a!;
    const N = 100;
    let stoppedPid = 0;
    let dropped: number;
    try {
      await until(() => aux().state === 'running', 'the daemon to run');
      stoppedPid = aux().pid;
      // Stopped: nothing leaves the queue (the pipe's buffer takes what is in flight at most).
      process.kill(stoppedPid, 'SIGSTOP');
      for (let i = 0; i < N; i++) {
        kernel.emitEvent(tagged.pid!, 'getppid', 0);
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(() => aux().dropped > 0, 'drops');
      await until(
        () =>
          /op=aux-overflow daemon=a dropped=\d+ reason=queue-full/.test(readFileSync(join(dir, 'audit.log'), 'utf8')),
        'the first drop told at once',
      );
      process.kill(stoppedPid, 'SIGCONT');
      stoppedPid = 0;
      await until(() => aux().queued === 0, 'the queue to drain');
      dropped = aux().dropped;
      assert.ok(dropped > 0 && dropped < N, `some dropped (${dropped})`);
    } finally {
      if (stoppedPid) process.kill(stoppedPid, 'SIGCONT');
      await h.stop();
    }
    try {
      const hostLog = readFileSync(join(dir, 'audit.log'), 'utf8');
      const told = [...hostLog.matchAll(/op=aux-overflow daemon=a dropped=(\d+) reason=queue-full/g)].map((m) =>
        Number(m[1]),
      );
      assert.ok(told.length >= 1 && told.length < dropped, `a few records, not one per event (${told.length})`);
      assert.equal(
        told.reduce((a, b) => a + b, 0),
        dropped,
        'the records add up to what was dropped',
      );
      const got = syscallSerialCounts(readFileSync(join(dir, 'a.log'), 'utf8'), 'tree-a').size;
      assert.equal(got, N - dropped, 'every event not dropped reached the daemon');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
