// The aggregator listener's hardening on loopback: config defaults, node= policies, refused control bytes, caps, idle
// timeout, rate limit with backpressure, TLS client certificates. Each of these was an open door before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { analyzeConfig, parseConfig, type ListenConfig } from '../../src/config';
import { FrameParser, RMW, frame } from '../../src/output/remote/protocol';
import { startAggregator, vetLine } from '../../src/output/remote/aggregator';
import { makePki } from '../helpers/certs';
import { checkDelivery, freePort, payload, seqs, tmpDir, waitFor } from '../helpers/peers';
import { closed, collectingAggregator, connectTcp, connectTls, remoteClient } from '../helpers/remote';

const F = '/etc/auditmux/auditmux.yaml';
const errs = (t: string): string[] => analyzeConfig(t, F).errors.map((e) => e.message);

/** A listener as the config file would give it, on a free port and loopback. */
async function listenCfg(extra = ''): Promise<ListenConfig> {
  const port = await freePort();
  const c = parseConfig(`host:\n  listen: { port: ${port}${extra ? `, ${extra}` : ''} }\n`, F);
  assert.ok(c.host.listen);
  return c.host.listen;
}

/** Sends managed MESSAGE frames over `sock` and resolves with the reply types once one per frame came back. */
function sendManaged(sock: net.Socket, lines: (string | Buffer)[]): Promise<number[]> {
  const p = new FrameParser();
  const got: number[] = [];
  return new Promise((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      for (const it of p.push(d)) if (it.kind === 'frame') got.push(it.header.type);
      if (got.length >= lines.length) resolve(got);
    });
    sock.on('error', reject);
    sock.on('close', () =>
      got.length < lines.length ? reject(new Error(`closed after ${got.length} replies`)) : undefined,
    );
    sock.write(
      Buffer.concat(
        lines.map((l, i) => frame(RMW.MESSAGE, i + 1, typeof l === 'string' ? Buffer.from(l, 'latin1') : l)),
      ),
    );
  });
}

test('listen config: loopback, a cap, an idle timeout, a rate limit, node= prefix and a log of its own by default', () => {
  const c = parseConfig('host:\n  log: { file: /var/log/auditmux/audit.log }\n  listen: { port: 60 }\n', F);
  const l = c.host.listen!;
  assert.equal(l.address, '127.0.0.1');
  assert.equal(l.maxConnections, 64);
  assert.equal(l.clientMaxIdle, 600);
  assert.equal(l.nodePolicy, 'prefix');
  assert.ok((l.rateLimit ?? 0) > 0 && (l.rateBurst ?? 0) > 0);
  assert.equal(l.log?.file, '/var/log/auditmux/remote.log');
  assert.equal(l.tls, null);
  // auditd's behaviour only when asked for
  assert.equal(parseConfig('host: { listen: { port: 60, log: host } }', F).host.listen?.log, null);
  const own = parseConfig(
    'host: { listen: { port: 60, log: { file: /srv/remote/r.log, max_log_file: 100, num_logs: 9 } } }',
    F,
  ).host.listen?.log;
  assert.deepEqual([own?.file, own?.maxLogFileMiB, own?.numLogs], ['/srv/remote/r.log', 100, 9]);
  assert.match(
    errs('host: { log: { file: /x/a.log }, listen: { port: 60, log: { file: /x/a.log } } }')[0] ?? '',
    /is the host log; write `log: host`/,
  );
});

test('listen config: plain TCP off loopback needs plain_tcp: true; TLS needs cert, key and ca', () => {
  assert.match(
    errs('host: { listen: { port: 60, address: 0.0.0.0 } }')[0] ?? '',
    /plain TCP on 0\.0\.0\.0 .*configure tls: or set plain_tcp: true/,
  );
  assert.deepEqual(errs('host: { listen: { port: 60, address: 0.0.0.0, plain_tcp: true } }'), []);
  assert.deepEqual(errs('host: { listen: { port: 60, address: "::1" } }'), []);
  const t = parseConfig(
    'host: { listen: { port: 60, address: 0.0.0.0, tls: { cert: c.pem, key: k.pem, ca: ca.pem } } }',
    F,
  ).host.listen?.tls;
  assert.deepEqual(t, {
    cert: '/etc/auditmux/c.pem',
    key: '/etc/auditmux/k.pem',
    ca: '/etc/auditmux/ca.pem',
    requireClientCert: true,
  });
  assert.match(errs('host: { listen: { port: 60, tls: { cert: c.pem, key: k.pem } } }')[0] ?? '', /tls needs ca/);
  assert.match(
    errs('host: { listen: { port: 60, tls: { cert: c, key: k, ca: a }, plain_tcp: true } }')[0] ?? '',
    /both tls and plain_tcp/,
  );
  assert.match(
    errs('host: { listen: { port: 60, node_policy: trust } }')[0] ?? '',
    /node_policy must be one of prefix, check, keep/,
  );
});

