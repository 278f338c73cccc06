// src/bytes.ts against the Buffer methods it stands in for: random buffers, offsets and values (fixed seed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bufferView,
  bytesView,
  copyBytes,
  indexOfByte,
  indexOfBytes,
  putU16le,
  putU32le,
  u16le,
  u32le,
} from '../../src/bytes';
import { intBelow, prng } from '../helpers/prng';

const SEED = 0xb7e5;

/** A Buffer of `n` random bytes lying at a random offset of a larger ArrayBuffer (as a kernel batch's records do). */
function randomBuffer(next: () => number, n: number): Buffer {
  const lead = intBelow(next, 16);
  const ab = new ArrayBuffer(lead + n + intBelow(next, 16));
  const b = Buffer.from(ab, lead, n);
  for (let i = 0; i < n; i++) b[i] = intBelow(next, 256);
  return b;
}

test('u16le, u32le read what readUInt16LE and readUInt32LE read, at every offset', () => {
  const next = prng(SEED);
  for (let round = 0; round < 300; round++) {
    const b = randomBuffer(next, 4 + intBelow(next, 60));
    for (let at = 0; at + 2 <= b.length; at++) assert.equal(u16le(b, at), b.readUInt16LE(at), `u16 at ${at}`);
    for (let at = 0; at + 4 <= b.length; at++) assert.equal(u32le(b, at), b.readUInt32LE(at), `u32 at ${at}`);
  }
  // The extremes: the top bit of a u32 must not make it negative.
  assert.equal(u32le(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0), 0xffffffff);
  assert.equal(u16le(Buffer.from([0xff, 0xff]), 0), 0xffff);
});

test('putU16le, putU32le write what writeUInt16LE and writeUInt32LE write, and nothing around it', () => {
  const next = prng(SEED + 1);
  for (let round = 0; round < 2000; round++) {
    const n = 8 + intBelow(next, 24);
    const a = randomBuffer(next, n);
    const b = Buffer.from(a);
    const v32 = intBelow(next, 2 ** 32);
    const at32 = intBelow(next, n - 3);
    putU32le(a, at32, v32);
    b.writeUInt32LE(v32, at32);
    assert.deepEqual(a, b, `u32 ${v32} at ${at32}`);
    const v16 = intBelow(next, 2 ** 16);
    const at16 = intBelow(next, n - 1);
    putU16le(a, at16, v16);
    b.writeUInt16LE(v16, at16);
    assert.deepEqual(a, b, `u16 ${v16} at ${at16}`);
  }
});

test('indexOfByte finds what indexOf finds, from any start, present or not', () => {
  const next = prng(SEED + 2);
  for (let round = 0; round < 500; round++) {
    // Few distinct byte values, so a byte is sometimes there, sometimes not.
    const b = randomBuffer(next, intBelow(next, 200));
    for (let i = 0; i < b.length; i++) b[i] = b[i]! & 7;
    const byte = intBelow(next, 9);
    for (let from = 0; from <= b.length; from += 1 + intBelow(next, 7))
      assert.equal(indexOfByte(b, byte, from), b.indexOf(byte, from), `byte ${byte} from ${from} of ${b.length}`);
  }
  // A plain Uint8Array view too (the formatter's scratch and the frames' views are Buffers, a view may not be).
  const u = new Uint8Array([1, 2, 3, 2]);
  assert.equal(indexOfByte(u, 2, 2), 3);
});

test('bytesView and bufferView share the bytes of b[start, start + n); copyBytes copies as set does', () => {
  const next = prng(SEED + 3);
  for (let round = 0; round < 500; round++) {
    const b = randomBuffer(next, 1 + intBelow(next, 100));
    const start = intBelow(next, b.length);
    const n = intBelow(next, b.length - start + 1);
    const v = bytesView(b, start, n);
    const w = bufferView(b, start, n);
    assert.ok(!Buffer.isBuffer(v) && Buffer.isBuffer(w));
    assert.deepEqual(Buffer.from(v), b.subarray(start, start + n));
    assert.deepEqual(w, b.subarray(start, start + n));
    if (n > 0) {
      // Views, not copies: a write through one shows in b.
      v[0] = v[0]! ^ 0xff;
      assert.equal(b[start], v[0]);
      assert.equal(w[0], v[0]);
    }
    const dst = randomBuffer(next, b.length + 8);
    const want = Buffer.from(dst);
    const at = intBelow(next, dst.length - n + 1);
    copyBytes(dst, v, at);
    want.set(v, at);
    assert.deepEqual(dst, want);
  }
  assert.throws(() => copyBytes(new Uint8Array(2), new Uint8Array(3), 0), RangeError);
  // A view never reaches past its array into the rest of the ArrayBuffer (a Buffer pool holds other Buffers' bytes).
  const pooled = Buffer.from(new ArrayBuffer(64), 8, 16);
  for (const [s, n] of [
    [0, 17],
    [16, 1],
    [-1, 2],
    [3, -1],
  ] as const) {
    assert.throws(() => bytesView(pooled, s, n), RangeError, `bytesView ${s} ${n}`);
    assert.throws(() => bufferView(pooled, s, n), RangeError, `bufferView ${s} ${n}`);
  }
  assert.equal(bufferView(pooled, 16, 0).length, 0);
});

test('indexOfBytes finds what indexOf finds for a byte string', () => {
  const next = prng(SEED + 4);
  for (let round = 0; round < 500; round++) {
    const b = randomBuffer(next, intBelow(next, 120));
    for (let i = 0; i < b.length; i++) b[i] = 0x61 + (b[i]! & 3);
    const needle = Buffer.from(Array.from({ length: 1 + intBelow(next, 3) }, () => 0x61 + intBelow(next, 4)));
    for (let from = 0; from <= b.length; from += 1 + intBelow(next, 5))
      assert.equal(indexOfBytes(b, needle, from), b.indexOf(needle, from), `${needle} from ${from} in ${b}`);
  }
});
