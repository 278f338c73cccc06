// The memory queue (an output without a spool directory): committing one record at a time costs O(1) each, not a
// move of every record still pending (a RemoteOutput replaying 150k records one ACK at a time took 48 s of CPU).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryQueue } from '../../src/output/transport/spool';

/**
 * Runs `fn` while counting the array elements moved or copied by the Array methods that shift or copy an array's
 * contents (splice, shift, unshift, slice, copyWithin), whoever calls them.
 */
function countMoves(fn: () => void): number {
  const proto = Array.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = {
    splice: proto.splice!,
    shift: proto.shift!,
    unshift: proto.unshift!,
    slice: proto.slice!,
    copyWithin: proto.copyWithin!,
  };
  let moved = 0;
  proto.splice = function (this: unknown[], ...a: unknown[]) {
    const len = this.length;
    const start = Math.min(len, Math.max(0, Number(a[0] ?? 0)));
    moved += len - start; // the deleted elements are copied out, the ones after them moved
    return saved.splice.apply(this, a);
  };
  proto.shift = function (this: unknown[], ...a: unknown[]) {
    moved += this.length;
    return saved.shift.apply(this, a);
  };
  proto.unshift = function (this: unknown[], ...a: unknown[]) {
    moved += this.length + a.length;
    return saved.unshift.apply(this, a);
  };
  proto.slice = function (this: unknown[], ...a: unknown[]) {
    const r = saved.slice.apply(this, a) as unknown[];
    moved += r.length;
    return r;
  };
  proto.copyWithin = function (this: unknown[], ...a: unknown[]) {
    moved += this.length;
    return saved.copyWithin.apply(this, a);
  };
  try {
    fn();
  } finally {
    Object.assign(proto, saved);
  }
  return moved;
}

test('memory queue: 100k records committed one at a time move O(n) array elements in all', () => {
  const N = 100_000;
  const q = new MemoryQueue(1 << 30);
  const rec = Buffer.alloc(100, 0x61);
  for (let i = 0; i < N; i++) assert.ok(q.append(rec));
  let drained = 0;
  const moved = countMoves(() => {
    for (let r = q.next(); r; r = q.next()) {
      q.commit(r.end);
      drained++;
    }
  });
  assert.equal(drained, N);
  assert.equal(q.pending, 0);
  assert.equal(q.bytes, 0);
  // A splice of the front per commit moves every record behind it: about N^2/2 (5e9) elements.
  assert.ok(moved <= 4 * N, `array elements moved for ${N} commits: ${moved}`);
});

test('memory queue: order, rewind, lastPending and byte accounting hold across compactions', () => {
  const q = new MemoryQueue(1 << 30);
  const rec = (i: number): Buffer => Buffer.from(`r${i}`);
  let appended = 0;
  let delivered = 0;
  for (let round = 0; round < 50; round++) {
    for (let k = 0; k < 700; k++) assert.ok(q.append(rec(appended++)));
    // Hand out some, rewind (a reconnect), hand out again and commit a prefix in steps.
    for (let k = 0; k < 300; k++) q.next();
    q.rewind();
    const take = 400 + (round % 7) * 50;
    let last = null;
    for (let k = 0; k < take; k++) {
      const r = q.next();
      assert.ok(r);
      assert.equal(r.data.toString(), `r${delivered + k}`);
      last = r;
      if (k % 3 === 2) q.commit(r.end);
    }
    q.commit(last!.end);
    delivered += take;
    assert.equal(q.pending, appended - delivered);
    assert.equal(q.lastPending()?.toString(), `r${appended - 1}`);
    let bytes = 0;
    for (let i = delivered; i < appended; i++) bytes += rec(i).length + 8;
    assert.equal(q.bytes, bytes);
    // An old cursor committed again changes nothing.
    q.commit({ seg: 0, off: 1 });
    assert.equal(q.pending, appended - delivered);
  }
  q.rewind();
  const rest: string[] = [];
  for (let r = q.next(); r; r = q.next()) {
    rest.push(r.data.toString());
    q.commit(r.end);
  }
  assert.equal(rest.length, appended - delivered);
  assert.equal(rest[0], `r${delivered}`);
  assert.equal(q.lastPending(), null);
  assert.equal(q.bytes, 0);
});
