// RFC 5424 syslog output over TCP (RFC 6587 octet counting), optionally TLS (RFC 5425), fed from the spool.
import { Buffer } from 'node:buffer';
import { readPem } from '../safefs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as tls from 'node:tls';
import type { SyslogOutputSpec } from '../config/schema';
import { writerTypeName } from '../vocab/msgtypes';
import { MAX_LINE_BYTES } from './format';
import type { OutputContext } from './output';
import type { QueueCursor } from './transport/spool';
import { NetOutput } from './transport/net-output';
import { Fifo } from './transport/fifo';
import { queuedOptions } from './transport/queued-output';

/** Beyond this much unsent data in the socket the output waits for 'drain' (a slow peer must not grow memory). */
const HIGH_WATER = 256 * 1024;
const TICK_MS = 200;

/**
 * Bounds on what is written and not yet committed (the remote output's window does the same): past either the output
 * waits for commits. They bound the daemon's memory for what is in flight (each such record is remembered) and what
 * a broken connection sends again. With resend_window_ms W, at most maxUnconfirmedRecords per W go out.
 */
export interface SyslogLimits {
  maxUnconfirmedRecords: number;
  maxUnconfirmedBytes: number;
}
export const SYSLOG_LIMITS: Readonly<SyslogLimits> = {
  maxUnconfirmedRecords: 262144,
  maxUnconfirmedBytes: 64 * 1024 * 1024,
};
const AUDIT_TIME_RE = /msg=audit\((\d{1,12})\.(\d{3}):/;

/** The RFC 5424 header fields that do not change per record. */
export interface SyslogHeader {
  facility: number;
  severity: number;
  hostname: string;
  appName: string;
  procId: string;
}

/** PRINTUSASCII without spaces, 1..max characters; anything else becomes NILVALUE, as RFC 5424 6.2 requires. */
export function headerField(s: string, max: number): string {
  const t = s.slice(0, max);
  return t.length > 0 && /^[\x21-\x7e]+$/.test(t) ? t : '-';
}

/**
 * One RFC 5424 message for an audit line: the record's own time as TIMESTAMP (so a replayed spool keeps event times),
 * the record type as MSGID, no structured data, the line as MSG.
 */
export function formatSyslogMessage(h: SyslogHeader, typeName: string, line: Buffer, nowMs = Date.now()): Buffer {
  const head = line.subarray(0, Math.min(line.length, 200)).toString('latin1');
  const m = AUDIT_TIME_RE.exec(head);
  const ms = m ? Number(m[1]) * 1000 + Number(m[2]) : nowMs;
  const pri = h.facility * 8 + h.severity;
  const prefix = `<${pri}>1 ${new Date(ms).toISOString()} ${headerField(h.hostname, 255)} ${headerField(h.appName, 48)} ${headerField(h.procId, 128)} ${headerField(typeName, 32)} - `;
  return Buffer.concat([Buffer.from(prefix, 'latin1'), line]);
}

/** RFC 6587 3.4.1 octet-counting frame: MSG-LEN SP SYSLOG-MSG. */
export function octetFrame(msg: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${msg.length} `, 'latin1'), msg]);
}

/** One write to the socket: the records of one batch. */
interface Batch {
  /** Bytes written on this connection up to the end of the batch. */
  byteEnd: number;
  bytes: number;
  records: number;
  /** Queue position after its last record. */
  end: QueueCursor;
  /** When its last byte was first seen to have left this process (in the kernel's hands); 0 while it has not. */
  sentAt: number;
}

/**
 * What was written on a connection and not yet committed, batch by batch. A batch counts as sent once every byte up
 * to its end has left the socket's user-space buffer (written - writableLength): with a peer slower than the spool,
 * that buffer is never empty, and waiting for it to be (as before) committed almost nothing while the whole backlog
 * was remembered, record by record (157 bytes of heap each: a 10 GiB replay needed 5.5 GB).
 */
export class SentLedger {
  private readonly batches = new Fifo<Batch>();
  /** Batches at the front already seen sent (the first not seen is at this place). */
  private mark = 0;
  /** Bytes written on this connection. */
  written = 0;
  /** Records and bytes written and not committed. */
  records = 0;
  bytes = 0;

  wrote(bytes: number, records: number, end: QueueCursor): void {
    this.written += bytes;
    this.records += records;
    this.bytes += bytes;
    this.batches.push({ byteEnd: this.written, bytes, records, end, sentAt: 0 });
  }

  /** `sent` bytes of those written have left this process: the batches they complete are sent as of `now`. */
  observe(sent: number, now: number): void {
    for (let b = this.batches.at(this.mark); b !== undefined && b.byteEnd <= sent; b = this.batches.at(++this.mark))
      b.sentAt = now;
  }

  /**
   * Takes the leading batches sent at or before `before` (all of them with `all`, whether seen sent or not); returns
   * the queue position after the last and how many records they hold, or null when none is.
   */
  take(before: number, all = false): { end: QueueCursor; records: number } | null {
    let n = 0;
    let records = 0;
    let bytes = 0;
    let last: Batch | undefined;
    for (let b = this.batches.at(0); b !== undefined; b = this.batches.at(++n)) {
      if (!all && (b.sentAt === 0 || b.sentAt > before)) break;
      records += b.records;
      bytes += b.bytes;
      last = b;
    }
    if (last === undefined) return null;
    this.records -= records;
    this.bytes -= bytes;
    this.batches.drop(n);
    this.mark = Math.max(0, this.mark - n);
    return { end: last.end, records };
  }

  /** Forgets everything (the connection is gone or new); returns how many records were not committed. */
  reset(): number {
    const n = this.records;
    this.batches.clear();
    this.mark = 0;
    this.written = this.records = this.bytes = 0;
    return n;
  }
}

/**
 * TCP syslog has no application-level acknowledgement, so "delivered" is inferred: a record is committed to the spool
 * once it has been in the kernel's hands for resendWindowMs while the connection stayed up. When the connection
 * breaks, everything written within that window is sent again — a peer that crashed loses nothing it had not already
 * read, at the price of possible duplicates inside the window. What is written and not committed is bounded
 * (SyslogLimits); a slow peer makes the output wait, not the daemon's memory grow with the backlog.
 */
export class SyslogOutput extends NetOutput {
  private readonly spec: SyslogOutputSpec;
  private readonly header: SyslogHeader;
  private readonly contidKernel: boolean;
  private readonly ledger = new SentLedger();
  private readonly limits: SyslogLimits;
  private tick: NodeJS.Timeout;
  private readonly sc = { messagesSent: 0, resent: 0, tlsErrors: 0 };
  private readonly tlsFiles: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};

  constructor(spec: SyslogOutputSpec, ctx: OutputContext, limits: Partial<SyslogLimits> = {}) {
    super({
      ...queuedOptions(spec, ctx, MAX_LINE_BYTES, false),
      peer: `${spec.host}:${spec.port}${spec.tls ? ' (tls)' : ''}`,
      networkRetryMs: spec.networkRetryMs,
      networkFailureAction: spec.networkFailureAction,
      networkFailureExe: spec.networkFailureExe,
    });
    this.spec = spec;
    this.limits = { ...SYSLOG_LIMITS, ...limits };
    this.contidKernel = ctx.contidKernel;
    this.header = {
      facility: spec.facility,
      severity: spec.severity,
      hostname: spec.hostname ?? os.hostname(),
      appName: spec.appName,
      procId: String(process.pid),
    };
    if (spec.tls) {
      // Read once at start: a missing key file is a configuration error the daemon should report before running.
      // Bounded
      // and regular files only: a FIFO named here would block the whole daemon, /dev/zero would eat its memory.
      if (spec.tls.ca) this.tlsFiles.ca = readPem(spec.tls.ca, 'syslog CA file');
      if (spec.tls.cert) this.tlsFiles.cert = readPem(spec.tls.cert, 'syslog client certificate');
      if (spec.tls.key) this.tlsFiles.key = readPem(spec.tls.key, 'syslog client key');
    }
    this.tick = setInterval(() => this.commitOld(), TICK_MS);
    this.start();
  }

  protected kind(): string {
    return 'syslog';
  }

  protected override encode(type: number, payload: Buffer): Buffer {
    const line = super.encode(type, payload);
    return formatSyslogMessage(this.header, writerTypeName(type, this.contidKernel), line);
  }

  protected openSocket(): net.Socket {
    const t = this.spec.tls;
    if (t) {
      const s = tls.connect({
        host: this.spec.host,
        port: this.spec.port,
        servername: t.serverName ?? (net.isIP(this.spec.host) ? undefined : this.spec.host),
        rejectUnauthorized: t.verify,
        ...this.tlsFiles,
      });
      s.once('secureConnect', () => this.up());
      s.on('error', (e) => {
        if (/certificate|ssl|tls|handshake/i.test(String(e.message))) this.sc.tlsErrors++;
      });
      s.setNoDelay(true);
      return s;
    }
    return this.connectTcp(this.spec.host, this.spec.port);
  }

  protected onUp(): void {
    this.ledger.reset();
    this.waitingDrain = false;
    this.queue.rewind();
  }

  protected onDown(): void {
    this.sc.resent += this.ledger.reset();
    this.waitingDrain = false;
    this.queue.rewind();
  }

  protected onData(): void {
    // A syslog receiver never talks back; whatever it sends is ignored.
  }

  protected pump(): void {
    const s = this.sock;
    if (!s || !this.connected || this.suspended || this.closed || this.waitingDrain) return;
    const parts: Buffer[] = [];
    let bytes = 0;
    let end: QueueCursor | null = null;
    // Room left under the bounds; the tick's commits make more and pump again.
    const maxRecords = this.limits.maxUnconfirmedRecords - this.ledger.records;
    const maxBytes = this.limits.maxUnconfirmedBytes - this.ledger.bytes;
    while (bytes < HIGH_WATER && parts.length < maxRecords && bytes < maxBytes) {
      const r = this.queue.next();
      if (!r) break;
      const f = octetFrame(r.data);
      parts.push(f);
      bytes += f.length;
      end = r.end;
    }
    if (parts.length === 0 || end === null) return;
    this.ledger.wrote(bytes, parts.length, end);
    this.sc.messagesSent += parts.length;
    this.sendBatch(s, Buffer.concat(parts), bytes, HIGH_WATER);
  }

  protected override extraStats(): Record<string, number | string | boolean> {
    return {
      ...super.extraStats(),
      ...this.sc,
      unconfirmed: this.ledger.records,
      unconfirmedBytes: this.ledger.bytes,
      tls: this.spec.tls !== null,
    };
  }

  protected override async drainBeforeClose(): Promise<void> {
    clearInterval(this.tick);
    const s = this.sock;
    if (s && this.connected && s.writableLength > 0) {
      await new Promise<void>((resolve) => {
        s.once('drain', () => resolve());
        setTimeout(resolve, 2000).unref();
      });
    }
    // A clean close: the peer reads everything before our FIN, so what was written counts as delivered; but only
    // once it left this process. A peer that stalled past the wait still has it in Node's buffer, which the close
    // drops: left uncommitted, it is sent again after the restart (a duplicate at worst, never a loss).
    if (s && this.connected && s.writableLength === 0) this.commit(this.ledger.take(Infinity, true));
    this.syncQueue();
  }

  protected override async shutdown(): Promise<void> {
    clearInterval(this.tick);
    await super.shutdown();
  }

  private commitOld(): void {
    const s = this.sock;
    if (!s || !this.connected) return;
    // What is still queued in user space has not even reached the kernel; everything before it has.
    const now = Date.now();
    this.ledger.observe(this.ledger.written - s.writableLength, now);
    if (this.commit(this.ledger.take(now - this.spec.resendWindowMs))) this.pump();
  }

  private commit(c: { end: QueueCursor; records: number } | null): boolean {
    if (!c) return false;
    this.queue.commit(c.end);
    this.counters.delivered += c.records;
    this.markDirty();
    // Records stayed in the kernel's hands for the resend window while connected: an outage is over.
    this.healthy();
    return true;
  }
}
