// An auxiliary log reopened after a crash skips what the host sends again and the log already holds (its tail), and
// completes an event cut short; the first event it lacks ends that, so a restart on an old log does not look every
// later event up among the tail's ids for ever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { encodeEvent, type EventRecord } from '../../src/daemon/aux-ipc';
import { tmpDir } from '../helpers/peers';
import { openAuxWriter } from '../helpers/aux-writer';

const writer = (dir: string): ReturnType<typeof openAuxWriter> => openAuxWriter(dir, 't', 'RAW');

const ev = (serial: number, n: number): EventRecord[] =>
  Array.from({ length: n }, (_, i) => ({
    type: i === 0 ? 1300 : 1302,
    payload: Buffer.from(`audit(1700000000.000:${serial}): r=${i}`, 'latin1'),
  }));

const lines = (file: string): string[] =>
  fs
    .readFileSync(file, 'latin1')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^type=\S+ msg=audit\(1700000000\.000:/, ''));

test('after a crash: what the log holds is skipped, a cut event completed, the rest written', async () => {
  const dir = tmpDir('auxresend');
  const first = writer(dir);
  first.w.write(ev(1, 2));
  first.w.write(ev(2, 3).slice(0, 2)); // the crash came in the middle of event 2
  await first.w.close();
  const again = writer(dir);
  // The host sends again what was not acknowledged, in order: 1, 2 (whole), then 3.
  again.w.write(ev(1, 2));
  again.w.write(ev(2, 3));
  again.w.write(ev(3, 1));
  await again.w.close();
  assert.deepEqual(lines(again.file), ['1): r=0', '1): r=1', '2): r=0', '2): r=1', '2): r=2', '3): r=0']);
});

test('a start on an old log: the first new event ends the look-up among the tail ids', async () => {
  const dir = tmpDir('auxrestart');
  const first = writer(dir);
  for (let s = 1; s <= 50; s++) first.w.write(ev(s, 2));
  await first.w.close();
  const again = writer(dir);
  again.w.write(ev(100, 1));
  // The tail's ids are forgotten: an event with one of them (which the host, sending only new events after a
  // restart, never sends) is now a new event of the log, written through the frame path.
  again.w.writeFrame(encodeEvent(7, ev(5, 1)).subarray(5));
  again.w.write(ev(6, 2));
  await again.w.close();
  const got = lines(again.file);
  assert.equal(got.length, 100 + 4);
  assert.deepEqual(got.slice(100), ['100): r=0', '5): r=0', '6): r=0', '6): r=1']);
});
