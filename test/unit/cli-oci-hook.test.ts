// `auditmux oci-hook` without a daemon: fails open by default, closed on request, bounded in size and time.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { ControlServer } from '../../src/daemon/control';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatContainers, runOciHook } from '../../src/cli/oci-hook';

function hook(
  input: string | Buffer | null,
  o: { failClosed?: boolean; timeoutMs?: number; socket?: string } = {},
): Promise<{ code: number; err: string }> {
  const stdin = new PassThrough();
  let err = '';
  const p = runOciHook({
    socket: o.socket ?? '/nonexistent/auditmux.sock',
    timeoutMs: o.timeoutMs ?? 2000,
    failClosed: !!o.failClosed,
    stdin,
    err: (s) => (err += s + '\n'),
    out: () => undefined,
  });
  if (input !== null) stdin.end(input);
  return p.then((code) => ({ code, err }));
}

const STATE = JSON.stringify({
  ociVersion: '1.0.2',
  id: 'abc',
  status: 'creating',
  pid: 1,
  bundle: '/nonexistent-bundle',
  annotations: {},
});

describe('oci-hook', () => {
  it('fails open when the daemon is down: exit 0, the reason on stderr', async () => {
    const r = await hook(STATE);
    assert.equal(r.code, 0);
    assert.match(r.err, /control socket .*(ENOENT|daemon running).*failing open/s);
  });

  it('--fail-closed exits non-zero, so the runtime refuses the container', async () => {
    const r = await hook(STATE, { failClosed: true });
    assert.notEqual(r.code, 0);
    assert.match(r.err, /--fail-closed/);
  });

  it('refuses a state over the size bound and malformed states, without hanging', async () => {
    const big = await hook(Buffer.alloc(200 * 1024, 0x20), { failClosed: true });
    assert.equal(big.code, 2);
    assert.match(big.err, /over the 65536-byte limit/);
    const bad = await hook('{"id":"../x","status":"creating"}', { failClosed: true });
    assert.match(bad.err, /not an OCI container ID/);
    assert.equal((await hook('not json')).code, 0, 'open by default, even on garbage');
  });

  it('a runtime that never closes stdin cannot hold the hook past --timeout', async () => {
    const r = await hook(null, { failClosed: true, timeoutMs: 200 });
    assert.notEqual(r.code, 0);
    assert.match(r.err, /no complete OCI state on stdin in time/);
  });

  it('a bundle config.json that is a symlink is not followed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amhook-'));
    try {
      mkdirSync(join(dir, 'b'));
      writeFileSync(join(dir, 'secret.json'), '{"annotations":{"io.auditmux.name":"stolen"}}');
      symlinkSync(join(dir, 'secret.json'), join(dir, 'b', 'config.json'));
      const r = await hook(JSON.stringify({ id: 'abc', status: 'creating', pid: 1, bundle: join(dir, 'b') }));
      assert.match(r.err, /is a symlink \(refused\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a config file that does not load is said on stderr, with the socket tried instead (failing open)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amhookcfg-'));
    try {
      const cfg = join(dir, 'auditmux.yaml');
      writeFileSync(cfg, 'host: [\n');
      const r = spawnSync(
        process.execPath,
        [join(__dirname, '..', '..', '..', 'bin', 'auditmux'), 'oci-hook', '-c', cfg, '--timeout', '500'],
        { input: STATE, encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`${cfg}:2:1: .*\\(trying /`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a daemon with every connection taken (E_BUSY) is asked again within --timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amhookbusy-'));
    const path = join(dir, 'control.sock');
    const asked: string[] = [];
    const server = new ControlServer(
      path,
      async (cmd) => {
        asked.push(cmd);
        return { contid: '5' };
      },
      process.getuid?.() ?? 0,
      { maxConnections: 1 },
    );
    await server.listen();
    const held = createConnection(path);
    try {
      await new Promise((r) => held.once('connect', r));
      for (let i = 0; server.stats().connections < 1; i++) {
        if (i > 200) throw new Error('the held connection never arrived');
        await new Promise((r) => setTimeout(r, 5));
      }
      setTimeout(() => held.destroy(), 300);
      const r = await hook(STATE, { failClosed: true, socket: path, timeoutMs: 3000 });
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(asked, ['container-hook']);
    } finally {
      held.destroy();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the containers table escapes what a container chose as its name', () => {
    const t = formatContainers([
      {
        contid: '5',
        runtime: 'podman',
        id: 'a'.repeat(64),
        name: 'evil\nname\u001b[2J',
        image: null,
        state: 'live',
        source: 'hook',
        routed: 1,
        dropped: 0,
      },
    ]);
    assert.equal(t.split('\n').length, 2);
    assert.match(t, /evil\\x0aname\\x1b\[2J/);
    assert.match(t, /aaaaaaaaaaaa /, 'IDs shortened to 12 characters');
  });
});
