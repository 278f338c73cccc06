// The on-disk spool: order, bound, cursor persistence across reopen, segment rollover and torn-tail recovery.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryQueue, Spool, segmentName, type RecordQueue } from '../../src/output/transport/spool';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-spool-'));
}
const rec = (i: number): Buffer => Buffer.from(`record number ${i} ${'x'.repeat(i % 97)}`);

function drain(q: RecordQueue, commit = true): string[] {
  const out: string[] = [];
  for (let r = q.next(); r; r = q.next()) {
    out.push(r.data.toString());
    if (commit) q.commit(r.end);
  }
  return out;
}

test('spool keeps order, survives reopen, deletes delivered segments', () => {
  const dir = tmp();
  try {
    let s = new Spool({ dir, maxBytes: 10 * 1024 * 1024, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 3000; i++) assert.ok(s.append(rec(i)));
    s.sync();
    const segs = fs.readdirSync(dir).filter((n) => n.startsWith('seg-'));
    assert.ok(segs.length > 2, `rolled over into ${segs.length} segments`);
    // deliver 1000, then "crash" (no close) and reopen
    for (let i = 0; i < 1000; i++) {
      const r = s.next();
      assert.equal(r?.data.toString(), rec(i).toString());
      s.commit(r!.end);
    }
    s.sync();
    s = new Spool({ dir, maxBytes: 10 * 1024 * 1024, segmentBytes: 64 * 1024 });
    assert.equal(s.pending, 2000);
    const rest = drain(s);
    assert.deepEqual(
      rest,
      Array.from({ length: 2000 }, (_, k) => rec(k + 1000).toString()),
    );
    assert.equal(s.pending, 0);
    s.close();
    assert.ok(fs.readdirSync(dir).filter((n) => n.startsWith('seg-')).length <= 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spool: rewind hands out uncommitted records again; the byte bound refuses, then accepts after commits', () => {
  const dir = tmp();
  try {
    const s = new Spool({ dir, maxBytes: 2000 });
    let n = 0;
    while (s.append(rec(n))) n++;
    assert.ok(n > 10 && s.bytes <= 2000);
    const a = s.next()!;
    s.next();
    s.rewind();
    assert.equal(s.next()!.data.toString(), a.data.toString());
    s.commit(a.end);
    assert.ok(s.append(Buffer.from('short')));
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spool recovery cuts a torn tail and a damaged cursor slot falls back to the other', () => {
  const dir = tmp();
  try {
    let s = new Spool({ dir, maxBytes: 1 << 20 });
    for (let i = 0; i < 10; i++) s.append(rec(i));
    const r = s.next()!;
    s.commit(r.end);
    s.sync();
    s.close();
    const seg = path.join(dir, segmentName(0));
    fs.appendFileSync(seg, Buffer.from([40, 0, 0, 0, 1, 2])); // half a record header
    const bad: string[] = [];
    s = new Spool({ dir, maxBytes: 1 << 20, onCorrupt: (_f, _o, why) => bad.push(why) });
    assert.equal(bad.length, 1);
    assert.equal(s.pending, 9);
    assert.ok(s.append(rec(10)));
    assert.deepEqual(
      drain(s),
      Array.from({ length: 10 }, (_, k) => rec(k + 1).toString()),
    );
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('memory queue has the same contract', () => {
  const q = new MemoryQueue(1000);
  let n = 0;
  while (q.append(rec(n))) n++;
  const first = q.next()!;
  q.rewind();
  assert.equal(q.next()!.data.toString(), first.data.toString());
  q.commit(first.end);
  assert.equal(q.pending, n - 1);
  assert.equal(drain(q).length, n - 1);
  assert.equal(q.pending, 0);
});
