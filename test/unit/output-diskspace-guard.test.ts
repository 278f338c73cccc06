// DiskSpaceGuard with a real LogWriter and staged free space: what each action does to the log and its history.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { LogWriter } from '../../src/output/logfile';
import { DiskSpaceGuard, type FreeSpaceReader } from '../../src/output/diskspace';
import { defaultDiskSpace, type DiskSpaceConfig } from '../../src/config/schema';
import { captureDiag, tmpDir } from '../helpers/peers';

const by = { auid: 0, uid: 0, ses: 4294967295, pid: 42 };
const record = (s: string, i: number): Buffer => Buffer.from(`audit(1.000:${i}): ${s}`);

/** A file system of 10000 MiB whose free MiB the test sets. */
function stagedDisk(): { statfs: FreeSpaceReader; free: { mib: number } } {
  const free = { mib: 1000 };
  return { free, statfs: () => ({ bsize: 1024 * 1024, blocks: 10000, bavail: free.mib }) };
}

/** space_left 75 MiB with `spaceLeftAction`, admin_space_left 10 MiB suspend, the rest as given. */
function config(over: Partial<DiskSpaceConfig>): DiskSpaceConfig {
  return {
    ...defaultDiskSpace(),
    spaceLeft: { value: 75, unit: 'MiB' },
    adminSpaceLeft: { value: 10, unit: 'MiB' },
    adminSpaceLeftAction: 'suspend',
    diskFullAction: 'suspend',
    diskErrorAction: 'suspend',
    ...over,
  };
}

/** The `history-day-N` marks each file of `d` holds, by name. */
function history(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of fs.readdirSync(d).sort())
    out[n] = (fs.readFileSync(join(d, n), 'latin1').match(/history-day-\d/g) ?? []).join('+');
  return out;
}

test('space_left_action rotate: a disk that stays low rotates once, not at every check', () => {
  const d = tmpDir('churn');
  const file = join(d, 'audit.log');
  const w = new LogWriter({ path: file, format: 'RAW', flush: 'none', maxLogFileMiB: 0, numLogs: 5 });
  const disk = stagedDisk();
  const g = new DiskSpaceGuard(file, config({ spaceLeftAction: 'rotate' }), w, captureDiag(), 5, disk.statfs);
  w.open();
  for (let day = 1; day <= 4; day++) {
    w.writeRecord(1300, record(`history-day-${day}`, day));
    w.rotateNow(by);
  }
  const rotations = w.counters.rotations;
  // Someone else keeps the file system under space_left (a tenant's log on it): checks go on, once a second.
  disk.free.mib = 60;
  for (let s = 1; s <= 4; s++) {
    w.writeRecord(1300, record('now', 100 + s));
    w.flush();
    g.afterFlush();
  }
  assert.equal(w.counters.rotations, rotations + 1, 'one rotation for the crossing');
  // That one rotation moved .3 onto .4 (num_logs 5 keeps four): days 2 to 4 are all still there.
  assert.deepEqual(history(d), {
    'audit.log': '',
    'audit.log.1': '',
    'audit.log.2': 'history-day-4',
    'audit.log.3': 'history-day-3',
    'audit.log.4': 'history-day-2',
  });
  // A resume re-arms the level, as auditd's resume_logging does.
  g.resume();
  g.afterFlush();
  assert.equal(w.counters.rotations, rotations + 2, 'rotated again after a resume');
  w.close();
});

