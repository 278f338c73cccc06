// disk actions single and halt run `/sbin/init 1|0` through DiskSpaceGuard, in a mount namespace where init is a
// recorder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { isRoot, tmpDir, which } from '../helpers/peers';

const INIT = '/sbin/init';
const skip = !isRoot()
  ? 'needs root: a private mount namespace, a bind mount over /sbin/init and a tmpfs'
  : !which('unshare')
    ? 'unshare (util-linux) is not installed'
    : !fs.existsSync(INIT)
      ? `${INIT} does not exist: nothing to bind the recorder over`
      : false;

const DIST_OUTPUT = path.join(__dirname, '..', '..', 'src', 'output');

/**
 * Runs in the namespace: refuses to go on unless /sbin/init is the recorder, then fills a tiny tmpfs through the real
 * LogWriter + DiskSpaceGuard until the configured level fires, and waits for the recorder's file.
 */
const CHILD = `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const [,, distOutput, recorder, marker, recorded, logDir, which] = process.argv;
const done = (o) => { process.stdout.write(JSON.stringify(o)); process.exit(o.ok ? 0 : 2); };
// Belt and braces on top of the shell's &&: /sbin/init (after symlinks) must be the recorder's very inode.
const a = fs.statSync('${INIT}');
const b = fs.statSync(recorder);
if (a.dev !== b.dev || a.ino !== b.ino || !fs.readFileSync('${INIT}', 'utf8').includes(marker)) done({ ok: false, why: '${INIT} is not the recorder; refusing to run the action' });
const { LogWriter } = require(path.join(distOutput, 'logfile.js'));
const { DiskSpaceGuard } = require(path.join(distOutput, 'diskspace.js'));
const { defaultDiskSpace } = require(path.join(distOutput, '..', 'config', 'schema.js'));
const diag = [];
const d = (level) => (o, m) => diag.push({ level, m, action: o && o.action });
const log = path.join(logDir, 'audit.log');
const cfg = which === 'single'
  // single: only a full disk acts (thresholds far below what is left until then)
  ? { ...defaultDiskSpace(), spaceLeft: { value: 1, unit: 'MiB' }, spaceLeftAction: 'ignore', adminSpaceLeft: { value: 0, unit: 'MiB' }, adminSpaceLeftAction: 'ignore', diskFullAction: 'single', diskErrorAction: 'ignore' }
  // halt: admin_space_left at 25 % of the file system
  : { ...defaultDiskSpace(), spaceLeft: { value: 50, unit: '%' }, spaceLeftAction: 'ignore', adminSpaceLeft: { value: 25, unit: '%' }, adminSpaceLeftAction: 'halt', diskFullAction: 'ignore', diskErrorAction: 'ignore' };
let guard;
const w = new LogWriter({ path: log, format: 'RAW', flush: 'none', maxLogFileMiB: 0, bufferBytes: 16 * 1024, onError: (e) => guard.onWriteError(e.code) });
guard = new DiskSpaceGuard(log, cfg, w, { info: d('info'), warn: d('warn'), error: d('error') }, 2);
w.open();
let i = 0;
for (; i < 20000 && guard.lastAction !== which; i++) {
  w.writeRecord(1005, Buffer.from('audit(1700000000.000:' + (i + 1) + '): pid=1 uid=0 msg=\\'op=test seq=' + i + ' pad=' + 'p'.repeat(200) + '\\''));
  if (i % 10 === 9) { w.flush(); guard.afterFlush(); }
}
const st = fs.statfsSync(logDir);
const report = { which, records: i, lastAction: guard.lastAction, lastLevel: guard.lastLevel, actions: guard.counters.actions, freeBytes: st.bavail * st.bsize, totalBytes: st.blocks * st.bsize, diag };
const end = Date.now() + 10000;
const poll = () => {
  if (fs.existsSync(recorded)) {
    // A little longer: a second run of the action would show up as a second line.
    setTimeout(() => { w.close(); done({ ok: true, ...report, recorded: fs.readFileSync(recorded, 'utf8') }); }, 500);
  } else if (Date.now() > end) done({ ok: false, why: 'the recorder never ran', ...report });
  else setTimeout(poll, 20);
};
poll();
`;

