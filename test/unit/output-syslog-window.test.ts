// A syslog peer that reads steadily but slower than the spool is replayed: records are committed (and the spool frees)
// while the backlog is still being sent, and what is written but not committed stays under its bound. Before, the
// output committed only when the socket's user-space buffer was empty at a tick, which a slow peer never let happen:
// 341,506 records received, 14,950 committed, 334,650 remembered one by one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SyslogOutput } from '../../src/output/syslog';
import { captureDiag, payload, syslogSpec, tmpDir, waitFor } from '../helpers/peers';

const USER = 1005;

/** A peer that reads at most 4096 bytes per 1 ms timer tick; counts the records it received (seq=N). */
async function slowPeer(): Promise<{ srv: net.Server; port: number; received: () => number }> {
  const seen = new Set<number>();
  const srv = net.createServer((s) => {
    s.pause();
    s.on('error', () => undefined);
    let tail = '';
    const rd = setInterval(() => {
      const d = (s.read(4096) ?? s.read()) as Buffer | null;
      if (!d) return;
      const t = tail + d.toString('latin1');
      const re = /seq=(\d+)[ ']/g;
      for (let m = re.exec(t); m; m = re.exec(t)) seen.add(Number(m[1]));
      tail = t.slice(-40);
    }, 1);
    s.on('close', () => clearInterval(rd));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { srv, port: (srv.address() as net.AddressInfo).port, received: () => seen.size };
}

test('syslog output, slow peer: delivered rises while records are pending, unconfirmed stays under its bound', async () => {
  const dir = tmpDir('amsyswin');
  const peer = await slowPeer();
  const N = 6000;
  const CAP = 500;
  let out: SyslogOutput | null = null;
  try {
    out = new SyslogOutput(
      syslogSpec(peer.port, path.join(dir, 'spool'), { resendWindowMs: 100 }),
      { contidKernel: false, diag: captureDiag() },
      { maxUnconfirmedRecords: CAP },
    );
    for (let i = 0; i < N; i++) out.writeRecord(USER, payload(i, ' '.repeat(200)));
    out.flush();
    const o = out;
    let maxUnconfirmed = 0;
    let progressWhilePending = false;
    await waitFor(
      () => {
        const st = o.stats() as { unconfirmed: number; delivered: number; pending: number };
        maxUnconfirmed = Math.max(maxUnconfirmed, st.unconfirmed);
        if (st.delivered > 0 && st.pending > 0) progressWhilePending = true;
        return st.pending === 0 && peer.received() === N;
      },
      60000,
      `all ${N} records delivered (${peer.received()} received)`,
    );
    assert.ok(maxUnconfirmed <= CAP, `at most ${CAP} unconfirmed: saw ${maxUnconfirmed}`);
    assert.ok(progressWhilePending, 'records were committed while others were still pending');
    assert.equal(o.stats().delivered, N);
  } finally {
    await out?.close();
    peer.srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
