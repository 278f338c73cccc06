// Real nats-server processes and fleet fixtures for tests: loopback only, temp dirs, free ports; all stopped after.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsOutputSpec } from '../../src/config/schema';
import { MsgType } from '../../src/kernel/constants';
import { Collector } from '../../src/collect/collector';
import { parseCollectConfig } from '../../src/collect/config';
import { LogWriter } from '../../src/output/logfile';
import { NatsOutput } from '../../src/output/nats/output';
import { freePort } from './peers';
import { cliPath } from './daemon';

export const NATS_SERVER = '/usr/sbin/nats-server';

// One free-port finder for every helper; its users import it from here too.
export { freePort };

async function waitPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok && /Server is ready/.test(log())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server did not start on ${port}: ${log()}`);
}

export interface NatsServerOptions {
  /** Extra lines of a config file (authorization, cluster). */
  conf?: string;
  name?: string;
  port?: number;
  storeDir?: string;
}

/** One nats-server with JetStream; restart() keeps its port and store, as a real server restart does. */
export class NatsServer {
  readonly port: number;
  readonly storeDir: string;
  private child: ChildProcess | null = null;
  private out = '';
  private readonly confFile: string;
  private readonly ownsStore: boolean;

  private constructor(port: number, opts: NatsServerOptions) {
    this.port = port;
    this.ownsStore = !opts.storeDir;
    this.storeDir = opts.storeDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'auditmux-nats-'));
    this.confFile = path.join(this.storeDir, 'server.conf');
    const conf = [
      `listen: "127.0.0.1:${port}"`,
      `server_name: ${opts.name ?? `t${port}`}`,
      `jetstream { store_dir: "${path.join(this.storeDir, 'js')}" }`,
      opts.conf ?? '',
    ].join('\n');
    fs.writeFileSync(this.confFile, conf + '\n', { mode: 0o600 });
  }

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const s = new NatsServer(opts.port ?? (await freePort()), opts);
    await s.startProcess();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async startProcess(wait = true): Promise<void> {
    this.out = '';
    const c = spawn(NATS_SERVER, ['-c', this.confFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin' },
    });
    c.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child = c;
    if (wait) await waitPort(this.port, c, () => this.out);
  }

  /** Waits until the log says `re` (cluster: a leader was elected, routes are up). */
  async waitLog(re: RegExp, ms = 20000): Promise<void> {
    for (let t = 0; t < ms; t += 50) {
      if (re.test(this.out)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nats-server log never matched ${re}: ${this.out.slice(-2000)}`);
  }

  /** SIGKILL: a crash, nothing flushed. */
  async kill(): Promise<void> {
    const c = this.child;
    // A process killed before has exitCode null and signalCode set: it will not exit again.
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const done = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await done;
  }

  /**
   * SIGSTOP: the server hangs (publishes wait in the socket, acks time out) until resume(). Resolves once every thread
   * of it is stopped (/proc): kill() returns before a thread running on the other CPU has stopped, and a test that
   * publishes right after must not have those publishes answered.
   */
  async pause(): Promise<void> {
    if (!this.running) return;
    const pid = this.child!.pid!;
    this.child!.kill('SIGSTOP');
    for (let i = 0; i < 500; i++) {
      let tasks: string[];
      try {
        tasks = fs.readdirSync(`/proc/${pid}/task`);
      } catch {
        return; // gone: nothing of it runs
      }
      const stopped = tasks.every((t) => {
        try {
          const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
          // The state is the field after the command's closing parenthesis (the command may hold one too).
          const state = st[st.lastIndexOf(')') + 2];
          return state === 'T' || state === 't';
        } catch {
          return true; // a thread that exited meanwhile
        }
      });
      if (stopped) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`nats-server ${pid} did not stop within 5 s of SIGSTOP`);
  }

  resume(): void {
    if (this.running) this.child!.kill('SIGCONT');
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.startProcess();
  }

  async stop(): Promise<void> {
    await this.kill();
    if (this.ownsStore) fs.rmSync(this.storeDir, { recursive: true, force: true });
  }

  get log(): string {
    return this.out;
  }
}

export interface StoredMessage {
  subject: string;
  id: string;
  seq: number;
  data: Buffer;
  /** The Auditmux-Seq header (OUTPUT:EPOCH.N), '' when absent. */
  order: string;
}

