// The addon's u64 contid packing: pairs of u32 words and the 8-byte rule-buffer form, against BigInt arithmetic.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToContid, contidToBytes, contidToU32Pair, u32PairToContid } from '../../src/contid/field';
import { intBelow, prng } from '../helpers/prng';

describe('contid u64 packing (native addon)', () => {
  it('round-trips edge values through both forms', () => {
    for (const v of [
      0n,
      1n,
      0xffffffffn,
      0x100000000n,
      0x1234567890abcdefn,
      0xfffffffffffffffen,
      0xffffffffffffffffn,
    ]) {
      const [lo, hi] = contidToU32Pair(v);
      assert.equal(lo, Number(v & 0xffffffffn));
      assert.equal(hi, Number(v >> 32n));
      assert.equal(u32PairToContid(lo, hi), v);
      const b = contidToBytes(v);
      assert.equal(b.length, 8);
      assert.equal(b.readBigUInt64LE(0), v, 'host order on x86_64 is little-endian');
      assert.equal(bytesToContid(b), v);
    }
  });

  it('agrees with BigInt arithmetic on 20,000 random values (property)', () => {
    const next = prng(0xc0171d);
    for (let i = 0; i < 20000; i++) {
      const v = (BigInt(intBelow(next, 2 ** 32)) << 32n) | BigInt(intBelow(next, 2 ** 32));
      const [lo, hi] = contidToU32Pair(v);
      assert.equal((BigInt(hi) << 32n) | BigInt(lo), v);
      const buf = Buffer.alloc(12);
      contidToBytes(v).copy(buf, 3);
      assert.equal(bytesToContid(buf, 3), v);
    }
  });

  it('refuses values outside u64 and bad arguments with typed errors', () => {
    assert.throws(() => contidToU32Pair(-1n), RangeError);
    assert.throws(() => contidToBytes(1n << 64n), RangeError);
    assert.throws(() => u32PairToContid(2 ** 32, 0), RangeError);
    assert.throws(() => u32PairToContid(1.5, 0), RangeError);
    assert.throws(() => bytesToContid(Buffer.alloc(7)), RangeError);
    assert.throws(() => bytesToContid(Buffer.alloc(8), 1), RangeError);
    assert.throws(() => contidToBytes(5 as unknown as bigint), TypeError);
  });
});
