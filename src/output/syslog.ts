// RFC 5424 syslog output over TCP (RFC 6587 octet counting), optionally TLS (RFC 5425), fed from the spool.
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
import { queuedOptions } from './transport/queued-output';

/** Beyond this much unsent data in the socket the output waits for 'drain' (a slow peer must not grow memory). */
const HIGH_WATER = 256 * 1024;
const TICK_MS = 200;
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

interface Written {
  end: QueueCursor;
  at: number;
}

/**
 * TCP syslog has no application-level acknowledgement, so "delivered" is inferred: a record is committed to the spool
 * once it has been in the kernel's hands for resendWindowMs while the connection stayed up. When the connection
 * breaks, everything written within that window is sent again — a peer that crashed loses nothing it had not already
 * read, at the price of possible duplicates inside the window.
 */
export class SyslogOutput extends NetOutput {
  private readonly spec: SyslogOutputSpec;
  private readonly header: SyslogHeader;
  private readonly contidKernel: boolean;
  private written: Written[] = [];
  private tick: NodeJS.Timeout;
  private readonly sc = { messagesSent: 0, resent: 0, tlsErrors: 0 };
  private readonly tlsFiles: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};

  constructor(spec: SyslogOutputSpec, ctx: OutputContext) {
    super({
      ...queuedOptions(spec, ctx, MAX_LINE_BYTES, false),
      peer: `${spec.host}:${spec.port}${spec.tls ? ' (tls)' : ''}`,
      networkRetryMs: spec.networkRetryMs,
      networkFailureAction: spec.networkFailureAction,
      networkFailureExe: spec.networkFailureExe,
    });
    this.spec = spec;
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
    this.written = [];
    this.waitingDrain = false;
    this.queue.rewind();
  }

  protected onDown(): void {
    this.sc.resent += this.written.length;
    this.written = [];
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
    const now = Date.now();
    while (bytes < HIGH_WATER) {
      const r = this.queue.next();
      if (!r) break;
      const f = octetFrame(r.data);
      parts.push(f);
      bytes += f.length;
      this.written.push({ end: r.end, at: now });
    }
    if (parts.length === 0) return;
    this.sc.messagesSent += parts.length;
    this.sendBatch(s, Buffer.concat(parts), bytes, HIGH_WATER);
  }

  protected override extraStats(): Record<string, number | string | boolean> {
    return { ...super.extraStats(), ...this.sc, unconfirmed: this.written.length, tls: this.spec.tls !== null };
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
    if (s && this.connected && s.writableLength === 0) this.commitUpTo(Infinity);
    this.syncQueue();
  }

  protected override async shutdown(): Promise<void> {
    clearInterval(this.tick);
    await super.shutdown();
  }

  private commitOld(): void {
    const s = this.sock;
    if (!s || !this.connected) return;
    // Data still queued in user space has not even reached the kernel: nothing after it can be trusted yet.
    if (s.writableLength > 0) return;
    this.commitUpTo(Date.now() - this.spec.resendWindowMs);
  }

  private commitUpTo(before: number): void {
    let n = 0;
    while (n < this.written.length && (this.written[n] as Written).at <= before) n++;
    if (n === 0) return;
    const last = this.written[n - 1] as Written;
    this.written.splice(0, n);
    this.queue.commit(last.end);
    this.counters.delivered += n;
    this.markDirty();
    // Records stayed in the kernel's hands for the resend window while connected: an outage is over.
    this.healthy();
  }
}
