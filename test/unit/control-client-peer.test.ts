// The CLI's control requests go only to a listener running as root: an impostor's socket at the path gets nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../../src/daemon/control';

const root = process.geteuid?.() === 0;

test('a listener of another uid is refused before the request is sent', { skip: !root && 'needs root' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amctl-peer-'));
  chmodSync(dir, 0o777);
  const path = join(dir, 'control.sock');
  // nobody listens where the daemon's socket would be, and prints whatever it receives.
  const script = `require('net').createServer((c) => c.on('data', (d) => process.stdout.write('GOT ' + d)))
    .listen(${JSON.stringify(path)}, () => process.stdout.write('READY\\n'));`;
  const child = spawn(process.execPath, ['-e', script], {
    uid: 65534,
    gid: 65534,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  try {
    for (let i = 0; i < 200 && !out.includes('READY'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(out.includes('READY'), 'the impostor listens');
    await assert.rejects(
      controlRequest(path, 'container-hook', { state: { id: 'x' } }, 5000),
      (e: Error & { code?: string }) => e.code === 'E_UNTRUSTED_PEER' && /uid 65534, not root/.test(e.message),
    );
    // Give a request that was sent the time to arrive: nothing did.
    await new Promise((r) => setTimeout(r, 100));
    assert.doesNotMatch(out, /GOT/);
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