/** Every message of a stream, read with an ordered consumer (a test's independent view of what was stored). */
export async function streamMessages(url: string, stream: string): Promise<StoredMessage[]> {
  const nc = await connect({ servers: [url] });
  try {
    const jsm = await jetstreamManager(nc);
    const total = (await jsm.streams.info(stream)).state.messages;
    const out: StoredMessage[] = [];
    if (total === 0) return out;
    const c = await jetstream(nc).consumers.get(stream);
    while (out.length < total) {
      const it = await c.fetch({ max_messages: Math.min(1000, total - out.length), expires: 5000 });
      let got = 0;
      for await (const m of it) {
        got++;
        out.push({
          subject: m.subject,
          id: m.headers?.get('Nats-Msg-Id') ?? '',
          seq: m.seq,
          data: Buffer.from(m.data),
          order: m.headers?.get('Auditmux-Seq') ?? '',
        });
      }
      if (got === 0) throw new Error(`stream ${stream}: read ${out.length} of ${total}`);
    }
    return out;
  } finally {
    await nc.close();
  }
}

/**
 * Publishes one message over a raw TCP connection speaking the NATS protocol (`HPUB`), so its header block can be
 * anything, malformed included, as a hostile publisher would send it; resolves once the server answered a PING after
 * it (the message was processed). A JetStream stream capturing `subject` stores it (no ack asked).
 */
export function rawPublish(port: number, subject: string, headerBlock: string, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    let sent = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`raw publish: no answer, got ${JSON.stringify(got)}`));
    }, 10000);
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/-ERR/.test(got)) {
        clearTimeout(timer);
        sock.destroy();
        reject(new Error(`raw publish refused: ${got}`));
      } else if (!sent && got.includes('\r\n')) {
        // The server's INFO came: connect with headers on, publish, then PING to learn it was processed.
        sent = true;
        const h = Buffer.from(headerBlock, 'latin1');
        sock.write('CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n');
        sock.write(`HPUB ${subject} ${h.length} ${h.length + payload.length}\r\n`);
        sock.write(Buffer.concat([h, payload, Buffer.from('\r\nPING\r\n')]));
      } else if (sent && got.includes('PONG')) {
        clearTimeout(timer);
        sock.end();
        resolve();
      }
    });
  });
}

