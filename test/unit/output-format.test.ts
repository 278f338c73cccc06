// format: golden lines captured from Debian auditd 3.0.9 (test/fixtures/records/capture.sh) and auditd's edge rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { IdNameCache, LineFormatter, MAX_AUDIT_MESSAGE_LENGTH, inet6Text, sockaddrText, syscallText, archText, encodeNv } from '../../src/output/format';
import { parseRecord } from '../../src/records/record';
import { intBelow, prng } from '../helpers/prng';

const FIX = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'records');

function kernelRecords(fmt: string): { type: number; payload: Buffer }[] {
  return readFileSync(join(FIX, `kernel-${fmt}.jsonl`), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { type: number; payload: string })
    .map((j) => ({ type: j.type, payload: Buffer.from(j.payload, 'base64') }));
}

for (const fmt of ['RAW', 'ENRICHED'] as const) {
  test(`golden ${fmt}: every kernel record auditd logged formats byte-identically`, () => {
    const lines = readFileSync(join(FIX, `auditd-${fmt}.log`), 'latin1').split('\n');
    const byStamp = new Map<string, string[]>();
    for (const l of lines) {
      const m = /^type=(\S+) msg=audit\(([^)]*)\)/.exec(l);
      if (m) byStamp.set(`${m[1]} ${m[2]}`, [...(byStamp.get(`${m[1]} ${m[2]}`) ?? []), l]);
    }
    const f = new LineFormatter({ format: fmt });
    let compared = 0;
    for (const k of kernelRecords(fmt)) {
      if (k.type === 1320) continue;
      const line = f.formatRecord(parseRecord(k.type, k.payload));
      const m = /^type=(\S+) msg=audit\(([^)]*)\)/.exec(line)!;
      const want = byStamp.get(`${m[1]} ${m[2]}`);
      if (want === undefined) continue; // before auditd registered or after it left
      assert.ok(want.includes(line), `got  ${JSON.stringify(line)}\nwant ${JSON.stringify(want)}`);
      compared++;
    }
    assert.ok(compared >= 55, `only ${compared} lines compared`);
  });
}

test('EOE never appears in auditd logs', () => {
  for (const fmt of ['RAW', 'ENRICHED']) assert.ok(!readFileSync(join(FIX, `auditd-${fmt}.log`), 'latin1').includes('type=EOE'));
});

const raw = (f: LineFormatter, type: number, s: string | Buffer): string =>
  f.formatRecord(parseRecord(type, typeof s === 'string' ? Buffer.from(s, 'latin1') : s));

test('RAW: newline to space, one trailing space trimmed, UNKNOWN[n]', () => {
  const f = new LineFormatter({ format: 'RAW' });
  assert.equal(raw(f, 1300, 'audit(1.001:2): a=1\nb=2 '), 'type=SYSCALL msg=audit(1.001:2): a=1 b=2');
  assert.equal(raw(f, 1300, 'audit(1.001:2): a=1  '), 'type=SYSCALL msg=audit(1.001:2): a=1 ');
  assert.equal(raw(f, 1300, 'audit(1.001:2): a=1\n'), 'type=SYSCALL msg=audit(1.001:2): a=1');
  assert.equal(raw(f, 1204, 'audit(1.001:2): x=y'), 'type=UNKNOWN[1204] msg=audit(1.001:2): x=y');
  assert.equal(raw(f, 1300, Buffer.from('audit(1.001:2): a=1\0garbage')), 'type=SYSCALL msg=audit(1.001:2): a=1');
  assert.equal(raw(f, 1300, 'not a record'), 'type=SYSCALL msg=not a record');
});

test('node= prefix keeps the payload trailing space (the trimmed space is auditd\'s own newline)', () => {
  const f = new LineFormatter({ format: 'RAW', node: 'host1' });
  assert.equal(raw(f, 1300, 'audit(1.001:2): a=1 '), 'node=host1 type=SYSCALL msg=audit(1.001:2): a=1 ');
  assert.equal(raw(f, 1300, 'audit(1.001:2): a=1'), 'node=host1 type=SYSCALL msg=audit(1.001:2): a=1');
});

