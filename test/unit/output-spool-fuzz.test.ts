// Fuzz of the spool segment reader: random damage to segments and cursor never throws and never invents records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Spool, encodeFramed, readFramed, segmentName } from '../../src/output/transport/spool';
import { counted } from '../helpers/spool-count';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

test('readFramed on 20000 random buffers never throws and only returns checksummed records', () => {
  const r = rng(7);
  for (let i = 0; i < 20000; i++) {
    const len = Math.floor(r() * 64);
    let b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = Math.floor(r() * 256);
    if (i % 2 === 0) b = Buffer.concat([encodeFramed(b.subarray(0, Math.floor(r() * len))), b]);
    const res = readFramed(b, 0, b.length);
    if (typeof res === 'object') assert.ok(res.len <= b.length);
  }
});

test('reopening 300 randomly damaged spools never throws; surviving records are a subsequence of what was written', async () => {
  const r = rng(99);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-spoolfuzz-'));
  try {
    for (let iter = 0; iter < 300; iter++) {
      const dir = path.join(base, String(iter));
      const written: string[] = [];
      const s = new Spool({ dir, maxBytes: 1 << 20, segmentBytes: 64 * 1024 });
      // Up to about five 64 KiB segments: the ones between the first and the last are counted after the open.
      const n = 1 + Math.floor(r() * 1500);
      for (let i = 0; i < n; i++) {
        const t = `${iter}:${i}:${'y'.repeat(Math.floor(r() * 300))}`;
        s.append(Buffer.from(t));
        written.push(t);
      }
      const k = Math.floor(r() * n);
      for (let i = 0; i < k; i++) s.commit(s.next()!.end);
      s.sync();
      s.close();
      for (const f of fs.readdirSync(dir)) {
        const p = path.join(dir, f);
        const buf = fs.readFileSync(p);
        if (buf.length === 0 || r() < 0.4) continue;
        const mode = r();
        if (mode < 0.4) buf[Math.floor(r() * buf.length)] ^= 1 + Math.floor(r() * 255);
        else if (mode < 0.7) fs.truncateSync(p, Math.floor(r() * buf.length));
        else buf.fill(Math.floor(r() * 256), Math.floor(r() * buf.length));
        if (mode < 0.4 || mode >= 0.7) fs.writeFileSync(p, buf);
      }
      const again = new Spool({ dir, maxBytes: 1 << 20, segmentBytes: 64 * 1024, onCorrupt: () => undefined });
      // Counted in the background first, or delivered before the count gets there.
      if (iter % 2 === 0) await counted(again);
      const got: string[] = [];
      for (let x = again.next(); x; x = again.next()) {
        got.push(x.data.toString());
        again.commit(x.end);
      }
      await counted(again);
      assert.equal(again.pending, 0, `iteration ${iter}: everything delivered, nothing left counted`);
      assert.equal(again.bytes, 0, `iteration ${iter}: no byte left pending`);
      let w = 0;
      for (const g of got) {
        while (w < written.length && written[w] !== g) w++;
        assert.ok(w < written.length, `iteration ${iter}: record not written or out of order: ${g.slice(0, 30)}`);
        w++;
      }
      again.close();
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('a full file system under the spool: a failed append loses only its record, nothing buffered is written twice or skipped', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amspoolfull-'));
  try {
    const s = new Spool({ dir, maxBytes: 16 << 20, segmentBytes: 8 << 20 });
    const rec = (i: number): Buffer => Buffer.from(`record ${i} `.padEnd(2000, 'x'));
    const kept: number[] = [];
    const add = (i: number): void => {
      try {
        if (s.append(rec(i))) kept.push(i);
      } catch {
        // ENOSPC: this record is not in the spool (the output counts it lost)
      }
    };
    for (let i = 0; i < 10; i++) add(i);
    const internals = s as unknown as { wfd: number };
    const good = internals.wfd;
    const full = fs.openSync('/dev/full', 'w');
    internals.wfd = full;
    let readDuring = 0;
    try {
      for (let i = 10; i < 200; i++) add(i);
      // Reading while the disk is full: what is not on disk is waited for, never skipped.
      for (let r = s.next(); r; r = s.next()) readDuring++;
    } finally {
      internals.wfd = good;
      fs.closeSync(full);
    }
    assert.ok(kept.length < 200, 'some appends failed');
    for (let i = 200; i < 210; i++) add(i);
    s.sync();
    const got: number[] = [];
    for (let r = s.next(); r; r = s.next()) got.push(Number(/record (\d+)/.exec(r.data.toString())![1]));
    assert.deepEqual(got, kept.slice(readDuring), 'every kept record once, in order, after those read before');
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a spool whose next segment cannot be created keeps appending to the current one', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amspoolroll-'));
  try {
    const s = new Spool({ dir, maxBytes: 16 << 20, segmentBytes: 64 * 1024 });
    const rec = (i: number): Buffer => Buffer.from(`record ${i} `.padEnd(1000, 'x'));
    for (let i = 0; i < 50; i++) assert.ok(s.append(rec(i)));
    // The next segment's name is taken by a directory: its create fails as on a full file system.
    const last = Math.max(...fs.readdirSync(dir).map((f) => Number(/^seg-(\d+)\.spool$/.exec(f)?.[1] ?? -1)));
    fs.mkdirSync(path.join(dir, segmentName(last + 1)));
    let failed = 0;
    for (let i = 50; i < 100; i++) {
      try {
        s.append(rec(i));
      } catch {
        failed++;
      }
    }
    assert.ok(failed > 0, 'the rollover failed');
    s.sync();
    let n = 0;
    for (let r = s.next(); r; r = s.next()) n++;
    assert.equal(n, 100 - failed, 'every record the spool took is readable');
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
