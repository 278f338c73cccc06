// The on-disk spool: order, bound, cursor persistence across reopen, segment rollover and torn-tail recovery.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryQueue, Spool, segmentName, type RecordQueue } from '../../src/output/transport/spool';
import { counted } from '../helpers/spool-count';

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

test('spool keeps order, survives reopen, deletes delivered segments', async () => {
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
    const bytes = s.bytes;
    s = new Spool({ dir, maxBytes: 10 * 1024 * 1024, segmentBytes: 64 * 1024 });
    // The cursor's segment and the last one are read at open, the ones between are counted after it.
    assert.equal(s.bytes, bytes);
    assert.ok(s.uncounted > 0 && s.pending < 2000, `${s.pending} counted at open, ${s.uncounted} bytes later`);
    await counted(s);
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

test('a recovered spool delivered before its background count counts each record once, as it is read', () => {
  const dir = tmp();
  try {
    let s = new Spool({ dir, maxBytes: 10 * 1024 * 1024, segmentBytes: 64 * 1024 });
    for (let i = 0; i < 3000; i++) assert.ok(s.append(rec(i)));
    s.close();
    s = new Spool({ dir, maxBytes: 10 * 1024 * 1024, segmentBytes: 64 * 1024 });
    assert.ok(s.uncounted > 0);
    // Half read and rewound (read again, counted once), then all of it, with no turn of the loop for the count.
    const half: string[] = [];
    for (let i = 0; i < 1500; i++) half.push(s.next()!.data.toString());
    s.rewind();
    const all = drain(s, false);
    assert.deepEqual(all.slice(0, 1500), half);
    assert.equal(all.length, 3000);
    assert.equal(s.uncounted, 0);
    assert.equal(s.pending, 3000);
    s.rewind();
    drain(s);
    assert.equal(s.pending, 0);
    assert.equal(s.bytes, 0);
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const when of ['counted first', 'delivered first'])
  test(`a damaged record in a segment counted after open ends that segment (${when}); the others are whole`, async () => {
    const dir = tmp();
    try {
      let s = new Spool({ dir, maxBytes: 10 * 1024 * 1024, segmentBytes: 64 * 1024 });
      for (let i = 0; i < 3000; i++) assert.ok(s.append(rec(i)));
      s.close();
      const segs = fs
        .readdirSync(dir)
        .filter((n) => n.startsWith('seg-'))
        .sort();
      assert.ok(segs.length >= 4, segs.join(' '));
      // One byte of a record's payload in the second segment (neither the cursor's nor the last one).
      const victim = path.join(dir, segs[1]!);
      const orig = fs.readFileSync(victim);
      const b = Buffer.from(orig);
      const at = Math.floor(b.length / 2);
      b[at] = b[at]! ^ 0xff;
      fs.writeFileSync(victim, b);
      const bad: Array<[string, number]> = [];
      s = new Spool({
        dir,
        maxBytes: 10 * 1024 * 1024,
        segmentBytes: 64 * 1024,
        onCorrupt: (f, off) => bad.push([f, off]),
      });
      assert.deepEqual(bad, [], 'nothing of the second segment is read at open');
      if (when === 'counted first') await counted(s);
      const got = drain(s);
      assert.equal(bad.length, 1);
      assert.equal(bad[0]![0], victim);
      assert.ok(bad[0]![1] <= at && bad[0]![1] > 0, `cut at ${bad[0]![1]}, byte ${at} damaged`);
      // In order, without a gap except the damaged segment's tail; every other record is there.
      const nums = got.map((t) => Number(t.split(' ')[2]));
      for (let i = 1; i < nums.length; i++) assert.ok(nums[i]! > nums[i - 1]!, 'in order');
      // Exactly the records from the damaged one to the segment's end (its framing read before the damage).
      let tail = 0;
      for (let off = 0; off < orig.length; off += 8 + orig.readUInt32LE(off)) if (off >= bad[0]![1]) tail++;
      assert.ok(tail > 0);
      assert.equal(3000 - nums.length, tail, 'the damaged tail and nothing else is lost');
      assert.equal(nums[0], 0);
      assert.equal(nums[nums.length - 1], 2999);
      await counted(s);
      assert.equal(s.pending, 0);
      assert.equal(s.bytes, 0, 'the damaged tail is neither pending nor delivered');
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
