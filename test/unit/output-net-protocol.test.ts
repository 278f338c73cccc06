// The auditd remote-protocol header codec and stream parser: known bytes, split delivery, and a fuzz that never throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameParser,
  HEADER_SIZE,
  MAGIC,
  MAX_FRAME,
  RMW,
  frame,
  packHeader,
  unpackHeader,
  type ParsedItem,
} from '../../src/output/remote/protocol';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('header bytes are little-endian as lib/private.h packs them', () => {
  const h = packHeader(RMW.DISKLOW, 0x1234, 0xa1b2c3d4);
  assert.deepEqual([...h], [0xfe, 0x00, 0x00, 0xff, 0, 0, 0x01, 0x00, 0x00, 0x50, 0x34, 0x12, 0xd4, 0xc3, 0xb2, 0xa1]);
  assert.ok(!h.subarray(0, 4).includes(0x0a), 'magic has no LF');
  assert.deepEqual(unpackHeader(h), {
    headerVersion: 0,
    messageVersion: 0,
    type: RMW.DISKLOW,
    length: 0x1234,
    seq: 0xa1b2c3d4,
  });
  assert.equal(h.readUInt32LE(0), MAGIC);
  assert.throws(() => packHeader(0, 0x10000, 1), RangeError);
});

test('parser: frames and ascii lines mixed, delivered one byte at a time', () => {
  const stream = Buffer.concat([
    frame(RMW.MESSAGE, 2, 'type=USER msg=a'),
    Buffer.from('type=X msg=ascii\n'),
    frame(RMW.HEARTBEAT, 3),
    frame(RMW.ACK, 4, 'ok'),
  ]);
  const p = new FrameParser();
  const items: ParsedItem[] = [];
  for (const b of stream) items.push(...p.push(Buffer.from([b])));
  assert.deepEqual(
    items.map((i) =>
      i.kind === 'frame'
        ? `${i.header.type}/${i.header.seq}/${i.payload}`
        : i.kind === 'line'
          ? `line:${i.payload}`
          : i.reason,
    ),
    ['0/2/type=USER msg=a', 'line:type=X msg=ascii', '1/3/', `${RMW.ACK}/4/ok`],
  );
  assert.equal(p.pending, 0);
});

test('parser: oversized frames and endless lines are errors, and the parser stays stopped', () => {
  const big = Buffer.alloc(HEADER_SIZE);
  packHeader(0, MAX_FRAME, 1).copy(big);
  const p = new FrameParser();
  const r = p.push(big);
  assert.equal(r[0]?.kind, 'error');
  assert.deepEqual(p.push(frame(0, 2, 'x')), []);
  const q = new FrameParser();
  assert.equal(q.push(Buffer.alloc(MAX_FRAME, 0x41))[0]?.kind, 'error');
});

test('parser fuzz: 20000 random and mutated streams never throw, and round-trip valid ones', () => {
  const r = rng(42);
  for (let iter = 0; iter < 20000; iter++) {
    const parts: Buffer[] = [];
    const expect: string[] = [];
    const n = 1 + Math.floor(r() * 5);
    for (let k = 0; k < n; k++) {
      const len = Math.floor(r() * (iter % 10 === 0 ? 9000 : 200));
      const payload = Buffer.alloc(len);
      for (let j = 0; j < len; j++) payload[j] = 0x20 + Math.floor(r() * 90);
      if (r() < 0.7) {
        parts.push(frame(Math.floor(r() * 2 ** 32), Math.floor(r() * 2 ** 32), payload));
        if (len + HEADER_SIZE <= MAX_FRAME) expect.push(`f${len}`);
      } else {
        parts.push(Buffer.concat([payload, Buffer.from('\n')]));
        if (len + 1 <= MAX_FRAME) expect.push(`l${len}`);
      }
    }
    let stream = Buffer.concat(parts);
    const mutate = iter % 3 === 0;
    if (mutate) {
      stream = Buffer.from(stream);
      for (let m = 0; m < 1 + Math.floor(r() * 8); m++) stream[Math.floor(r() * stream.length)] = Math.floor(r() * 256);
      if (r() < 0.3) stream = stream.subarray(0, Math.floor(r() * stream.length));
    }
    const p = new FrameParser();
    const got: string[] = [];
    let off = 0;
    while (off < stream.length) {
      const step = 1 + Math.floor(r() * 700);
      for (const it of p.push(stream.subarray(off, off + step))) {
        if (it.kind === 'frame') got.push(`f${it.payload.length}`);
        else if (it.kind === 'line') got.push(`l${it.payload.length}`);
        else got.push('error');
      }
      off += step;
    }
    if (!mutate) {
      const firstErr = got.indexOf('error');
      assert.deepEqual(
        firstErr < 0 ? got : got.slice(0, firstErr),
        firstErr < 0 ? expect : expect.slice(0, firstErr),
        `iteration ${iter}`,
      );
    }
  }
});
