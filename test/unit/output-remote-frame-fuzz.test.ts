// Fuzz of the remote-logging frame parser and the aggregator's line vetting, fixed seed: no throw, no hang, bounded
// buffers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameParser,
  HEADER_SIZE,
  MAX_FRAME,
  RMW,
  frame,
  packHeader,
  type ParsedItem,
} from '../../src/output/remote/protocol';
import { vetLine } from '../../src/output/remote/aggregator';
import { budget } from '../helpers/fuzz';
import { intBelow, prng } from '../helpers/prng';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0xa66);
/** `npm run bench:fuzz` multiplies this through AUDITMUX_FUZZ_BUDGET, as for every fuzz test. */
const ITERS = budget(3000);

/** Pieces that steer the parser into its corners: magic prefixes, headers with every length, newlines, NULs. */
function piece(r: () => number): Buffer {
  switch (intBelow(r, 9)) {
    case 0:
      return Buffer.from([0xfe, 0x00, 0x00, 0xff].slice(0, 1 + intBelow(r, 4)));
    case 1:
      return packHeader(
        intBelow(r, 2) ? RMW.MESSAGE : RMW.HEARTBEAT,
        intBelow(r, 3) ? intBelow(r, 200) : intBelow(r, 0x10000),
        intBelow(r, 1000),
      );
    case 2:
      return Buffer.from('\n');
    case 3:
      return Buffer.alloc(intBelow(r, 12000), 0x41);
    case 4:
      return frame(RMW.MESSAGE, intBelow(r, 100), Buffer.alloc(intBelow(r, 300), 0x61));
    case 5:
      return Buffer.from(`node=n${intBelow(r, 9)} type=USER msg=x\n`);
    default: {
      const b = Buffer.alloc(intBelow(r, 64));
      for (let i = 0; i < b.length; i++) b[i] = intBelow(r, 256);
      return b;
    }
  }
}

test(`FrameParser: ${ITERS} random streams in random chunks never throw, buffer under one frame, stop after an error`, () => {
  const r = prng(SEED);
  let errors = 0;
  for (let it = 0; it < ITERS; it++) {
    const p = new FrameParser();
    const stream = Buffer.concat(Array.from({ length: 1 + intBelow(r, 12) }, () => piece(r)));
    let failed = false;
    for (let pos = 0; pos < stream.length;) {
      const n = 1 + intBelow(r, intBelow(r, 2) ? 8 : 20000);
      const items: ParsedItem[] = p.push(stream.subarray(pos, pos + n));
      pos += n;
      if (failed) assert.deepEqual(items, [], 'nothing after an error');
      for (const item of items) {
        if (item.kind === 'error') {
          failed = true;
          errors++;
        } else if (item.kind === 'line') {
          assert.ok(item.payload.length < MAX_FRAME && !item.payload.includes(0x0a), `line of ${item.payload.length}`);
        } else {
          assert.ok(HEADER_SIZE + item.payload.length <= MAX_FRAME && item.payload.length === item.header.length);
        }
        if (failed) break;
      }
      assert.ok(p.pending < MAX_FRAME, `parser holds ${p.pending} bytes`);
    }
  }
  assert.ok(errors > 0, 'the corpus reaches the error paths');
});

test('FrameParser: a valid stream gives the same items however it is cut', () => {
  const r = prng(SEED + 1);
  for (let it = 0; it < Math.max(200, ITERS / 10); it++) {
    const parts: Buffer[] = [];
    const want: string[] = [];
    for (let k = 0; k < 1 + intBelow(r, 30); k++) {
      if (intBelow(r, 2)) {
        const body = Buffer.alloc(intBelow(r, 400), 0x30 + intBelow(r, 40));
        parts.push(frame(RMW.MESSAGE, k, body));
        want.push(`F${k}:${body.toString('latin1')}`);
      } else {
        const line = `node=h${k} type=USER msg=${'z'.repeat(intBelow(r, 300))}`;
        parts.push(Buffer.from(`${line}\n`));
        want.push(`L:${line}`);
      }
    }
    const stream = Buffer.concat(parts);
    const p = new FrameParser();
    const got: string[] = [];
    for (let pos = 0; pos < stream.length;) {
      const n = 1 + intBelow(r, 700);
      for (const item of p.push(stream.subarray(pos, pos + n))) {
        assert.notEqual(item.kind, 'error');
        got.push(
          item.kind === 'frame'
            ? `F${item.header.seq}:${item.payload.toString('latin1')}`
            : item.kind === 'line'
              ? `L:${item.payload.toString('latin1')}`
              : '',
        );
      }
      pos += n;
    }
    assert.deepEqual(got, want);
    assert.equal(p.pending, 0);
  }
});

test('FrameParser: feed + take(n) in random steps gives exactly what push gives, and holds no more than it was fed', () => {
  const r = prng(SEED + 3);
  for (let it = 0; it < Math.max(200, ITERS / 10); it++) {
    const stream = Buffer.concat(Array.from({ length: 1 + intBelow(r, 12) }, () => piece(r)));
    const whole = new FrameParser().push(stream);
    const p = new FrameParser();
    const got: ParsedItem[] = [];
    let fed = 0;
    for (;;) {
      const items = p.take(1 + intBelow(r, 4));
      got.push(...items);
      if (items.length > 0) continue;
      // the aggregator feeds more only when nothing complete is left, so it never holds more than this
      if (fed >= stream.length) break;
      const n = 1 + intBelow(r, 3000);
      p.feed(stream.subarray(fed, fed + n));
      fed += n;
      assert.ok(p.pending < MAX_FRAME + n, `holds ${p.pending}`);
    }
    const key = (x: ParsedItem): string => (x.kind === 'error' ? 'E' : `${x.kind}:${x.payload.toString('latin1')}`);
    assert.deepEqual(got.map(key), whole.map(key));
  }
});

test(`vetLine: ${ITERS * 3} random payloads never throw; what it lets through is one auditd line bound to the peer`, () => {
  const r = prng(SEED + 2);
  const alphabet = [
    'node=',
    'type=',
    ' ',
    '=',
    'a',
    'Z',
    '9',
    '.',
    '/',
    ':',
    '\n',
    '\r',
    '\0',
    '\x1d',
    '\x1b',
    '\x7f',
    '\xe9',
    '"',
    'msg=audit(1.000:1): ',
  ];
  let passed = 0;
  for (let it = 0; it < ITERS * 3; it++) {
    let s = intBelow(r, 2) ? `${intBelow(r, 2) ? `node=${'abc'.slice(0, 1 + intBelow(r, 3))} ` : ''}type=USER ` : '';
    for (let k = intBelow(r, 40); k > 0; k--) s += alphabet[intBelow(r, alphabet.length)];
    const id = intBelow(r, 2) ? '10.1.2.3' : 'web1';
    const policy = (['prefix', 'check', 'keep'] as const)[intBelow(r, 3)] as 'prefix' | 'check' | 'keep';
    const v = vetLine(Buffer.from(s, 'latin1'), id, policy);
    if (!v.ok) continue;
    passed++;
    const out = v.line.toString('latin1');
    assert.ok(!/[\x00-\x1c\x1e\x1f\x7f]/.test(out), JSON.stringify(out));
    assert.match(out, /^node=[A-Za-z0-9._:/-]+ type=/);
    if (policy !== 'keep') assert.ok(out.startsWith(`node=${id} `) || out.startsWith(`node=${id}/`), out);
  }
  assert.ok(passed > 0);
});
