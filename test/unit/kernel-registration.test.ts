// Register-first pieces that need no kernel registration: which inherited fd is ours (sd_listen_fds rules), which
// command lines take the fast daemon path, and the addon's refusal of an inherited fd that is not NETLINK_AUDIT.
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KernelError } from '../../src/errors';
import { listenedSocket } from '../../src/kernel/registration';
import { NativeAuditSocket } from '../../src/kernel/socket';
import { parseDaemonArgs } from '../../src/cli/daemon-start';

const dir = mkdtempSync(join(tmpdir(), 'amreg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('listenedSocket (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES)', () => {
  it('takes fd 3 and the registering pid from its name, only for this pid', () => {
    const env = { LISTEN_PID: '4242', LISTEN_FDS: '1', LISTEN_FDNAMES: 'audit-netlink-17' };
    assert.deepEqual(listenedSocket(env, 4242), { fd: 3, name: 'audit-netlink-17', registeredBy: 17 });
    assert.equal(listenedSocket(env, 4243), null, "another process's fds are not ours");
    assert.equal(listenedSocket({ ...env, LISTEN_PID: '4242x' }, 4242), null);
    assert.equal(listenedSocket({ ...env, LISTEN_FDS: 'one' }, 4242), null);
    assert.equal(listenedSocket({ LISTEN_FDS: '1' }, 4242), null);
  });

  it('finds the named socket among several; a single unnamed fd carries no registering pid', () => {
    const env = { LISTEN_PID: '9', LISTEN_FDS: '3', LISTEN_FDNAMES: 'other:x:audit-netlink-5' };
    assert.deepEqual(listenedSocket(env, 9), { fd: 5, name: 'audit-netlink-5', registeredBy: 5 });
    assert.equal(listenedSocket({ LISTEN_PID: '9', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' }, 9), null);
    assert.deepEqual(listenedSocket({ LISTEN_PID: '9', LISTEN_FDS: '1' }, 9), { fd: 3, name: '' });
  });
});

describe('parseDaemonArgs', () => {
  const argv = (...a: string[]): string[] => ['node', 'auditmux', ...a];
  it('takes the daemon command lines it knows', () => {
    assert.deepEqual(parseDaemonArgs(argv('daemon', '--config', '/a.yaml')), { configPath: '/a.yaml' });
    assert.deepEqual(parseDaemonArgs(argv('daemon', '-c', '/a.yaml', '--log-level', 'warn')), {
      configPath: '/a.yaml',
      logLevel: 'warn',
    });
    assert.deepEqual(parseDaemonArgs(argv('daemon', '--config=/b.yaml')), { configPath: '/b.yaml' });
    assert.deepEqual(parseDaemonArgs(argv('daemon', '--defaults')), { configPath: null });
    assert.deepEqual(parseDaemonArgs(argv('daemon')), { configPath: '/etc/auditmux/auditmux.yaml' });
  });

  it('leaves everything else to the full CLI, which reports it', () => {
    for (const a of [
      argv('status'),
      argv('daemon', '--help'),
      argv('daemon', '-h'),
      argv('daemon', '--config'),
      argv('daemon', '--config', ''),
      argv('daemon', '-c', 'a', '-c', 'b'),
      argv('daemon', '--log-level', 'loud'),
      argv('daemon', '--bogus'),
      argv('daemon', 'extra'),
      argv(),
    ])
      assert.equal(parseDaemonArgs(a), null, a.join(' '));
  });
});

describe('adopting an inherited fd', () => {
  it('refuses a file and a unix socket, and leaves the fd open (it is not ours)', async () => {
    const fd = openSync(join(dir, 'plain'), 'w');
    try {
      assert.throws(
        () => new NativeAuditSocket({ fd }),
        (e: unknown) => e instanceof KernelError && e.code === 'ENOTSOCK',
      );
      assert.ok(fstatSync(fd).isFile(), 'still open');
    } finally {
      closeSync(fd);
    }
    const server = createServer();
    await new Promise<void>((r) => server.listen(join(dir, 'u.sock'), r));
    try {
      const ufd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      assert.throws(
        () => new NativeAuditSocket({ fd: ufd }),
        (e: unknown) =>
          e instanceof KernelError && e.code === 'EPROTOTYPE' && /fd \d+ is not a NETLINK_AUDIT socket/.test(e.message),
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('takes a NETLINK_AUDIT socket as it is: same port, so the kernel keeps sending to it', () => {
    const a = new NativeAuditSocket({});
    const b = new NativeAuditSocket({ fd: a.fd });
    try {
      assert.equal(b.portId, a.portId);
      assert.equal(b.fd, a.fd);
    } finally {
      // Both hold the one fd: closed twice back to back, before anything can reuse its number.
      b.close();
      a.close();
    }
  });
});
