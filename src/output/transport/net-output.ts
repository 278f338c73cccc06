// Connection lifecycle shared by the TCP outputs: connect, reconnect after network_retry_time (backing off from peers
// that accept and then drop the connection), one failure action per outage.
import { connect, type Socket } from 'node:net';
import { QueuedOutput, type QueuedOutputOptions } from './queued-output';

export interface NetOutputOptions extends QueuedOutputOptions {
  peer: string;
  networkRetryMs: number;
  networkFailureAction: string;
  networkFailureExe: string | null;
}

/** Connect attempts give up after this long (a black-holed peer must not stall the output forever). */
const CONNECT_TIMEOUT_MS = 10000;
/**
 * A connection ends an outage once the peer has shown it takes records (the subclass calls healthy(): an ACK, a
 * commit) or once it has stayed up this long (onHealthyPeriod() decides).
 */
export const HEALTHY_MS = 10000;
/** Reconnects after connections that ended before they were healthy back off up to this (jittered). */
export const MAX_BACKOFF_MS = 60000;

export abstract class NetOutput extends QueuedOutput {
  protected sock: Socket | null = null;
  protected connected = false;
  private connecting = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private outage = false;
  private readonly peer: string;
  private readonly retryMs: number;
  private readonly failureAction: string;
  private readonly failureExe: string | null;
  private connects = 0;
  /** This connection has shown the peer takes records; until then an outage is not over. */
  private isHealthy = false;
  private healthTimer: NodeJS.Timeout | null = null;
  /** Connections in a row that came up and ended before they were healthy (a peer accepting, then dropping). */
  private shortLived = 0;
  private retryDelayMs: number;

  constructor(opts: NetOutputOptions) {
    super(opts);
    this.peer = opts.peer;
    this.retryMs = opts.networkRetryMs;
    this.failureAction = opts.networkFailureAction;
    this.failureExe = opts.networkFailureExe;
    this.retryDelayMs = opts.networkRetryMs;
  }

  /** Starts the first connection; subclasses call it at the end of their constructor. */
  protected start(): void {
    this.connect();
  }

  protected abstract openSocket(): Socket;

  /** A plain TCP connection that calls up() once connected (keep-alive on, Nagle off: records are small). */
  protected connectTcp(host: string, port: number): Socket {
    const s = connect({ host, port });
    s.setNoDelay(true);
    s.setKeepAlive(true, 10000);
    s.once('connect', () => this.up());
    return s;
  }
  /** The transport is up (after a TLS handshake where there is one): resend from the last commit. */
  protected abstract onUp(): void;
  protected abstract onData(chunk: Buffer): void;
  /** The connection is gone; forget what was in flight. */
  protected abstract onDown(): void;

  protected onAppend(): void {
    if (this.connected) this.pump();
  }

  /** Drops the connection (protocol error, timeout) and schedules a reconnect. */
  protected fail(reason: string): void {
    this.lastError = reason;
    this.counters.errors++;
    const s = this.sock;
    if (s) {
      s.destroy();
    } else {
      this.scheduleRetry();
    }
  }

  protected override extraStats(): Record<string, number | string | boolean> {
    return {
      connected: this.connected,
      peer: this.peer,
      connects: this.connects,
      healthy: this.isHealthy,
      retryDelayMs: this.retryDelayMs,
    };
  }

  /**
   * The peer has shown it takes records on this connection (an ACK, a commit): an outage ends here, not when TCP
   * connects, and the reconnect delay goes back to network_retry_time. A peer that accepts and then closes, or
   * answers ENDING or DISKFULL, made each reconnect a new outage with its own network_failure_action.
   */
  protected healthy(): void {
    if (this.isHealthy || !this.connected) return;
    this.isHealthy = true;
    this.shortLived = 0;
    this.retryDelayMs = this.retryMs;
    if (this.healthTimer) clearTimeout(this.healthTimer);
    this.healthTimer = null;
    if (this.outage) {
      this.outage = false;
      this.diag.info(
        { output: this.name, peer: this.peer, pending: this.queue.pending },
        'connected again; outage over',
      );
    }
  }

  /** The connection has stayed up for HEALTHY_MS; by default that makes it healthy. */
  protected onHealthyPeriod(): void {
    this.healthy();
  }

  protected async shutdown(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.healthTimer) clearTimeout(this.healthTimer);
    this.retryTimer = this.connectTimer = this.healthTimer = null;
    const s = this.sock;
    if (!s) return;
    await this.drainBeforeClose();
    await new Promise<void>((resolve) => {
      if (s.destroyed) return resolve();
      s.once('close', () => resolve());
      s.end();
      // A peer that never closes its side must not hold shutdown up.
      setTimeout(() => s.destroy(), 2000).unref();
    });
  }

  /** Lets a subclass wait briefly for in-flight acks before the socket closes. */
  protected async drainBeforeClose(): Promise<void> {
    // nothing by default
  }

  private connect(): void {
    if (this.closed || this.connecting || this.sock) return;
    this.connecting = true;
    let s: Socket;
    try {
      s = this.openSocket();
    } catch (e) {
      this.connecting = false;
      this.networkFailed(`connect: ${String(e)}`);
      this.scheduleRetry();
      return;
    }
    this.sock = s;
    this.connectTimer = setTimeout(() => {
      if (!this.connected) s.destroy(new Error(`connect timeout after ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    s.on('data', (chunk: Buffer) => {
      if (this.sock === s) this.onData(chunk);
    });
    s.on('error', (e) => {
      this.lastError = String(e.message ?? e);
    });
    s.on('close', () => {
      if (this.sock !== s) return;
      this.sock = null;
      const wasUp = this.connected;
      this.connected = false;
      this.connecting = false;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      if (this.healthTimer) clearTimeout(this.healthTimer);
      this.connectTimer = this.healthTimer = null;
      if (wasUp && !this.isHealthy) this.shortLived++;
      this.isHealthy = false;
      this.onDown();
      if (this.closed) return;
      this.networkFailed(
        wasUp
          ? `connection to ${this.peer} lost: ${this.lastError || 'closed by peer'}`
          : `cannot connect to ${this.peer}: ${this.lastError}`,
      );
      this.scheduleRetry();
    });
  }

  /** Subclasses call this once the socket is usable (connect or secureConnect). */
  protected up(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.connecting = false;
    this.connected = true;
    this.connects++;
    if (this.connects > 1) this.counters.reconnects++;
    // The outage (if any) goes on until the peer shows it takes records: healthy().
    this.isHealthy = false;
    if (this.healthTimer) clearTimeout(this.healthTimer);
    this.healthTimer = setTimeout(() => {
      this.healthTimer = null;
      if (this.connected) this.onHealthyPeriod();
    }, HEALTHY_MS);
    this.lastError = '';
    this.onUp();
    this.pump();
  }

  private networkFailed(reason: string): void {
    if (this.outage) return;
    this.outage = true;
    this.applyAction(this.failureAction, this.failureExe, `network failure: ${reason}`);
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryDelayMs = this.nextRetryDelay();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, this.retryDelayMs);
  }

  /**
   * network_retry_time, as auditd waits; after connections that ended before they were healthy, twice as long per
   * such connection in a row, up to MAX_BACKOFF_MS, jittered down by up to half (never below network_retry_time) so
   * hosts dropped together do not come back together.
   */
  private nextRetryDelay(): number {
    if (this.shortLived === 0) return this.retryMs;
    const base = Math.min(MAX_BACKOFF_MS, this.retryMs * 2 ** Math.min(this.shortLived, 30));
    return Math.max(this.retryMs, Math.round(base / 2 + (Math.random() * base) / 2));
  }
}
