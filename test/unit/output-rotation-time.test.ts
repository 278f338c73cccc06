// Time-based rotation (hourly, daily) and gzip of rotated logs: what auditd users asked for and auditd declined.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { LogWriter } from '../../src/output/logfile';
import { parseConfig } from '../../src/config';

const rec = (serial: number): Buffer => Buffer.from(`audit(1700000000.000:${serial}): pid=1 uid=0 msg='m${serial}'`);

describe('log rotation by time, with compression', () => {
  it('rotates at the hour boundary and gzips the rotated logs, keeping num_logs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amrot-'));
    try {
      let now = new Date(2026, 10, 28, 10, 59, 0).getTime();
      const w = new LogWriter({
        path: join(dir, 'audit.log'),
        format: 'RAW',
        numLogs: 3,
        maxLogFileMiB: 0,
        rotateInterval: 'hourly',
        compress: true,
        now: () => now,
      });
      w.open();
      let serial = 1;
      for (let hour = 0; hour < 4; hour++) {
        for (let i = 0; i < 10; i++) w.writeRecord(1107, rec(serial++));
        w.flush();
        now += 60 * 60 * 1000;
      }
      w.close();
      const files = readdirSync(dir).sort();
      assert.deepEqual(
        files,
        ['audit.log', 'audit.log.1.gz', 'audit.log.2.gz'],
        'num_logs 3: the live log and two rotated',
      );
      const newest = gunzipSync(readFileSync(join(dir, 'audit.log.1.gz'))).toString();
      assert.match(newest, /msg='m31'/);
      assert.match(newest, /msg='m40'/);
      assert.doesNotMatch(newest, /msg='m30'\n/);
      const older = gunzipSync(readFileSync(join(dir, 'audit.log.2.gz'))).toString();
      assert.match(older, /msg='m21'/);
      assert.match(readFileSync(join(dir, 'audit.log'), 'utf8'), /^type=DAEMON_ROTATE /);
      assert.equal(w.counters.rotations, 3, 'one rotation per new hour after the first');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compressed logs keep the rotated logs\u2019 mode and log_group, whatever the umask', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amrot-'));
    const umask = process.umask(0o077); // the unit's UMask
    try {
      let now = new Date(2026, 10, 28, 10, 59, 0).getTime();
      const root = process.getuid?.() === 0;
      const w = new LogWriter({
        path: join(dir, 'audit.log'),
        format: 'RAW',
        maxLogFileMiB: 0,
        rotateInterval: 'hourly',
        compress: true,
        now: () => now,
        ...(root ? { logGroupGid: 4 } : {}),
      });
      w.open();
      w.writeRecord(1107, rec(1));
      w.flush();
      now += 60 * 60 * 1000;
      w.writeRecord(1107, rec(2));
      w.flush();
      w.close();
      const st = statSync(join(dir, 'audit.log.1.gz'));
      assert.equal(st.mode & 0o777, root ? 0o440 : 0o400);
      if (root) assert.deepEqual([st.uid, st.gid], [0, 4]);
    } finally {
      process.umask(umask);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('daily rotation does not rotate within a day', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amrot-'));
    try {
      let now = new Date(2026, 10, 28, 0, 1, 0).getTime();
      const w = new LogWriter({
        path: join(dir, 'audit.log'),
        format: 'RAW',
        numLogs: 5,
        maxLogFileMiB: 0,
        rotateInterval: 'daily',
        now: () => now,
      });
      w.open();
      for (let h = 0; h < 23; h++) {
        w.writeRecord(1107, rec(h));
        w.flush();
        now += 60 * 60 * 1000;
      }
      assert.equal(w.counters.rotations, 0);
      now += 2 * 60 * 60 * 1000;
      w.flush();
      assert.equal(w.counters.rotations, 1);
      w.close();
      assert.deepEqual(readdirSync(dir).sort(), ['audit.log', 'audit.log.1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is configured as rotate_interval and compress, with positioned errors', () => {
    const c = parseConfig(
      'host:\n  log: { file: /tmp/x/audit.log, rotate_interval: daily, compress: true }\n',
      '/tmp/am.yaml',
    );
    assert.equal(c.host.log.rotateInterval, 'daily');
    assert.equal(c.host.log.compress, true);
    assert.throws(
      () => parseConfig('host:\n  log: { file: /tmp/x/audit.log, rotate_interval: weekly }\n', '/tmp/am.yaml'),
      /am\.yaml:2:\d+: .*rotate_interval/,
    );
  });
});
