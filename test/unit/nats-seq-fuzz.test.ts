// Fixed-seed fuzz of the order tag parsers: the Auditmux-Seq header (peer data) and the spool entry's first line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatSeqHeader,
  MAX_SEQ_HEADER,
  parseEntryHead,
  parseSeqHeader,
  SeqHeaderError,
} from '../../src/output/nats/seq';
import { subjectToken } from '../../src/output/nats/subject';
import { intBelow, prng } from '../helpers/prng';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0x5e9);
const PIECES = [
  'out',
  'fleet',
  ':',
  '.',
  '0',
  '1',
  '9',
  '1700000000000',
  '9007199254740993',
  '-',
  '~',
  '~2E',
  ' ',
  's=',
  '{',
  '}',
  '\n',
  '\x00',
  '\x1b',
  '\xff',
  'é',
  '+1',
  '1e3',
  '0x10',
];

function randomText(next: () => number, max = 40): string {
  let s = '';
  const n = intBelow(next, max);
  for (let i = 0; i < n; i++)
    s += next() < 0.85 ? PIECES[intBelow(next, PIECES.length)] : String.fromCharCode(intBelow(next, 0x300));
  return s;
}

/** A valid header with up to two bytes inserted, removed or replaced. */
function mutated(next: () => number): string {
  let v = formatSeqHeader(
    ['out', 'fleet-1', 'a~2Eb'][intBelow(next, 3)] as string,
    String(intBelow(next, 1e13)),
    1 + intBelow(next, 1e6),
  );
  for (let k = intBelow(next, 3); k > 0; k--) {
    const at = intBelow(next, v.length + 1);
    const c = PIECES[intBelow(next, PIECES.length)] as string;
    const op = intBelow(next, 3);
    v =
      op === 0
        ? v.slice(0, at) + c + v.slice(at)
        : op === 1
          ? v.slice(0, at) + v.slice(at + 1)
          : v.slice(0, at) + c + v.slice(at + 1);
  }
  return v;
}

test('Auditmux-Seq: random values parse to a valid tag or throw SeqHeaderError that never quotes the value', () => {
  const next = prng(SEED);
  let accepted = 0;
  for (let i = 0; i < 20000; i++) {
    const r = next();
    const v = r < 0.1 ? 'x'.repeat(intBelow(next, 400)) : r < 0.5 ? mutated(next) : randomText(next);
    let tag;
    try {
      tag = parseSeqHeader(v);
    } catch (e) {
      assert.ok(e instanceof SeqHeaderError, `${JSON.stringify(v)}: ${String(e)}`);
      assert.equal(e.code, 'E_SEQ_HEADER');
      // The reason is fixed text: nothing of the peer's value reaches the diagnostics through it.
      if (v.length > 3) assert.ok(!e.message.includes(v), JSON.stringify(v));
      continue;
    }
    accepted++;
    assert.ok(v.length <= MAX_SEQ_HEADER);
    assert.match(tag.output, /^[A-Za-z0-9_~-]{1,200}$/);
    assert.match(tag.epoch, /^[0-9]{1,16}$/);
    assert.ok(Number.isSafeInteger(tag.n) && tag.n >= 1, v);
    assert.equal(formatSeqHeader(tag.output, tag.epoch, tag.n), v, 'a value is accepted only in its one spelling');
  }
  assert.ok(accepted > 0, 'the generator reaches valid values too');
});

test('Auditmux-Seq: formatted tags round-trip, edges refused', () => {
  const next = prng(SEED + 1);
  for (let i = 0; i < 5000; i++) {
    const output = subjectToken(randomText(next, 20));
    const epoch = String(intBelow(next, 2 ** 40));
    const n = 1 + intBelow(next, 2 ** 40);
    const v = formatSeqHeader(output, epoch, n);
    if (v.length > MAX_SEQ_HEADER || output.length > 200) continue;
    assert.deepEqual(parseSeqHeader(v), { output, epoch, n });
  }
  for (const bad of [
    '',
    'out',
    'out:',
    ':1.1',
    'out:1',
    'out:1.0',
    'out:1.01',
    'out:1.-1',
    'out:1.9007199254740993',
    'out:12345678901234567.1',
    'o.t:1.1',
    'o t:1.1',
    'out:1.1 ',
    'out:1.1\n',
    'a:b:1.1',
  ])
    assert.throws(() => parseSeqHeader(bad), SeqHeaderError, JSON.stringify(bad));
});

test('spool entry heads: every form reads back; random heads never throw', () => {
  assert.deepEqual(parseEntryHead('n:b:1.000:1'), { id: 'n:b:1.000:1', seq: null, json: null });
  assert.deepEqual(parseEntryHead('n:b:1.000:1 {"name":"a b"}'), {
    id: 'n:b:1.000:1',
    seq: null,
    json: '{"name":"a b"}',
  });
  assert.deepEqual(parseEntryHead('n:b:1.000:1 s=17.4'), { id: 'n:b:1.000:1', seq: { epoch: '17', n: 4 }, json: null });
  assert.deepEqual(parseEntryHead('n:b:1.000:1 s=17.4 {"x":1}'), {
    id: 'n:b:1.000:1',
    seq: { epoch: '17', n: 4 },
    json: '{"x":1}',
  });
  // A damaged tag is no tag: the event still goes out, unordered.
  assert.deepEqual(parseEntryHead('n:b:1.000:1 s=x.4 {"x":1}').seq, null);
  const next = prng(SEED + 2);
  for (let i = 0; i < 20000; i++) {
    const h = randomText(next, 30);
    const r = parseEntryHead(h);
    assert.ok(!r.id.includes(' '));
    if (r.seq) assert.ok(Number.isSafeInteger(r.seq.n) && r.seq.n >= 1 && /^[0-9]{1,16}$/.test(r.seq.epoch));
  }
});
