// The daemons under test: private configs, start until the kernel names them as the audit daemon, stop by SIGTERM.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { status } from './kernel';

export const repoRoot = resolve(__dirname, '..', '..');
export const auditmuxBin = join(repoRoot, 'bin', 'auditmux');

export interface DaemonSpec {
  /** As given on the command line: auditd-raw, auditmux-enriched, auditmux-raw-aux4, ... */
  name: string;
  /** creader: bench/creader.c, a minimal batched C reader writing RAW lines, the floor auditmux is measured against. */
  kind: 'auditd' | 'auditmux' | 'creader';
  format: 'RAW' | 'ENRICHED';
  /** Auxiliary auditmux daemons, with routes; 0 = host daemon only. */
  aux: number;
  /** How the auxiliary daemons run: written by the host process (inline) or each in a process of its own (`-proc`). */
  isolation: 'inline' | 'process';
  /**
   * `-nosync`: every log with `flush: none` (written once per batch, never synced), the work bench/creader.c does;
   * otherwise `incremental_async` with `freq: 50` as auditd's config here has (a write and an fsync every 50 records).
   */
  nosync: boolean;
  /**
   * `-tagged`: the generator gets a container ID (`auditmux contid set`) before its first call, so every event is a
   * container's: the tracker follows it, the events carry a CONTAINER_ID record, and the route to the last auxiliary
   * daemon names that ID. The cost of attribution on a container host.
   */
  tagged: boolean;
}

/** The container ID a `-tagged` measurement gives the generator (outside every route's range that must miss). */
export const BENCH_CONTID = '424242';

export function parseDaemon(name: string): DaemonSpec {
  // creader-sync: the C reader with the bench's flush promise too (an fsync on its own thread every 50 records).
  // -2logs: every batch written to a second file too (synced by the same thread with -sync), counted as an auxiliary
  // log: the floor for an auxiliary daemon that takes every event, to set -auxN against.
  const c = /^creader(-sync)?(-2logs)?$/.exec(name);
  if (c) {
    return {
      name,
      kind: 'creader',
      format: 'RAW',
      aux: c[2] ? 1 : 0,
      isolation: 'inline',
      nosync: !c[1],
      tagged: false,
    };
  }
  const m = /^(auditd|auditmux)-(raw|enriched)(?:-aux(\d+)(-proc)?)?(-nosync)?(-tagged)?$/.exec(name);
  if (!m || (m[1] === 'auditd' && (m[3] || m[5] || m[6]))) {
    throw new Error(
      `unknown daemon "${name}": creader[-sync][-2logs]|auditd-raw|auditd-enriched|auditmux-raw|auditmux-enriched[-auxN[-proc]][-nosync][-tagged]`,
    );
  }
  return {
    name,
    kind: m[1] as DaemonSpec['kind'],
    format: m[2]!.toUpperCase() as DaemonSpec['format'],
    aux: Number(m[3] ?? 0),
    isolation: m[4] ? 'process' : 'inline',
    nosync: Boolean(m[5]),
    tagged: Boolean(m[6]),
  };
}

export interface RunningDaemon {
  spec: DaemonSpec;
  child: ChildProcess;
  pid: number;
  /** The log whose events are counted. */
  logFile: string;
  /** Logs of auxiliary daemons, counted separately. */
  auxLogs: string[];
  output(): string;
  exited: Promise<number | string | null>;
}

export interface StartOptions {
  /** Directory for config and logs, private to one measurement. */
  dir: string;
  /** Start auditmux under `node --cpu-prof` writing profiles here. */
  cpuProfDir?: string;
  registerTimeoutMs?: number;
  /**
   * Resolves once the kernel names the new daemon, found by the caller (bench/startup.ts polls over its own netlink
   * socket): startDaemon then waits for it instead of running `auditctl -s` every 50 ms during a timed start.
   */
  registered?: Promise<unknown>;
  /** auditmux only: this config instead of auditmuxConf(spec) (bench/memory.ts routes every event to every daemon). */
  conf?: string;
}

/** Children the top-level script must be able to kill from a signal handler. */
export const liveChildren = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

