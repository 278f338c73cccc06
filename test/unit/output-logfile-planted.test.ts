// logfile against names planted in its directory: gz temporaries, rotated slots, hard links, a directory others own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { LogWriter, type LogWriterOptions } from '../../src/output/logfile';
import { IoError } from '../../src/errors';
import { COMPRESS_MAX, LogCompressor } from '../../src/output/log/compress';

const isRoot = process.geteuid?.() === 0;
const dir = (): string => fs.mkdtempSync(join(tmpdir(), 'amplant-'));
const payload = (i: number): Buffer =>
  Buffer.from(`audit(1700000000.${String(i % 1000).padStart(3, '0')}:${i}): n=${i}`);
const by = { auid: 0, uid: 0, ses: 4294967295, pid: 42 };
const PRECIOUS = 'root:$6$precious-hash:19000:0:99999:7:::\n';

function writer(d: string, o: Partial<LogWriterOptions> = {}): { w: LogWriter; warnings: string[] } {
  const warnings: string[] = [];
  const w = new LogWriter({
    path: join(d, 'audit.log'),
    format: 'RAW',
    flush: 'none',
    numLogs: 4,
    logger: (_l, m) => warnings.push(m),
    ...o,
  });
  w.open();
  return { w, warnings };
}

/** A file outside the log directory that an attacker wants root to overwrite or disclose. */
function victim(): string {
  const p = join(dir(), 'shadow');
  fs.writeFileSync(p, PRECIOUS, { mode: 0o600 });
  return p;
}

test('compress: a symlink planted at audit.log.1.gz.tmp is replaced, never written through', () => {
  const d = dir();
  const target = victim();
  const { w } = writer(d, { compress: true });
  for (let i = 1; i <= 50; i++) w.writeRecord(1300, payload(i));
  // An account that could write in the log directory plants the temporary's name before the rotation.
  fs.symlinkSync(target, join(d, 'audit.log.1.gz.tmp'));
  w.rotateNow(by);
  w.close();
  assert.equal(fs.readFileSync(target, 'utf8'), PRECIOUS, 'the symlink target is untouched');
  assert.equal(fs.existsSync(join(d, 'audit.log.1.gz.tmp')), false, 'no temporary left behind');
  const gz = gunzipSync(fs.readFileSync(join(d, 'audit.log.1.gz'))).toString('latin1');
  assert.equal(
    gz.split('\n').filter((l) => l.startsWith('type=SYSCALL')).length,
    50,
    'the rotated log was compressed whole',
  );
  assert.equal(fs.lstatSync(join(d, 'audit.log.1.gz')).isFile(), true);
  assert.equal(fs.existsSync(join(d, 'audit.log.1')), false);
});

test('compress: a stale regular temporary from a crash is replaced too', () => {
  const d = dir();
  const { w } = writer(d, { compress: true });
  w.writeRecord(1300, payload(1));
  fs.writeFileSync(join(d, 'audit.log.1.gz.tmp'), 'half-written garbage');
  w.rotateNow(by);
  w.close();
  assert.match(gunzipSync(fs.readFileSync(join(d, 'audit.log.1.gz'))).toString('latin1'), /n=1\n/);
});

test('rotation: a symlink planted at a rotated name is removed, not carried along as a log', () => {
  const d = dir();
  const target = victim();
  const { w, warnings } = writer(d, { compress: true });
  w.writeRecord(1300, payload(1));
  fs.symlinkSync(target, join(d, 'audit.log.1'));
  fs.symlinkSync(target, join(d, 'audit.log.2.gz'));
  w.rotateNow(by);
  w.writeRecord(1300, payload(2));
  w.rotateNow(by);
  w.close();
  const links = fs.readdirSync(d).filter((n) => fs.lstatSync(join(d, n)).isSymbolicLink());
  assert.deepEqual(links, [], 'no symlink left among the logs (search would read through it as root)');
  assert.equal(fs.readFileSync(target, 'utf8'), PRECIOUS);
  assert.ok(
    warnings.some((m) => /symbolic link where a log belongs/.test(m)),
    warnings.join('\n'),
  );
  // Both real rotations are there, compressed, and none of them holds the victim's bytes.
  for (const n of ['audit.log.1.gz', 'audit.log.2.gz']) {
    const text = gunzipSync(fs.readFileSync(join(d, n))).toString('latin1');
    assert.doesNotMatch(text, /precious/);
  }
});

test('a hard link at the log path is refused, and the other file is not written', () => {
  const d = dir();
  const target = victim();
  // Same file system: link(2) of a file the attacker may not write (protected_hardlinks aside, root can).
  const other = join(d, 'elsewhere');
  fs.copyFileSync(target, other);
  fs.linkSync(other, join(d, 'audit.log'));
  const w = new LogWriter({ path: join(d, 'audit.log'), format: 'RAW', flush: 'none' });
  assert.throws(
    () => w.open(),
    (e: unknown) => e instanceof IoError && e.code === 'E_LOG_HARDLINK' && /2 hard links/.test(e.message),
  );
  w.writeRecord(1300, payload(1));
  w.close();
  assert.equal(fs.readFileSync(other, 'utf8'), PRECIOUS);
});