test('space_left_action exec: the log is synced and closed for the program; resume writes a new log', () => {
  const d = tmpDir('execclose');
  const file = join(d, 'audit.log');
  const w = new LogWriter({ path: file, format: 'RAW', flush: 'incremental', freq: 1000, maxLogFileMiB: 0 });
  const disk = stagedDisk();
  const diag = captureDiag();
  const g = new DiskSpaceGuard(
    file,
    config({ spaceLeftAction: 'exec', spaceLeftExe: '/bin/true' }),
    w,
    diag,
    5,
    disk.statfs,
  );
  w.open();
  w.writeRecord(1300, record('before', 1));
  w.flush();
  const fsyncs = w.counters.fsyncs;
  disk.free.mib = 50;
  g.afterFlush();
  assert.ok(
    diag.lines.some((l) => l.level === 'error' && /running \/bin\/true$/.test(String(l.m))),
    JSON.stringify(diag.lines),
  );
  assert.equal(w.isOpen, false, 'closed for the program');
  assert.ok(w.counters.fsyncs > fsyncs, 'what was written was synced first');
  // What the program does: auditd closed the log for it to move or compress.
  fs.renameSync(file, `${file}.archived`);
  w.writeRecord(1300, record('while-suspended', 2));
  disk.free.mib = 1000;
  g.resume();
  w.writeRecord(1300, record('after-resume', 3));
  w.close();
  assert.equal(fs.readFileSync(`${file}.archived`, 'latin1'), 'type=SYSCALL msg=audit(1.000:1): before\n');
  assert.equal(fs.readFileSync(file, 'latin1'), 'type=SYSCALL msg=audit(1.000:3): after-resume\n');
  assert.equal(w.counters.lost, 1, 'the record refused while suspended is counted');
});

test("free space is measured through the held log, not its path: a swapped directory's /proc link suspends nothing", () => {
  const parent = tmpDir('statfs'); // stands for /var/log, where others may rename entries
  const dir = join(parent, 'auditmux');
  fs.mkdirSync(dir, { mode: 0o700 });
  const file = join(dir, 'audit.log');
  const w = new LogWriter({ path: file, format: 'RAW', flush: 'none', maxLogFileMiB: 0 });
  const diag = captureDiag();
  // The real statfs(2): 1 MiB of space_left, a full disk suspends.
  const g = new DiskSpaceGuard(
    file,
    config({
      spaceLeft: { value: 1, unit: 'MiB' },
      spaceLeftAction: 'syslog',
      adminSpaceLeft: { value: 0, unit: 'MiB' },
      adminSpaceLeftAction: 'syslog',
      diskFullAction: 'suspend',
      diskErrorAction: 'syslog',
    }),
    w,
    diag,
  );
  w.open();
  assert.equal(g.afterFlush().level, 'ok');
  // The directory moved away, one of someone else's in its place, its audit.log a link to /proc (0 blocks free).
  fs.renameSync(dir, join(parent, 'moved'));
  fs.mkdirSync(dir);
  fs.symlinkSync('/proc', file);
  assert.equal(g.afterFlush().level, 'ok', JSON.stringify(diag.lines));
  assert.equal(w.isSuspended, false);
  w.writeRecord(1300, record('kept', 1));
  w.close();
  assert.equal(w.counters.lost, 0);
  assert.equal(
    fs.readFileSync(join(parent, 'moved', 'audit.log'), 'latin1'),
    'type=SYSCALL msg=audit(1.000:1): kept\n',
  );
  assert.deepEqual(diag.lines, []);
});

test('a statfs that fails is said once, not read as "ok", and said again after one succeeded', () => {
  const d = tmpDir('statfsfail');
  const file = join(d, 'audit.log');
  const w = new LogWriter({ path: file, format: 'RAW', flush: 'none', maxLogFileMiB: 0 });
  const disk = stagedDisk();
  let fail = false;
  const statfs: FreeSpaceReader = (p) => {
    if (fail) throw Object.assign(new Error(`ENOENT: no such file or directory, statfs '${p}'`), { code: 'ENOENT' });
    return disk.statfs(p);
  };
  const diag = captureDiag();
  const g = new DiskSpaceGuard(file, config({ spaceLeftAction: 'syslog' }), w, diag, 5, statfs);
  w.open();
  disk.free.mib = 50;
  assert.equal(g.afterFlush().level, 'space_left');
  fail = true;
  for (let i = 0; i < 3; i++) g.afterFlush();
  const said = (): number => diag.lines.filter((l) => /cannot read the free space/.test(String(l.m))).length;
  assert.equal(said(), 1, JSON.stringify(diag.lines));
  assert.equal(diag.lines.at(-1)?.level, 'warn');
  assert.deepEqual(diag.lines.at(-1)?.o, { path: file, err: 'ENOENT' });
  assert.equal(g.lastLevel, 'space_left', 'an unreadable file system is not reported as "ok"');
  fail = false;
  g.afterFlush();
  fail = true;
  g.afterFlush();
  assert.equal(said(), 2);
  w.close();
});
