// The RFC 5424 syslog output against a real rsyslogd (imtcp, octet counting; gtls for TLS) started by the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SyslogOutput } from '../../src/output/syslog';
import {
  captureDiag,
  checkDelivery,
  freePort,
  hasPackage,
  missing,
  payload,
  Rsyslog,
  seqs,
  sleep,
  syslogSpec,
  tmpDir,
  waitFor,
  which,
} from '../helpers/peers';

const skip = missing('rsyslogd');
const skipTls =
  skip ||
  (!hasPackage('rsyslog-gnutls')
    ? 'rsyslog-gnutls is not installed'
    : !which('openssl')
      ? 'openssl is not installed'
      : false);
const USER = 1005;

const spec = syslogSpec;

test('syslog output: rsyslog receives RFC 5424 messages with octet counting', { skip }, async () => {
  const dir = tmpDir('rsys');
  const port = await freePort();
  const rs = new Rsyslog(dir, port);
  let out: SyslogOutput | null = null;
  try {
    await rs.start();
    out = new SyslogOutput(spec(port, path.join(dir, 'spool')), {
      nodeName: 'n1',
      contidKernel: false,
      diag: captureDiag(),
    });
    const N = 2000;
    // Embedded newlines would split records under LF framing; octet counting must carry them intact.
    for (let i = 0; i < N; i++) out.writeRecord(USER, payload(i, i === 7 ? ' tail' : ''));
    out.flush();
    await waitFor(() => rs.lines().filter((l) => l.includes('op=test')).length >= N, 20000, 'rsyslog got all records');
    const lines = rs.lines().filter((l) => l.includes('op=test'));
    const d = checkDelivery(seqs(lines), N);
    assert.deepEqual(d, { missing: [], duplicates: 0, inOrder: true });
    const f = (lines[0] as string).split('|');
    // PRI 13*8+6 = 110, the record's own time, our HOSTNAME/APP-NAME, MSGID = record type
    assert.equal(f[0], '110');
    assert.match(f[1] as string, /^2023-11-14T22:13:20\.000(Z|\+00:00)$/);
    assert.deepEqual(f.slice(2, 6), ['testhost', 'auditmux', String(process.pid), 'USER']);
    assert.match(f[6] as string, /^node=n1 type=USER msg=audit\(1700000000\.000:1\): pid=1000 .*seq=0'$/);
  } finally {
    await out?.close();
    await rs.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'syslog output: rsyslog killed and restarted mid-stream loses nothing, duplicates stay inside the resend window',
  { skip, timeout: 120000 },
  async () => {
    const dir = tmpDir('rsys-kill');
    const port = await freePort();
    const rs = new Rsyslog(dir, port);
    const spoolDir = path.join(dir, 'spool');
    const windowMs = 300;
    let out: SyslogOutput | null = null;
    try {
      await rs.start();
      out = new SyslogOutput(spec(port, spoolDir, { resendWindowMs: windowMs }), {
        contidKernel: false,
        diag: captureDiag(),
      });
      const N = 4000;
      let i = 0;
      // About 1000 records/s from a background loop, so the peer dies while records are really in flight.
      let paused = false;
      const sender = (async () => {
        while (i < N) {
          if (paused || !out) {
            await sleep(5);
            continue;
          }
          for (let k = 0; k < 10 && i < N; k++, i++) out.writeRecord(USER, payload(i));
          out.flush();
          await sleep(10);
        }
      })();
      await waitFor(() => i >= 800, 10000, 'first records');
      await rs.stop('SIGKILL');
      await waitFor(() => i >= 1400, 10000, 'records spooled while down');
      assert.equal(out.stats().connected, false);
      await rs.start();
      await waitFor(() => i >= 2200, 10000, 'more records');
      await rs.stop('SIGTERM');
      await sleep(200);
      await rs.start();
      await waitFor(() => i >= 3000, 10000, 'more records');
      // auditmux restart: a new output on the same spool replays what the old one had not confirmed.
      paused = true;
      await out.close();
      out = new SyslogOutput(spec(port, spoolDir, { resendWindowMs: windowMs }), {
        contidKernel: false,
        diag: captureDiag(),
      });
      paused = false;
      await sender;
      out.flush();
      await waitFor(() => out!.stats().pending === 0, 60000, 'spool drained');
      await waitFor(() => new Set(seqs(rs.lines())).size >= N, 20000, 'rsyslog wrote everything');
      const d = checkDelivery(seqs(rs.lines()), N);
      assert.deepEqual(d.missing, []);
      assert.equal(d.inOrder, true);
      // Each of the 2 broken connections resends at most one window of traffic (~300 records at this pace, doubled for
      // jitter).
      assert.ok(d.duplicates <= 2 * 600, `duplicates ${d.duplicates}`);
    } finally {
      await out?.close();
      await rs.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'syslog output over TLS: rsyslog gtls accepts it, a wrong CA is refused',
  { skip: skipTls, timeout: 60000 },
  async () => {
    const dir = tmpDir('rsys-tls');
    const port = await freePort();
    const ca = path.join(dir, 'ca.pem');
    const caKey = path.join(dir, 'ca.key');
    const cert = path.join(dir, 'server.pem');
    const key = path.join(dir, 'server.key');
    const ossl = (args: string[]): void => {
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
    };
    ossl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      caKey,
      '-out',
      ca,
      '-days',
      '2',
      '-subj',
      '/CN=auditmux test CA',
    ]);
    ossl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      path.join(dir, 'server.csr'),
      '-subj',
      '/CN=localhost',
    ]);
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    ossl([
      'x509',
      '-req',
      '-in',
      path.join(dir, 'server.csr'),
      '-CA',
      ca,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      path.join(dir, 'ext.cnf'),
    ]);
    const rs = new Rsyslog(dir, port, { ca, cert, key });
    let out: SyslogOutput | null = null;
    let bad: SyslogOutput | null = null;
    try {
      await rs.start();
      const tls = { ca, cert: null, key: null, serverName: 'localhost', verify: true };
      out = new SyslogOutput(spec(port, path.join(dir, 'spool'), { tls }), {
        contidKernel: false,
        diag: captureDiag(),
      });
      const N = 500;
      for (let i = 0; i < N; i++) out.writeRecord(USER, payload(i));
      out.flush();
      await waitFor(() => new Set(seqs(rs.lines())).size >= N, 20000, 'rsyslog got all TLS records');
      assert.deepEqual(checkDelivery(seqs(rs.lines()), N), { missing: [], duplicates: 0, inOrder: true });
      assert.equal(out.stats().tls, true);

      // Verification against an unrelated CA must fail and keep the records spooled.
      const otherCa = path.join(dir, 'other-ca.pem');
      ossl([
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        path.join(dir, 'other.key'),
        '-out',
        otherCa,
        '-days',
        '2',
        '-subj',
        '/CN=other',
      ]);
      bad = new SyslogOutput(spec(port, path.join(dir, 'spool-bad'), { tls: { ...tls, ca: otherCa } }), {
        contidKernel: false,
        diag: captureDiag(),
      });
      bad.writeRecord(USER, payload(99999));
      bad.flush();
      await sleep(800);
      assert.equal(bad.stats().connected, false);
      assert.equal(bad.stats().pending, 1);
      assert.ok((bad.stats().tlsErrors as number) > 0, String(bad.stats().lastError));
    } finally {
      await bad?.close();
      await out?.close();
      await rs.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
