// Short writes into a spool segment (write(2) may write less than asked: a signal, a quota, a FUSE or network file
// system): every record, the largest ones included, still ends up whole in its segment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_SPOOL_RECORD, Spool } from '../../src/output/transport/spool';

/** The module object itself: what `import * as fs` gives is a copy of getters that read it. */
const nodeFs = createRequire(__filename)('node:fs') as { writeSync: typeof fs.writeSync };

/** Makes every fs.writeSync of more than `max` bytes write only `max`, as the spool's own calls see it. */
function shortWrites<T>(max: number, fn: () => T): T {
  const real = nodeFs.writeSync;
  const patched = (fd: number, buf: NodeJS.ArrayBufferView, off?: number, len?: number, pos?: number | null) => {
    const o = off ?? 0;
    const l = len ?? buf.byteLength - o;
    return real(fd, buf, o, Math.min(l, max), pos);
  };
  (nodeFs as { writeSync: unknown }).writeSync = patched;
  try {
    return fn();
  } finally {
    nodeFs.writeSync = real;
  }
}

test('spool: records up to MAX_SPOOL_RECORD survive short writes whole, and so does what follows them', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amspoolshort-'));
  try {
    const spool = path.join(dir, 'spool');
    const recs = [
      Buffer.alloc(MAX_SPOOL_RECORD, 0x41),
      Buffer.from('small one'),
      Buffer.alloc(MAX_SPOOL_RECORD - 5, 0x42),
      Buffer.alloc(40000, 0x43),
      Buffer.from('last'),
    ];
    shortWrites(4096, () => {
      const s = new Spool({ dir: spool, maxBytes: 16 << 20 });
      for (const r of recs) assert.ok(s.append(r));
      s.sync();
      s.close();
    });
    const damage: string[] = [];
    const s = new Spool({ dir: spool, maxBytes: 16 << 20, onCorrupt: (_f, off, why) => damage.push(`${off} ${why}`) });
    assert.deepEqual(damage, []);
    assert.equal(s.pending, recs.length);
    const got: Buffer[] = [];
    for (let r = s.next(); r; r = s.next()) got.push(r.data);
    assert.equal(got.length, recs.length);
    got.forEach((g, i) => assert.ok(g.equals(recs[i]!), `record ${i} (${recs[i]!.length} bytes) is whole`));
    s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
