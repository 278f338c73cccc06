// A peer that accepts connections and drops them (or answers ENDING to everything): one network_failure_action per
// outage, not one per reconnect, and reconnects back off. An outage ends when the peer shows it takes records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { FrameParser, RMW, frame } from '../../src/output/remote/protocol';
import { RemoteOutput } from '../../src/output/remote/client';
import { SyslogOutput } from '../../src/output/syslog';
import { captureDiag, payload, syslogSpec, tmpDir, waitFor } from '../helpers/peers';

const USER = 1005;
const RETRY_MS = 20;

type Mode = 'drop' | 'ending' | 'ack';

/** A peer whose behaviour the test switches: drop each connection, answer ENDING, or ACK every frame. */
async function peer(): Promise<{ srv: net.Server; port: number; accepted: () => number; set: (m: Mode) => void }> {
  let mode: Mode = 'drop';
  let accepted = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    accepted++;
    s.on('error', () => undefined);
    if (mode === 'drop') {
      s.destroy();
      return;
    }
    socks.add(s);
    s.on('close', () => socks.delete(s));
    const p = new FrameParser();
    s.on('data', (d: Buffer) => {
      for (const it of p.push(d)) {
        if (it.kind !== 'frame') continue;
        s.write(frame(mode === 'ending' ? RMW.ENDING : RMW.ACK, it.header.seq));
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    srv,
    port: (srv.address() as net.AddressInfo).port,
    accepted: () => accepted,
    set: (m) => {
      mode = m;
      if (m === 'drop') for (const s of socks) s.destroy();
    },
  };
}

const actions = (d: ReturnType<typeof captureDiag>): number =>
  d.lines.filter((l) => l.level === 'warn' && String(l.m).startsWith('network failure')).length;

for (const mode of ['drop', 'ending'] as const) {
  test(`remote output, a peer that ${mode === 'drop' ? 'accepts and drops' : 'answers ENDING'}: one action per outage, reconnects back off`, async () => {
    const dir = tmpDir('amflap');
    const p = await peer();
    p.set(mode);
    const diag = captureDiag();
    let out: RemoteOutput | null = null;
    try {
      out = new RemoteOutput(
        {
          type: 'remote',
          name: 'r',
          format: 'RAW',
          spool: { dir: path.join(dir, 'spool'), maxBytes: 1 << 24, fullAction: 'syslog', fullExe: null },
          host: '127.0.0.1',
          port: p.port,
          heartbeatTimeout: 0,
          ackTimeoutMs: 5000,
          networkRetryMs: RETRY_MS,
          networkFailureAction: 'syslog',
          networkFailureExe: null,
          window: 4,
        },
        { contidKernel: false, diag },
      );
      out.writeRecord(USER, payload(0));
      out.flush();
      await waitFor(() => p.accepted() >= 7, 30000, 'seven connections');
      const o = out;
      // Each of them ended before the peer took a record: one outage, one action (it was one per connection).
      assert.equal(actions(diag), 1);
      assert.equal(o.stats().delivered, 0);
      // Backed off: after six or more short-lived connections the delay is at least 2^5/2 times network_retry_time.
      await waitFor(() => o.stats().connected === false, 10000, 'the last connection dropped');
      assert.ok((o.stats().retryDelayMs as number) >= 16 * RETRY_MS, `retry delay ${o.stats().retryDelayMs}`);

      // The peer takes records again: its first ACK ends the outage and the delay goes back to network_retry_time.
      p.set('ack');
      await waitFor(() => o.stats().delivered === 1, 30000, 'the record acked');
      assert.equal(o.stats().healthy, true);
      assert.equal(o.stats().retryDelayMs, RETRY_MS);
      assert.ok(diag.lines.some((l) => l.level === 'info' && String(l.m) === 'connected again; outage over'));
      // A break after that is a new outage: one more action.
      p.set('drop');
      await waitFor(() => actions(diag) === 2, 10000, 'a second outage');
    } finally {
      await out?.close();
      p.srv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('syslog output, a peer that accepts and drops: one action per outage, reconnects back off', async () => {
  const dir = tmpDir('amflapsys');
  const p = await peer();
  const diag = captureDiag();
  let out: SyslogOutput | null = null;
  try {
    out = new SyslogOutput(
      syslogSpec(p.port, path.join(dir, 'spool'), { networkRetryMs: RETRY_MS, resendWindowMs: 0 }),
      { contidKernel: false, diag },
    );
    out.writeRecord(USER, payload(0));
    out.flush();
    await waitFor(() => p.accepted() >= 7, 30000, 'seven connections');
    assert.equal(actions(diag), 1);
    const o = out;
    await waitFor(() => o.stats().connected === false, 10000, 'the last connection dropped');
    assert.ok((o.stats().retryDelayMs as number) >= 16 * RETRY_MS, `retry delay ${o.stats().retryDelayMs}`);
  } finally {
    await out?.close();
    p.srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
