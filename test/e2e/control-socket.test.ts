// The control socket answers root only: mode 0600, and peer credentials checked even if the mode were loosened.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ControlServer, controlRequest } from '../../src/daemon/control';
import { isRoot } from '../helpers/kernel';

describe('control socket', { skip: isRoot ? undefined : 'needs root to test another uid' }, () => {
  it('serves root, refuses other uids by SO_PEERCRED, rejects malformed requests', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amctl-'));
    const path = join(dir, 'control.sock');
    const seen: number[] = [];
    const srv = new ControlServer(path, async (cmd, args, peer) => {
      seen.push(peer.uid);
      if (cmd === 'echo') return { args, pid: peer.pid };
      throw new Error('unknown');
    });
    await srv.listen();
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const r = (await controlRequest(path, 'echo', { a: 1 })) as { args: { a: number }; pid: number };
      assert.deepEqual(r.args, { a: 1 });
      assert.equal(r.pid, process.pid);

      // Loosen the mode and the directory so `nobody` can connect: the credential check must still refuse it.
      chmodSync(dir, 0o755);
      chmodSync(path, 0o666);
      const script = `const net=require('net');const s=net.createConnection(${JSON.stringify(path)});let b='';` +
        `s.on('connect',()=>s.write(JSON.stringify({id:1,cmd:'echo'})+'\\n'));s.on('data',d=>b+=d);s.on('close',()=>{process.stdout.write(b)});` +
        `s.on('error',e=>{process.stdout.write('ERR '+e.code)})`;
      const out = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8' });
      assert.match(out.stdout, /"ok":false.*E_PERM.*uid 65534 is not root/);
      assert.ok(!seen.includes(65534), 'the handler never ran for the unprivileged peer');

      const bad = spawnSync(process.execPath, ['-e',
        `const s=require('net').createConnection(${JSON.stringify(path)});let b='';s.on('connect',()=>s.write('{not json\\n'));` +
        `s.on('data',d=>{b+=d;s.end()});s.on('close',()=>process.stdout.write(b))`], { encoding: 'utf8' });
      assert.match(bad.stdout, /"ok":false.*bad request/);
    } finally {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