async function runInNamespace(
  which: 'single' | 'halt',
): Promise<{ code: number | null; out: Record<string, unknown>; stderr: string }> {
  const dir = tmpDir(`admin-${which}`);
  try {
    const marker = `auditmux-init-recorder-${process.pid}-${Date.now()}`;
    const recorded = path.join(dir, 'init.argv');
    const recorder = path.join(dir, 'init-recorder.sh');
    // Appends one line per run: its arguments.
    fs.writeFileSync(recorder, `#!/bin/sh\n# ${marker}\necho "$*" >> '${recorded}'\n`, { mode: 0o755 });
    const child = path.join(dir, 'child.js');
    fs.writeFileSync(child, CHILD);
    const logDir = path.join(dir, 'log');
    fs.mkdirSync(logDir);
    // `&&` all the way: node, and so the action, starts only once init is the recorder and the log is on the tmpfs.
    // Both mounts live and die with the private namespace: nothing outside sees them, nothing needs unmounting.
    const script =
      'mount --bind "$1" /sbin/init && mount -t tmpfs -o size=256k,mode=0700 auditmux-admin "$2" && exec "$3" "$4" "$5" "$1" "$6" "$7" "$2" "$8"';
    const c = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        recorder,
        logDir,
        process.execPath,
        child,
        DIST_OUTPUT,
        marker,
        recorded,
        which,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = setTimeout(() => c.kill('SIGKILL'), 30000);
    const code = await new Promise<number | null>((r) => c.on('close', (x) => r(x)));
    clearTimeout(kill);
    let out: Record<string, unknown> = {};
    try {
      out = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      // reported below with stderr
    }
    return { code, out, stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('disk_full_action single: a full disk runs /sbin/init 1, once', { skip, timeout: 60000 }, async () => {
  const r = await runInNamespace('single');
  assert.equal(r.code, 0, `child failed: ${JSON.stringify(r.out)} ${r.stderr}`);
  assert.equal(r.out.lastLevel, 'disk_full');
  assert.equal(r.out.lastAction, 'single');
  assert.equal(r.out.recorded, '1\n', 'init got argv ["1"], exactly one run');
  assert.ok((r.out.freeBytes as number) < 5 * 4096, `the tmpfs was really full: ${String(r.out.freeBytes)} bytes free`);
  const diag = r.out.diag as { level: string; m: string; action?: string }[];
  assert.ok(
    diag.some((l) => l.level === 'error' && l.m === 'The audit daemon is now changing the system to single user mode'),
    JSON.stringify(diag),
  );
  assert.ok(!diag.some((l) => String(l.m).includes('failed to start')), JSON.stringify(diag));
});

test(
  'admin_space_left_action halt: crossing admin_space_left runs /sbin/init 0, once',
  { skip, timeout: 60000 },
  async () => {
    const r = await runInNamespace('halt');
    assert.equal(r.code, 0, `child failed: ${JSON.stringify(r.out)} ${r.stderr}`);
    assert.equal(r.out.lastLevel, 'admin_space_left');
    assert.equal(r.out.lastAction, 'halt');
    assert.equal(r.out.recorded, '0\n', 'init got argv ["0"], exactly one run');
    const free = r.out.freeBytes as number;
    const total = r.out.totalBytes as number;
    assert.ok(free < total / 4 && free > 5 * 4096, `below admin_space_left (25%), not full: ${free} of ${total}`);
    const diag = r.out.diag as { level: string; m: string; action?: string }[];
    assert.ok(
      diag.some((l) => l.level === 'error' && l.m === 'The audit daemon is now halting the system'),
      JSON.stringify(diag),
    );
    assert.ok(!diag.some((l) => String(l.m).includes('failed to start')), JSON.stringify(diag));
  },
);
