// A network output over a spool recovered at start: its status counts the spooled records as the background count goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Spool } from '../../src/output/transport/spool';
import { SyslogOutput } from '../../src/output/syslog';
import { captureDiag, syslogSpec, tmpDir } from '../helpers/peers';

/** A loopback port nobody listens on: the output's connects are refused, so it reads nothing of its spool. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('a syslog output reopening a spool of several segments: status shows what is not counted yet, then all of it', async () => {
  const dir = tmpDir('amspoolstatus');
  const spool = path.join(dir, 'spool');
  const diag = captureDiag();
  let out: SyslogOutput | null = null;
  try {
    // The output's own spool settings (4 MiB: 1 MiB segments), filled to five segments by an earlier run.
    const maxBytes = 4 << 20;
    const s = new Spool({ dir: spool, maxBytes });
    let n = 0;
    while (fs.readdirSync(spool).filter((f) => f.startsWith('seg-')).length < 5)
      assert.ok(s.append(Buffer.from(`<13>1 - testhost auditmux - - - record ${n++} ${'x'.repeat(300)}`)));
    s.close();
    const spec = syslogSpec(await closedPort(), spool, { networkRetryMs: 10_000 });
    out = new SyslogOutput({ ...spec, spool: { ...spec.spool, maxBytes } }, { contidKernel: false, diag });
    const first = out.stats();
    assert.ok((first.pending as number) < n, `${String(first.pending)} of ${n} counted at open`);
    assert.ok((first.uncountedBytes as number) > 0);
    assert.ok((first.queuedBytes as number) > 0);
    const replay = diag.lines.find((l) => l.m === 'spooled records will be replayed');
    assert.ok(replay, 'the replay is told at start');
    const o = out;
    for (let i = 0; i < 10_000 && o.stats().uncountedBytes !== undefined; i++)
      await new Promise((r) => setImmediate(r));
    const done = out.stats();
    assert.equal(done.pending, n);
    assert.equal(done.uncountedBytes, undefined, 'shown only while the count goes on');
    assert.equal(done.queuedBytes, first.queuedBytes);
  } finally {
    await out?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
