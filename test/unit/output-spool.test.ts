// The on-disk spool: order, bound, cursor persistence across reopen, segment rollover and torn-tail recovery.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { MemoryQueue, Spool, segmentName, type RecordQueue } from '../../src/output/transport/spool';
import { counted } from '../helpers/spool-count';

/** The module object itself (the imported namespace's bindings are getters): the spool reads its functions live. */
const nodeFs = createRequire(__filename)('node:fs') as { fsyncSync: unknown; readSync: unknown };

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

/** A spool of 64 KiB segments filled until it has `n` segment files; returns its options and the record count. */
function filled(
  dir: string,
  segs: number,
  segmentBytes = 64 * 1024,
): { opts: { dir: string; maxBytes: number; segmentBytes: number }; n: number } {
  const opts = { dir, maxBytes: 64 << 20, segmentBytes };
  const s = new Spool(opts);
  let n = 0;
  while (fs.readdirSync(dir).filter((f) => f.startsWith('seg-')).length < segs) s.append(rec(n++));
  s.close();
  return { opts, n };
}
const segFiles = (dir: string): string[] =>
  fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('seg-'))
    .sort()
    .map((f) => path.join(dir, f));

test('lastPending: the newest record of a segment counted after open, with a damaged record across a read chunk', () => {
  const dir = tmp();
  try {
    const { opts } = filled(dir, 4, 1 << 20);
    const names = segFiles(dir);
    // A crash just after a roll: the newest segment is empty, so the newest records are in a segment between.
    fs.truncateSync(names[3]!, 0);
    // A flipped payload byte in the record across offset 256 KiB (the read chunk's end) of that segment.
    const b = fs.readFileSync(names[2]!);
    let off = 0;
    while (off + 8 + b.readUInt32LE(off) <= 256 * 1024) off += 8 + b.readUInt32LE(off);
    b[off + 8 + 3] = b[off + 8 + 3]! ^ 0xff;
    fs.writeFileSync(names[2]!, b);
    const s = new Spool({ ...opts, onCorrupt: () => undefined });
    const last = s.lastPending();
    const all = drain(s, false);
    assert.equal(last?.toString(), all[all.length - 1], 'the last record delivery hands out, not bytes of another');
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a segment truncated underneath after delivery counted part of it: pending and bytes still reach 0', async () => {
  const dir = tmp();
  try {
    const { opts } = filled(dir, 4);
    const names = segFiles(dir);
    const s = new Spool({ ...opts, onCorrupt: () => undefined });
    // All of the first segment and 50 records of the second, counted as read (no turn for the background count).
    let inSecond = 0;
    for (let r = s.next(); r && inSecond < 50; r = s.next()) if (r.end.seg === 1) inSecond++;
    s.rewind();
    fs.truncateSync(names[1]!, 0);
    drain(s);
    await counted(s);
    assert.equal(s.pending, 0);
    assert.equal(s.bytes, 0);
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a spool whose open fails leaves no background count behind; a count whose read fails tries again', async () => {
  const dir = tmp();
  const realFsync = fs.fsyncSync;
  const realRead = fs.readSync;
  const eio = (call: string): Error => Object.assign(new Error(`EIO: i/o error, ${call}`), { code: 'EIO' });
  try {
    const { opts, n } = filled(dir, 6);
    const reports: string[] = [];
    let failSync = true;
    nodeFs.fsyncSync = (fd: number): void => {
      if (failSync) {
        failSync = false;
        throw eio('fsync');
      }
      realFsync(fd);
    };
    assert.throws(() => new Spool({ ...opts, onCorrupt: (_f, _o, why) => reports.push(why) }), /EIO/);
    nodeFs.fsyncSync = realFsync;
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    assert.equal(reports.length, 0, 'nothing counted on the spool that failed to open');
    // One read of the background count fails: reported once, and the count goes on a second later.
    const s = new Spool({ ...opts, onCorrupt: (_f, _o, why) => reports.push(why) });
    let failRead = true;
    nodeFs.readSync = (...a: Parameters<typeof fs.readSync>): number => {
      if (failRead) {
        failRead = false;
        throw eio('read');
      }
      return (realRead as (...x: Parameters<typeof fs.readSync>) => number)(...a);
    };
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    nodeFs.readSync = realRead;
    assert.equal(reports.length, 1);
    assert.match(reports[0]!, /counting the recovered spool failed: .*EIO/);
    assert.ok(s.uncounted > 0, 'not counted yet: the next try is a second later');
    await new Promise((r) => setTimeout(r, 1100));
    await counted(s);
    assert.equal(s.pending, n);
    s.close();
  } finally {
    nodeFs.fsyncSync = realFsync;
    nodeFs.readSync = realRead;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('damage underneath while open: the write segment skipped is taken off the counts, lastPending and a throwing report do not throw', async () => {
  const dir = tmp();
  try {
    // A flipped bit in the segment appends go to: what follows it is skipped, and neither pending nor delivered.
    const s = new Spool({ dir, maxBytes: 8 << 20, segmentBytes: 64 * 1024, onCorrupt: () => undefined });
    for (let i = 0; i < 100; i++) s.append(rec(i));
    s.sync();
    const file = segFiles(dir)[0]!;
    const b = fs.readFileSync(file);
    b[b.length >> 1] = b[b.length >> 1]! ^ 0x40;
    fs.writeFileSync(file, b);
    const first = drain(s);
    assert.ok(first.length > 0 && first.length < 100);
    assert.equal(s.pending, 0);
    assert.equal(s.bytes, 0);
    for (let i = 0; i < 400; i++) s.append(rec(1000 + i));
    assert.equal(drain(s).length, 400, 'the records appended after it are delivered');
    assert.equal(s.pending, 0);
    assert.equal(s.bytes, 0);
    // The records lastPending found in the read chunk are gone from the file: none is invented, nothing throws.
    for (let i = 0; i < 10; i++) s.append(rec(2000 + i));
    for (let i = 0; i < 3; i++) s.next();
    const last = segFiles(dir).pop()!;
    fs.truncateSync(last, fs.statSync(last).size >> 1);
    s.append(rec(3000));
    const lp = s.lastPending();
    assert.ok(lp === null || /^record number 3000 /.test(lp.toString()), String(lp));
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const dir2 = tmp();
  try {
    // An onCorrupt that throws while the background count reports damage: nothing escapes the count's turn.
    const { opts } = filled(dir2, 4);
    const f = segFiles(dir2)[1]!;
    const b = fs.readFileSync(f);
    b[100] = b[100]! ^ 1;
    fs.writeFileSync(f, b);
    let reports = 0;
    const s = new Spool({
      ...opts,
      onCorrupt: () => {
        reports++;
        throw new Error('the logger failed');
      },
    });
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.ok(reports >= 1);
    s.close();
  } finally {
    fs.rmSync(dir2, { recursive: true, force: true });
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