test('truncation lengths: 8937 bytes without node, 8969 with', () => {
  const big = 'audit(1.001:2): data=' + 'A'.repeat(20000);
  const f = new LineFormatter({ format: 'RAW' });
  assert.equal(raw(f, 1300, big).length, MAX_AUDIT_MESSAGE_LENGTH - 33);
  const n = new LineFormatter({ format: 'RAW', node: 'h' });
  assert.equal(raw(n, 1300, big).length, MAX_AUDIT_MESSAGE_LENGTH - 1);
  const e = new LineFormatter({ format: 'ENRICHED', node: 'h' });
  assert.equal(raw(e, 1300, big + ' uid=0').length, MAX_AUDIT_MESSAGE_LENGTH - 1);
});

test('ENRICHED: separator without a space, quoted ids, unset and unknown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'amfmt-'));
  writeFileSync(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\nal ice:x:1000:1000::/:/bin/sh\n');
  writeFileSync(join(dir, 'group'), 'root:x:0:\nstaff:x:50:\n');
  const f = new LineFormatter({ format: 'ENRICHED', ids: new IdNameCache(join(dir, 'passwd'), join(dir, 'group')) });
  assert.equal(
    raw(f, 1300, 'audit(1.001:2): arch=40000003 syscall=20 auid=-1 uid=1000 gid=50 euid=77 egid=4294967295'),
    'type=SYSCALL msg=audit(1.001:2): arch=40000003 syscall=20 auid=-1 uid=1000 gid=50 euid=77 egid=4294967295\x1d' +
      'ARCH=i386 SYSCALL=getpid AUID="unset" UID=616C20696365 GID="staff" EUID="unknown(77)" EGID="unset"',
  );
  assert.equal(raw(f, 1307, 'audit(1.001:2): cwd="/"'), 'type=CWD msg=audit(1.001:2): cwd="/"');
  // user messages: fields inside msg='...' are interpreted too
  assert.equal(
    raw(f, 1112, "audit(1.001:2): pid=1 uid=0 msg='op=login id=1000 exe=\"/bin/login\" res=success'"),
    "type=USER_LOGIN msg=audit(1.001:2): pid=1 uid=0 msg='op=login id=1000 exe=\"/bin/login\" res=success'\x1dUID=\"root\" ID=616C20696365",
  );
});

test('interpretation helpers match ausearch -i', () => {
  assert.equal(archText('c000003e'), 'x86_64');
  assert.equal(archText('deadbeef'), 'unknown-elf-type(deadbeef)');
  assert.equal(syscallText('110', 0xc000003e), 'getppid');
  assert.equal(syscallText('9999', 0xc000003e), 'unknown-syscall(9999)');
  assert.equal(sockaddrText('020000097F0000010000000000000000'), '{ saddr_fam=inet laddr=127.0.0.1 lport=9 }');
  assert.equal(sockaddrText('0A000009000000000000000000000000000000000000000100000000'), '{ saddr_fam=inet6 laddr=::1 lport=9 }');
  assert.equal(sockaddrText('01002F6E6F6E6578697374656E742F616D746573742E736F636B00'), '{ saddr_fam=local path=/nonexistent/amtest.sock }');
  assert.equal(sockaddrText('100000000000000000000000'), '{ saddr_fam=netlink nlnk-fam=16 nlnk-pid=0 }');
  assert.equal(sockaddrText('1100000000000000'), '{ saddr_fam=packet (unsupported) }');
  assert.equal(sockaddrText('0200'), '{ saddr_fam=inet sockaddr len too short }');
  assert.equal(sockaddrText('FF00'), 'unknown-family(255)');
  assert.equal(sockaddrText('ZZ'), 'malformed-host(ZZ)');
  assert.equal(sockaddrText('0A0000500000'), '{ saddr_fam=inet6 sockaddr6 len too short }');
  assert.equal(sockaddrText('0100'), '{ saddr_fam=local sockaddr len too short }');
  assert.equal(sockaddrText('1000'), '{ saddr_fam=netlink len too short }');
  const v6 = (h: string): string => inet6Text(Buffer.from(h, 'hex'));
  assert.equal(v6('20010db8000000000000000000000001'), '2001:db8::1');
  assert.equal(v6('00000000000000000000000000000000'), '::');
  assert.equal(v6('00000000000000000000ffff01020304'), '::ffff:1.2.3.4');
  assert.equal(v6('00010000000000000000000000000000'), '1::');
  assert.equal(v6('00010002000300040005000600070008'), '1:2:3:4:5:6:7:8');
  assert.equal(encodeNv('UID', 'root'), 'UID="root"');
  assert.equal(encodeNv('UID', 'a"b'), 'UID=612262');
});

