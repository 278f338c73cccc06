// Host-side handle of one auxiliary daemon: its queue, its process (spawned, supervised, restarted with back-off).
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';
import type { DaemonConfig } from '../config/schema';
import type { Diag } from './diagnostics';
import { AuxQueue } from './aux-queue';
import { Frame, FrameReader, encodeEvent, encodeFrame, encodeJsonFrame, type EventRecord } from './aux-ipc';
import { lookupUser } from './users';

export type AuxState = 'starting' | 'running' | 'backoff' | 'failed' | 'stopped';

const AUX_MAIN = join(__dirname, 'aux-main.js');
const MAX_INFLIGHT_EVENTS = 8192;
const SEND_BYTES = 1 << 20;
/** A process that stayed up this long is healthy again: its restart count starts over. */
const HEALTHY_MS = 60_000;

export interface AuxDaemonHooks {
  diag: Diag;
  nodeName: string | null;
  /** The host writes drops and crashes as records in its own log. */
  report: (event: 'overflow' | 'crash' | 'failed' | 'start', detail: string) => void;
  /** The queue filled under the `block` policy: the host pauses (true) or resumes (false) its kernel intake. */
  backpressure: (name: string, full: boolean) => void;
  /** The host talks to a kernel with the contid patch set (1336 records are CONTAINER_ID). */
  contidKernel: boolean;
}

export class AuxDaemon {
  readonly queue: AuxQueue;
  state: AuxState = 'stopped';
  restarts = 0;
  crashes = 0;
  pid = 0;
  private child: ChildProcess | null = null;
  private chan: Socket | null = null;
  private writable = false;
  private startedAt = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private blockTimer: NodeJS.Timeout | null = null;
  private blocking = false;
  private stopWaiters: Array<() => void> = [];
  private wantStop = false;
  lastError = '';

  constructor(public config: DaemonConfig, private readonly hooks: AuxDaemonHooks) {
    this.queue = new AuxQueue(config.queue.depth, config.queue.overflow);
  }

  get name(): string {
    return this.config.name;
  }

  /** Applies a changed config (reload); the process restarts only if its log or user changed. */
  update(cfg: DaemonConfig): void {
    const restart = JSON.stringify(cfg.log) !== JSON.stringify(this.config.log) || cfg.user !== this.config.user;
    this.config = cfg;
    this.queue.depth = cfg.queue.depth;
    this.queue.overflow = cfg.queue.overflow;
    if (restart && this.child) this.child.kill('SIGTERM');
  }

  start(): void {
    this.wantStop = false;
    if (this.child || this.state === 'failed') return;
    this.spawnChild();
  }