test('vetLine: node= bound to the peer by policy; no node= gets the peer; control bytes escaped; non-records refused', () => {
  const v = (s: string, pol: 'prefix' | 'check' | 'keep' = 'prefix', id = '10.0.0.5'): string => {
    const r = vetLine(Buffer.from(s, 'latin1'), id, pol);
    return r.ok ? r.line.toString('latin1') : `REFUSED ${r.reason}`;
  };
  const rec = 'type=USER_LOGIN msg=audit(1.000:1): pid=1 res=success';
  assert.equal(v(rec), `node=10.0.0.5 ${rec}`);
  assert.equal(v(rec, 'keep'), `node=10.0.0.5 ${rec}`);
  assert.equal(v(`node=dc01 ${rec}`), `node=10.0.0.5/dc01 ${rec}`);
  assert.equal(v(`node=web1 ${rec}`, 'prefix', 'web1'), `node=web1 ${rec}`);
  assert.match(v(`node=dc01 ${rec}`, 'check'), /^REFUSED node=dc01 is not the peer's identity 10\.0\.0\.5/);
  assert.equal(v(`node=web1 ${rec}`, 'check', 'web1'), `node=web1 ${rec}`);
  assert.equal(v(`node=dc01 ${rec}`, 'keep'), `node=dc01 ${rec}`);
  // A newline inside a record: no audit daemon writes one (a newline in record text is written as a space), and it
  // would start a forged line. Refused.
  assert.match(v(`node=a ${rec}\nnode=dc01 ${rec}`), /^REFUSED newline \(byte 0x0a\) at offset/);
  // CR, ESC, DEL, TAB in a record's text: a user message's msg='...' keeps them in the host's own log (the kernel
  // copies it as sent, auditd writes it so). They used to refuse the record, which the host had logged and the
  // central log then never had; now they are written as \ooo, on one line, nothing a terminal acts on.
  assert.equal(v(`node=a ${rec}\rX`), `node=10.0.0.5/a ${rec}\\015X`);
  assert.equal(v(`node=a ${rec} x=\x1b[2J`), `node=10.0.0.5/a ${rec} x=\\033[2J`);
  assert.equal(v(`node=a ${rec}\x7f`), `node=10.0.0.5/a ${rec}\\177`);
  assert.equal(v(`${rec} msg='a\tb\x01'`), `node=10.0.0.5 ${rec} msg='a\\011b\\001'`);
  // ... but not in auditd's header, which no host writes with one.
  assert.match(v(`node=a\tb ${rec}`, 'keep'), /^REFUSED control byte 0x09 at offset 6 in the header/);
  assert.match(v(`type=USER\tmsg=audit(1.000:1): x`), /^REFUSED not an audit record/);
  // A NUL ends the record, as auditd takes the payload for a C string.
  assert.equal(v(`${rec}\0\x1b[2J`), `node=10.0.0.5 ${rec}`);
  assert.equal(
    v(`node=a ${rec}\x1dUID="root"\n`, 'keep'),
    `node=a ${rec}\x1dUID="root"`,
    'ENRICHED separator and one trailing newline are fine',
  );
  assert.match(v('hello world'), /^REFUSED not an audit record/);
  assert.match(v(`node=a node=b ${rec}`), /^REFUSED not an audit record/);
  assert.match(v(`node="x ${rec}`), /^REFUSED node= is not a host name/);
  assert.match(v(`node=a/b ${rec}`), /^REFUSED node= is not a host name/);
  assert.match(v(`node=a\x1d ${rec}`, 'keep'), /^REFUSED not an audit record/, 'a node ending in the separator');
});

test('aggregator binds to loopback when no address is given', async () => {
  const agg = await startAggregator(await listenCfg(), () => undefined);
  try {
    assert.equal(agg.address, '127.0.0.1');
  } finally {
    await agg.close();
  }
});

test('aggregator: forged node= is prefixed, a line without node= gets the peer, an injected newline is refused and counted', async () => {
  const { agg, got } = await collectingAggregator(await listenCfg());
  try {
    const s = await connectTcp(agg.port);
    const rec = 'type=USER_LOGIN msg=audit(1.000:1): pid=1 acct="admin" res=success';
    const replies = await sendManaged(s, [
      `node=dc01 ${rec}`,
      rec,
      `node=web1 ${rec}\nnode=dc01 ${rec}`,
      `node=web1 type=USER msg=x\x1b]0;pwned\x07`,
    ]);
    // refused records are acked too: sending them again could never make them valid
    assert.deepEqual(replies, [RMW.ACK, RMW.ACK, RMW.ACK, RMW.ACK]);
    assert.deepEqual(got, [`node=127.0.0.1/dc01 ${rec}`, `node=127.0.0.1 ${rec}`]);
    assert.equal(agg.stats().invalid, 2);
    // ascii lines follow the same rules
    s.write(`node=dc01 ${rec}\n\x1b[2Jtype=X msg=y\n`);
    await waitFor(() => got.length === 3 && agg.stats().invalid === 3, 5000, 'ascii lines vetted');
    assert.equal(got[2], `node=127.0.0.1/dc01 ${rec}`);
    s.destroy();
  } finally {
    await agg.close();
  }
});

test('aggregator: a USER record whose message holds TAB and ESC is written with them as \\011 and \\033, counted escaped', async () => {
  const { agg, got } = await collectingAggregator(await listenCfg());
  try {
    const s = await connectTcp(agg.port);
    // As a host's auditd logged it: the kernel copies a user message's text as sent.
    const rec = (n: number): string =>
      `type=USER msg=audit(1700000000.000:${n}): pid=1 uid=0 auid=1000 ses=1 msg='op=note text="a\tb\x1b[2Jc" res=success'`;
    const esc = (n: number): string =>
      `type=USER msg=audit(1700000000.000:${n}): pid=1 uid=0 auid=1000 ses=1 msg='op=note text="a\\011b\\033[2Jc" res=success'`;
    const replies = await sendManaged(s, [`node=web1 ${rec(1)}`, rec(2)]);
    assert.deepEqual(replies, [RMW.ACK, RMW.ACK]);
    s.write(`${rec(3)}\n`);
    await waitFor(() => got.length === 3, 5000, 'the ascii line');
    assert.deepEqual(got, [`node=127.0.0.1/web1 ${esc(1)}`, `node=127.0.0.1 ${esc(2)}`, `node=127.0.0.1 ${esc(3)}`]);
    assert.equal(agg.stats().escaped, 3);
    assert.equal(agg.stats().invalid, 0);
    s.destroy();
  } finally {
    await agg.close();
  }
});

test('aggregator: node_policy check refuses a node= that is not the peer', async () => {
  const { agg, got } = await collectingAggregator(await listenCfg('node_policy: check'));
  try {
    const s = await connectTcp(agg.port);
    await sendManaged(s, [
      'node=dc01 type=USER msg=audit(1.000:1): a',
      'node=127.0.0.1 type=USER msg=audit(1.000:1): b',
    ]);
    assert.deepEqual(got, ['node=127.0.0.1 type=USER msg=audit(1.000:1): b']);
    assert.equal(agg.stats().invalid, 1);
    s.destroy();
  } finally {
    await agg.close();
  }
});

test('aggregator: a global connection cap refuses the connection past it', async () => {
  const events: string[] = [];
  const agg = await startAggregator(await listenCfg('max_connections: 2, max_per_addr: 10'), () => undefined, {
    onConnection: (k, b) => events.push(`${k} ${b}`),
  });
  try {
    const a = await connectTcp(agg.port);
    const b = await connectTcp(agg.port);
    await waitFor(() => agg.stats().active === 2, 5000, 'two accepted');
    const c = await connectTcp(agg.port);
    await closed(c);
    assert.equal(agg.stats().rejected, 1);
    assert.ok(events.some((e) => /^accept op=cap addr=127\.0\.0\.1:\d+ port=\d+ res=no$/.test(e)));
    assert.equal(a.destroyed || b.destroyed, false);
    a.destroy();
    b.destroy();
  } finally {
    await agg.close();
  }
});

test('aggregator: an idle client is closed (client_max_idle)', async () => {
  const agg = await startAggregator(await listenCfg('client_max_idle: 1'), () => undefined);
  try {
    const s = await connectTcp(agg.port);
    await closed(s);
    assert.equal(agg.stats().idleClosed, 1);
  } finally {
    await agg.close();
  }
});

test(
  'aggregator: a peer over its rate is slowed down by backpressure and loses nothing',
  { timeout: 30000 },
  async () => {
    const dir = tmpDir('aggr-rate');
    const { agg, got } = await collectingAggregator(await listenCfg('rate_limit: 200, rate_burst: 20'));
    const out = remoteClient(agg.port, path.join(dir, 'spool'), { ackTimeoutMs: 20000, window: 64 });
    try {
      const N = 600;
      for (let i = 0; i < N; i++) out.writeRecord(1005, payload(i));
      out.flush();
      await waitFor(() => got.length >= N, 25000, 'every record delivered');
      assert.deepEqual(checkDelivery(seqs(got), N), { missing: [], duplicates: 0, inOrder: true });
      assert.ok((agg.stats().throttled ?? 0) > 0, 'the peer was throttled');
      assert.equal(agg.stats().records, N);
    } finally {
      await out.close();
      await agg.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'aggregator over TLS: a client certificate is required, its name is the node and is recorded',
  { timeout: 30000 },
  async () => {
    const pki = makePki();
    const good = pki.client('web1');
    const rogue = pki.client('web1', { rogue: true });
    const events: string[] = [];
    const cfg = {
      ...(await listenCfg('max_per_addr: 4')),
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requireClientCert: true },
    };
    const { agg, got } = await collectingAggregator(cfg, { onConnection: (k, b) => events.push(`${k} ${b}`) });
    try {
      const s = connectTls(agg.port, pki.ca, good);
      await new Promise<void>((r, j) => s.once('secureConnect', () => r()).once('error', j));
      await sendManaged(s, [
        'node=dc01 type=USER msg=audit(1.000:1): a',
        'node=web1 type=USER msg=audit(1.000:1): b',
        'type=USER msg=audit(1.000:1): c',
      ]);
      assert.deepEqual(got, [
        'node=web1/dc01 type=USER msg=audit(1.000:1): a',
        'node=web1 type=USER msg=audit(1.000:1): b',
        'node=web1 type=USER msg=audit(1.000:1): c',
      ]);
      assert.ok(
        events.some((e) => /^accept addr=127\.0\.0\.1:\d+ port=\d+ acct="web1" res=success$/.test(e)),
        events.join('\n'),
      );
      s.destroy();
      // no certificate, and a certificate from another CA: refused before a single record is read
      for (const c of [undefined, rogue]) {
        const bad = connectTls(agg.port, pki.ca, c);
        bad.on('error', () => undefined);
        bad.on('secureConnect', () => bad.write(frame(RMW.MESSAGE, 1, 'type=USER msg=forged')));
        await closed(bad);
      }
      // plain TCP to a TLS listener gets nowhere either
      const plain = await connectTcp(agg.port);
      plain.on('error', () => undefined);
      plain.write(frame(RMW.MESSAGE, 1, 'type=USER msg=plain'));
      await closed(plain);
      await waitFor(
        () => agg.stats().tlsRefused === 3,
        5000,
        `three refused handshakes ${JSON.stringify(agg.stats())} ${events.join(';')}`,
      );
      assert.equal(got.length, 3);
      assert.equal(agg.stats().connections, 1);
    } finally {
      await agg.close();
      fs.rmSync(pki.dir, { recursive: true, force: true });
    }
  },
);

test('aggregator over TLS: unreadable, oversized or non-regular key files are a clear IoError, not a hang', async () => {
  const dir = tmpDir('aggr-tlsfiles');
  try {
    const fifo = path.join(dir, 'key.fifo');
    execFileSync('mkfifo', [fifo]);
    const big = path.join(dir, 'big.pem');
    fs.writeFileSync(big, Buffer.alloc((1 << 20) + 1, 0x41));
    const base = await listenCfg();
    const tryTls = (cert: string, key: string, ca: string) =>
      startAggregator({ ...base, tls: { cert, key, ca, requireClientCert: true } }, () => undefined);
    await assert.rejects(
      tryTls(path.join(dir, 'none.pem'), fifo, big),
      (e: Error & { code?: string }) => e.code === 'E_IO' && /listener certificate/.test(e.message),
    );
    await assert.rejects(tryTls(big, big, big), (e: Error & { code?: string }) => e.code === 'E_TOO_LARGE');
    await assert.rejects(tryTls(fifo, fifo, fifo), (e: Error & { code?: string }) => e.code === 'E_NOT_REGULAR');
    fs.writeFileSync(path.join(dir, 'junk.pem'), 'not a certificate');
    const junk = path.join(dir, 'junk.pem');
    await assert.rejects(tryTls(junk, junk, junk), (e: Error & { code?: string }) => e.code === 'E_TLS');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('records whose flush failed are answered DISKERROR, not ACK: the client keeps them to send again', async () => {
  let fail = true;
  const agg = await startAggregator(await listenCfg('node_policy: keep'), () => undefined, {
    afterBatch: () => !fail,
  });
  try {
    const sock = await connectTcp(agg.port);
    try {
      const line = (i: number): string => `node=n1 type=USER msg=audit(1700000000.000:${i}): pid=1 msg='x'`;
      assert.deepEqual(await sendManaged(sock, [line(1), line(2)]), [RMW.DISKERROR, RMW.DISKERROR]);
      assert.equal((agg.stats() as { diskErrors: number }).diskErrors, 2);
    } finally {
      sock.destroy();
    }
    fail = false;
    // One connection per address: the second waits until the server saw the first go.
    await waitFor(() => agg.stats().active === 0, 5000, 'the first connection closed');
    const sock2 = await connectTcp(agg.port);
    try {
      assert.deepEqual(await sendManaged(sock2, ["node=n1 type=USER msg=audit(1700000000.000:3): pid=1 msg='x'"]), [
        RMW.ACK,
      ]);
    } finally {
      sock2.destroy();
    }
  } finally {
    await agg.close();
  }
});
