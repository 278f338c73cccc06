// sd_notify through the addon: datagrams reach a real AF_UNIX datagram socket, path or abstract; no socket, no-op.
// A file descriptor goes only to the NOTIFY_SOCKET of a process systemd started; the watchdog pings from a timer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sdNotify, startWatchdog, takeNotifyEnv, watchdogUsec } from '../../src/daemon/sd-notify';
import { listenNotify } from '../helpers/notify-socket';

const dir = mkdtempSync(join(tmpdir(), 'amnotify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('sdNotify', () => {
  it('sends the state to a socket path', async () => {
    const l = await listenNotify(join(dir, 'notify.sock'));
    try {
      assert.equal(sdNotify('READY=1\nSTATUS=x', { NOTIFY_SOCKET: l.path }), true);
      assert.equal(await l.waitFor(() => true), 'READY=1\nSTATUS=x');
    } finally {
      await l.close();
    }
  });

  it('sends to an abstract socket (@name), as systemd may give', async () => {
    const l = await listenNotify(`@auditmux-test-${process.pid}`);
    try {
      assert.equal(sdNotify('STOPPING=1', { NOTIFY_SOCKET: l.path }), true);
      assert.equal(await l.waitFor(() => true), 'STOPPING=1');
    } finally {
      await l.close();
    }
  });

  it('is a no-op without NOTIFY_SOCKET, and reports (never throws) a socket nobody listens on', () => {
    assert.equal(sdNotify('READY=1', {}), false);
    const errors: Error[] = [];
    assert.equal(
      sdNotify('READY=1', { NOTIFY_SOCKET: join(dir, 'nobody.sock') }, (e) => errors.push(e)),
      false,
    );
    assert.equal((errors[0] as Error & { syscall?: string }).syscall, 'sendmsg');
    assert.equal(
      sdNotify('READY=1', { NOTIFY_SOCKET: 'relative' }, (e) => errors.push(e)),
      false,
    );
    assert.equal(errors.length, 2);
  });
});

/** A NOTIFY_SOCKET that reports each datagram with the number of fds (SCM_RIGHTS) it carried, in order. */
const FD_SERVER = `
import array, json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('ready', flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    fds = array.array('i')
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % 4])
    print(json.dumps({'msg': msg.decode(), 'fds': len(fds)}), flush=True)
`;

async function fdListener(path: string): Promise<{
  next: () => Promise<{ msg: string; fds: number }>;
  close: () => Promise<void>;
}> {
  const child = spawn('python3', ['-c', FD_SERVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: Array<() => void> = [];
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      for (const w of waiting.splice(0)) w();
    }
  });
  const line = async (): Promise<string> => {
    while (lines.length === 0) {
      if (child.exitCode !== null) throw new Error('listener exited');
      await new Promise<void>((r) => waiting.push(r));
    }
    return lines.shift()!;
  };
  assert.equal(await line(), 'ready');
  return {
    next: async () => JSON.parse(await line()) as { msg: string; fds: number },
    close: async () => {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    },
  };
}

describe('sdNotify: file descriptors only to systemd', () => {
  it('sends no fd to a NOTIFY_SOCKET without SYSTEMD_EXEC_PID, or with another pid in it; sends it with ours', async () => {
    const l = await fdListener(join(dir, 'fd.sock'));
    const fd = openSync(join(dir, 'passed'), 'w');
    try {
      for (const env of [
        { NOTIFY_SOCKET: join(dir, 'fd.sock') },
        { NOTIFY_SOCKET: join(dir, 'fd.sock'), SYSTEMD_EXEC_PID: String(process.pid + 1) },
      ]) {
        const errors: Error[] = [];
        assert.equal(
          sdNotify('FDSTORE=1\nFDNAME=audit-netlink-1', env, (e) => errors.push(e), fd),
          false,
        );
        assert.match(errors[0]?.message ?? '', /not from systemd/);
        // Datagrams arrive in order: the next one is the marker, so nothing went out before it.
        assert.equal(sdNotify('MARK=1', env), true);
        assert.deepEqual(await l.next(), { msg: 'MARK=1', fds: 0 });
      }
      const ours = { NOTIFY_SOCKET: join(dir, 'fd.sock'), SYSTEMD_EXEC_PID: String(process.pid) };
      assert.equal(sdNotify('FDSTORE=1\nFDNAME=audit-netlink-1', ours, undefined, fd), true);
      assert.deepEqual(await l.next(), { msg: 'FDSTORE=1\nFDNAME=audit-netlink-1', fds: 1 });
    } finally {
      closeSync(fd);
      await l.close();
    }
  });

  it("takeNotifyEnv takes NOTIFY_SOCKET and the watchdog's variables out of the environment children get", () => {
    const env: NodeJS.ProcessEnv = {
      NOTIFY_SOCKET: '/run/systemd/notify',
      SYSTEMD_EXEC_PID: '42',
      WATCHDOG_USEC: '30000000',
      WATCHDOG_PID: '42',
      PATH: '/usr/bin',
    };
    assert.deepEqual(takeNotifyEnv(env), {
      NOTIFY_SOCKET: '/run/systemd/notify',
      SYSTEMD_EXEC_PID: '42',
      WATCHDOG_USEC: '30000000',
      WATCHDOG_PID: '42',
    });
    assert.deepEqual(env, { SYSTEMD_EXEC_PID: '42', PATH: '/usr/bin' });
  });
});

describe('the watchdog (WATCHDOG_USEC, WATCHDOG_PID)', () => {
  it('is on for this pid only, with a notify socket and a positive interval', () => {
    const s = '/run/systemd/notify';
    assert.equal(watchdogUsec({ NOTIFY_SOCKET: s, WATCHDOG_USEC: '30000000' }, 7), 30000000);
    assert.equal(watchdogUsec({ NOTIFY_SOCKET: s, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 7), 30000000);
    assert.equal(watchdogUsec({ NOTIFY_SOCKET: s, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, 7), null);
    assert.equal(watchdogUsec({ NOTIFY_SOCKET: s, WATCHDOG_USEC: '0' }, 7), null);
    assert.equal(watchdogUsec({ NOTIFY_SOCKET: s, WATCHDOG_USEC: 'x' }, 7), null);
    assert.equal(watchdogUsec({ WATCHDOG_USEC: '30000000' }, 7), null);
    assert.equal(startWatchdog({ NOTIFY_SOCKET: s, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }), null);
  });

  it('sends WATCHDOG=1 at once and every half interval until stopped', async () => {
    const l = await listenNotify(join(dir, 'watchdog.sock'));
    try {
      const stop = startWatchdog({ NOTIFY_SOCKET: l.path, WATCHDOG_USEC: '100000' });
      assert.ok(stop, 'on');
      try {
        await l.waitFor(() => l.messages.filter((m) => m === 'WATCHDOG=1').length >= 3);
      } finally {
        stop();
      }
      assert.ok(l.messages.every((m) => m === 'WATCHDOG=1'));
    } finally {
      await l.close();
    }
  });
});
