// safefs write side: no-follow opens with a one-link check, exclusive temporaries, directory checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { checkDirSafe, createExclusive, openAppendNoFollow, openNoFollow } from '../../src/safefs';
import { IoError } from '../../src/errors';

const dir = (): string => fs.mkdtempSync(join(tmpdir(), 'amsafew-'));
const code = (f: () => unknown): string => {
  try {
    const r = f() as { fd?: number };
    if (typeof r?.fd === 'number') fs.closeSync(r.fd);
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof IoError, String(e));
    return e.code;
  }
};

test('openAppendNoFollow creates with the mode, appends, and refuses symlinks, hard links and FIFOs', () => {
  const d = dir();
  const p = join(d, 'log');
  const { fd, stat } = openAppendNoFollow(p, { mode: 0o640, what: 'log' });
  fs.writeSync(fd, 'a\n');
  fs.closeSync(fd);
  assert.equal(stat.nlink, 1);
  assert.equal(fs.statSync(p).mode & 0o777, 0o640 & ~process.umask());
  const again = openAppendNoFollow(p);
  fs.writeSync(again.fd, 'b\n');
  fs.closeSync(again.fd);
  assert.equal(fs.readFileSync(p, 'utf8'), 'a\nb\n');

  fs.writeFileSync(join(d, 'target'), 'keep');
  fs.symlinkSync(join(d, 'target'), join(d, 'sym'));
  fs.symlinkSync(join(d, 'nowhere'), join(d, 'dangling'));
  fs.linkSync(join(d, 'target'), join(d, 'hard'));
  assert.equal(
    code(() => openAppendNoFollow(join(d, 'sym'))),
    'E_SYMLINK',
  );
  assert.equal(
    code(() => openAppendNoFollow(join(d, 'dangling'))),
    'E_SYMLINK',
  );
  assert.equal(fs.existsSync(join(d, 'nowhere')), false, 'a dangling symlink does not create its target');
  assert.equal(
    code(() => openAppendNoFollow(join(d, 'hard'))),
    'E_HARDLINK',
  );
  assert.equal(
    code(() => openNoFollow(join(d, 'hard'), fs.constants.O_RDONLY)),
    'E_HARDLINK',
  );
  assert.equal(fs.readFileSync(join(d, 'target'), 'utf8'), 'keep');
  if (spawnSync('mkfifo', [join(d, 'fifo')]).status === 0) {
    // No reader: O_NONBLOCK makes a write-open fail at once (ENXIO) instead of blocking; a read-open is refused after
    // fstat.
    assert.equal(
      code(() => openAppendNoFollow(join(d, 'fifo'))),
      'E_NOT_REGULAR',
    );
    assert.equal(
      code(() => openNoFollow(join(d, 'fifo'), fs.constants.O_RDONLY)),
      'E_NOT_REGULAR',
    );
  }
  assert.equal(
    code(() => openAppendNoFollow(d)),
    'E_IO',
  );
});

test('createExclusive never writes through a planted name and replaces a stale one only when asked', () => {
  const d = dir();
  fs.writeFileSync(join(d, 'target'), 'keep');
  fs.symlinkSync(join(d, 'target'), join(d, 'tmp'));
  assert.equal(
    code(() => createExclusive(join(d, 'tmp'))),
    'E_IO',
  );
  const { fd } = createExclusive(join(d, 'tmp'), { replaceStale: true, mode: 0o400 });
  fs.writeSync(fd, 'new');
  fs.closeSync(fd);
  assert.equal(fs.readFileSync(join(d, 'target'), 'utf8'), 'keep');
  assert.equal(fs.lstatSync(join(d, 'tmp')).isFile(), true);
  assert.equal(fs.readFileSync(join(d, 'tmp'), 'utf8'), 'new');
  fs.mkdirSync(join(d, 'adir'));
  assert.equal(
    code(() => createExclusive(join(d, 'adir'), { replaceStale: true })),
    'E_NOT_REGULAR',
  );
  assert.equal(fs.statSync(join(d, 'adir')).isDirectory(), true, 'a directory is never removed');
});

test('checkDirSafe: real directory, allowed owner, not group/world-writable', () => {
  const d = dir();
  const me = process.geteuid?.() ?? 0;
  assert.equal(checkDirSafe(d, { owners: [me] }).isDirectory(), true);
  fs.symlinkSync(d, `${d}.link`);
  assert.equal(
    code(() => checkDirSafe(`${d}.link`, { owners: [me] })),
    'E_UNSAFE_DIR',
  );
  assert.equal(
    code(() => checkDirSafe(d, { owners: [me + 1] })),
    'E_UNSAFE_DIR',
  );
  fs.chmodSync(d, 0o770);
  assert.equal(
    code(() => checkDirSafe(d, { owners: [me] })),
    'E_UNSAFE_DIR',
  );
  fs.chmodSync(d, 0o1777);
  assert.equal(
    code(() => checkDirSafe(d, { owners: [me] })),
    'E_UNSAFE_DIR',
  );
  fs.chmodSync(d, 0o755);
  checkDirSafe(d, { owners: [me] });
  assert.equal(
    code(() => checkDirSafe(join(d, 'missing'), { owners: [me] })),
    'E_IO',
  );
});
