// Forged lines: untrusted bytes in interpreted values (AF_UNIX paths) and user text never break a log line or its
// fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LineFormatter } from '../../src/output/format';
import { sockaddrText, syscallText, archText } from '../../src/vocab/interpret';
import { escapeInterp, unescapeInterp, encodeUntrusted, decodeUntrusted } from '../../src/records/encode';
import { parseRecord } from '../../src/records/record';
import { runSearch } from '../../src/search';
import { intBelow, prng } from '../helpers/prng';

/** What an unprivileged connect() to this path makes the kernel log: the sockaddr as it was passed, in hex. */
function sockaddrRecord(path: Buffer, serial = 7): Buffer {
  const sa = Buffer.concat([Buffer.from([1, 0]), path, Buffer.from([0])]);
  return Buffer.from(`audit(1700000000.123:${serial}): saddr=${sa.toString('hex').toUpperCase()}`, 'latin1');
}

/** The attack of issue 10: a newline, a whole fake record from another node, and a 0x1D with forged interpretations. */
const FORGED_PATH = Buffer.from(
  '/tmp/x\nnode=dc01 type=USER_LOGIN msg=audit(1700000000.123:7): pid=1 uid=0 res=success\x1dAUID="root"',
  'latin1',
);

test('forged AF_UNIX path: the ENRICHED SOCKADDR record stays one line with one separator', () => {
  const f = new LineFormatter({ format: 'ENRICHED' });
  const line = f.formatRecord(parseRecord(1306, sockaddrRecord(FORGED_PATH)));
  assert.ok(!line.includes('\n'), JSON.stringify(line));
  assert.equal(line.split('\x1d').length, 2, 'exactly one separator');
  const interp = line.slice(line.indexOf('\x1d') + 1);
  assert.match(
    interp,
    /^SADDR=\{ saddr_fam=local path=\/tmp\/x\\012node=dc01 type=USER_LOGIN .*res=success\\035AUID="root" \}$/,
  );
  assert.equal(unescapeInterp(/path=(.*) \}$/.exec(interp)![1]!), FORGED_PATH.toString('latin1'));
});

