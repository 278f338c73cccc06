// max_log_file_action keep_logs: no rotated log is ever replaced, compressed or not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { LogWriter, type LogWriterOptions } from '../../src/output/logfile';
import { LogCompressor } from '../../src/output/log/compress';
import { tmpDir } from '../helpers/peers';

const by = { auid: 0, uid: 0, ses: 4294967295, pid: 42 };
const record = (i: number): Buffer =>
  Buffer.from(`audit(1700000000.${String(i).padStart(3, '0')}:${i}): generation=${i}`);

function writer(d: string, o: Partial<LogWriterOptions> = {}): { w: LogWriter; messages: string[] } {
  const messages: string[] = [];
  const w = new LogWriter({
    path: join(d, 'audit.log'),
    format: 'RAW',
    flush: 'none',
    maxLogFileMiB: 0,
    maxLogFileAction: 'keep_logs',
    numLogs: 5,
    logger: (l, m) => messages.push(`${l}: ${m}`),
    ...o,
  });
  w.open();
  return { w, messages };
}

/** The generations each file of `d` holds (gunzipped when compressed), by file name. */
function generations(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of fs.readdirSync(d).sort()) {
    const b = fs.readFileSync(join(d, n));
    const t = n.endsWith('.gz') ? gunzipSync(b).toString('latin1') : b.toString('latin1');
    out[n] = (t.match(/generation=\d+/g) ?? []).join(',');
  }
  return out;
}

test('keep_logs + compress: four rotations keep four compressed logs', () => {
  const d = tmpDir('keepgz');
  const { w, messages } = writer(d, { compress: true });
  for (let r = 1; r <= 4; r++) {
    w.writeRecord(1300, record(r));
    w.rotateNow(by);
  }
  w.close();
  assert.deepEqual(
    generations(d),
    {
      'audit.log': '',
      'audit.log.1.gz': 'generation=4',
      'audit.log.2.gz': 'generation=3',
      'audit.log.3.gz': 'generation=2',
      'audit.log.4.gz': 'generation=1',
    },
    messages.join('\n'),
  );
});

test('compression never replaces an existing .gz: the plain log stays, and the refusal is an error', () => {
  const d = tmpDir('gzexists');
  const name = join(d, 'audit.log.1');
  fs.writeFileSync(name, 'type=SYSCALL msg=audit(1.000:2): new\n', { mode: 0o400 });
  fs.writeFileSync(`${name}.gz`, 'an older rotated log', { mode: 0o400 });
  const logged: string[] = [];
  const c = new LogCompressor(0o400, { log: (l, m) => logged.push(`${l}: ${m}`), report: () => undefined });
  c.compress(name);
  assert.equal(fs.readFileSync(`${name}.gz`, 'latin1'), 'an older rotated log', 'the existing .gz is untouched');
  assert.equal(fs.readFileSync(name, 'latin1'), 'type=SYSCALL msg=audit(1.000:2): new\n', 'the plain log is kept');
  assert.equal(fs.existsSync(`${name}.gz.tmp`), false, 'no temporary left behind');
  assert.ok(
    logged.some((m) => /^error: Left .*audit\.log\.1 plain: .*\.gz already exists/.test(m)),
    logged.join('\n'),
  );
});

for (const numLogs of [0, 1]) {
  test(`keep_logs with num_logs ${numLogs} rotates as auditd 3.0.9 does: no forced sync for every record`, () => {
    const d = tmpDir('keepone');
    const file = join(d, 'audit.log');
    fs.writeFileSync(file, Buffer.alloc(1024 * 1024 + 1, 0x41), { mode: 0o600 });
    const { w, messages } = writer(d, { flush: 'incremental', freq: 1000, maxLogFileMiB: 1, numLogs });
    const before = w.counters.fsyncs;
    for (let i = 0; i < 1000; i++) w.writeRecord(1300, record(i));
    w.flush();
    const fsyncs = w.counters.fsyncs - before;
    w.close();
    // One sync before the rotation and one for the 1000th record (freq), whatever the order.
    assert.ok(fsyncs <= 3, `${fsyncs} fsyncs for 1000 records at freq 1000`);
    assert.equal(fs.statSync(`${file}.1`).size, 1024 * 1024 + 1, 'the full log was kept as audit.log.1');
    assert.equal(fs.readFileSync(file, 'latin1').split('\n').length - 1, 1000, 'every record in the new log');
    assert.equal(messages.filter((m) => /rotat/i.test(m)).length, 1, messages.slice(0, 5).join('\n'));
  });
}
