// Spawns the real auditmux daemon for end-to-end tests and waits for it to own the kernel connection.
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditClient } from '../../src/kernel/client';
import { controlRequest } from '../../src/daemon/control';
import { loadConfig } from '../../src/config';

export const repoRoot = join(__dirname, '..', '..', '..');
export const cliPath = join(repoRoot, 'bin', 'auditmux');

export interface RunningDaemon {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * auditmux.yaml in `dir` for a host daemon on the real kernel: rules in dir/host.rules, a RAW log in dir/log/audit.log,
 * unrouted events kept, the control socket (dir/control.sock unless given); `more` lines follow (daemons, routes).
 * `logFormat` names another log format; `keepUnrouted: false` leaves out `keep:` (the daemon's default).
 */
export function writeHostConfig(
  dir: string,
  o: { controlSocket?: string; more?: string[]; logFormat?: string; keepUnrouted?: boolean } = {},
): string {
  const conf = join(dir, 'auditmux.yaml');
  writeFileSync(
    conf,
    [
      'host:',
      '  kernel: { enabled: 1, backlog_limit: 8192, backlog_wait_time: 60000 }',
      `  rules: ${join(dir, 'host.rules')}`,
      `  log: { file: ${join(dir, 'log', 'audit.log')}, format: ${o.logFormat ?? 'RAW'}, max_log_file: 100 }`,
      ...(o.keepUnrouted === false ? [] : ['  keep: unrouted']),
      `  control_socket: ${o.controlSocket ?? join(dir, 'control.sock')}`,
      ...(o.more ?? []),
    ].join('\n') + '\n',
  );
  return conf;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `auditmux ARGS --config CONF` as its own process, this one blocked meanwhile (the daemon is another process). */
export function cliSync(conf: string, ...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [cliPath, ...args, '--config', conf], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 30000,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** `auditmux ARGS --config CONF` without blocking: a host daemon in this process answers it from this event loop. */
export function cli(conf: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath, ...args, '--config', conf],
      { encoding: 'utf8', timeout: 30000, maxBuffer: 1 << 28 },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({ status: typeof code === 'number' ? code : null, stdout, stderr });
      },
    );
  });
}

export async function kernelDaemonPid(): Promise<number> {
  const c = await AuditClient.open();
  try {
    return (await c.getStatus()).pid;
  } finally {
    c.close();
  }
}

/**
 * Starts `auditmux daemon --config FILE` and resolves once it is fully up: the kernel names it as the audit daemon
 * and its control socket answers (that happens last, after the rules are loaded and auditing is enabled).
 */
export async function startDaemon(configFile: string, timeoutMs = 15000): Promise<RunningDaemon> {
  const child = spawn(process.execPath, [cliPath, 'daemon', '--config', configFile, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode} before registering:\n${err}`);
    if ((await kernelDaemonPid()) === child.pid) {
      const ok = await controlRequest(loadConfig(configFile).host.controlSocket, 'status', {}, 2000).then(
        () => true,
        () => false,
      );
      if (ok) break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not register within ${timeoutMs} ms:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stderr: () => err, exited };
}

export async function stopDaemon(d: RunningDaemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (d.child.exitCode === null) d.child.kill(signal);
  return d.exited;
}

/** A tiny C program making N getppid() calls, `gapUs` microseconds apart: the audited workload. */
export function buildSyscallProgram(dir: string): string {
  const src = join(dir, 'amgetppid.c');
  const bin = join(dir, 'amgetppid');
  if (!existsSync(bin)) {
    writeFileSync(
      src,
      '#include <stdlib.h>\n#include <unistd.h>\n#include <sys/syscall.h>\n' +
        'int main(int c, char **v) { long n = atol(v[1]); long gap = c > 2 ? atol(v[2]) : 0;\n' +
        '  for (long i = 0; i < n; i++) { syscall(SYS_getppid); if (gap) usleep(gap); } return 0; }\n',
    );
    execFileSync('cc', ['-O2', '-o', bin, src]);
  }
  return bin;
}

/** Distinct serials of SYSCALL records carrying `key="KEY"` in an auditd-format log. */
export function syscallSerials(logText: string, key: string): Set<string> {
  const out = new Set<string>();
  for (const line of logText.split('\n')) {
    if (!line.includes('type=SYSCALL ') || !line.includes(`key="${key}"`)) continue;
    const m = /msg=audit\(\d+\.\d+:(\d+)\)/.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

/** `auditmux search --contid CONTID --raw` over `files`, which must succeed: its non-empty lines, sorted. */
export function searchContid(contid: string, ...files: string[]): string[] {
  const r = spawnSync(
    process.execPath,
    [cliPath, 'search', ...files.flatMap((f) => ['-if', f]), '--contid', contid, '--raw'],
    { encoding: 'latin1', maxBuffer: 1 << 26 },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l)
    .sort();
}

export function readText(p: string): string {
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}
