// auditmux's remote output against real Debian auditd as an aggregator on loopback, including peer crashes and
// restarts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RemoteOutput } from '../../src/output/remote/client';
import type { RemoteOutputSpec } from '../../src/config/schema';
import { MsgType } from '../../src/kernel/constants';
import {
  AuditdAggregator,
  captureDiag,
  checkDelivery,
  freePort,
  missing,
  payload,
  seqs,
  sleep,
  tmpDir,
  waitFor,
} from '../helpers/peers';

const skip = missing('auditd', 'auditctl');
const USER = 1005; // AUDIT_USER

function spec(port: number, spoolDir: string, over: Partial<RemoteOutputSpec> = {}): RemoteOutputSpec {
  return {
    type: 'remote',
    name: 'agg',
    format: 'RAW',
    spool: { dir: spoolDir, maxBytes: 64 * 1024 * 1024, fullAction: 'syslog', fullExe: null },
    host: '127.0.0.1',
    port,
    heartbeatTimeout: 0,
    ackTimeoutMs: 5000,
    networkRetryMs: 150,
    networkFailureAction: 'syslog',
    networkFailureExe: null,
    window: 32,
    ...over,
  };
}

function kernelAuditPid(): string {
  const r = spawnSync('auditctl', ['-s'], { encoding: 'utf8' });
  return /pid (\d+)/.exec(r.stdout ?? '')?.[1] ?? '?';
}

test('remote output: real auditd aggregator logs every record, keeps node= and order', { skip }, async () => {
  const dir = tmpDir('agg');
  const port = await freePort();
  const agg = new AuditdAggregator(dir, port);
  const diag = captureDiag();
  let out: RemoteOutput | null = null;
  try {
    const pidBefore = kernelAuditPid();
    await agg.start();
    // local_events = no: the aggregator must not have registered itself as the kernel's audit daemon.
    assert.equal(kernelAuditPid() === String(agg.child?.pid), false, 'auditd aggregator registered with the kernel');
    assert.ok(pidBefore !== String(agg.child?.pid));
    out = new RemoteOutput(spec(port, path.join(dir, 'spool')), { nodeName: 'client-a', contidKernel: false, diag });
    const N = 3000;
    for (let i = 0; i < N; i++) {
      out.writeRecord(USER, payload(i));
      if (i % 100 === 99) out.flush();
    }
    out.writeRecord(MsgType.EOE, Buffer.from('audit(1700000000.000:1): '));
    out.flush();
    await waitFor(() => out!.stats().delivered === N, 30000, 'all records acked');
    const lines = agg.lines().filter((l) => l.includes('op=test'));
    assert.equal(lines.length, N);
    assert.ok(
      lines.every((l) => l.startsWith('node=client-a type=USER msg=audit(')),
      lines[0],
    );
    const d = checkDelivery(seqs(lines), N);
    assert.deepEqual(d, { missing: [], duplicates: 0, inOrder: true });
    assert.ok(!agg.lines().some((l) => l.includes('type=EOE')), 'EOE must not be sent');
    // auditd records the connection it accepted
    assert.ok(agg.lines().some((l) => l.startsWith('type=DAEMON_ACCEPT') && l.includes('res=success')));
    assert.equal(out.stats().pending, 0);
  } finally {
    await out?.close();
    await agg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'remote output: peer killed and restarted mid-stream, auditmux restarted with a spool: nothing lost',
  { skip, timeout: 120000 },
  async () => {
    const dir = tmpDir('agg-kill');
    const port = await freePort();
    const agg = new AuditdAggregator(dir, port);
    const diag = captureDiag();
    const spoolDir = path.join(dir, 'spool');
    let out: RemoteOutput | null = null;
    const window = 8;
    try {
      await agg.start();
      out = new RemoteOutput(spec(port, spoolDir, { window }), { nodeName: 'client-b', contidKernel: false, diag });
      const N = 6000;
      let sent = 0;
      const send = async (upTo: number): Promise<void> => {
        for (; sent < upTo; sent++) {
          out!.writeRecord(USER, payload(sent));
          if (sent % 50 === 49) {
            out!.flush();
            await sleep(2);
          }
        }
        out!.flush();
      };
      await send(1500);
      await agg.stop('SIGKILL'); // crash: unacked frames must be resent
      await send(2500); // spooled while the peer is down
      await sleep(400);
      assert.equal(out.stats().connected, false);
      assert.ok((out.stats().pending as number) >= 1000, `pending ${out.stats().pending}`);
      await agg.start();
      await send(3500);
      await agg.stop('SIGTERM'); // graceful stop of the peer
      await send(4000);
      await agg.start();
      await send(4500);
      // auditmux itself restarts: the spool must survive and be replayed by a new output on the same directory.
      await out.close();
      out = null;
      await send0(4500, 5200);
      out = new RemoteOutput(spec(port, spoolDir, { window }), { nodeName: 'client-b', contidKernel: false, diag });
      await sendMore(out, 5200, N);
      await waitFor(() => out!.stats().pending === 0, 60000, 'spool drained');
      const lines = agg.lines().filter((l) => l.includes('op=test'));
      const d = checkDelivery(seqs(lines), N);
      assert.deepEqual(d.missing, []);
      assert.equal(d.inOrder, true);
      // Only frames in flight when a connection broke can repeat: at most `window` per outage (3 here).
      assert.ok(d.duplicates <= window * 3, `duplicates ${d.duplicates}`);
      assert.ok(diag.lines.some((l) => l.level === 'warn' && String(l.m).startsWith('network failure')));

      // Records written while no output object existed (between close and reopen) went straight into the spool.
      async function send0(from: number, to: number): Promise<void> {
        const o = new RemoteOutput(spec(1, spoolDir, { window, networkRetryMs: 60000 }), {
          nodeName: 'client-b',
          contidKernel: false,
          diag: captureDiag(),
        });
        for (let i = from; i < to; i++) o.writeRecord(USER, payload(i));
        o.flush();
        await o.close();
        sent = to;
      }
      async function sendMore(o: RemoteOutput, from: number, to: number): Promise<void> {
        for (let i = from; i < to; i++) {
          o.writeRecord(USER, payload(i));
          if (i % 50 === 49) o.flush();
        }
        o.flush();
      }
    } finally {
      await out?.close();
      await agg.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('remote output: heartbeats are acked by auditd while idle', { skip, timeout: 30000 }, async () => {
  const dir = tmpDir('agg-hb');
  const port = await freePort();
  const agg = new AuditdAggregator(dir, port);
  let out: RemoteOutput | null = null;
  try {
    await agg.start();
    out = new RemoteOutput(spec(port, path.join(dir, 'spool'), { heartbeatTimeout: 1 }), {
      contidKernel: false,
      diag: captureDiag(),
    });
    out.writeRecord(USER, payload(0));
    out.flush();
    await waitFor(
      () => (out!.stats().heartbeats as number) >= 2 && out!.stats().inFlight === 0,
      10000,
      'two heartbeats acked',
    );
    assert.equal(out.stats().connected, true);
    assert.equal(out.stats().reconnects, 0);
  } finally {
    await out?.close();
    await agg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
