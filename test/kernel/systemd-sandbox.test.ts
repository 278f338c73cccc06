// The unit's SystemCallFilter without systemd as PID 1: every syscall the daemon, an aux process, a plugin make is
// allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { cliPath, kernelDaemonPid, repoRoot, tempDir } from '../helpers/daemon';
import { controlRequest } from '../../src/daemon/control';
import { snapshotKernel } from '../helpers/kernel';

const unitText = fs.readFileSync(join(repoRoot, 'systemd', 'auditmux.service'), 'utf8');
const tools = ['strace', 'systemd-analyze'].filter((t) => spawnSync(t, ['--version']).status !== 0);
const skip =
  process.geteuid?.() !== 0
    ? 'needs root (the kernel audit daemon)'
    : tools.length > 0
      ? `missing ${tools.join(', ')}`
      : undefined;

/** The system calls a SystemCallFilter= allow list permits, groups expanded as systemd-analyze lists them. */
function allowed(filter: string[]): Set<string> {
  const out = new Set<string>();
  const seen = new Set<string>();
  const add = (item: string): void => {
    if (!item.startsWith('@')) return void out.add(item);
    if (seen.has(item)) return;
    seen.add(item);
    const r = spawnSync('systemd-analyze', ['syscall-filter', '--no-pager', item], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const l of r.stdout.split('\n').slice(1)) {
      const t = l.trim();
      if (t && !t.startsWith('#')) add(t);
    }
  };
  for (const f of filter) add(f);
  return out;
}

test(
  'the daemon with a plugin and an aux process as nobody makes only syscalls the unit allows',
  { skip, timeout: 120000 },
  async () => {
    // No audit daemon may be running: a dead one's registration is dropped, a live one fails the test, named.
    await snapshotKernel();
    const filter = unitText
      .split('\n')
      .filter((l) => l.startsWith('SystemCallFilter='))
      .flatMap((l) => l.slice(17).split(/\s+/))
      .filter(Boolean);
    assert.equal(filter[0], '@system-service');
    const ok = allowed(filter);
    const dir = tempDir('amsandbox-');
    fs.chmodSync(dir, 0o755);
    const plugin = join(dir, 'plugin.sh');
    fs.writeFileSync(plugin, '#!/bin/sh\nexec /bin/cat > "$1"\n', { mode: 0o755 });
    fs.writeFileSync(join(dir, 'host.rules'), '-a always,exit -F arch=b64 -S getppid -F key=amsandbox\n', {
      mode: 0o644,
    });
    const cfg = join(dir, 'auditmux.yaml');
    fs.writeFileSync(
      cfg,
      [
        'host:',
        `  rules: ${dir}/host.rules`,
        `  log: { file: ${dir}/host/audit.log, format: ENRICHED }`,
        `  control_socket: ${dir}/control.sock`,
        `  outputs: [{ type: plugin, name: p, path: ${plugin}, args: [${dir}/plugin.out], spool: { dir: ${dir}/spool } }]`,
        'daemons:',
        `  - { name: a, user: nobody, isolation: process, log: { file: ${dir}/a/a.log } }`,
        'routes:',
        '  - { contid: "100", daemons: [a] }',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    const summary = join(dir, 'strace.txt');
    // At the unit's Nice=, as systemd starts it: the default priority_boost must then need no setpriority (which
    // the filter refuses).
    const nice = /^Nice=(-?\d+)$/m.exec(unitText);
    assert.ok(nice, 'the unit sets Nice=');
    const child = spawn(
      'nice',
      [
        '-n',
        nice[1]!,
        'strace',
        '-f',
        '-c',
        '-o',
        summary,
        process.execPath,
        cliPath,
        'daemon',
        '--config',
        cfg,
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (err += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      let up = false;
      for (let i = 0; i < 600 && !up && child.exitCode === null; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const pid = await kernelDaemonPid();
        const rows = pid
          ? ((await controlRequest(join(dir, 'control.sock'), 'aux-list', {}, 2000).catch(() => [])) as Array<
              Record<string, unknown>
            >)
          : [];
        up = rows.some((r) => r.state === 'running') && fs.existsSync(join(dir, 'plugin.out'));
      }
      assert.ok(up, `daemon, aux process and plugin up:\n${err}`);
      // Work for every part: audited syscalls reach the host log and the plugin; a status request.
      spawnSync('/bin/true');
      await controlRequest(join(dir, 'control.sock'), 'status', {}, 2000);
    } finally {
      const pid = await kernelDaemonPid();
      if (pid > 0) process.kill(pid, 'SIGTERM');
      await exited;
      assert.equal(await kernelDaemonPid(), 0, 'the daemon unregistered');
    }
    const used = fs
      .readFileSync(summary, 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(
        (f) =>
          f.length >= 5 && /^[0-9.]+$/.test(f[0] ?? '') && /^[a-z_0-9]+$/.test(f.at(-1) ?? '') && f.at(-1) !== 'total',
      )
      .map((f) => f.at(-1) as string);
    assert.ok(
      used.includes('setuid') || used.includes('setresuid'),
      `the aux process dropped privileges: ${used.join(' ')}`,
    );
    assert.ok(used.includes('execve'), 'the plugin was started');
    const outside = used.filter((s) => !ok.has(s)).sort();
    assert.deepEqual(outside, [], `syscalls outside SystemCallFilter=${filter.join(' ')}`);
    fs.rmSync(dir, { recursive: true, force: true });
  },
);
