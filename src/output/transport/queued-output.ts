// Shared half of every network/plugin output: format a record, queue it (spool), apply the full action, count it.
import { Buffer } from 'node:buffer';
import { MsgType } from '../../kernel/constants';
import { LineFormatter, MAX_LINE_BYTES } from '../format';
import { IdNameCache } from '../../vocab/accounts';
import { MemoryQueue, Spool, type RecordQueue } from './spool';
import { runAdminAction } from '../diskspace';
import type { Diag, RecordOutput } from '../output';
import type { LogFormat, SpoolSpec } from '../../config/schema';

export interface QueuedOutputOptions {
  name: string;
  format: LogFormat;
  spool: SpoolSpec;
  nodeName?: string;
  contidKernel: boolean;
  diag: Diag;
  /** Longest line the transport can carry; longer ones are cut as auditd cuts them. */
  maxLine: number;
  /** Whether EOE records are forwarded (plugins get them from auditd, the disk log and remote peers do not). */
  keepEoe: boolean;
}

/** The options every output shares, taken from its spec and the daemon's context. */
export function queuedOptions(
  spec: { name: string; format: LogFormat; spool: SpoolSpec },
  ctx: { nodeName?: string; contidKernel: boolean; diag: Diag },
  maxLine: number,
  keepEoe: boolean,
): QueuedOutputOptions {
  return {
    name: spec.name,
    format: spec.format,
    spool: spec.spool,
    contidKernel: ctx.contidKernel,
    diag: ctx.diag,
    maxLine,
    keepEoe,
    ...(ctx.nodeName !== undefined ? { nodeName: ctx.nodeName } : {}),
  };
}

/** In-memory queues are bounded by this when no spool size is configured. */
const DEFAULT_MEMORY_QUEUE = 16 * 1024 * 1024;
/** How often commits are made durable when no flush() comes (quiet periods). */
const SYNC_INTERVAL_MS = 1000;

export abstract class QueuedOutput implements RecordOutput {
  readonly name: string;
  protected readonly queue: RecordQueue;
  protected readonly diag: Diag;
  protected readonly formatter: LineFormatter;
  protected readonly counters = { accepted: 0, delivered: 0, lost: 0, fullEvents: 0, reconnects: 0, errors: 0 };
  protected suspended = false;
  protected closed = false;
  protected lastError = '';
  private readonly scratch = Buffer.allocUnsafe(MAX_LINE_BYTES + 1);
  private readonly spoolSpec: SpoolSpec;
  private readonly maxLine: number;
  private readonly keepEoe: boolean;
  private full = false;
  private syncTimer: NodeJS.Timeout | null = null;
  private dirty = false;

  constructor(opts: QueuedOutputOptions) {
    this.name = opts.name;
    this.diag = opts.diag;
    this.spoolSpec = opts.spool;
    this.maxLine = opts.maxLine;
    this.keepEoe = opts.keepEoe;
    this.formatter = new LineFormatter({
      format: opts.format,
      node: opts.nodeName,
      contidKernel: opts.contidKernel,
      ids: new IdNameCache(),
    });
    this.queue = opts.spool.dir
      ? new Spool({
          dir: opts.spool.dir,
          maxBytes: opts.spool.maxBytes,
          onCorrupt: (file, offset, reason) =>
            this.diag.warn({ output: this.name, file, offset, reason }, 'spool damage skipped'),
        })
      : new MemoryQueue(opts.spool.maxBytes || DEFAULT_MEMORY_QUEUE);
    // `pending` counts what recovery read so far; the bytes are all the spool holds.
    if (this.queue.bytes > 0)
      this.diag.info(
        { output: this.name, pending: this.queue.pending, queuedBytes: this.queue.bytes },
        'spooled records will be replayed',
      );
    this.syncTimer = setInterval(() => this.periodicSync(), SYNC_INTERVAL_MS);
  }

  writeRecord(type: number, payload: Buffer): void {
    if (type === MsgType.EOE && !this.keepEoe) return;
    if (this.closed || this.suspended) {
      this.counters.lost++;
      return;
    }
    this.appendEntry(this.encode(type, payload));
  }

