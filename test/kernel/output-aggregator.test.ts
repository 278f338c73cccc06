// auditmux as an aggregator: real audisp-remote (audispd-plugins) and the real daemon, with the listener's hardening.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { RMW, frame, packHeader } from '../../src/output/remote/protocol';
import { controlRequest } from '../../src/daemon/control';
import { kernelSkipReason, withKernel } from '../helpers/kernel';
import { startDaemon, stopDaemon } from '../helpers/daemon';
import { makePki } from '../helpers/certs';
import type { SinkState } from '../../src/output/remote/aggregator';
import type { RemoteOutput } from '../../src/output/remote/client';
import { checkDelivery, freePort, missing, payload, seqs, stopChild, tmpDir, waitFor } from '../helpers/peers';
import { closed, collectingAggregator, connectTcp, connectTls, remoteClient } from '../helpers/remote';

const skip = missing('audisp-remote', 'unshare', 'mount');
const listen = (port: number) => ({
  port,
  address: '127.0.0.1',
  queue: 5,
  maxPerAddr: 4,
  clientMaxIdle: 0,
  clientPorts: null,
  rateLimit: 0,
});

/**
 * Real audisp-remote sending to 127.0.0.1:port; it reads a fixed /etc/audit/audisp-remote.conf, so it gets a private
 * one in its own mount namespace.
 */
