// sd_notify through the addon: datagrams reach a real AF_UNIX datagram socket, path or abstract; no socket, no-op.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sdNotify } from '../../src/daemon/sd-notify';
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