test('forged AF_UNIX path: auditmux search finds the real record and no forged USER_LOGIN', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'amforge-'));
  try {
    const f = new LineFormatter({ format: 'ENRICHED' });
    const sys = Buffer.from(
      'audit(1700000000.123:7): arch=c000003e syscall=42 success=no exit=-2 a0=3 a1=7ffd a2=6e a3=0 items=0 ppid=1 pid=4242 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="nc" exe="/usr/bin/nc" subj=unconfined key="net"',
      'latin1',
    );
    const log =
      [f.formatRecord(parseRecord(1300, sys)), f.formatRecord(parseRecord(1306, sockaddrRecord(FORGED_PATH)))].join(
        '\n',
      ) + '\n';
    const file = join(dir, 'audit.log');
    writeFileSync(file, log, 'latin1');
    const io = (): { out: string[]; err: string[]; io: { out(s: string): void; err(s: string): void } } => {
      const c = {
        out: [] as string[],
        err: [] as string[],
        io: { out: (s: string) => void c.out.push(s), err: (s: string) => void c.err.push(s) },
      };
      return c;
    };
    const forged = io();
    assert.equal(await runSearch(['-if', file, '-m', 'USER_LOGIN', '--raw'], forged.io), 1, forged.out.join(''));
    const real = io();
    assert.equal(await runSearch(['-if', file, '-m', 'SOCKADDR', '--raw'], real.io), 0);
    assert.equal(
      real.out
        .join('')
        .split('\n')
        .filter((l) => l !== '').length,
      2,
      'the SYSCALL and SOCKADDR records of one event',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('abstract AF_UNIX names print from sun_path[1] as auparse does, escaped', () => {
  const abs = (name: string): string =>
    '0100' +
    Buffer.from('\0' + name, 'latin1')
      .toString('hex')
      .toUpperCase();
  assert.equal(sockaddrText(abs('/tmp/.X11-unix/X0')), '{ saddr_fam=local path=/tmp/.X11-unix/X0 }');
  assert.equal(sockaddrText(abs('evil\nline')), '{ saddr_fam=local path=evil\\012line }');
  // auparse stops at the first NUL of the name (%s) and at 108 bytes (%.108s)
  assert.equal(sockaddrText(abs('a\0b')), '{ saddr_fam=local path=a }');
  assert.equal(sockaddrText('0100' + '41'.repeat(126)), `{ saddr_fam=local path=${'A'.repeat(108)} }`);
  assert.equal(sockaddrText('010041'), '{ saddr_fam=local sockaddr len too short }');
});

test('error forms that quote record text are escaped too', () => {
  assert.equal(syscallText('1\x1b[2J', -1), 'unknown-syscall(1\\033[2J)');
  assert.equal(archText('zz\r'), 'unknown-elf-type(zz\\015)');
  assert.equal(sockaddrText('0\x1d'), 'malformed-host(0\\035)');
});

test('a 0x1D in a user message becomes a space, like a newline: no forged interpretation list', () => {
  for (const fmt of ['RAW', 'ENRICHED'] as const) {
    const f = new LineFormatter({ format: fmt });
    const line = f.formatRecord(
      parseRecord(
        1112,
        Buffer.from(
          'audit(1.001:2): pid=5 uid=1000 auid=1000 ses=1 msg=\'op=login acct="bob" res=failed\x1dAUID="root"\'',
          'latin1',
        ),
      ),
    );
    assert.ok(line.includes('res=failed AUID="root"'), line);
    assert.equal(line.split('\x1d').length, fmt === 'RAW' ? 1 : 2, line);
  }
});

test('escapeInterp: fixed-seed property test, printable output without separators, round-trips', () => {
  const r = prng(0x5eed10);
  for (let n = 0; n < 20000; n++) {
    const len = intBelow(r, 40);
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(r() < 0.5 ? intBelow(r, 256) : 0x20 + intBelow(r, 95));
    const e = escapeInterp(s);
    assert.match(e, /^[\x20-\x7e]*$/);
    assert.equal(unescapeInterp(e), s);
    if (/^[\x20-\x5b\x5d-\x7e]*$/.test(s)) assert.equal(e, s, 'printable values are left alone');
  }
});

test('formatter fuzz: random AF_UNIX paths and user texts never yield a newline, CR or second 0x1D; paths round-trip', () => {
  const r = prng(10);
  const fr = new LineFormatter({ format: 'RAW' });
  const fe = new LineFormatter({ format: 'ENRICHED' });
  for (let n = 0; n < 5000; n++) {
    const len = 1 + intBelow(r, 107);
    const path = Buffer.alloc(len);
    for (let i = 0; i < len; i++)
      path[i] = r() < 0.3 ? [0x0a, 0x0d, 0x1d, 0x1b, 0x5c, 0x7f, 0x9b][intBelow(r, 7)]! : 1 + intBelow(r, 255);
    const rec = parseRecord(1306, sockaddrRecord(path, n));
    const line = fe.formatRecord(rec);
    assert.ok(!/[\n\r]/.test(line), JSON.stringify(line));
    assert.equal(line.split('\x1d').length, 2);
    assert.match(line.slice(line.indexOf('\x1d') + 1), /^[\x20-\x7e]*$/);
    const m = /path=(.*) \}$/.exec(line)!;
    assert.equal(unescapeInterp(m[1]!), path.toString('latin1'));
    const user = Buffer.concat([
      Buffer.from(`audit(1.001:${n}): pid=1 uid=0 auid=0 ses=1 msg='`, 'latin1'),
      path,
      Buffer.from("'"),
    ]);
    for (const f of [fr, fe]) {
      const l = f.formatRecord(parseRecord(1100, user));
      assert.ok(!l.includes('\n'));
      assert.ok(l.split('\x1d').length <= 2);
      if (f === fe && l.includes('\x1d')) assert.match(l.slice(l.indexOf('\x1d') + 1), /^[\x20-\x7e]*$/);
    }
  }
});

test('encodeUntrusted: quoted when safe, hex otherwise, never a space, quote or control; round-trips (fixed seed)', () => {
  assert.equal(encodeUntrusted('/etc/a.rules'), '"/etc/a.rules"');
  assert.equal(encodeUntrusted('a b'), '612062');
  assert.equal(encodeUntrusted('x"y'), '782279');
  assert.equal(encodeUntrusted(''), '""');
  // U+010A written as latin1 would be a newline: the encoder works on UTF-8 bytes
  assert.equal(encodeUntrusted('\u010a'), 'C48A');
  const r = prng(77);
  for (let n = 0; n < 20000; n++) {
    const len = intBelow(r, 30);
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(r() < 0.2 ? intBelow(r, 0x800) : 0x20 + intBelow(r, 95));
    const e = encodeUntrusted(s);
    assert.match(e, /^[\x21\x23-\x7e]*$|^"[\x21\x23-\x7e]*"$/);
    assert.equal(decodeUntrusted(e)!.toString('utf8'), Buffer.from(s, 'utf8').toString('utf8'));
  }
});

test("every output takes the formatter's line: a plugin (string format, ENRICHED) gets the forged record as one line", async () => {
  const { PluginOutput } = await import('../../src/output/plugin');
  const { captureDiag, tmpDir, waitFor } = await import('../helpers/peers');
  const { formatSyslogMessage } = await import('../../src/output/syslog');
  const dir = tmpDir('amforge-plug');
  const got = join(dir, 'got.txt');
  const recorder = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'outputs', 'plugin-recorder.js');
  const p = new PluginOutput(
    {
      type: 'plugin',
      name: 'rec',
      format: 'ENRICHED',
      path: process.execPath,
      args: [recorder, got, 'string'],
      pluginFormat: 'string',
      maxRestarts: 0,
      spool: { dir: join(dir, 'spool'), maxBytes: 1 << 20, fullAction: 'syslog', fullExe: null },
    },
    { nodeName: 'h1', contidKernel: false, diag: captureDiag() },
  );
  try {
    p.writeRecord(1306, sockaddrRecord(FORGED_PATH));
    p.writeRecord(1320, Buffer.from('audit(1700000000.123:7): '));
    p.flush();
    const lines = (): string[] =>
      existsSync(got)
        ? readFileSync(got, 'latin1')
            .split('\n')
            .filter((l) => l !== '')
        : [];
    await waitFor(() => lines().length >= 2, 10000, 'the plugin got both records');
    const l = lines();
    assert.equal(l.length, 2, JSON.stringify(l));
    assert.match(
      l[0]!,
      /^node=h1 type=SOCKADDR msg=audit\(1700000000\.123:7\): saddr=[0-9A-F]+\x1dSADDR=\{ saddr_fam=local path=\/tmp\/x\\012node=dc01 /,
    );
    assert.match(l[1]!, /^node=h1 type=EOE /);
  } finally {
    await p.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // syslog and remote outputs frame the same formatter line (QueuedOutput.encode); the RFC 5424 MSG holds it whole
  const line = Buffer.from(
    new LineFormatter({ format: 'ENRICHED' }).formatRecord(parseRecord(1306, sockaddrRecord(FORGED_PATH))),
    'latin1',
  );
  const msg = formatSyslogMessage(
    { facility: 13, severity: 6, hostname: 'h', appName: 'auditmux', procId: '1' },
    'SOCKADDR',
    line,
  );
  assert.ok(!msg.includes(0x0a) && !msg.includes(0x0d));
});

test('a node name (reverse DNS with name_format fqd) cannot split the line or add fields', async () => {
  const { nodeText } = await import('../../src/output/format');
  assert.equal(nodeText('dc01.example.com'), 'dc01.example.com');
  const f = new LineFormatter({ format: 'RAW', node: 'h\nnode=dc01 type=USER_LOGIN' });
  const line = f.formatRecord(parseRecord(1300, Buffer.from('audit(1.001:2): a=1', 'latin1')));
  assert.equal(line, 'node=h\\012node=dc01\\040type=USER_LOGIN type=SYSCALL msg=audit(1.001:2): a=1');
});

test("encodeDetail: auditmux's own name=value details kept, JSON-quoted and free text encoded (fixed-seed property)", async () => {
  const { encodeDetail } = await import('../../src/records/encode');
  assert.equal(encodeDetail('exit=none signal=SIGKILL'), 'exit=none signal=SIGKILL');
  assert.equal(encodeDetail('dropped=5 reason=block-timeout'), 'dropped=5 reason=block-timeout');
  assert.equal(
    encodeDetail('error="injected write failure"'),
    `error=${Buffer.from('injected write failure').toString('hex').toUpperCase()}`,
  );
  assert.equal(
    encodeDetail('log open failed: EACCES res=success'),
    `reason=${Buffer.from('log open failed: EACCES res=success').toString('hex').toUpperCase()}`,
  );
  const r = prng(31337);
  const alphabet = 'ab=" \\\n\x1d\x01res=success\u010a\u011d:/-_';
  for (let n = 0; n < 20000; n++) {
    let s = '';
    const len = intBelow(r, 40);
    for (let i = 0; i < len; i++) s += alphabet[intBelow(r, alphabet.length)];
    const e = encodeDetail(s);
    if (s === '') continue;
    // one or more name=value tokens, each value plain, quoted without inner quotes, or hex: never a control or space
    // inside
    assert.match(
      e,
      /^[a-z][a-z0-9_-]*=("[\x21\x23-\x7e]*"|[\x21\x23-\x7e]+)( [a-z][a-z0-9_-]*=("[\x21\x23-\x7e]*"|[\x21\x23-\x7e]+))*$/,
      JSON.stringify([s, e]),
    );
    if (e.startsWith('reason=') && !s.startsWith('reason='))
      assert.equal(decodeUntrusted(e.slice(7))!.toString('utf8'), s);
  }
});
