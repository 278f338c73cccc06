// The rotation's rename chain stops at its first failure: no later step replaces a rotated log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { LogWriter, type MaxLogFileAction } from '../../src/output/logfile';
import { tmpDir } from '../helpers/peers';

const by = { auid: 0, uid: 0, ses: 4294967295, pid: 42 };

/** Every regular file of `d` with its text, by name. */
function contents(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of fs.readdirSync(d))
    if (fs.statSync(join(d, n)).isFile()) out[n] = fs.readFileSync(join(d, n), 'latin1');
  return out;
}

// rotate with num_logs 4 fails at .2 -> .3 (EISDIR); keep_logs finds .3 taken and fails at .3 -> .4 (not a file).
const cases: [MaxLogFileAction, number, string][] = [
  ['rotate', 4, 'EISDIR'],
  ['keep_logs', 5, 'E_LOG_NOT_FILE'],
];
for (const [action, numLogs, code] of cases) {
  test(`${action}: a directory at audit.log.3 stops the chain; the old .2 and .1 are not overwritten`, () => {
    const d = tmpDir('chain');
    const file = join(d, 'audit.log');
    fs.writeFileSync(`${file}.1`, 'second-newest\n', { mode: 0o400 });
    fs.writeFileSync(`${file}.2`, 'oldest\n', { mode: 0o400 });
    fs.mkdirSync(`${file}.3`);
    const messages: string[] = [];
    const errors: string[] = [];
    const w = new LogWriter({
      path: file,
      format: 'RAW',
      flush: 'none',
      maxLogFileMiB: 0,
      maxLogFileAction: action,
      numLogs,
      logger: (l, m) => messages.push(`${l}: ${m}`),
      onError: (e) => errors.push(`${e.op} ${e.code}`),
    });
    w.open();
    w.writeRecord(1300, Buffer.from('audit(1.000:1): newest'));
    w.rotateNow(by);
    w.writeRecord(1300, Buffer.from('audit(1.000:2): after'));
    w.close();
    const all = contents(d);
    assert.equal(all['audit.log.2'], 'oldest\n', JSON.stringify(all));
    assert.equal(all['audit.log.1'], 'second-newest\n', JSON.stringify(all));
    // The live log was written on, unrotated: nothing accepted was lost.
    assert.match(all['audit.log']!, /newest\n.*DAEMON_ROTATE.*\n.*after\n$/s);
    assert.equal(w.counters.lost, 0);
    assert.equal(w.counters.rotations, 0, 'a failed rotation is not counted');
    assert.deepEqual(errors, [`rotate ${code}`]);
    assert.ok(
      messages.some((m) =>
        /^error: Log rotation stopped at .*audit\.log\.[23]: .*audit\.log goes on without rotating$/.test(m),
      ),
      messages.join('\n'),
    );
  });
}

for (const [action, numLogs] of cases) {
  test(`${action}: a rotation that keeps failing is tried again once per MiB, not at every record past the size`, () => {
    const d = tmpDir('chain-retry');
    const file = join(d, 'audit.log');
    fs.writeFileSync(`${file}.1`, 'second-newest\n', { mode: 0o400 });
    fs.writeFileSync(`${file}.2`, 'oldest\n', { mode: 0o400 });
    fs.mkdirSync(`${file}.3`);
    const errors: string[] = [];
    const w = new LogWriter({
      path: file,
      format: 'RAW',
      flush: 'incremental',
      freq: 100000,
      maxLogFileMiB: 1,
      maxLogFileAction: action,
      numLogs,
      logger: () => undefined,
      onError: (e) => errors.push(`${e.op} ${e.code}`),
    });
    w.open();
    const body = 'x'.repeat(200);
    // About 1.5 MiB: past the size at about 1 MiB, then 2,500 records more before the next MiB.
    for (let i = 0; i < 7500; i++) w.writeRecord(1300, Buffer.from(`audit(1.000:${i}): ${body}`));
    w.flush();
    const c = w.counters;
    w.close();
    assert.equal(c.lost, 0);
    assert.equal(errors.length, 1, errors.join('\n'));
    // One forced sync for the failed rotation, not one per record after it.
    assert.ok(c.fsyncs <= 3, `fsyncs ${c.fsyncs}`);
    assert.equal(fs.readFileSync(`${file}.2`, 'latin1'), 'oldest\n');
  });
}
