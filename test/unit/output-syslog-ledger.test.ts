// The syslog output's ledger of written, uncommitted batches: a batch counts as sent once every byte up to its end has
// left the socket's user-space buffer, whatever is still queued after it, and is committed a resend window later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SentLedger } from '../../src/output/syslog';

const at = (off: number): { seg: number; off: number } => ({ seg: 3, off });

test('ledger: batches are sent as their last byte leaves, committed a window after that, in order', () => {
  const l = new SentLedger();
  l.wrote(100, 2, at(10));
  l.wrote(100, 3, at(20));
  l.wrote(100, 1, at(30));
  assert.deepEqual([l.written, l.records, l.bytes], [300, 6, 300]);
  // 150 bytes out of 300 left this process (150 still in the socket's buffer): only the first batch is sent.
  l.observe(150, 1000);
  assert.equal(l.take(999), null, 'not a window old yet');
  assert.deepEqual(l.take(1000), { end: at(10), records: 2 });
  assert.deepEqual([l.records, l.bytes], [4, 200]);
  assert.equal(l.take(5000), null, 'the others were never seen sent');
  l.observe(300, 2000);
  assert.deepEqual(l.take(2000), { end: at(30), records: 4 });
  assert.deepEqual([l.records, l.bytes], [0, 0]);
  // A clean close takes what was written whether or not a tick saw it leave.
  l.wrote(50, 1, at(40));
  assert.deepEqual(l.take(Infinity, true), { end: at(40), records: 1 });
  l.wrote(50, 7, at(50));
  assert.equal(l.reset(), 7);
  assert.deepEqual([l.written, l.records, l.bytes], [0, 0, 0]);
});

test('ledger: 100k batches observed and taken a few at a time are all committed, once', () => {
  const l = new SentLedger();
  let end = 0;
  let taken = 0;
  for (let i = 0; i < 100_000; i++) {
    l.wrote(10, 1, at(++end));
    if (i % 7 === 6) {
      l.observe(l.written - 20, i);
      const c = l.take(i);
      if (c) taken += c.records;
    }
  }
  l.observe(l.written, 1e9);
  taken += l.take(1e9)?.records ?? 0;
  assert.equal(taken, 100_000);
  assert.equal(l.records, 0);
});
