// auditmux as an aggregator: real audisp-remote (audispd-plugins) sends managed frames to startAggregator on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { packHeader } from '../../src/output/remote/protocol';
import { startAggregator, type SinkState } from '../../src/output/remote/aggregator';
import { RemoteOutput } from '../../src/output/remote/client';
import { checkDelivery, captureDiag, freePort, missing, payload, seqs, stopChild, tmpDir, waitFor } from '../fixtures/outputs/peers';

const skip = missing('audisp-remote', 'unshare', 'mount');
const listen = (port: number) => ({ port, address: '127.0.0.1', queue: 5, maxPerAddr: 4, clientMaxIdle: 0, clientPorts: null });

test('aggregator: audisp-remote delivers every record with its node= name, in order', { skip, timeout: 60000 }, async () => {
  const dir = tmpDir('aggr');
  const port = await freePort();
  const got: string[] = [];
  const events: string[] = [];
  const agg = await startAggregator(listen(port), (l) => got.push(l.toString('latin1')), { onConnection: (k, b) => events.push(`${k} ${b}`) });
  // audisp-remote reads a fixed /etc/audit/audisp-remote.conf: give it a private one in its own mount namespace.
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
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount --bind "$0" /etc/audit/audisp-remote.conf && exec /usr/sbin/audisp-remote`, conf], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
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
    assert.equal(got[0], `node=web0 type=USER msg=${payload(0).toString()}`);
    assert.equal(got[4], `node=web1 type=USER msg=${payload(4).toString()}`);
    assert.ok(events[0]?.startsWith('accept addr=127.0.0.1:') && events[0].endsWith('res=success'));
    assert.equal(agg.stats().records, N);
  } finally {
    child.stdin?.end();
    await stopChild(child);
    await agg.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('aggregator: a full log answers DISKFULL, the auditmux client keeps the records and delivers them later', { timeout: 30000 }, async () => {
  const dir = tmpDir('aggr-full');
  const port = await freePort();
  const got: string[] = [];
  let state: SinkState = 'disk-full';
  const agg = await startAggregator(listen(port), (l) => got.push(l.toString('latin1')), { state: () => state });
  const out = new RemoteOutput(
    {
      type: 'remote', name: 'r', format: 'RAW', spool: { dir: path.join(dir, 'spool'), maxBytes: 1 << 24, fullAction: 'syslog', fullExe: null },
      host: '127.0.0.1', port, heartbeatTimeout: 0, ackTimeoutMs: 5000, networkRetryMs: 100, networkFailureAction: 'ignore', networkFailureExe: null, window: 4,
    },
    { nodeName: 'c1', contidKernel: false, diag: captureDiag() },
  );
  try {
    for (let i = 0; i < 200; i++) out.writeRecord(1005, payload(i));
    out.flush();
    await waitFor(() => (out.stats().diskFull as number) > 0, 5000, 'DISKFULL seen');
    assert.equal(got.length, 0);
    state = 'disk-low';
    await waitFor(() => out.stats().pending === 0, 10000, 'delivered after the disk recovered');
    assert.deepEqual(checkDelivery(seqs(got), 200), { missing: [], duplicates: 0, inOrder: true });
    assert.ok((out.stats().diskLow as number) > 0);
    assert.ok(got.every((l) => l.startsWith('node=c1 type=USER ')));
  } finally {
    await out.close();
    await agg.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('aggregator: ascii lines are logged without acks; garbage closes the connection', async () => {
  const port = await freePort();
  const got: string[] = [];
  const agg = await startAggregator(listen(port), (l) => got.push(l.toString('latin1')));
  try {
    const s = net.connect(port, '127.0.0.1', () => s.end('node=a type=USER msg=x\nnode=b type=USER msg=y\n'));
    await waitFor(() => got.length === 2, 5000, 'two ascii lines');
    assert.deepEqual(got, ['node=a type=USER msg=x', 'node=b type=USER msg=y']);
    // a frame longer than auditd's buffer cannot be resynchronised: the connection is dropped
    const bad = net.connect(port, '127.0.0.1', () => bad.write(Buffer.concat([packHeader(0, 9000, 1), Buffer.alloc(9000, 0x41)])));
    await new Promise<void>((r) => bad.on('close', () => r()));
    assert.equal(agg.stats().protocolErrors, 1);
  } finally {
    await agg.close();
  }
});
