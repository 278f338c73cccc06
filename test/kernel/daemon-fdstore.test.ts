// Crash and restart without loss: the daemon stores its registered netlink socket with systemd (FDSTORE=1, played
// here by test/helpers/fd-store.ts), is killed -9 while the load runs, and its successor adopts the socket from fd 3:
// every event made while no process was there to read is in the log.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { buildSyscallProgram, cliPath, kernelDaemonPid, readText, syscallSerials, tempDir } from '../helpers/daemon';
import { fdStoreSupervisor, type Report } from '../helpers/fd-store';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the count of `key` events in the log stops moving (the daemon has written all it read). */
async function settled(log: string, key: string, quietMs = 300, timeoutMs = 20000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  for (;;) {
    const n = syscallSerials(readText(log), key).size;
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return n;
    if (Date.now() > deadline) return n;
    await sleep(50);
  }
}

describe('restart with the stored netlink socket', { skip: kernelSkipReason() }, () => {
  it('a kill -9 under load, restarted at once with fd 3, loses no event', () =>
    withKernel(async () => {
      const dir = tempDir('amfds-');
      const sup = await fdStoreSupervisor(join(dir, 'notify.sock'));
      const pids: number[] = [];
      try {
        const prog = buildSyscallProgram(dir);
        const key = 'amfds';
        writeFileSync(join(dir, 'host.rules'), `-a always,exit -F arch=b64 -S getppid -F exe=${prog} -k ${key}\n`);
        const conf = join(dir, 'auditmux.yaml');
        const log = join(dir, 'log', 'audit.log');
        writeFileSync(
          conf,
          [
            'host:',
            '  kernel: { enabled: 1, failure: 1, backlog_limit: 8192, backlog_wait_time: 0 }',
            `  rules: ${join(dir, 'host.rules')}`,
            `  log: { file: ${log}, format: RAW, max_log_file: 500, max_log_file_action: ignore }`,
            `  control_socket: ${join(dir, 'control.sock')}`,
          ].join('\n') + '\n',
        );
        const ready = (from: number): Promise<Report> =>
          sup.waitFor((r) => r.msg?.split('\n').includes('READY=1') === true, 20000, from);
        sup.start({
          argv: [process.execPath, cliPath, 'daemon', '--config', conf, '--log-level', 'warn'],
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          log: join(dir, 'daemon.out'),
          notify: true,
          restart: true,
        });
        const first = (await sup.waitFor((r) => r.started !== undefined)).started!;
        pids.push(first);
        await ready(0);
        assert.equal(await kernelDaemonPid(), first, 'the kernel names the first daemon');
        const stored = await sup.waitFor((r) => (r.stored ?? 0) > 0);
        assert.match(stored.msg!, new RegExp(`^FDSTORE=1\nFDNAME=audit-netlink-${first}$`));

        const N = 20000;
        const load = spawn(prog, [String(N), '20'], { stdio: 'ignore' });
        const loadDone = once(load, 'exit');
        await sleep(300);
        // Between two calls of the load, once the daemon has written what it read: what a kill -9 can cost at any
        // moment is the batch in its hands (docs/design.md); the restart gap is what this test is about.
        load.kill('SIGSTOP');
        const before = await settled(log, key);
        assert.ok(before > 0 && before < N, `events before the kill: ${before}`);
        const from = sup.reports.length;
        process.kill(first, 'SIGKILL');
        load.kill('SIGCONT');
        const second = await sup.waitFor((r) => r.started !== undefined, 15000, from);
        pids.push(second.started!);
        assert.equal(second.fds, 1, 'the successor gets the stored socket');
        await ready(from);
        await loadDone;
        const after = await settled(log, key, 500);
        assert.equal(
          after,
          N,
          `every event made around the kill -9 is logged (${N - after} missing; ${before} before the kill)\n` +
            `${JSON.stringify(sup.reports)}\n${readText(join(dir, 'daemon.out'))}`,
        );
        // The successor adopted the registration: the kernel still names the dead first daemon.
        assert.equal(await kernelDaemonPid(), first);

        // A stop, not a crash: the successor asks the store to drop the socket, and the kernel lets it go.
        const stopFrom = sup.reports.length;
        process.kill(second.started!, 'SIGTERM');
        const exit = await sup.waitFor((r) => r.exited === second.started, 20000, stopFrom);
        assert.equal(exit.code, 0, readText(join(dir, 'daemon.out')));
        const removed = await sup.waitFor((r) => r.msg?.startsWith('FDSTOREREMOVE=1') === true, 5000, stopFrom);
        assert.deepEqual(removed.store, []);
      } finally {
        // The supervisor first, so that nothing restarts what is killed next; with it go the stored fds.
        await sup.close();
        for (const p of [...pids, ...sup.reports.flatMap((r) => (r.started ? [r.started] : []))]) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }));
  it('a config error after registering first is reported, and the kernel and the store are handed back', () =>
    withKernel(async () => {
      const dir = tempDir('amfds-bad-');
      const sup = await fdStoreSupervisor(join(dir, 'notify.sock'));
      try {
        const conf = join(dir, 'auditmux.yaml');
        writeFileSync(conf, 'host:\n  kernel: { enabled: 7 }\n');
        sup.start({
          argv: [process.execPath, cliPath, 'daemon', '--config', conf],
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          log: join(dir, 'daemon.out'),
          notify: true,
          restart: false,
        });
        const exit = await sup.waitFor((r) => r.exited !== undefined);
        const out = readText(join(dir, 'daemon.out'));
        assert.equal(exit.code, 3, out);
        assert.match(out, /^auditmux: .*enabled/m);
        assert.equal(await kernelDaemonPid(), 0, 'the kernel names no dead daemon');
        // It had stored the socket right after registering; it takes it back out.
        assert.ok(sup.reports.some((r) => r.stored === 1));
        assert.deepEqual(sup.reports.filter((r) => r.store !== undefined).pop()!.store, []);
      } finally {
        await sup.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }));

  it('an inherited fd 3 that is not a NETLINK_AUDIT socket is refused with a clear error', () =>
    withKernel(async () => {
      const dir = tempDir('amfds-fd-');
      const fd = openSync(join(dir, 'not-a-socket'), 'w');
      try {
        const conf = join(dir, 'auditmux.yaml');
        writeFileSync(
          conf,
          `host:\n  log: { file: ${join(dir, 'audit.log')} }\n  control_socket: ${join(dir, 'c.sock')}\n`,
        );
        // LISTEN_PID is the pid of the process that ends up running the daemon: the shell execs it.
        const r = spawnSync(
          '/bin/sh',
          ['-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', 'sh', process.execPath, cliPath, 'daemon', '--config', conf],
          { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8', timeout: 20000 },
        );
        assert.equal(r.status, 5, r.stderr);
        assert.match(r.stderr, /^auditmux: fd 3 is not a NETLINK_AUDIT socket/m);
        assert.equal(await kernelDaemonPid(), 0);
      } finally {
        closeSync(fd);
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
