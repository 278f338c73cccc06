// Host-side handle of one auxiliary daemon: its queue, and its writer in its own process or in the host's, restarted
// with back-off.
import { Buffer } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { bufferView } from '../bytes';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';
import type { DaemonConfig } from '../config/schema';
import type { ContainerDirectory } from '../contid/meta-selector';
import type { Diag } from '../shared';
import { AuxQueue } from './aux-queue';
import {
  Frame,
  FrameReader,
  MAX_AUX_FRAME,
  encodeEvent,
  encodeFrame,
  encodeJsonFrame,
  type EventRecord,
} from './aux-ipc';
import { AuxWriter } from './aux-writer';
import { ContainerFeed } from './aux-containers';
import { lookupUser } from './users';
import { ensureOwnedDir } from '../safefs';
import { cutUtf8 } from '../records/encode';

const noPos = (k: string, v: unknown): unknown => (k === 'pos' ? undefined : v);

/** What the host logs of an aux process's own words (stderr, ERROR frames): a window, its lines, each line's size. */
const CHATTER_WINDOW_MS = 60_000;
const CHATTER_LINES = 20;
const CHATTER_LINE_BYTES = 2048;

/**
 * The host's diagnostics of one aux process's stderr and ERROR frames: at most CHATTER_LINES a minute, each cut, and
 * then one line saying how many were left out. The process may be a tenant's: unbounded, it would spend the host's
 * journal rate limit (its own warnings then suppressed) and stall its event loop on a slow journal.
 */
class Chatter {
  private windowStart = 0;
  private lines = 0;
  private suppressed = 0;

  constructor(
    private readonly diag: Diag,
    private readonly daemon: string,
  ) {}

  say(what: 'stderr' | 'err', text: string, msg: string): void {
    const now = Date.now();
    if (now - this.windowStart >= CHATTER_WINDOW_MS) {
      if (this.suppressed > 0)
        this.diag.warn({ daemon: this.daemon, suppressed: this.suppressed }, 'aux daemon output left out (rate limit)');
      this.windowStart = now;
      this.lines = 0;
      this.suppressed = 0;
    }
    if (this.lines >= CHATTER_LINES) {
      this.suppressed++;
      return;
    }
    this.lines++;
    this.diag.warn({ daemon: this.daemon, [what]: cutUtf8(text, CHATTER_LINE_BYTES) }, msg);
  }
}

/**
 * Makes the directory of a daemon's log and returns the ids the daemon runs as. A daemon with a `user` gets a
 * directory of its own: created here by mkdir and only then handed to that user, or, when it already exists,
 * accepted only if it is a real directory that user already owns; an existing directory is never chowned (that is
 * how a tenant came to own the host's /var/log/auditmux). Which paths may be used at all is decided before this, by
 * src/config/aux-paths.ts. Throws ConfigError (unknown user) or IoError (unsafe or foreign directory).
 */
export function prepareAuxLogDir(cfg: DaemonConfig): { uid: number; gid: number } | undefined {
  const dir = dirname(cfg.log.file);
  if (!cfg.user) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return undefined;
  }
  const ids = lookupUser(cfg.user, cfg.pos);
  // Parents stay root's (0700 is enough: the process enters its directory before it drops to the user).
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  ensureOwnedDir(dir, ids, `log directory of daemon "${cfg.name}"`);
  return { uid: ids.uid, gid: ids.gid };
}

export type AuxState = 'starting' | 'running' | 'backoff' | 'failed' | 'stopped';

const AUX_MAIN = join(__dirname, 'aux-main.js');
const MAX_INFLIGHT_EVENTS = 8192;
const SEND_BYTES = 1 << 20;
/**
 * An idle process daemon is sent its events once this many bytes wait, or SEND_DELAY_MS after the first of them came:
 * each send wakes the process (a read, its log's write, an ACK) and the ACK wakes the host again, so a send per 2 ms
 * kernel batch made a process daemon cost more than the host's own log at 10k events/s (docs/benchmarks.md).
 */
const SEND_MIN_BYTES = 64 * 1024;
const SEND_DELAY_MS = 10;
/** Queue drops are told to the host log at most this often (the first at once), each with the count since the last. */
const OVERFLOW_REPORT_MS = 10_000;
/** A process that stayed up this long is healthy again: its restart count starts over. */
const HEALTHY_MS = 60_000;

