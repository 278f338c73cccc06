// The load generator (bench/loadgen.c): built static, run at a paced rate, and the one audit rule that keys its calls.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, track } from './daemons';

/** The key of the bench rule: the events every bench counts. */
export const KEY = 'ambench';

export function buildLoadgen(dir: string): string {
  const out = join(dir, 'loadgen');
  const src = join(repoRoot, 'bench', 'loadgen.c');
  // Static: the dynamic loader's own openat calls (ld.so.cache, libc) would be audited events nobody asked for.
  try {
    execFileSync('cc', ['-O2', '-Wall', '-static', '-o', out, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    process.stderr.write('bench: static link failed (no libc.a?); open mode will count ~2 loader events as extra\n');
    execFileSync('cc', ['-O2', '-Wall', '-o', out, src], { stdio: 'inherit' });
  }
  return out;
}

export interface GenResult {
  calls: number;
  elapsed: number;
  rate: number;
  cpu: number;
}

/**
 * Runs the generator to its end. `before(pid)`: done to the generator's process before its first call (it waits for a
 * byte on stdin meanwhile), e.g. giving it a container ID.
 */
export async function runLoadgen(
  bin: string,
  mode: string,
  rate: number,
  duration: number,
  cwd: string,
  before?: (pid: number) => Promise<void>,
): Promise<GenResult> {
  const child = track(
    spawn(bin, [mode, String(rate), String(duration), 'target'], {
      cwd,
      stdio: [before ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
      ...(before ? { env: { ...process.env, LOADGEN_WAIT_STDIN: '1' } } : {}),
    }),
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  if (before) {
    try {
      await before(child.pid!);
    } catch (e) {
      // End of input without the start byte: the generator exits without a call.
      child.stdin!.end();
      await exited;
      throw e;
    }
    child.stdin!.end(Buffer.from('g'));
  }
  const code = await exited;
  if (code !== 0) throw new Error(`loadgen exited ${code}: ${err}`);
  return JSON.parse(out) as GenResult;
}

/** auditctl arguments adding the bench rule for the generator's calls (getppid, or openat in open mode). */
export function ruleArgs(mode: string, gen: string): string[] {
  return [
    '-a',
    'always,exit',
    '-F',
    'arch=b64',
    '-S',
    mode === 'open' ? 'openat' : 'getppid',
    '-F',
    `exe=${gen}`,
    '-k',
    KEY,
  ];
}
