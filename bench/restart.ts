// Benchmark: events lost when the audit daemon is killed -9 under a paced load and restarted at once by its
// supervisor; auditd, auditmux restarted plainly, and auditmux with systemd's file descriptor store (same run).
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeSection } from './doc-section';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { auditdConf, auditmuxBin, auditmuxConf, liveChildren, parseDaemon, repoRoot, track } from './daemons';
import { auditctl, KernelGuard } from './kernel';
import { countEvents } from './logcount';
import { AuditClient, processAlive } from '../src/kernel/client';
import { fdStoreSupervisor, type FdStoreSupervisor, type StartSpec } from '../test/helpers/fd-store';
import { median } from './report';

const KEY = 'amrestart';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Variant = 'auditd' | 'auditmux' | 'auditmux-fdstore';

interface Result {
  variant: Variant;
  made: number;
  logged: number;
  /** The kernel's lost counter over the run (records it dropped and counted). */
  lost: number;
}

/** A unit's environment, as bench/daemons.ts gives daemons. */
const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

function spec(variant: Variant, dir: string): StartSpec {
  const log = join(dir, 'daemon.out');
  if (variant === 'auditd') {
    const conf = join(dir, 'auditd.conf');
    writeFileSync(conf, auditdConf(dir, parseDaemon('auditd-raw')));
    chmodSync(conf, 0o640);
    return { argv: ['/usr/sbin/auditd', '-n', '-s', 'enable', '-c', dir], env, log, notify: false, restart: true };
  }
  const conf = join(dir, 'auditmux.yaml');
  writeFileSync(conf, auditmuxConf(dir, parseDaemon('auditmux-raw')));
  const flags = readFileSync(auditmuxBin, 'utf8')
    .split('\n', 1)[0]!
    .split(/\s+/)
    .filter((f) => f.startsWith('--'));
  return {
    argv: [process.execPath, ...flags, auditmuxBin, 'daemon', '--config', conf],
    env,
    log,
    notify: variant === 'auditmux-fdstore',
    restart: true,
  };
}

async function kernelPid(c: AuditClient): Promise<number> {
  return (await c.getStatus()).pid;
}

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function settledCount(file: string): Promise<number> {
  let last = -1;
  for (let quiet = 0; quiet < 4;) {
    await sleep(250);
    const n = existsSync(file) ? (await countEvents(file, KEY)).events : 0;
    quiet = n === last ? quiet + 1 : 0;
    last = n;
  }
  return last;
}