export function auditdConf(dir: string, spec: DaemonSpec): string {
  // auditd's shipped defaults except where a benchmark must not stop or rotate, or start plugins.
  return [
    'local_events = yes',
    'write_logs = yes',
    `log_file = ${join(dir, 'log', 'audit.log')}`,
    'log_group = root',
    `log_format = ${spec.format}`,
    'flush = INCREMENTAL_ASYNC',
    'freq = 50',
    'max_log_file = 100000',
    'num_logs = 5',
    'priority_boost = 4',
    'name_format = NONE',
    'max_log_file_action = IGNORE',
    'space_left = 75',
    'space_left_action = IGNORE',
    'verify_email = no',
    'action_mail_acct = root',
    'admin_space_left = 50',
    'admin_space_left_action = IGNORE',
    'disk_full_action = IGNORE',
    'disk_error_action = IGNORE',
    'use_libwrap = no',
    'tcp_listen_queue = 5',
    'tcp_max_per_addr = 1',
    'tcp_client_max_idle = 0',
    'transport = TCP',
    'krb5_principal = auditd',
    'distribute_network = no',
    'q_depth = 2000',
    'overflow_action = SYSLOG',
    'max_restarts = 10',
    `plugin_dir = ${join(dir, 'plugins')}`,
    'end_of_event_timeout = 2',
    '',
  ].join('\n');
}

