// Real nats-server processes for tests: loopback only, a temp store dir, a free port; always killed by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const NATS_SERVER = '/usr/sbin/nats-server';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

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
    return this.child !== null && this.child.exitCode === null;
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
    if (!c || c.exitCode !== null) return;
    const done = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await done;
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

import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';

export interface StoredMessage {
  subject: string;
  id: string;
  seq: number;
  data: Buffer;
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
        });
      }
      if (got === 0) throw new Error(`stream ${stream}: read ${out.length} of ${total}`);
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** Polls `cond` until true; fails with `what` after `ms` (a liveness bound, not a speed assertion). */
export async function until(cond: () => boolean | Promise<boolean>, what: () => string, ms = 30000): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting: ${what()}`);
}
