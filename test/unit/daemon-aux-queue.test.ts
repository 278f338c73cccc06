// The auxiliary daemon queue and its framing: overflow policies, counters, resend after a crash, fuzzed frames.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuxQueue } from '../../src/daemon/aux-queue';
import { Frame, FrameReader, decodeEvent, encodeAck, encodeEvent, eventIdOf } from '../../src/daemon/aux-ipc';
import { intBelow, prng } from '../helpers/prng';

const ev = (seq: number): Buffer => encodeEvent(seq, [{ type: 1300, payload: Buffer.from(`audit(1.000:${seq}): x`) }]);
const seqOf = (frame: Buffer): number => decodeEvent(frame.subarray(5)).seq;
const bytes = (frames: Buffer[]): number => frames.reduce((n, f) => n + f.length, 0);

describe('aux queue', () => {
  it('drop_newest refuses the new event when full and counts it', () => {
    const q = new AuxQueue(3, 'drop_newest');
    for (let i = 0; i < 5; i++) q.offer(ev);
    assert.equal(q.size, 3);
    assert.equal(q.counters.dropped, 2);
    assert.equal(q.counters.peak, 3);
    assert.deepEqual(q.take(1 << 20, 100).map(seqOf), [1, 2, 3]);
  });

  it('drop_oldest evicts the oldest unsent event', () => {
    const q = new AuxQueue(3, 'drop_oldest');
    for (let i = 0; i < 5; i++) q.offer(ev);
    assert.equal(q.counters.dropped, 2);
    assert.deepEqual(q.take(1 << 20, 100).map(seqOf), [3, 4, 5]);
  });

  it('block holds past depth until shedOverflow drops the newest', () => {
    const q = new AuxQueue(2, 'block');
    for (let i = 0; i < 4; i++) assert.equal(q.offer(ev), true);
    assert.equal(q.size, 4);
    assert.equal(q.shedOverflow(), 2);
    assert.deepEqual(q.take(1 << 20, 100).map(seqOf), [1, 2]);
  });

  it('cumulative acks deliver; a crash requeues what was in flight, in order', () => {
    const q = new AuxQueue(100, 'drop_newest');
    for (let i = 0; i < 6; i++) q.offer(ev);
    assert.deepEqual(q.take(1 << 20, 4).map(seqOf), [1, 2, 3, 4]);
    q.ack(2);
    assert.equal(q.counters.delivered, 2);
    q.requeueInflight();
    assert.equal(q.counters.resent, 2);
    assert.deepEqual(q.take(1 << 20, 100).map(seqOf), [3, 4, 5, 6]);
    q.ack(6);
    assert.equal(q.counters.delivered, 6);
    assert.equal(q.size, 0);
  });

  it('conserves events under random operations (property)', () => {
    const next = prng(7);
    const rnd = (n: number): number => intBelow(next, n);
    for (const policy of ['drop_newest', 'drop_oldest', 'block'] as const) {
      const q = new AuxQueue(20, policy);
      let offered = 0;
      let sentMax = 0;
      for (let i = 0; i < 5000; i++) {
        const op = rnd(10);
        if (op < 5) {
          q.offer(ev);
          offered++;
        } else if (op < 7) {
          const waiting = q.pendingBytes;
          const sent = q.take(rnd(2000) + 1, rnd(10) + 1);
          for (const f of sent) sentMax = Math.max(sentMax, seqOf(f));
          assert.equal(q.pendingBytes, waiting - bytes(sent), `${policy} pendingBytes after take at step ${i}`);
        } else if (op < 9) q.ack(rnd(sentMax + 1));
        else if (op === 9 && rnd(4) === 0) q.requeueInflight();
        if (policy === 'block' && rnd(50) === 0) q.shedOverflow();
        assert.equal(
          q.counters.delivered + q.counters.dropped + q.size,
          offered,
          `${policy} conserves events at step ${i}`,
        );
      }
      // What pump() reads to decide a send: every byte offered and not dropped, sent or acknowledged is counted.
      const waiting = q.pendingBytes;
      const rest = q.take(1 << 30, 1 << 30);
      assert.equal(bytes(rest), waiting, `${policy} pendingBytes is what waits`);
      q.requeueInflight();
      assert.equal(q.pendingBytes, bytes(q.take(1 << 30, 1 << 30)), `${policy} pendingBytes after a requeue`);
      assert.equal(q.pendingBytes, 0);
    }
  });
});

describe('aux framing', () => {
  it('round-trips events split at every byte boundary', () => {
    const frames = Buffer.concat([ev(1), encodeAck(7), ev(2)]);
    for (let cut = 0; cut <= frames.length; cut++) {
      const got: Array<[number, number]> = [];
      const r = new FrameReader((k, b) => got.push([k, k === Frame.EVENT ? decodeEvent(b).seq : b.readDoubleLE(0)]));
      r.push(frames.subarray(0, cut));
      r.push(frames.subarray(cut));
      assert.deepEqual(got, [
        [Frame.EVENT, 1],
        [Frame.ACK, 7],
        [Frame.EVENT, 2],
      ]);
    }
  });

  it('rejects garbage with an Error, never anything else (fuzz)', () => {
    const next = prng(99);
    const rnd = (n: number): number => intBelow(next, n);
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.alloc(rnd(64));
      for (let j = 0; j < b.length; j++) b[j] = rnd(256);
      if (rnd(2) && b.length >= 4) b.writeUInt32LE(b.length - 4, 0);
      try {
        new FrameReader((k, body) => {
          if (k === Frame.EVENT) decodeEvent(body);
        }).push(b);
      } catch (e) {
        assert.ok(e instanceof Error);
      }
    }
  });

  it('reads the event id from a record payload', () => {
    assert.equal(eventIdOf(Buffer.from('audit(1700000000.123:456): a=b')), '1700000000.123:456');
    assert.equal(eventIdOf(Buffer.from('garbage')), '');
  });
});
