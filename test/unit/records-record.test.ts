// record: header parse, NUL handling, lazy field lookups, and never throwing on garbage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecord, recordBody, stampText } from '../../src/records/record';
import { fieldHex, fieldInt, fieldValue, forEachField } from '../../src/records/fields';

const SYSCALL =
  'audit(1795885417.037:90): arch=c000003e syscall=110 success=yes exit=13326 a0=7fd5d4259c60 items=0 ' +
  'ppid=13326 pid=13414 auid=4294967295 uid=0 gid=0 euid=0 tty=(none) ses=4294967295 comm="python3.11" ' +
  'exe="/usr/bin/python3.11" key="amtest"';

test('parses the header and body offset', () => {
  const r = parseRecord(1300, Buffer.from(SYSCALL));
  assert.equal(r.malformed, false);
  assert.equal(r.sec, 1795885417);
  assert.equal(r.msec, 37);
  assert.equal(r.serial, 90);
  assert.equal(stampText(r), '1795885417.037:90');
  assert.ok(recordBody(r).toString().startsWith('arch=c000003e'));
});

test('stops at the first NUL and honours start/end', () => {
  const b = Buffer.concat([Buffer.from('xx'), Buffer.from(SYSCALL), Buffer.from([0, 0, 0]), Buffer.from('yy')]);
  const r = parseRecord(1300, b, 2, b.length - 2);
  assert.equal(r.payload.toString(), SYSCALL);
  const eoe = parseRecord(1320, Buffer.from('audit(1.002:3): '));
  assert.equal(eoe.malformed, false);
  assert.equal(eoe.bodyStart, eoe.payload.length);
});

test('copy detaches from the receive buffer', () => {
  const b = Buffer.from(SYSCALL);
  const r = parseRecord(1300, b, 0, b.length, true);
  b.fill(0x41);
  assert.equal(r.payload.toString(), SYSCALL);
});

test('field helpers', () => {
  const r = parseRecord(1300, Buffer.from(SYSCALL)).payload;
  assert.equal(fieldInt(r, 'pid'), 13414);
  assert.equal(fieldInt(r, 'ppid'), 13326);
  assert.equal(fieldInt(r, 'syscall'), 110);
  assert.equal(fieldHex(r, 'arch'), 0xc000003e);
  assert.equal(fieldInt(r, 'uid'), 0); // not auid's value
  assert.equal(fieldInt(r, 'auid'), 4294967295);
  assert.equal(fieldValue(r, 'comm'), 'python3.11');
  assert.equal(fieldValue(r, 'key'), 'amtest');
  assert.equal(fieldValue(r, 'tty'), '(none)');
  assert.equal(fieldValue(r, 'missing'), undefined);
  assert.equal(fieldInt(r, 'comm'), undefined);
  assert.equal(fieldHex(r, 'nope'), undefined);
  const first = parseRecord(1300, Buffer.from('audit(1.000:1): pid=5 ppid=4')).payload;
  assert.equal(fieldInt(first, 'pid'), 5);
  const neg = parseRecord(1300, Buffer.from('audit(1.000:1): euid=-1')).payload;
  assert.equal(fieldInt(neg, 'euid'), -1);
});

test('forEachField walks quoted values whole', () => {
  const r = parseRecord(1005, Buffer.from('audit(1.000:1): pid=1 msg=\'op=x exe="/a b" res=success\' uid=0'));
  const keys: string[] = [];
  forEachField(r.payload, r.bodyStart, (ks, ke) => keys.push(r.payload.toString('latin1', ks, ke)));
  assert.deepEqual(keys, ['pid', 'msg', 'uid']);
});

test('malformed headers are marked, never thrown', () => {
  for (const s of [
    '',
    'audit(',
    'audit(1.2',
    'audit(1.2:3',
    'audit(1.2:3)',
    'audit(x.2:3): a=b',
    'hello world',
    'audit(1:2): x',
    'audit(.1:2): x',
  ]) {
    const r = parseRecord(1300, Buffer.from(s));
    assert.equal(r.malformed, true, s);
  }
  assert.equal(parseRecord(1300, Buffer.from('audit(1.2:3):')).malformed, false);
});

test('fuzz: random bytes and truncated headers never throw', () => {
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 20000; i++) {
    const base = Buffer.from(SYSCALL);
    let b: Buffer;
    if (i % 3 === 0) b = base.subarray(0, Math.floor(rnd() * base.length));
    else {
      b = Buffer.allocUnsafe(Math.floor(rnd() * 80));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      if (i % 3 === 1) b = Buffer.concat([Buffer.from('audit('), b]);
    }
    const r = parseRecord(1300, b, Math.floor(rnd() * 4) - 2, b.length + 2);
    fieldValue(r.payload, 'pid', r.bodyStart);
    fieldInt(r.payload, 'uid', r.bodyStart);
    fieldHex(r.payload, 'arch', r.bodyStart);
    assert.ok(r.payload.length <= b.length);
  }
});

test('property: the header parse agrees with a regular-expression model on mutated headers (fixed seed)', () => {
  // The model: auditd's `audit(%lu.%u:%lu): ` with the parser's digit limits (16, 9, 16) and optional space.
  const model = /^audit\((\d{1,16})\.(\d{1,9}):(\d{1,16})\): ?/;
  let seed = 424242;
  const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const digits = (): string => Array.from({ length: 1 + rnd(18) }, () => String(rnd(10))).join('');
  const alphabet = 'audit().: 0123456789x';
  let valid = 0;
  for (let i = 0; i < 20000; i++) {
    let h = `audit(${digits()}.${digits()}:${digits()}):${rnd(2) ? ' ' : ''}body=1`;
    // Up to three edits: a byte replaced, dropped or doubled anywhere in the header.
    for (let e = rnd(4); e > 0; e--) {
      const at = rnd(Math.min(h.length, 60));
      const c = alphabet[rnd(alphabet.length)]!;
      h = [h.slice(0, at) + c + h.slice(at + 1), h.slice(0, at) + h.slice(at + 1), h.slice(0, at) + c + h.slice(at)][
        rnd(3)
      ]!;
    }
    const r = parseRecord(1300, Buffer.from(h, 'latin1'));
    const m = model.exec(h);
    assert.equal(r.malformed, m === null, h);
    if (m === null) {
      assert.deepEqual([r.sec, r.msec, r.serial, r.bodyStart], [0, 0, 0, 0], h);
      continue;
    }
    valid++;
    assert.equal(r.bodyStart, m[0].length, h);
    // Values above 2^53 round differently by the two methods: compared where both are exact.
    if (m[1]!.length <= 15) assert.equal(r.sec, Number(m[1]), h);
    assert.equal(r.msec, Number(m[2]), h);
    if (m[3]!.length <= 15) assert.equal(r.serial, Number(m[3]), h);
  }
  assert.ok(valid > 2000 && valid < 18000, `both kinds generated (${valid} valid)`);
});
