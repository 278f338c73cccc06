// auditd remote-logging client (audisp-remote's managed format): spooled records, sequence ids, acks, heartbeats.
import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import type { RemoteOutputSpec } from '../../config/schema';
import type { OutputContext } from '../output';
import type { QueueCursor } from '../transport/spool';
import { NetOutput } from '../transport/net-output';
import { queuedOptions } from '../transport/queued-output';
import { FrameParser, HEADER_VERSION, MAX_PAYLOAD, RMW, describeReply, frame, replyKind, replyText } from './protocol';

interface InFlight {
  seq: number;
  /** Queue position to commit on ack; null for a heartbeat. */
  end: QueueCursor | null;
  sentAt: number;
}

const TICK_MS = 250;

/**
 * Sends each record as one MESSAGE frame and commits it to the spool only when the server acks that sequence id,
 * which auditd does after writing the line to its log. Up to `window` frames are outstanding (auditd's listener acks
 * in arrival order); after a broken connection everything unacked is sent again, so a server that logged a record
 * but died before acking sees it twice — the same at-least-once audisp-remote gives.
 */
export class RemoteOutput extends NetOutput {
  private readonly spec: RemoteOutputSpec;
  /** Replies are bounded as auditd's client bounds them (MAX_AUDIT_MESSAGE_LENGTH, header included). */
  private parser = new FrameParser();
  private inflight: InFlight[] = [];
  private seq = 0;
  private lastTraffic = Date.now();
  private tick: NodeJS.Timeout;
  private remoteState: 'ok' | 'disk-low' | 'disk-full' | 'disk-error' | 'ending' = 'ok';
  private readonly rc = {
    framesSent: 0,
    acks: 0,
    heartbeats: 0,
    diskLow: 0,
    diskFull: 0,
    diskError: 0,
    endings: 0,
    resent: 0,
  };

  constructor(spec: RemoteOutputSpec, ctx: OutputContext) {
    super({
      ...queuedOptions(spec, ctx, MAX_PAYLOAD, false),
      peer: `${spec.host}:${spec.port}`,
      networkRetryMs: spec.networkRetryMs,
      networkFailureAction: spec.networkFailureAction,
      networkFailureExe: spec.networkFailureExe,
    });
    this.spec = spec;
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    this.start();
  }

  protected kind(): string {
    return 'remote';
  }

  protected openSocket(): net.Socket {
    return this.connectTcp(this.spec.host, this.spec.port);
  }

  protected onUp(): void {
    this.parser = new FrameParser();
    this.inflight = [];
    this.queue.rewind();
    this.remoteState = 'ok';
    this.lastTraffic = Date.now();
  }

  protected onDown(): void {
    if (this.inflight.some((f) => f.end !== null)) this.rc.resent += this.inflight.filter((f) => f.end !== null).length;
    this.inflight = [];
    this.queue.rewind();
  }