export interface AuxDaemonHooks {
  diag: Diag;
  /** The script an `isolation: process` daemon runs (aux-main.js; tests give a misbehaving double). */
  program?: string;
  /** How long an idle process's first event may wait for more (SEND_DELAY_MS; tests lengthen it past their pumps). */
  sendDelayMs?: number;
  nodeName: string | null;
  /** The host writes drops and crashes as records in its own log. */
  report: (event: 'overflow' | 'crash' | 'failed' | 'start', detail: string) => void;
  /** The queue filled under the `block` policy: the host pauses (true) or resumes (false) its kernel intake. */
  backpressure: (name: string, full: boolean) => void;
  /** The host talks to a kernel with the contid patch set (1336 records are CONTAINER_ID). */
  contidKernel: boolean;
  /**
   * The host's container registry, for an inline daemon's outputs and JSON log (names in subjects, `container`); a
   * process daemon is sent the containers of its routed events from it (ContainerFeed).
   */
  containers?: ContainerDirectory;
}

/** ERROR frames an aux process may send in a minute; past this it is stopped as for any protocol error. */
const MAX_ERROR_FRAMES_PER_MINUTE = 1000;

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
  /** isolation: process — sends what waits when SEND_DELAY_MS is up (pump). */
  private sendTimer: NodeJS.Timeout | null = null;
  private blocking = false;
  /** Queue drops already told to the host log, and when that was last done. */
  private reportedDrops = 0;
  private lastDropReport = 0;
  private stopWaiters: Array<() => void> = [];
  private wantStop = false;
  /** isolation: inline — the daemon's log and outputs live in the host process. */
  private writer: AuxWriter | null = null;
  private restarting: Promise<void> | null = null;
  /** isolation: process — what the current process was told of containers (a new process starts knowing none). */
  private feed: ContainerFeed | null = null;
  /** isolation: process — the current process's stderr and ERROR frames, as the host's diagnostics get them. */
  private chatter: Chatter | null = null;
  /** ERROR frames of the current process in the current minute. */
  private errorFrames = { since: 0, n: 0 };
  lastError = '';

  constructor(
    public config: DaemonConfig,
    private readonly hooks: AuxDaemonHooks,
  ) {
    this.queue = new AuxQueue(config.queue.depth, config.queue.overflow);
  }

  get name(): string {
    return this.config.name;
  }

  get inline(): boolean {
    return this.config.isolation === 'inline';
  }

  /**
   * Applies a changed config (reload); the daemon restarts (after writing what it holds) only if its log, outputs, user
   * or isolation changed.
   */
  update(cfg: DaemonConfig): void {
    const old = this.config;
    const restart =
      JSON.stringify(cfg.log) !== JSON.stringify(old.log) ||
      // Where an output is written in the file is not part of it: moving lines must not restart the daemon.
      JSON.stringify(cfg.outputs ?? [], noPos) !== JSON.stringify(old.outputs ?? [], noPos) ||
      cfg.user !== old.user ||
      cfg.isolation !== old.isolation;
    if (restart && (this.child || this.writer)) {
      // Stopped under the old config, started under the new one.
      this.restarting = (async () => {
        await this.stop();
        this.config = cfg;
        this.applyQueueConfig();
        this.restarting = null;
        this.start();
      })();
      return;
    }
    this.config = cfg;
    this.applyQueueConfig();
  }

  private applyQueueConfig(): void {
    this.queue.depth = this.config.queue.depth;
    this.queue.overflow = this.config.queue.overflow;
  }

  start(): void {
    if (this.restarting) return;
    this.wantStop = false;
    if (this.child || this.writer || this.state === 'failed') return;
    if (this.inline) this.openInline();
    else this.spawnChild();
  }

  private openInline(): void {
    this.state = 'starting';
    this.startedAt = Date.now();
    const w = new AuxWriter(
      {
        name: this.name,
        log: this.config.log,
        outputs: this.config.outputs ?? [],
        nodeName: this.hooks.nodeName,
        contidKernel: this.hooks.contidKernel,
        ...(this.hooks.containers ? { containers: this.hooks.containers } : {}),
      },
      (m) => {
        this.lastError = m;
        this.hooks.diag.warn({ daemon: this.name, err: m }, 'aux daemon reported an error');
      },
      this.hooks.diag,
    );
    try {
      mkdirSync(dirname(this.config.log.file), { recursive: true, mode: 0o700 });
      w.open();
    } catch (e) {
      this.lastError = (e as Error).message;
      void w.close();
      this.afterCrash(`error=${JSON.stringify(this.lastError)}`);
      return;
    }
    this.writer = w;
    this.state = 'running';
    this.hooks.report('start', 'isolation=inline');
    this.pump();
  }

  /** A failure inside the inline writer: it is closed and opened again like a crashed process. */
  private inlineFailed(e: unknown): void {
    const w = this.writer;
    this.writer = null;
    this.queue.requeueInflight();
    this.lastError = (e as Error)?.message ?? String(e);
    if (w) void w.close().catch(() => undefined);
    this.afterCrash(`error=${JSON.stringify(this.lastError)}`);
  }

  /** The end of a kernel batch: the inline writer's buffer is written (and synced as its flush mode asks) now. */
  private scheduleFlush(): void {
    if ((this.writer?.bufferedBytes ?? 0) > 0) this.flushInline();
  }

  private flushInline(): void {
    try {
      this.writer?.flush();
    } catch (e) {
      this.inlineFailed(e);
    }
  }

  private spawnChild(): void {
    const cfg = this.config;
    let ids: { uid: number; gid: number } | undefined;
    try {
      ids = prepareAuxLogDir(cfg);
    } catch (e) {
      this.lastError = (e as Error).message;
      this.state = 'failed';
      this.hooks.report('failed', this.lastError);
      return;
    }
    this.state = 'starting';
    // The process starts as root and drops to the daemon's user itself, after it has entered its log directory:
    // the host's log directory (0700 root) need not be traversable by that user.
    // A 1 MiB semi-space: peak private memory per process is what each daemon adds to the host (about 2 MiB less than
    // 2 MiB semi-spaces, docs/benchmarks-memory.md), and writeFrame leaves the process little garbage to collect.
    const child = spawn(process.execPath, ['--max-semi-space-size=1', this.hooks.program ?? AUX_MAIN], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production' },
    });
    this.child = child;
    this.feed = this.hooks.containers ? new ContainerFeed(this.hooks.containers, this.hooks.contidKernel) : null;
    this.pid = child.pid ?? 0;
    this.startedAt = Date.now();
    const chan = child.stdio[3] as Socket;
    this.chan = chan;
    this.writable = true;
    // One limiter for the daemon's life, not one per process: restarts must not reset what a tenant may log.
    const chatter = (this.chatter ??= new Chatter(this.hooks.diag, this.name));
    this.errorFrames = { since: Date.now(), n: 0 };
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => chatter.say('stderr', d.trim(), 'aux daemon stderr'));
    const reader = new FrameReader((kind, body) => this.onFrame(kind, body), MAX_AUX_FRAME);
    chan.on('data', (chunk: Buffer) => {
      // A process gone (a tenant's, whose channel another process it started may still hold) speaks no more: its
      // ACKs would ack the next process's events, its READY would refuse the next one's.
      if (this.chan !== chan) return;
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
    chan.write(
      encodeJsonFrame(Frame.CONFIG, {
        name: cfg.name,
        log: cfg.log,
        outputs: cfg.outputs ?? [],
        nodeName: this.hooks.nodeName,
        contidKernel: this.hooks.contidKernel,
        ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
      }),
    );
  }

  private onFrame(kind: number, body: Buffer): void {
    switch (kind) {
      case Frame.READY:
        // Once, while starting: each READY writes a record to the host's log, and a process that could send them
        // at will (a tenant's) would fill the host's trail with starts.
        if (this.state !== 'starting' || this.child === null) throw new Error(`READY while ${this.state}`);
        this.state = 'running';
        this.hooks.report('start', `pid=${this.pid}`);
        this.send();
        break;
      case Frame.ACK:
        // The real process acknowledges only events it was sent and has not acknowledged: an ACK of nothing is a
        // process spending the host's loop (20 M empty ACKs in 3 s took a whole core), a protocol error.
        if (this.queue.ack(body.readDoubleLE(0)) === 0) throw new Error('ACK of nothing in flight');
        this.checkBlock();
        this.pump();
        break;
      case Frame.ERROR: {
        // Rate-limited in the log by Chatter, and bounded here: each costs a JSON.parse on the host's loop.
        const now = Date.now();
        if (now - this.errorFrames.since >= 60_000) this.errorFrames = { since: now, n: 0 };
        if (++this.errorFrames.n > MAX_ERROR_FRAMES_PER_MINUTE) throw new Error('too many ERROR frames');
        const m = (JSON.parse(body.toString('utf8')) as { message?: unknown }).message;
        if (typeof m !== 'string') throw new Error('ERROR frame without a message');
        this.lastError = cutUtf8(m, CHATTER_LINE_BYTES);
        this.chatter?.say('err', this.lastError, 'aux daemon reported an error');
        break;
      }
      default:
        // READY, ACK and ERROR are all an aux process sends: anything else is a protocol error, not a free loop turn.
        throw new Error(`unexpected frame kind ${kind}`);
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    // Its pipes go with it: a process it started may hold them open, and the host's loop would never empty (a stop
    // that waits for TimeoutStopSec and a SIGKILL), nor would what it sends stop arriving.
    this.chan?.destroy();
    this.child?.stderr?.destroy();
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
    this.afterCrash(`exit=${code ?? 'none'} signal=${signal ?? 'none'}`);
  }

  /** Counts a crash and restarts with exponential back-off, up to max_restarts. */
  private afterCrash(detail: string): void {
    this.crashes++;
    this.hooks.report('crash', detail);
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
      if (!this.wantStop) this.start();
    }, delay);
    this.backoffTimer.unref();
  }

  /**
   * Whether an event may go to the inline writer record by record as its records come (a RecordStream): nothing
   * queued to write before it, a text log and no tail left to skip. Otherwise it is enqueued whole.
   */
  streams(): boolean {
    const w = this.writer;
    return w !== null && this.queue.size === 0 && w.streams;
  }

  /** RecordStream: the daemon's outputs (plugins) get EOE; its log does not. */
  get takesEoe(): boolean {
    return this.writer?.hasOutputs ?? false;
  }

  /** A streamed event begins: counted delivered, as an event written inline by enqueue. */
  beginStream(): void {
    this.queue.counters.delivered++;
  }

  /** A streamed event taken back before its records came (it comes again whole): no longer counted delivered. */
  cancelStream(): void {
    this.queue.counters.delivered--;
  }

  /** One record of a streamed event; false when the writer failed (it is closed and opened again, as a crash). */
  streamRecord(type: number, src: Buffer, start: number, end: number): boolean {
    const w = this.writer;
    if (w !== null)
      try {
        w.writeRecordAt(type, src, start, end);
        return true;
      } catch (e) {
        this.inlineFailed(e);
      }
    // The event comes again whole (StreamedEvent enqueues it): counted once its log has it, as enqueue counts.
    this.queue.counters.delivered--;
    return false;
  }

  /** Queues one routed event; false when the overflow policy dropped it (counted, and reported by the host). */
  enqueue(records: readonly EventRecord[]): boolean {
    const w = this.writer;
    if (w && this.queue.size === 0) {
      // Inline and nothing waiting: straight into the log buffer, no copy, no queue.
      try {
        w.write(records);
        this.queue.counters.delivered++;
        return true;
      } catch (e) {
        const ok = this.queue.offer((seq) => encodeEvent(seq, records));
        this.inlineFailed(e);
        return ok;
      }
    }
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
        if (shed) {
          this.reportedDrops += shed;
          this.hooks.report('overflow', `dropped=${shed} reason=block-timeout`);
        }
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

  /**
   * Tells the host log that the queue dropped events, as auditd's dispatcher logs a full queue: once the first time,
   * then at most every OVERFLOW_REPORT_MS with the count since the last record (`force`: now, at stop). A count, not a
   * record per event: a full queue is when the log can least afford extra lines.
   */
  private reportDrops(force: boolean): void {
    const n = this.queue.counters.dropped - this.reportedDrops;
    if (n <= 0) return;
    const now = Date.now();
    if (!force && now - this.lastDropReport < OVERFLOW_REPORT_MS) return;
    this.lastDropReport = now;
    this.reportedDrops += n;
    this.hooks.report('overflow', `dropped=${n} reason=queue-full`);
  }

  /**
   * At the end of each kernel batch, and when the process acknowledges or its pipe drains: inline, writes what is
   * queued; process, sends it once SEND_MIN_BYTES wait, else within SEND_DELAY_MS (a timer).
   */
  pump(): void {
    this.reportDrops(false);
    if (this.writer) {
      this.pumpInline();
      return;
    }
    // Only an idle process is left to wait: one still reading what it was sent reads on at once, and holding back
    // from it left it idle while the queue filled (at 80k events/s a quarter fewer events reached its log).
    const waiting = this.queue.pendingBytes;
    if (waiting >= SEND_MIN_BYTES || this.queue.inFlight > 0) this.send();
    else if (waiting > 0 && this.sendTimer === null) {
      this.sendTimer = setTimeout(() => {
        this.sendTimer = null;
        this.send();
      }, this.hooks.sendDelayMs ?? SEND_DELAY_MS);
      this.sendTimer.unref();
    }
  }

  /** Sends queued events to the process while its pipe accepts them. */
  private send(): void {
    if (this.state !== 'running' || !this.chan || !this.writable) return;
    const feed = this.feed;
    for (;;) {
      const frames = this.queue.take(SEND_BYTES, MAX_INFLIGHT_EVENTS);
      if (!frames.length) break;
      let out = frames;
      if (feed) {
        // Each event's container goes just before it, when the process does not hold it yet (or holds an older form).
        out = [];
        for (const f of frames) {
          feed.before(f, out);
          out.push(f);
        }
      }
      const ok = this.chan.write(out.length === 1 ? out[0]! : Buffer.concat(out));
      if (!ok) {
        this.writable = false;
        return;
      }
    }
    if (feed) {
      // After the events already sent: a retired container is forgotten once its last events are on their way.
      const out: Buffer[] = [];
      feed.sweep(out);
      if (out.length && !this.chan.write(Buffer.concat(out))) this.writable = false;
    }
  }

  private pumpInline(): void {
    const w = this.writer!;
    try {
      for (;;) {
        const frames = this.queue.take(SEND_BYTES, MAX_INFLIGHT_EVENTS);
        if (!frames.length) break;
        let last = 0;
        // A queued frame is `u32 len | u8 kind | body`: the body is what writeFrame reads.
        for (const f of frames) last = w.writeFrame(bufferView(f, 5, f.length - 5));
        this.queue.ack(last);
        this.checkBlock();
      }
    } catch (e) {
      this.inlineFailed(e);
      return;
    }
    this.scheduleFlush();
  }

  rotate(): void {
    if (this.writer) {
      try {
        this.writer.rotate(process.pid);
      } catch (e) {
        this.inlineFailed(e);
      }
    } else this.chan?.write(encodeFrame(Frame.ROTATE));
  }

  resume(): void {
    if (this.writer) this.writer.resume();
    else this.chan?.write(encodeFrame(Frame.RESUME));
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
    this.reportDrops(true);
    if (this.restarting) await this.restarting;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    if (this.blockTimer) clearTimeout(this.blockTimer);
    this.blockTimer = null;
    if (this.sendTimer) clearTimeout(this.sendTimer);
    this.sendTimer = null;
    // A daemon stopped while it paused the kernel intake (overflow: block) must let it go: nothing else would.
    if (this.blocking) {
      this.blocking = false;
      this.hooks.backpressure(this.name, false);
    }
    const deadline = Date.now() + timeoutMs;
    if (this.writer || this.inline) {
      this.wantStop = true;
      const w = this.writer;
      if (w) {
        this.pumpInline();
        this.writer = null;
        await w.close().catch(() => undefined);
      }
      this.state = 'stopped';
      return;
    }
    // A child still starting gets its queue too once it says READY: stopping must not drop what was routed to it.
    while (
      this.child &&
      (this.state === 'running' || this.state === 'starting') &&
      this.queue.size > 0 &&
      Date.now() < deadline
    ) {
      this.send();
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
      isolation: this.config.isolation,
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
