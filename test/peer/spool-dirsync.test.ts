// A spool makes each new segment's name durable (fsync of its directory) before records synced into it count as
// kept: seen with strace, the real syscalls of a real process.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const noStrace = spawnSync('strace', ['-V']).status !== 0 ? 'strace is not installed' : false;

describe('spool segments and their directory (strace)', { skip: noStrace }, () => {
  it('fsyncs the spool directory after creating it and after creating each new segment', () => {
    const base = mkdtempSync(join(tmpdir(), 'amspoolsync-'));
    const dir = join(base, 'spool');
    try {
      // Segments of 64 KiB (the smallest) and 1 KiB records: the 70th record opens segment 1.
      const script = `const { Spool } = require(${JSON.stringify(resolve(__dirname, '../../src/output/transport/spool'))});
        const s = new Spool({ dir: ${JSON.stringify(dir)}, maxBytes: 1 << 20, segmentBytes: 65536 });
        process.stdout.write('BEGIN\\n');
        for (let i = 0; i < 100; i++) if (!s.append(Buffer.alloc(1024, 0x61))) throw new Error('refused');
        s.sync();
        s.close();`;
      const r = spawnSync(
        'strace',
        ['-f', '-qq', '-y', '-e', 'trace=openat,fsync,fdatasync,write', process.execPath, '-e', script],
        { encoding: 'utf8', env: {}, maxBuffer: 64 << 20 },
      );
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const lines = r.stderr.split('\n');
      const dirSyncs = (from: number, to: number): number =>
        lines.slice(from, to).filter((l) => /fsync\(\d+<[^>]*\/spool>\)/.test(l)).length;
      const seg1 = lines.findIndex((l) => /openat\(.*\/spool\/seg-0000000001\.spool", O_WRONLY\|O_CREAT/.test(l));
      const begin = lines.findIndex((l) => l.includes('BEGIN'));
      assert.ok(begin > 0 && seg1 > begin, `segment 1 created after the start: ${seg1}, ${begin}`);
      assert.ok(dirSyncs(0, begin) >= 1, 'the directory synced at the start, with the cursor and first segment');
      // The spool directory was made here: its name, in its parent, too.
      const parent = new RegExp(`fsync\\(\\d+<${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>\\)`);
      assert.ok(
        lines.slice(0, begin).some((l) => parent.test(l)),
        'the parent synced',
      );
      // Between the new segment's creation and the next data sync into it, its directory was synced.
      const nextSync = lines.findIndex(
        (l, i) => i > seg1 && /fdatasync\(\d+<[^>]*\/spool\/seg-0000000001\.spool>\)/.test(l),
      );
      assert.ok(nextSync > seg1, 'records synced into segment 1');
      assert.ok(dirSyncs(seg1, nextSync) >= 1, lines.slice(seg1, nextSync + 1).join('\n'));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
