// The control socket answers root only: mode 0600, and peer credentials checked even if the mode were loosened.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { controlRequest } from '../../src/daemon/control';
import { AuditClient } from '../../src/kernel/client';
import { isRoot, kernelSkipReason, snapshotKernel, withKernel } from '../helpers/kernel';
import { kernelDaemonPid, readText, startDaemon, tempDir } from '../helpers/daemon';

const run = promisify(execFile);

describe('control socket', { skip: isRoot ? undefined : 'needs root to test another uid' }, () => {
  it('serves root, refuses other uids by SO_PEERCRED, rejects malformed requests', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amctl-'));
    const path = join(dir, 'control.sock');
    // The server runs in its own process, as in the daemon; it reports each handled peer uid on stdout.
    const server = spawn(
      process.execPath,
      [
        '-e',
        `
      const { ControlServer } = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'daemon', 'control'))});
      const srv = new ControlServer(${JSON.stringify(path)}, async (cmd, args, peer) => {
        process.stdout.write('handled ' + peer.uid + '\\n');
        if (cmd === 'echo') return { args, pid: peer.pid };
        throw new Error('unknown');
      });
      srv.listen().then(() => process.stdout.write('ready\\n'));
      process.on('SIGTERM', () => srv.close().then(() => process.exit(0)));`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    server.stdout.setEncoding('utf8');
    server.stdout.on('data', (d: string) => (out += d));
    try {
      for (let i = 0; i < 200 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(out.includes('ready'), 'server started');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const r = (await controlRequest(path, 'echo', { a: 1 })) as { args: { a: number }; pid: number };
      assert.deepEqual(r.args, { a: 1 });
      assert.equal(r.pid, process.pid);

      // Loosen the mode and the directory so `nobody` can connect: the credential check must still refuse it.
      chmodSync(dir, 0o755);
      chmodSync(path, 0o666);
      const script =
        `const net=require('net');const s=net.createConnection(${JSON.stringify(path)});let b='';` +
        `s.on('connect',()=>s.write(JSON.stringify({id:1,cmd:'echo'})+'\\n'));s.on('data',d=>b+=d);s.on('close',()=>{process.stdout.write(b)});` +
        `s.on('error',e=>{process.stdout.write('ERR '+e.code)})`;
      const nobody = await run(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script],
        { encoding: 'utf8', timeout: 20000 },
      );
      assert.match(nobody.stdout, /"ok":false.*E_PERM.*uid 65534 is not root/);
      assert.ok(!out.includes('handled 65534'), 'the handler never ran for the unprivileged peer');

      const bad = await run(
        process.execPath,
        [
          '-e',
          `const s=require('net').createConnection(${JSON.stringify(path)});let b='';s.on('connect',()=>s.write('{not json\\n'));` +
            `s.on('data',d=>{b+=d;s.end()});s.on('close',()=>process.stdout.write(b))`,
        ],
        { encoding: 'utf8', timeout: 20000 },
      );
      assert.match(bad.stdout, /"ok":false.*bad request/);
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('control socket and shutdown on the real kernel', { skip: kernelSkipReason() }, () => {
  it('an idle client and one that never reads do not delay SIGTERM: DAEMON_END is written and the kernel handed back', () =>
    withKernel(async () => {
      const dir = tempDir('amctl-e2e-');
      const sock = join(dir, 'control.sock');
      const conf = join(dir, 'auditmux.yaml');
      writeFileSync(
        join(dir, 'host.rules'),
        '-a always,exit -F arch=b64 -S getppid -F exe=/usr/bin/true -k am-ctl-e2e\n',
      );
      writeFileSync(
        conf,
        [
          'host:',
          `  rules: ${join(dir, 'host.rules')}`,
          `  log: { file: ${join(dir, 'audit.log')}, format: RAW }`,
          `  control_socket: ${sock}`,
        ].join('\n') + '\n',
      );
      const before = await snapshotKernel();
      const d = await startDaemon(conf);
      const clients: ReturnType<typeof createConnection>[] = [];
      try {
        // One client connects and says nothing; another pipelines status requests and never reads an answer.
        for (let i = 0; i < 2; i++) {
          const c = createConnection(sock);
          c.on('error', () => undefined);
          await new Promise<void>((r) => c.once('connect', () => r()));
          clients.push(c);
        }
        clients[1]!.pause();
        clients[1]!.write(`${JSON.stringify({ id: 1, cmd: 'status' })}\n`.repeat(2000));
        const st = (await controlRequest(sock, 'status')) as {
          daemon: { pid: number };
          control: { connections: number; maxQueuedBytes: number };
        };
        assert.ok(st.control.connections >= 2, JSON.stringify(st.control));
        d.child.kill('SIGTERM');
        // The old daemon waited in server.close() for these clients forever: the unit would have been SIGKILLed.
        let guard: NodeJS.Timeout | undefined;
        const code = await Promise.race([
          d.exited,
          new Promise<string>((r) => (guard = setTimeout(() => r('still running after 30 s'), 30_000))),
        ]);
        clearTimeout(guard);
        assert.equal(code, 0, `exit: ${code}\n${d.stderr()}`);
        const log = readText(join(dir, 'audit.log'));
        assert.match(log, /type=DAEMON_END msg=audit\([^)]*\): op=terminate .*res=success/);
        assert.equal(await kernelDaemonPid(), 0);
        const c = await AuditClient.open();
        try {
          assert.equal((await c.listRules()).length, before.rules.length, 'the daemon removed the rules it loaded');
        } finally {
          c.close();
        }
      } finally {
        for (const c of clients) c.destroy();
        if (d.child.exitCode === null) {
          d.child.kill('SIGKILL');
          await d.exited;
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }));
});
