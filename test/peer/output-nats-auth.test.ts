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
import { Collector } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import { NatsOutput } from '../../src/output/nats/output';
import { natsOptions } from '../../src/output/nats/connect';
import { createOutputs } from '../../src/output/outputs';
import { IoError } from '../../src/errors';
import { NatsServer, natsSpec, quiet, streamMessages, until } from '../helpers/nats';

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
      () =>
        o.stats().delivered === n ||
        /author|certificate|self.signed|unable to verify/i.test(String(o.stats().lastError)),
      () => JSON.stringify(o.stats()),
    );
    return o.stats();
  } finally {
    await o.close();
  }
}

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-natsauth-'));

test('user/password and token: the right ones deliver, wrong ones are refused and nothing leaves the spool', async () => {
  const dir = tmp();
  const srv = await NatsServer.start({ conf: 'authorization { users = [ { user: "host1", password: "pw-1" } ] }' });
  try {
    assert.equal((await delivers(srv.url, path.join(dir, 'a'), { user: 'host1', password: 'pw-1' })).delivered, 10);
    const bad = await delivers(srv.url, path.join(dir, 'b'), { user: 'host1', password: 'nope' });
    assert.equal(bad.delivered, 0);
    assert.equal(bad.pending, 10);
    assert.match(String(bad.lastError), /author/i);
  } finally {
    await srv.stop();
  }
  const srv2 = await NatsServer.start({ conf: 'authorization { token: "s3cret-token" }' });
  try {
    assert.equal((await delivers(srv2.url, path.join(dir, 'c'), { token: 's3cret-token' })).delivered, 10);
    assert.equal((await delivers(srv2.url, path.join(dir, 'd'), { token: 'wrong' })).delivered, 0);
    const c = new Collector(
      parseCollectConfig(
        `servers: [${srv2.url}]\ntoken: s3cret-token\ndir: ${path.join(dir, 'fleet')}\n`,
        path.join(dir, 'c.yaml'),
      ),
      quiet,
    );
    await c.start();
    await until(
      () => c.counters.written === 10,
      () => JSON.stringify(c.status()),
    );
    await c.stop();
  } finally {
    await srv2.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS with a private CA and client certificates: verified connection delivers; an unknown CA is refused', async () => {
  const dir = tmp();
  const f = (n: string): string => path.join(dir, n);
  const ssl = (...a: string[]): void => void execFileSync('openssl', a, { stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  fs.writeFileSync(f('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who}`,
      '-keyout',
      f(`${who}.key`),
      '-out',
      f(`${who}.csr`),
    );
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f('san.cnf'),
      '-out',
      f(`${who}.pem`),
    );
  }
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=other-ca',
    '-keyout',
    f('other.key'),
    '-out',
    f('other.pem'),
  );
  const srv = await NatsServer.start({
    conf: `tls { cert_file: "${f('server.pem')}", key_file: "${f('server.key')}", ca_file: "${f('ca.pem')}", verify: true }`,
  });
  const tls = (ca: string, client: boolean): TlsSpec => ({
    ca,
    cert: client ? f('client.pem') : null,
    key: client ? f('client.key') : null,
    serverName: null,
    verify: true,
  });
  try {
    const url = `tls://127.0.0.1:${srv.port}`;
    const good = await delivers(url, f('ok'), { tls: tls(f('ca.pem'), true) });
    assert.equal(good.delivered, 10, JSON.stringify(good));
    assert.equal(
      await streamMessages(url, 'AUDIT').catch(() => null),
      null,
      'a client without a certificate is refused',
    );
    const other = await delivers(url, f('other'), { tls: tls(f('other.pem'), true) });
    assert.equal(other.delivered, 0);
    assert.equal(other.pending, 10);
  } finally {
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('credential and TLS files are read bounded: a FIFO or an oversized creds file is refused, not waited on', () => {
  const dir = tmp();
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
