// Spool segment numbers the u32 cursor cannot hold: a planted seg-4294967295.spool (ten digits pass the name check)
// made the next segment 2^32, after which every sync() threw ERR_OUT_OF_RANGE and the cursor was never saved again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_SEGMENT, Spool, segmentName } from '../../src/output/transport/spool';
import { IoError } from '../../src/errors';
import { counted } from '../helpers/spool-count';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'amspoolseg-'));
const rec = Buffer.alloc(1000, 0x61);

function drain(s: Spool): number {
  let n = 0;
  for (let r = s.next(); r; r = s.next()) {
    s.commit(r.end);
    n++;
  }
  return n;
}

test('segment names above the cursor range are skipped and reported; sync keeps working across rollover', () => {
  const dir = tmp();
  try {
    const spool = path.join(dir, 'spool');
    fs.mkdirSync(spool, { mode: 0o700 });
    for (const n of [0xffffffff, 9999999999]) fs.writeFileSync(path.join(spool, segmentName(n)), '', { mode: 0o600 });
    const damage: string[] = [];
    let s = new Spool({
      dir: spool,
      maxBytes: 1 << 20,
      onCorrupt: (f, _o, why) => damage.push(`${path.basename(f)} ${why}`),
    });
    for (let i = 0; i < 600; i++) assert.ok(s.append(rec)); // 256 KiB segments: rolls over twice
    assert.equal(drain(s), 600);
    s.sync(); // threw ERR_OUT_OF_RANGE once the spool had rolled over past 2^32-1
    s.close();
    s = new Spool({ dir: spool, maxBytes: 1 << 20 });
    assert.equal(s.pending, 0);
    s.close();
    assert.deepEqual(damage.sort(), [
      `${segmentName(0xffffffff)} segment number above ${MAX_SEGMENT}`,
      `${segmentName(9999999999)} segment number above ${MAX_SEGMENT}`,
    ]);
    // Skipped, never written or deleted: what is not the spool's is left for the operator.
    assert.equal(fs.statSync(path.join(spool, segmentName(0xffffffff))).size, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('at the last segment number the spool refuses to roll over while records wait, and starts again at 0 once empty', async () => {
  const dir = tmp();
  try {
    const spool = path.join(dir, 'spool');
    fs.mkdirSync(spool, { mode: 0o700 });
    fs.writeFileSync(path.join(spool, segmentName(MAX_SEGMENT)), '', { mode: 0o600 });
    let s = new Spool({ dir: spool, maxBytes: 1 << 20 });
    let n = 0;
    let refused: unknown = null;
    try {
      for (; n < 600; n++) s.append(rec);
    } catch (e) {
      refused = e;
    }
    assert.ok(refused instanceof IoError && refused.code === 'E_SPOOL_SEGMENTS', String(refused));
    assert.ok(n > 100 && n < 600, `${n} records before the last segment was full`);
    s.sync();
    assert.equal(drain(s), n);
    // Everything delivered: the next rollover starts again at 0 instead of passing MAX_SEGMENT.
    for (let i = 0; i < 600; i++) assert.ok(s.append(rec));
    s.sync();
    const names = fs.readdirSync(spool).filter((f) => f.startsWith('seg-'));
    assert.ok(!names.includes(segmentName(MAX_SEGMENT)), names.join(' '));
    assert.ok(names.includes(segmentName(0)), names.join(' '));
    for (let i = 0; i < 100; i++) s.commit(s.next()!.end);
    s.sync();
    s.close();
    s = new Spool({ dir: spool, maxBytes: 1 << 20 });
    await counted(s);
    assert.equal(s.pending, 500);
    assert.equal(drain(s), 500);
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