  protected pump(): void {
    const s = this.sock;
    if (!s || !this.connected || this.suspended || this.closed) return;
    const window = Math.max(1, this.spec.window);
    const parts: Buffer[] = [];
    while (this.inflight.length < window) {
      const r = this.queue.next();
      if (!r) break;
      this.seq = (this.seq + 1) >>> 0 || 1;
      parts.push(frame(RMW.MESSAGE, this.seq, r.data));
      this.inflight.push({ seq: this.seq, end: r.end, sentAt: Date.now() });
    }
    if (parts.length === 0) return;
    this.rc.framesSent += parts.length;
    this.lastTraffic = Date.now();
    s.write(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts));
  }

  protected onData(chunk: Buffer): void {
    this.lastTraffic = Date.now();
    for (const item of this.parser.push(chunk)) {
      if (item.kind !== 'frame') {
        this.fail(item.kind === 'error' ? `bad reply: ${item.reason}` : 'server sent a non-managed line');
        return;
      }
      const { type, seq, headerVersion } = item.header;
      if (headerVersion !== HEADER_VERSION) {
        this.fail(`reply with header version ${headerVersion}; auditd's protocol has version ${HEADER_VERSION}`);
        return;
      }
      const kind = replyKind(type);
      if (kind === 'invalid') {
        // Nothing but ACK and DISKLOW (or another reply with the warning bit) commits a record: an echo server
        // sending our MESSAGE frames back, seq and all, was taken as an auditd that logged everything.
        this.fail(
          `unexpected reply type 0x${(type >>> 0).toString(16)} (${describeReply(type)}) to seq ${seq}: ` +
            `not an auditd listener's reply`,
        );
        return;
      }
      const text = replyText(item.payload);
      if (kind === 'ending') {
        // Whatever the sequence, the server is going away; unacked records go again after the reconnect.
        this.rc.endings++;
        this.remoteState = 'ending';
        this.diag.warn({ output: this.name, text }, 'remote server is ending; reconnecting');
        this.fail('server ending');
        return;
      }
      const head = this.inflight[0];
      if (!head || head.seq !== seq) {
        this.fail(`mismatched response: got seq ${seq}, expected ${head ? head.seq : 'none'}`);
        return;
      }
      if (kind === 'cannot-log') {
        // Not logged: keep the record spooled and try again after network_retry_time.
        if (type === RMW.DISKFULL) this.rc.diskFull++;
        else this.rc.diskError++;
        this.remoteState = type === RMW.DISKFULL ? 'disk-full' : 'disk-error';
        this.diag.warn({ output: this.name, reply: describeReply(type), text }, 'remote server cannot log; will retry');
        this.fail(`remote ${describeReply(type)}: ${text}`);
        return;
      }
      this.inflight.shift();
      if (kind === 'warning') {
        this.rc.diskLow++;
        if (this.remoteState !== 'disk-low')
          this.diag.warn({ output: this.name, text }, 'remote server is low on disk space');
        this.remoteState = 'disk-low';
      } else if (this.remoteState !== 'ok') {
        this.remoteState = 'ok';
      }
      this.rc.acks++;
      // The server logs what it is sent: an outage is over (a peer that accepts and drops, or answers ENDING or
      // DISKFULL to everything, is one outage with one network_failure_action).
      this.healthy();
      if (head.end) {
        this.queue.commit(head.end);
        this.counters.delivered++;
        this.markDirty();
      }
    }
    this.pump();
  }

  /** Up for HEALTHY_MS: healthy only if nothing sent is waiting for its ACK (a server that never answers is not). */
  protected override onHealthyPeriod(): void {
    if (this.inflight.length === 0) this.healthy();
  }

  protected override extraStats(): Record<string, number | string | boolean> {
    return { ...super.extraStats(), ...this.rc, inFlight: this.inflight.length, remoteState: this.remoteState };
  }

  protected override async drainBeforeClose(): Promise<void> {
    clearInterval(this.tick);
    const deadline = Date.now() + 2000;
    while (this.inflight.length > 0 && this.connected && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    this.syncQueue();
  }

  protected override async shutdown(): Promise<void> {
    clearInterval(this.tick);
    await super.shutdown();
  }

  private onTick(): void {
    if (!this.connected || !this.sock) return;
    const now = Date.now();
    const head = this.inflight[0];
    if (head && now - head.sentAt > this.spec.ackTimeoutMs) {
      this.fail(`ack from ${this.spec.host}:${this.spec.port} timed out`);
      return;
    }
    const hb = this.spec.heartbeatTimeout * 1000;
    if (hb > 0 && this.inflight.length === 0 && now - this.lastTraffic >= hb) {
      this.seq = (this.seq + 1) >>> 0 || 1;
      this.inflight.push({ seq: this.seq, end: null, sentAt: now });
      this.rc.heartbeats++;
      this.lastTraffic = now;
      this.sock.write(frame(RMW.HEARTBEAT, this.seq));
    }
  }
}