/** Polls `cond` until true; fails with `what` after `ms` (a liveness bound, not a speed assertion). */
export async function until(cond: () => boolean | Promise<boolean>, what: () => string, ms = 30000): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting: ${what()}`);
}

// ---- Fleet fixtures: servers, a temp dir, simulated hosts and collectors, torn down in reverse order ----

export const quiet = { warn: () => undefined, error: () => undefined, info: () => undefined };

/** A 3-node (or n-node) JetStream cluster on loopback, ready once its metadata leader is elected. */
export async function startCluster(n = 3, name = 'amc'): Promise<NatsServer[]> {
  const cports: number[] = [];
  for (let i = 0; i < n; i++) cports.push(await freePort());
  const servers: NatsServer[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const routes = cports
        .filter((_, j) => j !== i)
        .map((p) => `"nats://127.0.0.1:${p}"`)
        .join(', ');
      servers.push(
        await NatsServer.start({
          name: `n${i}`,
          conf: `cluster { name: ${name}, listen: "127.0.0.1:${cports[i]}", routes: [${routes}] }`,
        }),
      );
    }
    // The meta leader must exist before a replicated stream can be created.
    await until(
      () =>
        servers.some((s) =>
          /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/.test(s.log),
        ),
      () => servers.map((s) => s.log.slice(-500)).join('\n'),
      60000,
    );
    return servers;
  } catch (e) {
    for (const s of servers) await s.stop();
    throw e;
  }
}

/** The server currently leading `stream` (cluster servers are named n0, n1, ...). */
export async function streamLeader(servers: NatsServer[], stream = 'AUDIT', ms = 30000): Promise<NatsServer> {
  // A stream's Raft group elects its leader after the stream exists (and again after a server leaves), so the
  // answer may name no leader for a while: ask until one is named.
  let last = 'no answer';
  let leader: NatsServer | undefined;
  await until(
    async () => {
      const nc = await connect({ servers: servers.filter((s) => s.running).map((s) => s.url) });
      try {
        const info = await (await jetstreamManager(nc)).streams.info(stream);
        last = JSON.stringify(info.cluster);
        leader = servers.find((s, i) => s.running && `n${i}` === info.cluster?.leader);
        return leader !== undefined;
      } catch (e) {
        last = (e as Error).message; // no responders while the group is between leaders
        return false;
      } finally {
        await nc.close();
      }
    },
    () => `no leader for ${stream}: ${last}`,
    ms,
  );
  return leader!;
}

/** A nats output spec as the config would build it, for tests that drive NatsOutput directly. */
export function natsSpec(urls: string[], spoolDir: string | null, over: Partial<NatsOutputSpec> = {}): NatsOutputSpec {
  return {
    type: 'nats',
    name: 'n0',
    format: 'RAW',
    spool: { dir: spoolDir, maxBytes: 64 * 1024 * 1024, fullAction: 'syslog', fullExe: null },
    servers: urls,
    tls: null,
    user: null,
    password: null,
    token: null,
    creds: null,
    daemon: 'host',
    subject: 'audit.{node}.{daemon}.{contid}',
    stream: 'AUDIT',
    createStream: true,
    streamSubjects: ['audit.>'],
    replicas: 1,
    duplicateWindowMs: 120000,
    payload: 'text',
    ackTimeoutMs: 2000,
    maxInFlight: 64,
    networkRetryMs: 200,
    networkFailureAction: 'ignore',
    networkFailureExe: null,
    ...over,
  };
}

/** A NatsOutput of `node` publishing to `urls` with its spool in `spoolDir`, built as the daemon builds one. */
export function natsOutput(
  urls: string[],
  spoolDir: string | null,
  node: string,
  over: Partial<NatsOutputSpec> = {},
): NatsOutput {
  return new NatsOutput(natsSpec(urls, spoolDir, over), { nodeName: node, contidKernel: false, diag: quiet });
}

/**
 * One nats output as auditmux.yaml writes it (a flow mapping): `name` publishing to `urls`, creating the stream,
 * retrying every second, spooling in `spool`; `more` adds keys (`replicas: 3, ack_timeout: 2`).
 */
export function natsOutputYaml(name: string, urls: string[], spool: string, more = ''): string {
  return (
    `{ type: nats, name: ${name}, servers: [${urls.join(', ')}], create_stream: true, network_retry_time: 1, ` +
    `spool: { dir: ${spool} }${more ? `, ${more}` : ''} }`
  );
}

/** Stored messages by id: the count of each (a duplicate shows as 2). */
export function idCounts(ms: { id: string }[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of ms) m.set(x.id, (m.get(x.id) ?? 0) + 1);
  return m;
}

/** One server and a temp dir for `fn`; the server is stopped and the dir removed afterwards, also when `fn` throws. */
export async function withServer<T>(
  prefix: string,
  fn: (srv: NatsServer, dir: string) => Promise<T>,
  opts: NatsServerOptions = {},
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let srv: NatsServer | null = null;
  try {
    srv = await NatsServer.start(opts);
    return await fn(srv, dir);
  } finally {
    await srv?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export type Rec = { type: number; payload: Buffer };

/** Syscall event i as a host hands it to outputs: SYSCALL, CWD, PATH, PROCTITLE, EOE (4 logged lines). */
export function syscallEvent(i: number, base = 1700000000, serial0 = 1000): Rec[] {
  const t = base * 1000 + i;
  const st = `audit(${Math.floor(t / 1000)}.${String(t % 1000).padStart(3, '0')}:${serial0 + i})`;
  return [
    {
      type: MsgType.SYSCALL,
      payload: Buffer.from(
        `${st}: arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd a2=0 a3=0 items=1 ppid=1 pid=${100 + i} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="cat" exe="/usr/bin/cat" key="k${i % 3}"`,
      ),
    },
    { type: MsgType.CWD, payload: Buffer.from(`${st}: cwd="/root"`) },
    {
      type: MsgType.PATH,
      payload: Buffer.from(
        `${st}: item=0 name="/etc/f${i}" inode=${i} dev=08:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
      ),
    },
    { type: MsgType.PROCTITLE, payload: Buffer.from(`${st}: proctitle=636174002F6574632F66`) },
    { type: MsgType.EOE, payload: Buffer.from(`${st}: `) },
  ];
}

