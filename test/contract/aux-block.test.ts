// overflow: block — a stalled auxiliary daemon pauses the host's kernel intake instead of dropping, and nothing is lost.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import { EmulatedKernel } from '../../src/kernel/emulated-kernel';
import { HostDaemon } from '../../src/daemon/host';

const EXE = '/usr/bin/amtree-block';
type AuxStatus = { pid: number; queued: number; dropped: number; delivered: number; state: string };

const serials = (text: string, key: string): Set<string> =>
  new Set(text.split('\n').filter((l) => l.includes('type=SYSCALL ') && l.includes(`key="${key}"`)).map((l) => /audit\(\d+\.\d+:(\d+)\)/.exec(l)![1]!));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(f: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 15_000;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('overflow: block (emulated mainline kernel)', () => {
  it('a stopped daemon fills its queue, the host stops reading the kernel; on SIGCONT everything arrives, none dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amblock-'));
    writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k host-k\n`);
    writeFileSync(join(dir, 'a.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${EXE} -k tree-a\n`);
    writeFileSync(join(dir, 'auditmux.yaml'), [
      'host:',
      `  rules: ${join(dir, 'host.rules')}`,
      `  log: { file: ${join(dir, 'audit.log')}, format: RAW }`,
      '  keep: unrouted',
      'daemons:',
      `  - { name: a, rules: ${join(dir, 'a.rules')}, log: { file: ${join(dir, 'a.log')}, format: RAW }, isolation: process, queue: { depth: 50, overflow: block, block_timeout_ms: 60000 } }`,
      'routes:',
      '  - { contid: 100, daemons: [a] }',
    ].join('\n') + '\n');
    const kernel = new EmulatedKernel({ ackOrder: 'random' });
    const daemon = new HostDaemon({ configPath: join(dir, 'auditmux.yaml'), diag: pino({ level: 'silent' }), socket: kernel.socket(), emulated: kernel, noControl: true });
    const tagged = spawn('sleep', ['30'], { stdio: 'ignore' });
    const aux = (): AuxStatus => (daemon.status().aux as Record<string, AuxStatus>).a!;
    const N = 300;
    let stoppedPid = 0;
    try {
      await daemon.start();
      await until(() => aux().state === 'running', 'the daemon to run');
      kernel.spawn(1, 0);
      kernel.spawn(tagged.pid!, 1, { exe: EXE });
      kernel.spawn(4545454, 1, { exe: EXE });
      daemon.contidSet(tagged.pid!, '100', false, { pid: process.pid, uid: 0, gid: 0 });
      stoppedPid = aux().pid;
      assert.ok(stoppedPid > 0);
      process.kill(stoppedPid, 'SIGSTOP');
      for (let i = 0; i < N; i++) {
        kernel.emitEvent(tagged.pid!, 'getppid', 0);
        kernel.emitEvent(4545454, 'getppid', 0);
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await until(() => (daemon.status().daemon as { intakePausedBy: string[] }).intakePausedBy.includes('a'), 'intake to pause');
      const hostBefore = serials(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k').size;
      await sleep(300);
      assert.equal(serials(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k').size, hostBefore, 'paused: the host reads nothing, its log does not grow');
      assert.ok(hostBefore < N, `the kernel still holds records (host has ${hostBefore} of ${N})`);
      assert.ok(aux().queued >= 50, `the queue is full (${aux().queued})`);
      process.kill(stoppedPid, 'SIGCONT');
      stoppedPid = 0;
      await until(() => aux().queued === 0 && aux().delivered === N && !(daemon.status().daemon as { intakePausedBy: string[] }).intakePausedBy.length, 'the queue to drain');
      assert.equal(aux().dropped, 0);
    } finally {
      if (stoppedPid) process.kill(stoppedPid, 'SIGCONT');
      await daemon.stop();
      tagged.kill();
    }
    try {
      assert.equal(serials(readFileSync(join(dir, 'a.log'), 'utf8'), 'tree-a').size, N, 'the daemon has every tagged event');
      assert.equal(serials(readFileSync(join(dir, 'audit.log'), 'utf8'), 'host-k').size, N, 'the host every untagged one');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
