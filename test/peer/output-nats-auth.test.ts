// nats output and collector authentication against a real nats-server: user/password, token, TLS with client
// certificates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { NatsOutputSpec, TlsSpec } from '../../src/config/schema';
import { MsgType } from '../../src/kernel/constants';
import { NatsOutput } from '../../src/output/nats/output';
import { natsOptions } from '../../src/output/nats/connect';
import { createOutputs } from '../../src/output/outputs';
import { IoError } from '../../src/errors';
import { makePki } from '../helpers/certs';
import { natsSpec, quiet, until, withFleet, withServer } from '../helpers/nats';

function spec(url: string, dir: string, over: Partial<NatsOutputSpec>): NatsOutputSpec {
  const spool = {
    dir: path.join(dir, 'spool'),
    maxBytes: 16 * 1024 * 1024,
    fullAction: 'syslog' as const,
    fullExe: null,
  };
  return natsSpec([url], null, { spool, maxInFlight: 16, ...over });
}

function feed(o: NatsOutput, n: number): void {
  for (let i = 0; i < n; i++) {
    const st = `audit(1700000000.${String(i).padStart(3, '0')}:${i + 1})`;
    o.writeRecord(MsgType.SYSCALL, Buffer.from(`${st}: arch=c000003e syscall=1 pid=${i} key="a"`));
    o.writeRecord(MsgType.EOE, Buffer.from(`${st}: `));
  }
  o.flush();
}

async function delivers(
  url: string,
  dir: string,
  over: Partial<NatsOutputSpec>,
  n = 10,
): Promise<Record<string, unknown>> {
  const o = new NatsOutput(spec(url, dir, over), { nodeName: 'h', contidKernel: false, diag: quiet });
  try {
    feed(o, n);
    await until(
      // Delivered, or refused: a wrong credential or CA names itself; a TLS handshake the server cut (no client
      // certificate) reads as a connect timeout.
      () =>
        o.stats().delivered === n ||
        /author|certificate|self.signed|unable to verify|connect: timeout/i.test(String(o.stats().lastError)),
      () => JSON.stringify(o.stats()),
    );
    return o.stats();
  } finally {
    await o.close();
  }
}

const P = 'auditmux-natsauth-';

test('user/password and token: the right ones deliver, wrong ones are refused and nothing leaves the spool', async () => {
  await withServer(
    P,
    async (srv, dir) => {
      assert.equal((await delivers(srv.url, path.join(dir, 'a'), { user: 'host1', password: 'pw-1' })).delivered, 10);
      const bad = await delivers(srv.url, path.join(dir, 'b'), { user: 'host1', password: 'nope' });
      assert.equal(bad.delivered, 0);
      assert.equal(bad.pending, 10);
      assert.match(String(bad.lastError), /author/i);
    },
    { conf: 'authorization { users = [ { user: "host1", password: "pw-1" } ] }' },
  );
  await withFleet({ prefix: P, conf: 'authorization { token: "s3cret-token" }' }, async (f) => {
    assert.equal((await delivers(f.srv.url, path.join(f.dir, 'c'), { token: 's3cret-token' })).delivered, 10);
    assert.equal((await delivers(f.srv.url, path.join(f.dir, 'd'), { token: 'wrong' })).delivered, 0);
    const c = f.collector('fleet', 'token: s3cret-token\n');
    await c.start();
    await until(
      () => c.counters.written === 10,
      () => JSON.stringify(c.status()),
    );
    // stopped here too, not only at teardown (which ignores errors): a failing stop fails the test
    await c.stop();
  });
});

test('TLS with a private CA and client certificates: verified connection delivers; an unknown CA is refused', async () => {
  const pki = makePki();
  const client = pki.client('client');
  const tls = (ca: string): TlsSpec => ({ ca, cert: client.cert, key: client.key, serverName: null, verify: true });
  try {
    await withServer(
      P,
      async (srv, dir) => {
        const url = `tls://127.0.0.1:${srv.port}`;
        const good = await delivers(url, path.join(dir, 'ok'), { tls: tls(pki.ca) });
        assert.equal(good.delivered, 10, JSON.stringify(good));
        // trusts the server's CA but has no certificate of its own: the server's `verify: true` refuses it
        const anonymous = await delivers(url, path.join(dir, 'anon'), {
          tls: { ca: pki.ca, cert: null, key: null, serverName: null, verify: true },
        });
        assert.equal(anonymous.delivered, 0, 'a client without a certificate is refused');
        assert.equal(anonymous.pending, 10);
        // the client's certificate is good; the CA it trusts did not sign the server's
        const other = await delivers(url, path.join(dir, 'other'), { tls: tls(pki.rogueCa) });
        assert.equal(other.delivered, 0);
        assert.equal(other.pending, 10);
      },
      {
        conf: `tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", ca_file: "${pki.ca}", verify: true }`,
      },
    );
  } finally {
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
});

test('credential and TLS files are read bounded: a FIFO or an oversized creds file is refused, not waited on', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), P));
  try {
    const fifo = path.join(dir, 'creds.fifo');
    execFileSync('mkfifo', [fifo]);
    const base = { servers: ['nats://127.0.0.1:1'], tls: null, user: null, password: null, token: null, creds: fifo };
    assert.throws(() => natsOptions(base, 't', 100), /not a regular file/);
    const big = path.join(dir, 'big.creds');
    fs.writeFileSync(big, Buffer.alloc(65 * 1024, 0x41));
    assert.throws(() => natsOptions({ ...base, creds: big }, 't', 100), /limit/);
    assert.throws(
      () =>
        natsOptions(
          { ...base, creds: null, tls: { ca: '/dev/zero', cert: null, key: null, serverName: null, verify: true } },
          't',
          100,
        ),
      /not a regular file/,
    );
    // Through the output factory: the daemon refuses to start, naming the file, instead of retrying forever.
    assert.throws(
      () =>
        createOutputs([spec('nats://127.0.0.1:1', dir, { creds: path.join(dir, 'missing.creds') })], {
          contidKernel: false,
          diag: quiet,
        }),
      (e: unknown) => e instanceof IoError && /missing\.creds \(ENOENT\)/.test(e.message),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