test('a symlinked log is refused with its own code, and a FIFO does not hang the open', () => {
  const d = dir();
  const target = victim();
  fs.symlinkSync(target, join(d, 'audit.log'));
  assert.throws(
    () => new LogWriter({ path: join(d, 'audit.log'), format: 'RAW' }).open(),
    (e: unknown) => e instanceof IoError && e.code === 'E_LOG_SYMLINK',
  );
  assert.equal(fs.readFileSync(target, 'utf8'), PRECIOUS);
  const d2 = dir();
  const r = spawnSync('mkfifo', [join(d2, 'audit.log')]);
  if (r.status === 0) {
    assert.throws(
      () => new LogWriter({ path: join(d2, 'audit.log'), format: 'RAW' }).open(),
      (e: unknown) => e instanceof IoError && e.code === 'E_LOG_NOT_FILE',
    );
  }
});

test(
  'a log directory someone else owns or can write is refused (the state an old auditmux left /var/log/auditmux in)',
  { skip: isRoot ? false : 'needs root to chown' },
  () => {
    const d = dir();
    fs.chownSync(d, 65534, 65534);
    assert.throws(
      () => writer(d),
      (e: unknown) => e instanceof IoError && e.code === 'E_LOG_DIR_UNSAFE' && /owned by uid 65534/.test(e.message),
    );
    assert.equal(fs.existsSync(join(d, 'audit.log')), false, 'nothing created in it');
    fs.chownSync(d, 0, 0);
    fs.chmodSync(d, 0o1777);
    assert.throws(
      () => writer(d),
      (e: unknown) => e instanceof IoError && e.code === 'E_LOG_DIR_UNSAFE' && /writable by everyone/.test(e.message),
    );
    fs.chmodSync(d, 0o750);
    writer(d).w.close();
  },
);

test('a log directory moved away and replaced under its path: rotation and compression stay in the directory checked', () => {
  // Whoever may rename entries in the parent (Ubuntu's /var/log is root:syslog 0775) moves the log's directory away
  // and puts another at its path, holding another trail's rotated log.
  const parent = dir();
  const logs = join(parent, 'logs');
  fs.mkdirSync(logs, { mode: 0o700 });
  const { w } = writer(logs, { compress: true });
  try {
    w.writeRecord(1107, payload(1));
    w.flush();
    const moved = join(parent, 'moved');
    fs.renameSync(logs, moved);
    fs.mkdirSync(logs, { mode: 0o700 });
    fs.writeFileSync(join(logs, 'audit.log.1'), PRECIOUS, { mode: 0o600 });
    w.rotateNow(by);
    w.writeRecord(1107, payload(2));
    w.flush();
    w.rotateNow(by);
    assert.deepEqual(fs.readdirSync(logs), ['audit.log.1'], 'nothing renamed, made or compressed at the new path');
    assert.equal(fs.readFileSync(join(logs, 'audit.log.1'), 'utf8'), PRECIOUS);
    assert.deepEqual(fs.readdirSync(moved).sort(), ['audit.log', 'audit.log.1.gz', 'audit.log.2.gz']);
    assert.match(gunzipSync(fs.readFileSync(join(moved, 'audit.log.2.gz'))).toString(), /n=1\n/);
    assert.match(gunzipSync(fs.readFileSync(join(moved, 'audit.log.1.gz'))).toString(), /n=2\n/);
  } finally {
    w.close();
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

test('compress: a rotated log over the limit stays plain, with a warning, and nothing is lost', () => {
  const d = dir();
  try {
    const name = join(d, 'audit.log.1');
    const text = 'type=USER msg=audit(1700000000.000:1): pid=1\n'.repeat(100);
    fs.writeFileSync(name, text, { mode: 0o400 });
    const warnings: string[] = [];
    const c = new LogCompressor(0o400, { log: (_l, m) => warnings.push(m), report: () => undefined }, undefined, 1000);
    c.compress(name);
    assert.deepEqual(fs.readdirSync(d), ['audit.log.1'], 'no .gz, no temporary');
    assert.equal(fs.readFileSync(name, 'utf8'), text);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^Left .*audit\.log\.1 plain: it is over the 1000-byte limit of compression/);
    assert.equal(COMPRESS_MAX, 64 * 1024 * 1024);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a log that cannot be opened (a symlink at its name) leaves no descriptor of its directory behind', () => {
  const d = dir();
  try {
    fs.symlinkSync('/etc/passwd', join(d, 'audit.log'));
    const fds = (): number => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) assert.throws(() => writer(d), /symbolic link|symlink/);
    assert.equal(fds(), before, 'every failed open let its held directory go');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});
