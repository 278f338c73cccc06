// The queues' lastPending (where the nats output's numbering resumes): the newest uncommitted record, over segment
// rollovers, commits, reopen and a torn tail; never handing anything out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryQueue, Spool, segmentName } from '../../src/output/transport/spool';
import { intBelow, prng } from '../helpers/prng';

const SEED = Number(process.env.AUDITMUX_FUZZ_SEED ?? 0x1a57);
const rec = (i: number): Buffer => Buffer.from(`entry ${i} s=1.${i + 1} ${'y'.repeat((i * 37) % 500)}`);

test('spool lastPending: newest uncommitted record through appends, commits, rollovers and reopen (seeded)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-last-'));
  const next = prng(SEED);
  try {
    const open = (): Spool => new Spool({ dir, maxBytes: 8 * 1024 * 1024, segmentBytes: 64 * 1024 });
    let s = open();
    assert.equal(s.lastPending(), null);
    let appended = 0;
    let committed = 0;
    for (let round = 0; round < 60; round++) {
      for (let k = intBelow(next, 200); k > 0; k--) assert.ok(s.append(rec(appended++)));
      // Commit a random prefix of what is pending, sometimes all of it.
      const take = next() < 0.2 ? appended - committed : intBelow(next, appended - committed + 1);
      for (let k = 0; k < take; k++) s.commit(s.next()!.end);
      committed += take;
      s.rewind();
      const want = appended > committed ? rec(appended - 1).toString() : null;
      assert.equal(s.lastPending()?.toString() ?? null, want, `round ${round}`);
      // Nothing was handed out: next() still starts at the first uncommitted record.
      if (appended > committed) assert.equal(s.next()?.data.toString(), rec(committed).toString());
      s.rewind();
      if (next() < 0.3) {
        s.close();
        s = open();
        assert.equal(s.lastPending()?.toString() ?? null, want, `round ${round} after reopen`);
      }
    }
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spool lastPending after a torn tail: the last whole record', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-last-'));
  try {
    let s = new Spool({ dir, maxBytes: 1024 * 1024 });
    for (let i = 0; i < 10; i++) s.append(rec(i));
    s.close();
    const seg = fs.readdirSync(dir).find((n) => n.startsWith('seg-'))!;
    assert.ok(seg.startsWith(segmentName(0).slice(0, 4)));
    fs.appendFileSync(path.join(dir, seg), Buffer.from([40, 0, 0, 0, 1, 2]));
    s = new Spool({ dir, maxBytes: 1024 * 1024 });
    assert.equal(s.lastPending()?.toString(), rec(9).toString());
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('memory queue lastPending', () => {
  const q = new MemoryQueue(1024 * 1024);
  assert.equal(q.lastPending(), null);
  q.append(rec(1));
  q.append(rec(2));
  assert.equal(q.lastPending()?.toString(), rec(2).toString());
  q.commit(q.next()!.end);
  q.commit(q.next()!.end);
  assert.equal(q.lastPending(), null);
});