/** An auditd-format source: its own log (what auditd would have written) and a nats output fed the same records. */
export class SimHost {
  readonly log: string;
  readonly out: NatsOutput;
  private readonly w: LogWriter;
  constructor(
    readonly node: string,
    dir: string,
    urls: string[],
    over: Partial<NatsOutputSpec> = {},
    private readonly event: (i: number) => Rec[] = (i) => syscallEvent(i),
  ) {
    const daemon = over.daemon ?? 'host';
    this.log = path.join(dir, `${node}-${daemon}.log`);
    this.w = new LogWriter({ path: this.log, format: 'RAW', node, maxLogFileMiB: 0 });
    this.w.open();
    this.out = new NatsOutput(natsSpec(urls, path.join(dir, `spool-${node}-${daemon}`), over), {
      nodeName: node,
      contidKernel: false,
      diag: quiet,
    });
  }
  emit(from: number, to: number): void {
    for (let i = from; i < to; i++)
      for (const r of this.event(i)) {
        this.w.writeRecord(r.type, r.payload);
        this.out.writeRecord(r.type, r.payload);
      }
    this.w.flush();
    this.out.flush();
  }
  /** Resolves once every event handed to the output is acknowledged by the stream. */
  async drained(ms = 60000): Promise<void> {
    await until(
      () => this.out.stats().pending === 0,
      () => JSON.stringify(this.out.stats()),
      ms,
    );
  }
  async close(): Promise<void> {
    this.w.close();
    await this.out.close();
  }
}

/** The non-empty lines of a file, [] when absent. */
export function fileLines(file: string): string[] {
  return fs.existsSync(file)
    ? fs
        .readFileSync(file, 'latin1')
        .split('\n')
        .filter((l) => l.length > 0)
    : [];
}

export interface Fleet {
  /** A temp dir removed at teardown. */
  dir: string;
  servers: NatsServer[];
  urls: string[];
  /** The first server (the only one without a cluster). */
  srv: NatsServer;
  /** A simulated host publishing to every server; closed at teardown. */
  host(node: string, over?: Partial<NatsOutputSpec>, event?: (i: number) => Rec[]): SimHost;
  /** A collector config's text: servers, stream AUDIT, then `yaml` lines. */
  collectYaml(yaml?: string): string;
  /** A collector (not started) writing under DIR/`sub`; stopped at teardown. */
  collector(sub?: string, yaml?: string): Collector;
  /** Runs `fn` at teardown (before the servers stop), last registered first. */
  defer(fn: () => unknown): void;
  /** `auditmux collect --config cfgFile` as a child process; killed at teardown (killChild). */
  collectCli(cfgFile: string): ChildProcess;
}

/** Kills a child for good and waits for its exit: SIGCONT first, as a test may have frozen it with SIGSTOP. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const dead = new Promise((r) => child.once('exit', r));
  child.kill('SIGCONT');
  child.kill('SIGKILL');
  await dead;
}

/**
 * Runs `fn` with NATS servers (one, or a cluster of `cluster` nodes), a temp dir, and hosts/collectors it creates; all
 * are stopped and removed afterwards, also when `fn` throws.
 */
export async function withFleet<T>(
  opts: { cluster?: number; prefix?: string; conf?: string },
  fn: (f: Fleet) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), opts.prefix ?? 'auditmux-fleet-'));
  const cleanups: (() => unknown)[] = [];
  let servers: NatsServer[] = [];
  try {
    servers = opts.cluster ? await startCluster(opts.cluster) : [await NatsServer.start({ conf: opts.conf })];
    const urls = servers.map((s) => s.url);
    const f: Fleet = {
      dir,
      servers,
      urls,
      srv: servers[0]!,
      defer: (fn) => cleanups.push(fn),
      host(node, over = {}, event) {
        const h = new SimHost(node, dir, urls, over, event);
        cleanups.push(() => h.close());
        return h;
      },
      collectYaml: (yaml = '') => `servers: [${urls.join(', ')}]\nstream: AUDIT\n${yaml}`,
      collector(sub = 'fleet', yaml = '') {
        const c = new Collector(
          parseCollectConfig(`${f.collectYaml(yaml)}\ndir: ${path.join(dir, sub)}\n`, path.join(dir, 'c.yaml')),
          quiet,
        );
        cleanups.push(() => c.stop());
        return c;
      },
      collectCli(cfgFile) {
        const child = spawn(process.execPath, [cliPath, 'collect', '--config', cfgFile], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        cleanups.push(() => killChild(child));
        return child;
      },
    };
    return await fn(f);
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    for (const s of servers) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