  /**
   * Queues one entry (a record, or a whole event for outputs that group): counts it and applies the full action.
   * Returns whether the queue took it.
   */
  protected appendEntry(rec: Buffer): boolean {
    let appended: boolean;
    try {
      appended = this.queue.append(rec);
    } catch (e) {
      // The spool's file system is full or failing: this record is lost like one refused by a full spool (counted,
      // full_action), and nothing is thrown into the kernel batch that carried it, whose other records and the host
      // log must go on. What the spool had buffered stays buffered for its next flush.
      this.counters.errors++;
      this.lastError = `spool write: ${String(e)}`;
      if (!this.full) this.diag.error({ output: this.name, err: String(e) }, 'spool write failed');
      appended = false;
    }
    if (appended) {
      this.counters.accepted++;
      this.dirty = true;
      if (this.full) {
        this.full = false;
        this.diag.info({ output: this.name }, 'spool has room again');
      }
      this.onAppend();
      return true;
    }
    this.counters.lost++;
    if (!this.full) {
      this.full = true;
      this.counters.fullEvents++;
      this.onFull();
    }
    return false;
  }

  flush(): void {
    if (this.closed) return;
    this.syncQueue();
    this.pump();
  }

  /** SIGUSR2 / `auditctl --signal resume` for an output suspended by an action. */
  resume(): void {
    if (!this.suspended) return;
    this.suspended = false;
    this.diag.info({ output: this.name }, 'output resumed');
    this.pump();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = null;
    await this.shutdown();
    try {
      this.queue.close();
    } catch (e) {
      this.diag.error({ output: this.name, err: String(e) }, 'spool close failed');
    }
  }

  stats(): Record<string, number | string | boolean> {
    return {
      type: this.kind(),
      ...this.counters,
      pending: this.queue.pending,
      queuedBytes: this.queue.bytes,
      // A spool recovered at start: bytes whose records `pending` does not count yet (counted in the background).
      ...(this.queue.uncounted > 0 ? { uncountedBytes: this.queue.uncounted } : {}),
      capacity: this.queue.capacity,
      spooled: this.spoolSpec.dir !== null,
      suspended: this.suspended,
      lastError: this.lastError,
      ...this.extraStats(),
    };
  }

  /** Line bytes for the queue: the auditd log line without its newline, cut to the transport's limit. */
  protected encode(type: number, payload: Buffer): Buffer {
    const end = this.formatter.formatInto(type, payload, this.scratch, 0) - 1;
    return Buffer.from(this.scratch.subarray(0, Math.min(end, this.maxLine)));
  }

  protected syncQueue(): void {
    try {
      this.queue.sync();
      this.dirty = false;
    } catch (e) {
      this.counters.errors++;
      this.lastError = `spool sync: ${String(e)}`;
      this.diag.error({ output: this.name, err: String(e) }, 'spool sync failed');
    }
  }

  /** A commit or append happened outside a flush(); the timer makes it durable. */
  protected markDirty(): void {
    this.dirty = true;
  }

  /** Runs a configured action (full spool, network failure); returns whether the output is now suspended. */
  protected applyAction(action: string, exe: string | null, what: string): void {
    switch (action) {
      case 'ignore':
        return;
      case 'syslog':
        this.diag.warn({ output: this.name, ...this.stats() }, what);
        return;
      case 'suspend':
        this.diag.error({ output: this.name }, `${what}; output suspended until resumed`);
        this.suspended = true;
        return;
      default:
        this.diag.error({ output: this.name, action }, what);
        runAdminAction(action, exe, this.diag);
    }
  }

  private onFull(): void {
    this.applyAction(
      this.spoolSpec.fullAction,
      this.spoolSpec.fullExe,
      `spool full (${this.queue.bytes} bytes); records are being lost`,
    );
  }

  private periodicSync(): void {
    if (this.dirty && !this.closed) this.syncQueue();
    if (!this.closed) this.pump();
  }

  protected abstract kind(): string;
  /** A record was queued: start sending if the transport is idle. */
  protected abstract onAppend(): void;
  /** Send what the transport can take now. */
  protected abstract pump(): void;
  protected abstract shutdown(): Promise<void>;
  protected extraStats(): Record<string, number | string | boolean> {
    return {};
  }

  /** Set while a stream refused more data; the subclass's pump() returns early until 'drain'. */
  protected waitingDrain = false;

  /**
   * Writes one batch and keeps the pump going: on backpressure it waits for 'drain', after a large batch it yields
   * to the event loop before sending more.
   */
  protected sendBatch(
    stream: NodeJS.WritableStream,
    data: Buffer,
    bytes: number,
    highWater: number,
    done?: (err?: Error | null) => void,
  ): void {
    const ok = done ? stream.write(data, done) : stream.write(data);
    if (!ok) {
      this.waitingDrain = true;
      stream.once('drain', () => {
        this.waitingDrain = false;
        this.pump();
      });
    } else if (bytes >= highWater) {
      setImmediate(() => this.pump());
    }
  }
}
