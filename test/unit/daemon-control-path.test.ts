// The control socket's whole path is checked, not only its directory: below a directory another user owns (who could
// move the socket's directory away and put their own there), the daemon refuses to listen.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer } from '../../src/daemon/control';
import { AuditmuxError } from '../../src/errors';

const notRoot = process.geteuid?.() === 0 ? undefined : 'needs root (chown)';

describe('control socket path trust', () => {
  it("refuses a socket whose directory is below another user's directory", { skip: notRoot }, async () => {
    const top = mkdtempSync(join(tmpdir(), 'amctlpath-'));
    try {
      const theirs = join(top, 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      chownSync(theirs, 65534, 65534);
      const path = join(theirs, 'run', 'control.sock');
      const server = new ControlServer(path, () => Promise.resolve({}));
      const listening = server.listen();
      // Closed again if it did listen (the test process would wait on it).
      listening.then(
        () => server.close(),
        () => undefined,
      );
      await assert.rejects(
        listening,
        (e: unknown) =>
          e instanceof AuditmuxError &&
          e.code === 'E_UNSAFE_DIR' &&
          e.message.includes(`${theirs} is owned by uid 65534, not root`),
      );
      assert.ok(!existsSync(path), 'nothing listens there');
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  it('listens below root-owned directories, the same layout otherwise', async () => {
    const top = mkdtempSync(join(tmpdir(), 'amctlpath-'));
    try {
      mkdirSync(join(top, 'ours'), { mode: 0o755 });
      const server = new ControlServer(join(top, 'ours', 'run', 'control.sock'), () => Promise.resolve({}));
      await server.listen();
      await server.close();
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});