async function oneRun(
  variant: Variant,
  dir: string,
  gen: string,
  c: AuditClient,
  o: { rate: number; seconds: number; killAt: number; settleMs: number },
): Promise<Result> {
  mkdirSync(join(dir, 'log'), { recursive: true });
  mkdirSync(join(dir, 'plugins'), { recursive: true });
  const sup: FdStoreSupervisor = await fdStoreSupervisor(join(dir, 'notify.sock'));
  const started = (): number[] => sup.reports.flatMap((r) => (r.started ? [r.started] : []));
  try {
    sup.start(spec(variant, dir));
    const first = (await sup.waitFor((r) => r.started !== undefined)).started!;
    await waitFor(`${variant} to register`, async () => (await kernelPid(c)) === first);
    if (variant === 'auditmux-fdstore') await sup.waitFor((r) => (r.stored ?? 0) > 0);
    // Fully started (rules, log, outputs) before the load: the kill, not the first start, is what is measured.
    await sleep(o.settleMs);
    await auditctl('-a', 'always,exit', '-F', 'arch=b64', '-S', 'getppid', '-F', `exe=${gen}`, '-k', KEY);
    await c.resetLost();
    const load = track(
      spawn(gen, ['getppid', String(o.rate), String(o.seconds)], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    let out = '';
    load.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const loadDone = new Promise<void>((r) => load.once('exit', () => r()));
    await sleep(o.killAt * 1000);
    const from = sup.reports.length;
    process.kill(first, 'SIGKILL');
    await sup.waitFor((r) => r.started !== undefined, 20000, from);
    await loadDone;
    const made = (JSON.parse(out) as { calls: number }).calls;
    const logged = await settledCount(join(dir, 'log', 'audit.log'));
    const lost = (await c.getStatus()).lost;
    return { variant, made, logged, lost };
  } finally {
    await auditctl('-D').catch(() => '');
    await sup.close();
    for (const p of started()) {
      try {
        process.kill(p, 'SIGTERM');
      } catch {
        // gone
      }
    }
    for (let i = 0; i < 200 && started().some((p) => processAlive(p)); i++) await sleep(25);
    for (const p of started()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    // An adopted registration names a dead pid until its socket is closed and the kernel notices: make it notice.
    const st = await c.getStatus();
    if (st.pid !== 0 && !processAlive(st.pid)) {
      await c.setStatus({ pid: process.pid }).catch(() => undefined);
      await c.setStatus({ pid: 0 }).catch(() => undefined);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string', default: '3' },
      rate: { type: 'string', default: '20000' },
      seconds: { type: 'string', default: '4' },
      'kill-at': { type: 'string', default: '1.5' },
      variants: { type: 'string', default: 'auditd,auditmux,auditmux-fdstore' },
      doc: { type: 'string', default: join(repoRoot, 'docs', 'benchmarks-startup.md') },
    },
  });
  const reps = Math.max(1, Number(values.reps));
  const o = {
    rate: Number(values.rate),
    seconds: Number(values.seconds),
    killAt: Number(values['kill-at']),
    settleMs: 2000,
  };
  const variants = values.variants.split(',').map((v) => v.trim() as Variant);
  const guard = KernelGuard.take();
  const root = mkdtempSync(join(tmpdir(), 'auditmux-restart-'));
  const gen = join(root, 'loadgen');
  execFileSync('cc', ['-O2', '-Wall', '-static', '-o', gen, join(repoRoot, 'bench', 'loadgen.c')]);
  const c = await AuditClient.open();
  const restore = (): void => {
    for (const ch of liveChildren) ch.kill('SIGKILL');
    for (const p of guard.restoreSync()) process.stderr.write(`bench: restore: ${p}\n`);
  };
  process.once('SIGINT', () => {
    restore();
    process.exit(130);
  });
  const results: Result[] = [];
  try {
    for (let i = 0; i < reps; i++) {
      for (const v of variants) {
        const r = await oneRun(v, join(root, `${v}-${i}`), gen, c, o);
        results.push(r);
        process.stderr.write(
          `bench: ${v} run ${i + 1}: made ${r.made}, logged ${r.logged}, missing ${r.made - r.logged}, lost ${r.lost}\n`,
        );
      }
    }
  } finally {
    c.close();
    restore();
    rmSync(root, { recursive: true, force: true });
  }
  const lines = [
    '## Kill -9 and restart under load',
    '',
    'Generated by `node dist/bench/restart.js` (part of `npm run bench`); do not edit by hand. The daemon (RAW log) is',
    `killed -9 ${o.killAt} s into a ${o.rate} ev/s getppid load of ${o.seconds} s and restarted at once by a supervisor`,
    '(test/helpers/fd-store.ts, playing systemd; `auditmux-fdstore` gets its stored socket back as fd 3). Events made',
    "are the load generator's calls; missing = made - distinct events in the log; lost = the kernel's lost counter.",
    `${reps} runs each, taking turns, ${new Date().toISOString()}, load average ${loadavg()[0]!.toFixed(1)} at the end.`,
    '',
    '| daemon | made (median) | missing median | min | max | kernel lost median |',
    '|---|---|---|---|---|---|',
  ];
  for (const v of variants) {
    const rs = results.filter((r) => r.variant === v);
    const miss = rs.map((r) => r.made - r.logged);
    lines.push(
      `| ${v} | ${median(rs.map((r) => r.made))} | ${median(miss)} | ${Math.min(...miss)} | ${Math.max(...miss)} | ` +
        `${median(rs.map((r) => r.lost))} |`,
    );
  }
  const text = lines.join('\n') + '\n';
  process.stdout.write(text);
  if (values.doc !== '-') writeSection(resolve(values.doc), 'restart', text);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