  private spawnChild(): void {
    const cfg = this.config;
    let ids: { uid: number; gid: number } | undefined;
    try {
      if (cfg.user) ids = lookupUser(cfg.user, cfg.pos);
      const dir = dirname(cfg.log.file);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (ids && statSync(dir).uid !== ids.uid) chownSync(dir, ids.uid, ids.gid);
    } catch (e) {
      this.lastError = (e as Error).message;
      this.state = 'failed';
      this.hooks.report('failed', this.lastError);
      return;
    }
    this.state = 'starting';
    // The process starts as root and drops to the daemon's user itself, after it has entered its log directory:
    // the host's log directory (0700 root) need not be traversable by that user.
    const child = spawn(process.execPath, [AUX_MAIN], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production' },
    });
    this.child = child;
    this.pid = child.pid ?? 0;
    this.startedAt = Date.now();
    const chan = child.stdio[3] as Socket;
    this.chan = chan;
    this.writable = true;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => this.hooks.diag.warn({ daemon: this.name, stderr: d.trim() }, 'aux daemon stderr'));
    const reader = new FrameReader((kind, body) => this.onFrame(kind, body));
    chan.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (e) {
        this.hooks.diag.error({ daemon: this.name, err: (e as Error).message }, 'aux protocol error');
        child.kill('SIGKILL');
      }
    });
    chan.on('drain', () => {
      this.writable = true;
      this.pump();
    });
    chan.on('error', () => undefined);
    child.on('error', (e) => {
      this.lastError = e.message;
    });
    child.on('exit', (code, signal) => this.onExit(code, signal));
    chan.write(encodeJsonFrame(Frame.CONFIG, { name: cfg.name, log: cfg.log, outputs: cfg.outputs ?? [], nodeName: this.hooks.nodeName, contidKernel: this.hooks.contidKernel, ...(ids ? { uid: ids.uid, gid: ids.gid } : {}) }));
  }

  private onFrame(kind: number, body: Buffer): void {
    switch (kind) {
      case Frame.READY:
        this.state = 'running';
        this.hooks.report('start', `pid=${this.pid}`);
        this.pump();
        break;
      case Frame.ACK:
        this.queue.ack(body.readDoubleLE(0));
        this.checkBlock();
        this.pump();
        break;
      case Frame.ERROR:
        this.lastError = JSON.parse(body.toString('utf8')).message as string;
        this.hooks.diag.warn({ daemon: this.name, err: this.lastError }, 'aux daemon reported an error');
        break;
      default:
        break;
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.child = null;
    this.chan = null;
    this.writable = false;
    this.pid = 0;
    // Whatever was sent but not confirmed goes back to the front of the queue, to be sent again after the restart.
    this.queue.requeueInflight();
    if (this.wantStop) {
      this.state = 'stopped';
      for (const w of this.stopWaiters.splice(0)) w();
      return;
    }
    this.crashes++;
    this.hooks.report('crash', `exit=${code ?? 'none'} signal=${signal ?? 'none'}`);
    if (Date.now() - this.startedAt > HEALTHY_MS) this.restarts = 0;
    if (this.restarts >= this.config.maxRestarts) {
      this.state = 'failed';
      this.lastError = `gave up after ${this.restarts} restarts`;
      this.hooks.report('failed', this.lastError);
      return;
    }
    this.restarts++;
    this.state = 'backoff';
    const delay = Math.min(30_000, 100 * 2 ** (this.restarts - 1));
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null;
      if (!this.wantStop) this.spawnChild();
    }, delay);
    this.backoffTimer.unref();
  }

  /** Queues one routed event; false when the overflow policy dropped it (counted, and reported by the host). */
  enqueue(records: readonly EventRecord[]): boolean {
    const ok = this.queue.offer((seq) => encodeEvent(seq, records));
    this.checkBlock();
    return ok;
  }

  private checkBlock(): void {
    if (this.config.queue.overflow !== 'block') return;
    const full = this.queue.full;
    if (full && !this.blocking) {
      this.blocking = true;
      this.hooks.backpressure(this.name, true);
      this.blockTimer = setTimeout(() => {
        this.blockTimer = null;
        const shed = this.queue.shedOverflow();
        if (shed) this.hooks.report('overflow', `dropped=${shed} reason=block-timeout`);
        this.blocking = false;
        this.hooks.backpressure(this.name, false);
      }, this.config.queue.blockTimeoutMs);
      this.blockTimer.unref();
    } else if (!full && this.blocking) {
      this.blocking = false;
      if (this.blockTimer) clearTimeout(this.blockTimer);
      this.blockTimer = null;
      this.hooks.backpressure(this.name, false);
    }
  }

  /** Sends queued events while the pipe accepts them. */
  pump(): void {
    if (this.state !== 'running' || !this.chan || !this.writable) return;
    for (;;) {
      const frames = this.queue.take(SEND_BYTES, MAX_INFLIGHT_EVENTS);
      if (!frames.length) return;
      const ok = this.chan.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
      if (!ok) {
        this.writable = false;
        return;
      }
    }
  }

  rotate(): void {
    this.chan?.write(encodeFrame(Frame.ROTATE));
  }

  resume(): void {
    this.chan?.write(encodeFrame(Frame.RESUME));
  }

  /** Kill the process (tests, and `aux` crash drills): it is restarted like after any crash. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  /**
   * Stops the process after it has written everything queued (up to `timeoutMs`); what is still queued after that
   * stays counted as queued, not delivered.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    if (this.blockTimer) clearTimeout(this.blockTimer);
    const deadline = Date.now() + timeoutMs;
    while (this.child && this.state === 'running' && this.queue.size > 0 && Date.now() < deadline) {
      this.pump();
      await new Promise((r) => setTimeout(r, 20));
    }
    this.wantStop = true;
    if (!this.child) {
      this.state = 'stopped';
      return;
    }
    const exited = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    this.chan?.write(encodeFrame(Frame.STOP));
    this.chan?.end();
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), Math.max(1000, deadline - Date.now()));
    await exited;
    clearTimeout(timer);
  }

  status(): Record<string, unknown> {
    return {
      name: this.name,
      state: this.state,
      pid: this.pid,
      restarts: this.restarts,
      crashes: this.crashes,
      log: this.config.log.file,
      queueDepth: this.config.queue.depth,
      overflow: this.config.queue.overflow,
      ...this.queue.counters,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }
}