export function auditmuxConf(dir: string, spec: DaemonSpec): string {
  const log = (file: string): string =>
    `{ file: ${file}, format: ${spec.format}, flush: ${spec.nosync ? 'none' : 'incremental_async, freq: 50'}, max_log_file: 100000, max_log_file_action: ignore }`;
  const lines = [
    '# auditmux benchmark config, written by bench/daemons.ts',
    'version: 1',
    'host:',
    '  kernel: { enabled: 1, failure: 1, backlog_limit: 8192, backlog_wait_time: 0, rate_limit: 0 }',
    // The harness loads its rule itself once the daemon is up, the same way for every daemon.
    '  rules: ~',
    `  log: ${log(join(dir, 'log', 'audit.log'))}`,
    `  control_socket: ${join(dir, 'control.sock')}`,
    '  diagnostics: { level: warn }',
  ];
  if (spec.aux > 0) {
    const names = Array.from({ length: spec.aux }, (_, i) => `bench-${i}`);
    lines.push('daemons:');
    for (const n of names)
      lines.push(`  - { name: ${n}, log: ${log(join(dir, 'log', `${n}.log`))}, isolation: ${spec.isolation} }`);
    // Routes that miss come first so every event pays for walking the table; the last one sends the bench events
    // (no container ID, or with -tagged the generator's) to one auxiliary daemon, while the host keeps everything.
    lines.push('routes:');
    names
      .slice(0, -1)
      .forEach((n, i) => lines.push(`  - { contid: "${(i + 1) * 100}-${(i + 1) * 100 + 99}", daemons: [${n}] }`));
    const contid = spec.tagged ? `"${BENCH_CONTID}"` : 'unset';
    lines.push(`  - { contid: ${contid}, keys: [ambench], daemons: [${names[names.length - 1]}] }`);
  }
  return lines.join('\n') + '\n';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** bench/creader.c, compiled once per harness run (into the first measurement's directory, kept with its files). */
let creaderBin: string | null = null;
function creaderBinary(dir: string): string {
  if (creaderBin === null || !existsSync(creaderBin)) {
    const bin = join(dir, 'creader');
    execFileSync('cc', ['-O2', '-Wall', '-pthread', '-o', bin, join(repoRoot, 'bench', 'creader.c')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    creaderBin = bin;
  }
  return creaderBin;
}

/**
 * Daemons run with the environment a systemd unit gives them, not the harness's: a shell's variables can change what
 * a process does at start (NODE_EXTRA_CA_CERTS alone makes Node parse a whole CA bundle, ~35 ms here).
 */
const daemonEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

export async function startDaemon(spec: DaemonSpec, opts: StartOptions): Promise<RunningDaemon> {
  const { dir } = opts;
  mkdirSync(join(dir, 'log'), { recursive: true });
  mkdirSync(join(dir, 'plugins'), { recursive: true });
  let child: ChildProcess;
  const auxLogs: string[] = [];
  if (spec.kind === 'creader') {
    const bin = creaderBinary(dir);
    // auditmux's default receive_buffer, so both ride out the same bursts.
    const freq = spec.nosync ? '0' : '50';
    if (spec.aux) auxLogs.push(join(dir, 'log', 'second.log'));
    // At nice -4, where auditd and auditmux put themselves (priority_boost 4): the same scheduling for the floor.
    // nice(1) execs the reader, so the pid held is the reader's.
    child = spawn('nice', ['-n', '-4', bin, join(dir, 'log', 'audit.log'), String(8 * 1024 * 1024), freq, ...auxLogs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: daemonEnv,
    });
  } else if (spec.kind === 'auditd') {
    const conf = join(dir, 'auditd.conf');
    writeFileSync(conf, auditdConf(dir, spec));
    // auditd refuses a config that others can write or read.
    chmodSync(conf, 0o640);
    // -n: no fork, so the pid we hold is the daemon. Not -f: in the foreground auditd writes events to stderr
    // instead of its log file.
    child = spawn('auditd', ['-n', '-s', 'enable', '-c', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: daemonEnv,
    });
  } else {
    if (!existsSync(auditmuxBin)) throw new Error(`${auditmuxBin} does not exist`);
    const conf = join(dir, 'auditmux.yaml');
    writeFileSync(conf, opts.conf ?? auditmuxConf(dir, spec));
    for (let i = 0; i < spec.aux; i++) auxLogs.push(join(dir, 'log', `bench-${i}.log`));
    // The V8 flags bin/auditmux's #! line gives node, so the daemon runs as installed.
    const binFlags = readFileSync(auditmuxBin, 'utf8')
      .split('\n', 1)[0]!
      .split(/\s+/)
      .filter((f) => f.startsWith('--'));
    // 250 µs samples: the default 1 ms sees too few of a lightly loaded daemon's short wake-ups.
    const prof = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, '--cpu-prof-interval=250'] : [];
    // BENCH_NODE_FLAGS (the harness's environment): extra node flags for a look inside, e.g. --perf-basic-prof.
    const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f.startsWith('--'));
    const nodeArgs = [...binFlags, ...prof, ...extra];
    child = spawn(process.execPath, [...nodeArgs, auditmuxBin, 'daemon', '--config', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: daemonEnv,
    });
  }
  // Detached: a Ctrl-C on the terminal reaches only the harness, which then stops the daemon in order.
  track(child);
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString('utf8');
    if (out.length > 65536) out = out.slice(-32768);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | string | null>((res) => child.once('exit', (code, sig) => res(code ?? sig)));
  const d: RunningDaemon = {
    spec,
    child,
    pid: child.pid!,
    logFile: join(dir, 'log', 'audit.log'),
    auxLogs,
    output: () => out,
    exited,
  };

  if (opts.registered) {
    const gone = new Promise<never>((_, reject) =>
      child.once('exit', () => reject(new Error(`${spec.name} exited before registering:\n${out}`))),
    );
    gone.catch(() => undefined);
    await Promise.race([opts.registered, gone]);
    return d;
  }
  const deadline = Date.now() + (opts.registerTimeoutMs ?? 20000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      // 'exit' can come before the last output has been read; 'close' comes after.
      await Promise.race([new Promise((r) => child.once('close', r)), sleep(2000)]);
      throw new Error(`${spec.name} exited (${child.exitCode ?? child.signalCode}) before registering:\n${out}`);
    }
    if ((await status()).pid === child.pid) return d;
    if (Date.now() > deadline) {
      await stopDaemon(d, 2000);
      throw new Error(
        `${spec.name} did not register with the kernel within ${opts.registerTimeoutMs ?? 20000} ms:\n${out}`,
      );
    }
    await sleep(50);
  }
}

/** SIGTERM, then SIGKILL after timeoutMs; resolves with the exit code or signal. */
export async function stopDaemon(d: RunningDaemon, timeoutMs = 15000): Promise<number | string | null> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return d.exited;
  d.child.kill('SIGTERM');
  const timer = setTimeout(() => d.child.kill('SIGKILL'), timeoutMs);
  try {
    return await d.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** True when pid has exited (a zombie counts: it no longer runs and holds no socket). */
export function isGone(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}
