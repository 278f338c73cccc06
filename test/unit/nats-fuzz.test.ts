// Fixed-seed fuzz of the NATS parsers: message bodies (collector), subject tokens, the collector config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCollectConfig } from '../../src/collect/config';
import { ConfigError } from '../../src/errors';
import { decodeBody, encodeBody, PayloadError } from '../../src/output/nats/payload';
import { lineProblem } from '../../src/output/audit-line';
import { splitFields } from '../../src/output/event-json';
import { buildSubject, subjectToken, subjectTokenValue } from '../../src/output/nats/subject';
import { intBelow, prng } from '../helpers/prng';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0x4a75);
const PIECES = [
  'node=h ',
  'type=SYSCALL ',
  'msg=audit(',
  '1700000000.123',
  ':42',
  '): ',
  'a=1 ',
  'k="v w" ',
  "msg='x y' ",
  '\x1d',
  'UID="root"',
  '\n',
  '\r',
  '\x00',
  '\x1b',
  '\x7f',
  '\xff',
  '{',
  '}',
  '"records":',
  '[',
  ']',
  '"line":',
  '"',
  '\\n',
  '\\u0000',
  ',',
  ' ',
  '=',
  '.',
  '*',
  '>',
];

function randomBody(next: () => number): Buffer {
  const n = intBelow(next, 30);
  let s = '';
  for (let i = 0; i < n; i++)
    s += next() < 0.8 ? PIECES[intBelow(next, PIECES.length)] : String.fromCharCode(intBelow(next, 256));
  return Buffer.from(s, 'latin1');
}

function validEvent(next: () => number): string[] {
  const node = next() < 0.5 ? `node=h${intBelow(next, 9)} ` : '';
  const st = `msg=audit(${1700000000 + intBelow(next, 1000)}.${String(intBelow(next, 1000)).padStart(3, '0')}:${intBelow(next, 1e6)}): `;
  const n = 1 + intBelow(next, 6);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let body = `a=${intBelow(next, 100)} name="/x${i}" msg='op=x acct="r" res=success'`;
    if (next() < 0.3) body += `\x1dUID="root" ARCH=x86_64`;
    out.push(`${node}type=${['SYSCALL', 'PATH', 'CWD', 'USER_LOGIN'][intBelow(next, 4)]} ${st}${body}`);
  }
  return out;
}

test('decodeBody: any bytes give lines that pass lineProblem, or a PayloadError; never another exception', () => {
  const next = prng(SEED);
  let ok = 0;
  for (let i = 0; i < 20000; i++) {
    const b =
      next() < 0.3 ? Buffer.from(validEvent(next).join('\n') + (next() < 0.9 ? '\n' : ''), 'latin1') : randomBody(next);
    if (next() < 0.2 && b.length) b[intBelow(next, b.length)] = intBelow(next, 256);
    try {
      const d = decodeBody(b);
      ok++;
      for (const l of d.lines) assert.equal(lineProblem(l), null, JSON.stringify(l));
    } catch (e) {
      if (!(e instanceof PayloadError))
        throw new Error(`seed ${SEED} iteration ${i}: ${String(e)} for ${JSON.stringify(b.toString('latin1'))}`, {
          cause: e,
        });
    }
  }
  assert.ok(ok > 1000, `some bodies decoded (${ok})`);
});

test('encodeBody then decodeBody gives the lines back, for text and JSON', () => {
  const next = prng(SEED + 1);
  for (let i = 0; i < 3000; i++) {
    const lines = validEvent(next);
    for (const kind of ['text', 'json'] as const) {
      const d = decodeBody(encodeBody(kind, 'id', 'n', 'host', lines));
      assert.deepEqual(d.lines, lines);
    }
    const j = JSON.parse(encodeBody('json', 'id', 'n', 'host', lines).toString()) as {
      records: { fields: Record<string, string>; interpreted?: Record<string, string> }[];
    };
    assert.equal(j.records[0]?.fields.a !== undefined, true);
    if (lines[0]!.includes('\x1d')) assert.equal(j.records[0]?.interpreted?.UID, 'root');
  }
});

test('splitFields never throws and never yields a key with a space', () => {
  const next = prng(SEED + 2);
  for (let i = 0; i < 20000; i++) {
    const f = splitFields(randomBody(next).toString('latin1'));
    for (const k of Object.keys(f)) assert.ok(!k.includes(' '), k);
  }
});

test('subject tokens: one token, no wildcard or separator, injective, reversible', () => {
  const next = prng(SEED + 3);
  const seen = new Map<string, string>();
  for (let i = 0; i < 20000; i++) {
    const v = randomBody(next).toString('utf8');
    const t = subjectToken(v);
    assert.match(t, /^[A-Za-z0-9_~-]+$/);
    assert.equal(subjectTokenValue(t), Buffer.from(v, 'utf8').toString('utf8'));
    const prev = seen.get(t);
    if (prev !== undefined) assert.equal(prev, v);
    seen.set(t, v);
    const s = buildSubject('audit.{node}.{daemon}.{contid}', { node: v, daemon: v, contid: v });
    assert.equal(s.split('.').length, 4);
  }
});

test('collector config: random mutations give a config or a positioned ConfigError', () => {
  const next = prng(SEED + 4);
  const base =
    'servers: [nats://127.0.0.1:4222]\nstream: AUDIT\nconsumer: c\nfilter_subject: audit.>\ndir: /var/log/f\nlog: { flush: data, num_logs: 3 }\ntoken: x\n';
  const toks = [
    ':',
    ' ',
    '\n',
    '-',
    '[',
    ']',
    '{',
    '}',
    '"',
    "'",
    '*',
    '>',
    '.',
    '&a',
    '*a',
    '!!str',
    '\x00',
    'null',
    '99999999999',
    'user',
    'password',
  ];
  for (let i = 0; i < 5000; i++) {
    let t = base;
    for (let k = 0; k < 1 + intBelow(next, 4); k++) {
      const at = intBelow(next, t.length + 1);
      t =
        next() < 0.5
          ? t.slice(0, at) + toks[intBelow(next, toks.length)] + t.slice(at)
          : t.slice(0, at) + t.slice(at + 1 + intBelow(next, 5));
    }
    try {
      parseCollectConfig(t, '/c.yaml');
    } catch (e) {
      if (!(e instanceof ConfigError))
        throw new Error(`seed ${SEED} iteration ${i}: ${String(e)} for ${JSON.stringify(t)}`, { cause: e });
      assert.ok(e.pos.line >= 1 && e.pos.line <= t.split('\n').length, e.message);
    }
  }
});