function audispRemote(dir: string, port: number): ChildProcess {
  const conf = path.join(dir, 'audisp-remote.conf');
  fs.writeFileSync(
    conf,
    `remote_server = 127.0.0.1\nport = ${port}\ntransport = tcp\nmode = immediate\nqueue_depth = 10240\nformat = managed\n` +
      `network_retry_time = 1\nmax_tries_per_record = 3\nmax_time_per_record = 5\nheartbeat_timeout = 0\nnetwork_failure_action = syslog\n` +
      `disk_low_action = ignore\ndisk_full_action = warn_once\ndisk_error_action = warn_once\nremote_ending_action = reconnect\n` +
      `generic_error_action = syslog\ngeneric_warning_action = syslog\nqueue_error_action = stop\noverflow_action = syslog\n` +
      `startup_failure_action = warn_once_continue\n`,
    { mode: 0o640 },
  );
  return spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount --bind "$0" /etc/audit/audisp-remote.conf && exec /usr/sbin/audisp-remote`,
      conf,
    ],
    {
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
}

test(
  'aggregator: audisp-remote delivers every record, its node= name behind the peer address, in order',
  { skip, timeout: 60000 },
  async () => {
    const dir = tmpDir('aggr');
    const port = await freePort();
    const events: string[] = [];
    const { agg, got } = await collectingAggregator(listen(port), {
      onConnection: (k, b) => events.push(`${k} ${b}`),
    });
    const child = audispRemote(dir, port);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const N = 2000;
      const lines: string[] = [];
      for (let i = 0; i < N; i++) lines.push(`node=web${i % 3} type=USER msg=${payload(i).toString()}\n`);
      child.stdin?.write(lines.join(''));
      await waitFor(() => got.length >= N || child.exitCode !== null, 30000, 'aggregator received everything');
      assert.equal(child.exitCode, null, stderr);
      assert.deepEqual(checkDelivery(seqs(got), N), { missing: [], duplicates: 0, inOrder: true });
      // node_policy prefix (the default): what the peer claims stays visible, behind what it is.
      assert.equal(got[0], `node=127.0.0.1/web0 type=USER msg=${payload(0).toString()}`);
      assert.equal(got[4], `node=127.0.0.1/web1 type=USER msg=${payload(4).toString()}`);
      assert.ok(events[0]?.startsWith('accept addr=127.0.0.1:') && events[0].endsWith('res=success'));
      assert.equal(agg.stats().records, N);
    } finally {
      child.stdin?.end();
      await stopChild(child);
      await agg.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'aggregator: a full log answers DISKFULL, the auditmux client keeps the records and delivers them later',
  { timeout: 30000 },
  async () => {
    const dir = tmpDir('aggr-full');
    const port = await freePort();
    let state: SinkState = 'disk-full';
    const { agg, got } = await collectingAggregator(listen(port), { state: () => state });
    const out = remoteClient(port, path.join(dir, 'spool'));
    try {
      for (let i = 0; i < 200; i++) out.writeRecord(1005, payload(i));
      out.flush();
      await waitFor(() => (out.stats().diskFull as number) > 0, 5000, 'DISKFULL seen');
      assert.equal(got.length, 0);
      state = 'disk-low';
      await waitFor(() => out.stats().pending === 0, 10000, 'delivered after the disk recovered');
      assert.deepEqual(checkDelivery(seqs(got), 200), { missing: [], duplicates: 0, inOrder: true });
      assert.ok((out.stats().diskLow as number) > 0);
      assert.ok(got.every((l) => l.startsWith('node=127.0.0.1/c1 type=USER ')));
    } finally {
      await out.close();
      await agg.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('aggregator: ascii lines are logged without acks; garbage closes the connection', async () => {
  const port = await freePort();
  const { agg, got } = await collectingAggregator(listen(port));
  try {
    const s = net.connect(port, '127.0.0.1', () =>
      s.end('node=a type=USER msg=audit(1.000:1): x\nnode=b type=USER msg=audit(1.000:2): y\n'),
    );
    await waitFor(() => got.length === 2, 5000, 'two ascii lines');
    assert.deepEqual(got, [
      'node=127.0.0.1/a type=USER msg=audit(1.000:1): x',
      'node=127.0.0.1/b type=USER msg=audit(1.000:2): y',
    ]);
    // a frame longer than auditd's buffer cannot be resynchronised: the connection is dropped
    const bad = net.connect(port, '127.0.0.1', () =>
      bad.write(Buffer.concat([packHeader(0, 9000, 1), Buffer.alloc(9000, 0x41)])),
    );
    await new Promise<void>((r) => bad.on('close', () => r()));
    assert.equal(agg.stats().protocolErrors, 1);
  } finally {
    await agg.close();
  }
});

// ---- the real daemon (kernel tier: run under the flock) ----

function daemonConfig(dir: string, listen: string): string {
  const file = path.join(dir, 'auditmux.yaml');
  fs.writeFileSync(path.join(dir, 'host.rules'), '');
  fs.writeFileSync(
    file,
    [
      'host:',
      `  rules: ${path.join(dir, 'host.rules')}`,
      `  log: { file: ${path.join(dir, 'log', 'audit.log')}, format: RAW, flush: incremental_async, freq: 50 }`,
      `  control_socket: ${path.join(dir, 'control.sock')}`,
      `  listen: ${listen}`,
      '',
    ].join('\n'),
  );
  return file;
}

async function aggStats(dir: string): Promise<Record<string, number>> {
  const r = (await controlRequest(path.join(dir, 'control.sock'), 'status', {}, 5000)) as {
    aggregator?: Record<string, number>;
  };
  return r.aggregator ?? {};
}

/** Local addresses of TCP sockets listening on `port`, from /proc/net/tcp{,6} (hex, as the kernel prints them). */
function listeningOn(port: number): string[] {
  const out: string[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const l of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
      const c = l.trim().split(/\s+/);
      const [addr, p] = (c[1] ?? '').split(':');
      if (c[3] === '0A' && p && parseInt(p, 16) === port) out.push(addr as string);
    }
  }
  return out;
}

/**
 * The real daemon with `listen(port, dir)` as its host.listen (a flow mapping), in a temp dir: `running` while it runs;
 * it must then exit 0, and `stopped` reads what it wrote. The dir is removed afterwards.
 */
async function withListenerDaemon(
  prefix: string,
  listen: (port: number, dir: string) => string,
  running: (port: number, dir: string) => Promise<void>,
  stopped: (dir: string) => void,
): Promise<void> {
  const dir = tmpDir(prefix);
  const port = await freePort();
  const d = await startDaemon(daemonConfig(dir, listen(port, dir)));
  try {
    await running(port, dir);
  } finally {
    assert.equal(await stopDaemon(d), 0, d.stderr());
  }
  try {
    stopped(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const kskip = kernelSkipReason() ?? skip;

test(
  'daemon listener: loopback by default, cap, idle timeout, forged node= prefixed, newlines refused, rate limited without loss, own log',
  { skip: kskip, timeout: 120000 },
  () =>
    withKernel(() =>
      withListenerDaemon(
        'aggr-daemon',
        (port) =>
          `{ port: ${port}, max_connections: 3, max_per_addr: 8, client_max_idle: 2, rate_limit: 400, rate_burst: 50 }`,
        async (port, dir) => {
          let child: ChildProcess | null = null;
          try {
            // no address given: loopback only (0100007F is 127.0.0.1 as /proc/net/tcp prints it)
            assert.deepEqual(listeningOn(port), ['0100007F']);

            // the global cap: three silent connections are held, a fourth is refused at once
            const held = await Promise.all([0, 1, 2].map(() => connectTcp(port)));
            await waitFor(async () => (await aggStats(dir)).active === 3, 5000, 'three connections');
            const fourth = await connectTcp(port);
            await closed(fourth);
            assert.equal(
              held.some((s) => s.destroyed),
              false,
            );
            assert.equal((await aggStats(dir)).rejected, 1);
            // ... and the idle timeout closes the three
            await Promise.all(held.map(closed));
            assert.equal((await aggStats(dir)).idleClosed, 3);

            // newline injection in a managed frame: refused and counted, acked; a terminal escape in an ascii line's
            // text: written escaped (\033, \007), counted
            const s = await connectTcp(port);
            s.write(
              frame(
                RMW.MESSAGE,
                1,
                'node=web1 type=USER msg=audit(1.000:1): a=1\nnode=dc01 type=USER_LOGIN msg=audit(1.000:2): acct="root" res=success',
              ),
            );
            s.write('node=web1 type=USER msg=audit(1.000:3): \x1b]0;x\x07\n');
            await waitFor(
              async () => {
                const st = await aggStats(dir);
                return st.invalid === 1 && st.escaped === 1;
              },
              5000,
              'one refused record, one escaped',
            );
            s.destroy();

            // real audisp-remote, forged node=, four times faster than its rate: slowed down, nothing lost
            child = audispRemote(dir, port);
            let stderr = '';
            child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
            const N = 1600;
            // Records written so far (the escaped line above is one): the peer's must add exactly N.
            const before = (await aggStats(dir)).records;
            const lines: string[] = [];
            for (let i = 0; i < N; i++) lines.push(`node=dc01 type=USER msg=${payload(i).toString()}\n`);
            child.stdin?.write(lines.join(''));
            await waitFor(
              async () => (await aggStats(dir)).records >= before + N || child?.exitCode !== null,
              60000,
              'every record',
            );
            assert.equal(child.exitCode, null, stderr);
            const st = await aggStats(dir);
            assert.ok(st.throttled > 0, 'throttled');
            assert.equal(st.records, before + N);
          } finally {
            child?.stdin?.end();
            await stopChild(child);
          }
        },
        (dir) => {
          const remote = fs.readFileSync(path.join(dir, 'log', 'remote.log'), 'latin1');
          const host = fs.readFileSync(path.join(dir, 'log', 'audit.log'), 'latin1');
          const recs = remote.split('\n').filter((l) => l.includes('op=test seq='));
          assert.deepEqual(checkDelivery(seqs(recs), 1600), { missing: [], duplicates: 0, inOrder: true });
          assert.ok(
            recs.every((l) => l.startsWith('node=127.0.0.1/dc01 type=USER msg=audit(')),
            recs[0],
          );
          assert.doesNotMatch(remote, /^node=dc01 /m, 'no line passes for dc01');
          assert.doesNotMatch(remote, /USER_LOGIN|\x1b/);
          assert.match(remote, /^node=127\.0\.0\.1\/web1 type=USER msg=audit\(1\.000:3\): \\033\]0;x\\007$/m);
          assert.match(remote, /type=DAEMON_ACCEPT msg=audit\([0-9.:]+\): addr=127\.0\.0\.1:\d+ port=\d+ res=success/);
          // the host log has its own history only: nothing the peers sent, not even their connections
          assert.doesNotMatch(host, /op=test seq=|DAEMON_ACCEPT|DAEMON_CLOSE|node=/);
          assert.match(host, /type=DAEMON_START /);
        },
      ),
    ),
);

test(
  'daemon listener: a peer flooding its own log rotates that log, never the host log',
  { skip: kskip, timeout: 120000 },
  () =>
    withKernel(() =>
      withListenerDaemon(
        'aggr-daemon-rot',
        (port, dir) =>
          `{ port: ${port}, rate_limit: 0, log: { file: ${path.join(dir, 'log', 'remote.log')}, max_log_file: 1, num_logs: 2 } }`,
        async (port, dir) => {
          const s = await connectTcp(port);
          const pad = 'p'.repeat(400);
          const chunk: string[] = [];
          for (let i = 0; i < 8000; i++) chunk.push(`type=USER msg=${payload(i, ` pad=${pad}`).toString()}\n`);
          s.end(chunk.join(''));
          let last: Record<string, number> = {};
          await waitFor(async () => (last = await aggStats(dir)).records >= 8000, 60000, 'the flood is in').catch(
            (e: Error) => {
              throw new Error(`${e.message}: ${JSON.stringify(last)}`);
            },
          );
        },
        (dir) => {
          const files = fs.readdirSync(path.join(dir, 'log')).sort();
          assert.ok(files.includes('remote.log.1'), files.join(' '));
          assert.ok(!files.some((f) => f.startsWith('audit.log.')), `host log rotated: ${files.join(' ')}`);
          const host = fs.readFileSync(path.join(dir, 'log', 'audit.log'), 'latin1');
          assert.match(host, /type=DAEMON_START /);
          assert.doesNotMatch(host, /op=test seq=/);
        },
      ),
    ),
);

test(
  'daemon listener over TLS: a client certificate is needed and its name becomes node=',
  { skip: kernelSkipReason() ?? missing('openssl'), timeout: 120000 },
  () =>
    withKernel(async () => {
      const pki = makePki();
      try {
        await withListenerDaemon(
          'aggr-daemon-tls',
          (port) =>
            `{ port: ${port}, max_per_addr: 4, tls: { cert: ${pki.serverCert}, key: ${pki.serverKey}, ca: ${pki.ca} } }`,
          async (port, dir) => {
            const s = connectTls(port, pki.ca, pki.client('web1'));
            await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
            s.write(
              'node=dc01 type=USER msg=audit(1.000:1): via=tls-good\ntype=USER msg=audit(1.000:2): via=tls-bare\n',
            );
            await waitFor(async () => (await aggStats(dir)).records === 2, 5000, 'two records over TLS');
            s.destroy();
            for (const c of [undefined, pki.client('web1', { rogue: true })]) {
              const bad = connectTls(port, pki.ca, c);
              bad.on('error', () => undefined);
              bad.on('secureConnect', () => bad.write('type=USER msg=audit(1.000:3): via=tls-bad\n'));
              await closed(bad);
            }
            const plain = await connectTcp(port);
            plain.on('error', () => undefined);
            plain.write('type=USER msg=audit(1.000:4): via=plain\n');
            await closed(plain);
            await waitFor(async () => (await aggStats(dir)).tlsRefused === 3, 5000, 'three refused');
          },
          (dir) => {
            const remote = fs.readFileSync(path.join(dir, 'log', 'remote.log'), 'latin1');
            assert.match(remote, /^node=web1\/dc01 type=USER msg=audit\(1\.000:1\): via=tls-good$/m);
            assert.match(remote, /^node=web1 type=USER msg=audit\(1\.000:2\): via=tls-bare$/m);
            assert.doesNotMatch(remote, /via=tls-bad|via=plain/);
            assert.match(
              remote,
              /type=DAEMON_ACCEPT msg=audit\([0-9.:]+\): addr=127\.0\.0\.1:\d+ port=\d+ acct="web1" res=success/,
            );
            assert.match(
              remote,
              /type=DAEMON_ACCEPT msg=audit\([0-9.:]+\): op=tls addr=127\.0\.0\.1:\d+ port=\d+ res=no/,
            );
          },
        );
      } finally {
        fs.rmSync(pki.dir, { recursive: true, force: true });
      }
    }),
);

test(
  'daemon listener: a full remote log answers DISKFULL from its own disk-space guard; after resume the client delivers',
  { skip: kskip, timeout: 120000 },
  () =>
    withKernel(async () => {
      const dir = tmpDir('aggr-rfull');
      const port = await freePort();
      const rdir = path.join(dir, 'rlog');
      fs.mkdirSync(rdir);
      // The remote log alone on a small file system; the host log is elsewhere with room to spare.
      const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'auditmux-test', rdir]);
      assert.equal(m.status, 0, String(m.stderr));
      const conf = daemonConfig(
        dir,
        `{ port: ${port}, log: { file: ${path.join(rdir, 'remote.log')}, format: RAW, space_left: 2%, admin_space_left: 1%, disk_full_action: suspend } }`,
      );
      let d: Awaited<ReturnType<typeof startDaemon>> | null = null;
      let out: RemoteOutput | null = null;
      try {
        d = await startDaemon(conf);
        const filler = path.join(rdir, 'filler');
        try {
          fs.writeFileSync(filler, Buffer.alloc(1 << 20));
        } catch (e) {
          assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
        }
        out = remoteClient(port, path.join(dir, 'spool'), { networkRetryMs: 200 });
        for (let i = 0; i < 50; i++) out.writeRecord(1005, payload(i));
        out.flush();
        await waitFor(() => (out!.stats().diskFull as number) > 0, 10000, 'DISKFULL from the daemon');
        assert.equal(out.stats().pending, 50, 'the client keeps every record');
        // Room again, then SIGUSR2's equivalent: the log resumes and the client's records arrive, none lost.
        fs.rmSync(filler);
        await controlRequest(path.join(dir, 'control.sock'), 'resume', {}, 5000);
        await waitFor(() => out!.stats().pending === 0, 30000, 'delivered after resume').catch(async (e) => {
          throw new Error(
            `${e}: ${JSON.stringify(out!.stats())} ${JSON.stringify(await controlRequest(path.join(dir, 'control.sock'), 'status', {}, 5000))} ${d!.stderr()}`,
          );
        });
        await out.close();
        out = null;
        assert.equal(await stopDaemon(d), 0, d.stderr());
        d = null;
        const remote = fs.readFileSync(path.join(rdir, 'remote.log'), 'latin1');
        const recs = remote.split('\n').filter((l) => l.includes('op=test seq='));
        assert.deepEqual(checkDelivery(seqs(recs), 50), { missing: [], duplicates: 0, inOrder: true });
        assert.doesNotMatch(fs.readFileSync(path.join(dir, 'log', 'audit.log'), 'latin1'), /op=test seq=/);
      } finally {
        await out?.close();
        if (d) await stopDaemon(d);
        if (spawnSync('umount', [rdir]).status !== 0) spawnSync('umount', ['-l', rdir]);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }),
);
