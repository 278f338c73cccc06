// The log's flush promise per mode, counted (no clocks): one write per batch, a sync at the batch end when the mode
// asks for one (data/sync: every batch; incremental modes: once `freq` records were accepted since the last).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LogWriter, type FlushMode, type LogWriterOptions } from '../../src/output/logfile';
import { MAX_LINE_BYTES } from '../../src/output/format';
import { intBelow, prng } from '../helpers/prng';

const payload = (i: number): Buffer =>
  Buffer.from(`audit(1700000000.${String(i % 1000).padStart(3, '0')}:${i}): n=${i}`);

function writer(mode: FlushMode, o: Partial<LogWriterOptions> = {}): { w: LogWriter; path: string } {
  const path = join(fs.mkdtempSync(join(tmpdir(), 'amflush-')), 'audit.log');
  const w = new LogWriter({ path, format: 'RAW', flush: mode, freq: 50, ...o });
  w.open();
  return { w, path };
}

const size = (p: string): number => fs.statSync(p).size;

/**
 * Replays seeded batches against a model of the promise: after each batch end (flush) every accepted record is in the
 * file, one write() went out for the batch, and a sync was asked for exactly when the mode promises one.
 */
function replay(mode: FlushMode, seed: number): void {
  const freq = 1 + intBelow(prng(seed), 80);
  const next = prng(seed * 7 + 1);
  const { w, path } = writer(mode, { freq });
  let n = 0;
  let since = 0;
  let syncs = 0;
  let writes = 0;
  for (let b = 0; b < 200; b++) {
    const batch = intBelow(next, 4) === 0 ? 0 : 1 + intBelow(next, 300);
    const before = { ...w.counters };
    for (let i = 0; i < batch; i++) assert.equal(w.writeRecord(1300, payload(++n)), true);
    // Nothing is written or synced inside the batch (the buffer is far from full).
    assert.equal(w.counters.writes, before.writes, `${mode} seed ${seed}: a write inside batch ${b}`);
    assert.equal(w.counters.syncRequests, before.syncRequests, `${mode} seed ${seed}: a sync inside batch ${b}`);
    since += batch;
    const due = mode === 'data' || mode === 'sync' ? batch > 0 : mode === 'none' ? false : since >= freq;
    assert.equal(w.syncDue, due, `${mode} seed ${seed} batch ${b}: syncDue`);
    w.flush();
    if (batch > 0) writes++;
    if (due) {
      syncs++;
      since = 0;
    }
    assert.equal(size(path), w.counters.bytes, `${mode} seed ${seed} batch ${b}: all written`);
    assert.equal(w.counters.writes, writes, `${mode} seed ${seed} batch ${b}: one write per batch`);
    assert.equal(w.counters.syncRequests, syncs, `${mode} seed ${seed} batch ${b}: syncs asked`);
    // The incremental modes' count promise, at batch ends: fewer than `freq` records wait for a sync.
    if (mode === 'incremental' || mode === 'incremental_async') assert.ok(since < freq);
    assert.equal(w.syncDue, false);
  }
  assert.equal(w.counters.records, n);
  // The synchronous modes count each sync when done: all of them are.
  if (mode !== 'incremental_async') assert.equal(w.counters.fsyncs, syncs);
  w.close();
  assert.equal(fs.readFileSync(path, 'latin1').split('\n').length - 1, n);
}

for (const mode of ['incremental', 'incremental_async', 'data', 'sync', 'none'] as const) {
  test(`${mode}: one write per batch, a sync at the batch end exactly when the mode promises one (seeded batches)`, () => {
    for (const seed of [1, 2, 3, 4, 5]) replay(mode, seed);
  });
}

test('a batch larger than the buffer is written in pieces but synced once, after its last piece', () => {
  for (const mode of ['incremental', 'data', 'sync'] as const) {
    const { w, path } = writer(mode, { freq: 10, bufferBytes: 4 * MAX_LINE_BYTES });
    let n = 0;
    // About 2 KB per buffer-full of short records: enough records to fill the buffer several times.
    const lines = Math.ceil((12 * 4 * MAX_LINE_BYTES) / payload(99999).length);
    for (let i = 0; i < lines; i++) w.writeRecord(1300, payload(++n));
    assert.ok(w.counters.writes >= 2, `${mode}: the full buffer was written ${w.counters.writes} times`);
    assert.equal(w.counters.syncRequests, 0, `${mode}: no sync inside the batch`);
    w.flush();
    assert.equal(size(path), w.counters.bytes);
    assert.equal(w.counters.syncRequests, 1, mode);
    assert.equal(w.counters.fsyncs, 1, mode);
    w.close();
  }
});

test('incremental: a batch below freq is written but not synced; the batch that reaches freq syncs everything before', () => {
  const { w, path } = writer('incremental', { freq: 50 });
  for (let i = 1; i <= 30; i++) w.writeRecord(1300, payload(i));
  w.flush();
  assert.deepEqual([w.counters.writes, w.counters.syncRequests], [1, 0]);
  assert.equal(size(path), w.counters.bytes);
  for (let i = 31; i <= 50; i++) w.writeRecord(1300, payload(i));
  assert.equal(w.syncDue, true);
  w.flush();
  assert.deepEqual([w.counters.writes, w.counters.syncRequests, w.counters.fsyncs], [2, 1, 1]);
  w.close();
});

test('rotation and suspension sync what was written first, freq or not', () => {
  const { w } = writer('incremental', { freq: 50 });
  for (let i = 1; i <= 3; i++) w.writeRecord(1300, payload(i));
  w.rotateNow({ auid: 0, uid: 0, ses: 1, pid: 1 });
  // The old file's three records, then the new file's DAEMON_ROTATE.
  assert.equal(w.counters.syncRequests, 2);
  w.writeRecord(1300, payload(4));
  w.suspend();
  assert.equal(w.counters.syncRequests, 3);
  w.close();
});