test('formatInto appends to a shared buffer', () => {
  const f = new LineFormatter({ format: 'RAW' });
  const dst = Buffer.alloc(20000);
  let p = f.formatInto(1300, Buffer.from('audit(1.001:2): a=1'), dst, 0);
  p = f.formatInto(1327, Buffer.from('audit(1.001:2): proctitle=41'), dst, p);
  assert.equal(dst.toString('latin1', 0, p), 'type=SYSCALL msg=audit(1.001:2): a=1\ntype=PROCTITLE msg=audit(1.001:2): proctitle=41\n');
});

test('ENRICHED: the byte-level field cache writes what the string path writes, on 5000 generated records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'amfmt-'));
  writeFileSync(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\nbin:x:2:2::/:/bin/sh\nweird user:x:7:7::/:/bin/sh\nfirst:x:9:9::/:/bin/sh\nsecond:x:9:9::/:/bin/sh\n');
  writeFileSync(join(dir, 'group'), 'root:x:0:\nadm:x:4:\n"q":x:5:\n');
  const ids = new IdNameCache(join(dir, 'passwd'), join(dir, 'group'));
  const fast = new LineFormatter({ format: 'ENRICHED', ids });
  const slow = new LineFormatter({ format: 'ENRICHED', ids, uncached: true });
  const next = prng(0xf0a7);
  const pick = <T>(a: readonly T[]): T => a[intBelow(next, a.length)]!;
  const idValues = ['0', '2', '4', '5', '7', '9', '1000', '-1', '4294967295', '4294967296', '-0', '007', '', '"0"', '0x10', '1e3', '+5', 'abc', '123456789012345678', '-4294967297'];
  const sysValues = ['0', '39', '110', '257', '999', '-1', '', '1.5', '0039', '59'];
  const archValues = ['c000003e', 'C000003E', '40000003', 'c00000b7', 'deadbeef', '123456789', '', 'zz', '0'];
  const keys = ['uid', 'auid', 'gid', 'ouid', 'new_gid', 'syscall', 'arch', 'pid', 'a0', 'key', 'comm', 'old-auid', 'saddr'];
  const buf = Buffer.allocUnsafe(2 * MAX_AUDIT_MESSAGE_LENGTH);
  for (let n = 0; n < 5000; n++) {
    const fields: string[] = [];
    for (let k = intBelow(next, 30); k > 0; k--) {
      const key = pick(keys);
      const v = key === 'syscall' ? pick(sysValues) : key === 'arch' ? pick(archValues) : key === 'saddr' ? pick(['0200', '02000050', '']) : pick(idValues);
      fields.push(`${key}=${v}`);
    }
    if (intBelow(next, 10) === 0) fields.push(`msg='op=x ${fields.slice(0, 3).join(' ')}'`);
    if (intBelow(next, 50) === 0) fields.push(`data=${'A'.repeat(intBelow(next, 9000))}`);
    const type = pick([1300, 1112, 1327, 1302, 1100]);
    const payload = Buffer.from(`audit(1700000000.${String(n % 1000).padStart(3, '0')}:${n}): ${fields.join(' ')}`, 'latin1');
    const a = buf.toString('latin1', 0, fast.formatInto(type, payload, buf, 0));
    const b = buf.toString('latin1', 0, slow.formatInto(type, payload, buf, 0));
    assert.equal(a, b, payload.toString('latin1').slice(0, 300));
    // A reload with new names must not serve cached old ones.
    if (n === 2500) {
      writeFileSync(join(dir, 'passwd'), 'toor:x:0:0::/root:/bin/sh\n');
      ids.reload();
    }
  }
});
