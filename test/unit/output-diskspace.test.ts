// auditd disk-space actions on a real small file system (tmpfs, size=) with the real LogWriter: never a crash, losses
// counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { LogWriter, type LogWriterOptions } from '../../src/output/logfile';
import { DiskSpaceGuard, checkDiskSpace, newDiskSpaceState } from '../../src/output/diskspace';
import {
  defaultDiskSpace,
  type AdminSpaceLeftAction,
  type DiskSpaceConfig,
  type SpaceLeftAction,
  type SpaceThreshold,
} from '../../src/config/schema';
import { captureDiag, isRoot, payload, tmpDir } from '../helpers/peers';

const skip = !isRoot() ? 'needs root to mount a tmpfs' : false;

function withTmpfs(sizeKiB: number, fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = tmpDir('disk');
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'auditmux-test', dir]);
  if (m.status !== 0) throw new Error(`mount: ${m.stderr}`);
  return (async () => {
    try {
      await fn(dir);
    } finally {
      // lazy unmount as a fallback: a writer left open by a failed assertion must not leave the mount behind
      if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })();
}

const pct = (value: number): SpaceThreshold => ({ value, unit: '%' });
const mib = (value: number): SpaceThreshold => ({ value, unit: 'MiB' });

/**
 * The default disk-space config with space_left as [threshold, action] and admin_space_left as [threshold, action]
 * (the default action when left out); `over` sets the rest.
 */
function cfg(
  [spaceLeft, spaceLeftAction]: [SpaceThreshold, SpaceLeftAction],
  [adminSpaceLeft, adminSpaceLeftAction]: [SpaceThreshold, AdminSpaceLeftAction?],
  over: Partial<DiskSpaceConfig> = {},
): DiskSpaceConfig {
  const d = defaultDiskSpace();
  return {
    ...d,
    spaceLeft,
    spaceLeftAction,
    adminSpaceLeft,
    adminSpaceLeftAction: adminSpaceLeftAction ?? d.adminSpaceLeftAction,
    ...over,
  };
}

/**
 * A RAW LogWriter on dir/audit.log with a DiskSpaceGuard as its error handler, wired as the daemon wires them, opened;
 * `writer` overrides the writer's options (the guard always owns onError).
 */
function guardedLog(dir: string, dcfg: DiskSpaceConfig, writer: Partial<LogWriterOptions> = {}) {
  const diag = captureDiag();
  const log = path.join(dir, 'audit.log');
  const w = new LogWriter({
    path: log,
    format: 'RAW',
    flush: 'none',
    maxLogFileMiB: 0,
    bufferBytes: 64 * 1024,
    ...writer,
    onError: (e) => guard.onWriteError(e.code),
  });
  const guard = new DiskSpaceGuard(log, dcfg, w, diag, 2);
  w.open();
  return { diag, log, w, guard };
}

function fill(w: LogWriter, guard: DiskSpaceGuard, n: number): void {
  for (let i = 0; i < n; i++) {
    w.writeRecord(1005, payload(i, ' pad=' + 'p'.repeat(200)));
    if (i % 20 === 19) {
      w.flush();
      guard.afterFlush();
    }
  }
  w.flush();
  guard.afterFlush();
}

test(
  'space_left syslog and admin_space_left suspend on a 1 MiB tmpfs; suspended records are counted lost',
  { skip },
  async () => {
    await withTmpfs(1024, (dir) => {
      const { diag, w, guard } = guardedLog(dir, cfg([pct(50), 'syslog'], [pct(25), 'suspend']));
      fill(w, guard, 5000);
      assert.ok(
        diag.lines.some((l) => l.level === 'warn' && String(l.m).includes('low on disk space')),
        'space_left syslog',
      );
      assert.ok(
        diag.lines.some((l) => l.level === 'error' && String(l.m).includes('suspending')),
        'admin_space_left suspend',
      );
      assert.equal(w.isSuspended, true);
      assert.ok(w.counters.lost > 0, 'records past the action are counted lost');
      assert.equal(w.counters.records + w.counters.lost >= 5000, true);
      w.close();
    });
  },
);

test(
  'disk_full rotate keeps logging; disk_full ignore on ENOSPC never throws and counts losses',
  { skip },
  async () => {
    await withTmpfs(512, (dir) => {
      // thresholds at 0 so only a full disk acts
      const { w, guard } = guardedLog(
        dir,
        cfg([mib(1), 'ignore'], [mib(0), 'ignore'], { diskFullAction: 'ignore', diskErrorAction: 'syslog' }),
      );
      assert.doesNotThrow(() => fill(w, guard, 6000));
      assert.ok(w.counters.lost > 0);
      assert.equal(guard.lastLevel, 'disk_full');
      w.close();
    });
    await withTmpfs(512, (dir) => {
      const { log, w, guard } = guardedLog(dir, cfg([pct(20), 'rotate'], [pct(1), 'ignore']), {
        numLogs: 2,
        bufferBytes: 16 * 1024,
      });
      fill(w, guard, 1450);
      assert.ok(w.counters.rotations > 0, 'rotate ran');
      assert.ok(fs.existsSync(`${log}.1`));
      w.close();
    });
  },
);

test('checkDiskSpace: percentages, once-only actions, syslog re-arms', { skip }, async () => {
  await withTmpfs(1024, (dir) => {
    const st = newDiskSpaceState();
    const c = cfg([pct(90), 'exec'], [pct(1)], { spaceLeftExe: '/bin/true' });
    fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(300 * 1024));
    const a = checkDiskSpace(dir, c, st);
    assert.equal(a.level, 'space_left');
    assert.equal(a.action, 'exec');
    assert.equal(a.exe, '/bin/true');
    assert.equal(checkDiskSpace(dir, c, st).action, 'none', 'fires once');
    const s2 = newDiskSpaceState();
    const c2 = cfg([pct(90), 'syslog'], [pct(1)]);
    assert.equal(checkDiskSpace(dir, c2, s2).action, 'syslog');
    fs.rmSync(path.join(dir, 'big'));
    assert.equal(checkDiskSpace(dir, c2, s2).level, 'ok');
    fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(300 * 1024));
    assert.equal(checkDiskSpace(dir, c2, s2).action, 'syslog', 're-armed after space came back');
  });
});
