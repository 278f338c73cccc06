// NATS JetStream output: one message per event from the spool, Nats-Msg-Id for deduplication, committed on the ack.
import { Buffer } from 'node:buffer';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsOutputSpec } from '../../config/schema';
import { MsgType } from '../../kernel/constants';
import { MAX_LINE_BYTES } from '../format';
import type { OutputContext } from '../output';
import { MAX_SPOOL_RECORD, type QueueCursor } from '../transport/spool';
import { QueuedOutput, queuedOptions } from '../transport/queued-output';
import { connect, headers, type NodeConnectionOptions } from '@nats-io/transport-node';
import { AuditmuxError } from '../../errors';
import { natsOptions } from './connect';
import { encodeBody } from './payload';
import { CONTAINER_LINE_RE } from '../event-json';
import { ContainerCache, MAX_CONTAINER_JSON, parseContainerJson, type ContainerEntry } from '../container-fields';
import { subjectFor, defaultNode, messageId, readBootId, subjectToken } from './subject';
// Event stamps and contids are read from the lines as the JSON encoding reads them (one reader for both).
import { contidOf, lineStamp } from '../event-json';
import { formatSeqHeader, parseEntryHead, SEQ_HEADER } from './seq';

/** An event still receiving records is closed this long after its last one (records of one event arrive together). */
const EVENT_CLOSE_MS = 250;
/**
 * Spool entries stay below the spool's record limit, with room for the first line (id and container JSON, labels
 * included); a larger event goes out as several parts with distinct ids.
 */
const MAX_ENTRY = MAX_SPOOL_RECORD - 1024 - MAX_CONTAINER_JSON;

interface OpenEvent {
  stamp: string;
  time: string;
  serial: string;
  lines: Buffer[];
  bytes: number;
}

/** One publish of the window, in spool order: settled once its ack (or error) came back. */
interface InFlight {
  end: QueueCursor;
  done: boolean;
  failed: boolean;
}

/**
 * The spool holds one entry per event part: `MSGID s=EPOCH.N {json}\nLINE\nLINE...` (the order tag and the container
 * JSON optional: entries of older versions have neither). The id is fixed when the entry is written, so a
 * resend after a crash, an outage or a lost ack carries the same id and the stream stores it once (within its
 * duplicate_window). Up to `max_in_flight` publishes are outstanding at once (a window): acks may come back in any
 * order, but the spool cursor only moves past an entry once its ack and every earlier one arrived. A failed publish
 * stops the window; once every outstanding publish settled, sending restarts from the first unacknowledged entry
 * (acknowledged ones after it go again and the stream drops them as duplicates by id).
 *
 * The stream can then hold k+1.. before k (k failed, later ones were stored): the order tag puts them back. EPOCH.N is
 * fixed in the entry like the id, N one more per entry in spool order; EPOCH is new only when the output starts with
 * an empty spool (src/output/nats/seq.ts). The collector writes each publisher's events in N order.
 */
export class NatsOutput extends QueuedOutput {
  readonly groupsEvents = true;
  private readonly spec: NatsOutputSpec;
  private readonly node: string;
  /** The subject for an event's contid, node and daemon escaped once; the daemon's token for the header. */
  private readonly subject: (contid: string | null, container: ContainerEntry | null) => string;
  /** The host's container registry, when this output runs in the host's process (inline daemons too). */
  private readonly containers: ContainerCache;
  private readonly daemonToken: string;
  private readonly bootId: string;
  private readonly connOpts: NodeConnectionOptions;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private ready = false;
  private failing = false;
  private open: OpenEvent | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private lastClosed = { stamp: '', parts: 0 };
  private inflight: InFlight[] = [];
  private retryTimer: NodeJS.Timeout | null = null;
  /** The order tag's epoch and the N of the next entry written to the spool. */
  private readonly epoch: string;
  private nextSeq: number;
  private readonly outputToken: string;
  private readonly nc_ = {
    published: 0,
    acked: 0,
    duplicates: 0,
    publishErrors: 0,
    eventsQueued: 0,
    streamMissing: false,
  };

  constructor(spec: NatsOutputSpec, ctx: OutputContext) {
    super(queuedOptions(spec, ctx, MAX_LINE_BYTES - 1, false));
    this.spec = spec;
    this.node = defaultNode(ctx.nodeName);
    this.subject = subjectFor(spec.subject, this.node, spec.daemon);
    this.daemonToken = subjectToken(spec.daemon);
    // Looked up only when something shows it: a JSON payload or a container placeholder in the subject.
    const shown = spec.payload === 'json' || /\{(name|image|runtime|pod|namespace)\}/.test(spec.subject);
    this.containers = new ContainerCache(shown ? ctx.containers : undefined);
    this.bootId = readBootId();
    this.outputToken = subjectToken(spec.name);
    const resume = this.lastSpooledSeq();
    this.epoch = resume?.epoch ?? String(Date.now());
    this.nextSeq = resume ? resume.n + 1 : 1;
    try {
      // Credentials and TLS files are read here: a missing or refused one stops the daemon at start, with its path.
      this.connOpts = natsOptions(spec, `auditmux ${this.node} ${spec.daemon}/${spec.name}`, spec.networkRetryMs);
    } catch (e) {
      void super.close();
      throw e;
    }
    void this.start();
  }

  protected kind(): string {
    return 'nats';
  }

  /**
   * The order tag of the newest entry in the spool, read once at start: numbering continues after it. None (an empty
   * spool, a memory queue, an entry of an older version): a fresh epoch starts at 1.
   */
  private lastSpooledSeq(): { epoch: string; n: number } | null {
    const last = this.queue.lastPending();
    if (!last) return null;
    const nl = last.indexOf(0x0a);
    return parseEntryHead(last.toString('utf8', 0, nl < 0 ? last.length : nl)).seq;
  }

  override writeRecord(type: number, payload: Buffer): void {
    if (type === MsgType.EOE) {
      this.closeEvent();
      return;
    }
    if (this.closed || this.suspended) {
      this.counters.lost++;
      return;
    }
    const line = this.encode(type, payload);
    const st = lineStamp(line);
    const stamp = st ? `${st.time}:${st.serial}` : '';
    if (this.open && this.open.stamp !== stamp) this.closeEvent();
    if (!this.open) this.open = { stamp, time: st?.time ?? '0.000', serial: st?.serial ?? '0', lines: [], bytes: 0 };
    if (this.open.bytes + line.length + 1 > MAX_ENTRY) this.closeEvent(true);
    const ev =
      this.open ?? (this.open = { stamp, time: st?.time ?? '0.000', serial: st?.serial ?? '0', lines: [], bytes: 0 });
    ev.lines.push(line);
    ev.bytes += line.length + 1;
    if (this.closeTimer) this.closeTimer.refresh();
    else this.closeTimer = setTimeout(() => this.closeEvent(), EVENT_CLOSE_MS);
  }

  /** Writes the open event (or the part collected so far) to the spool; `keep` leaves the event open for more parts. */
  private closeEvent(keep = false): void {
    const ev = this.open;
    if (!keep && this.closeTimer) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    if (!ev || ev.lines.length === 0) return;
    const part = this.lastClosed.stamp === ev.stamp && ev.stamp !== '' ? this.lastClosed.parts : 0;
    this.lastClosed = { stamp: ev.stamp, parts: part + 1 };
    const id = messageId(this.node, this.bootId, ev.time, ev.serial, part, this.spec.daemon);
    this.open = keep ? { ...ev, lines: [], bytes: 0 } : null;
    this.nc_.eventsQueued++;
    // The container is looked up now, not when the entry is published (maybe after an outage, when the container is
    // gone from the registry): its fields travel in the entry's first line, `MSGID s=EPOCH.N {json}`, as UTF-8 JSON
    // text.
    const c = this.containers.enabled ? this.containers.lookup(contidOfBuffers(ev.lines)) : null;
    const seq = `s=${this.epoch}.${this.nextSeq}`;
    const head = c ? `${id} ${seq} ${c.json}\n` : `${id} ${seq}\n`;
    // Made durable with the other outputs' records: at the next flush() or within a second (periodic sync). N moves on
    // only when the spool took the entry: an entry lost to a full spool leaves no hole for the collector to wait on.
    if (
      this.appendEntry(Buffer.concat([Buffer.from(head, 'utf8'), ...ev.lines.flatMap((l, i) => (i ? [NL, l] : [l]))]))
    )
      this.nextSeq++;
  }

  private async start(): Promise<void> {
    try {
      this.nc = await connect(this.connOpts);
    } catch (e) {
      this.fail(`connect: ${String((e as Error).message)}`);
      if (!this.closed) this.retryTimer = setTimeout(() => this.retry(() => this.start()), this.spec.networkRetryMs);
      return;
    }
    if (this.closed) {
      await this.nc.close().catch(() => undefined);
      return;
    }
    this.js = jetstream(this.nc, { timeout: this.spec.ackTimeoutMs });
    const nc = this.nc;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.counters.reconnects++;
      }
    })().catch(() => undefined);
    // The client gives up on its own in some cases (two authorization errors in a row: an account reload, an expired
    // JWT, a hostile server) and closes for good: connected again from the start, or every publish would fail
    // against the dead connection while the spool filled.
    void nc.closed().then((err) => {
      if (this.closed || this.nc !== nc) return;
      this.ready = false;
      this.nc = null;
      this.js = null;
      this.fail(`connection closed${err ? `: ${String(err.message)}` : ''}`);
      if (!this.retryTimer)
        this.retryTimer = setTimeout(() => this.retry(() => this.start()), this.spec.networkRetryMs);
    });
    await this.checkStream();
  }

  /** The stream must exist before publishing (a publish to no stream would wait for an ack that never comes). */
  private async checkStream(): Promise<void> {
    if (this.closed || !this.nc) return;
    try {
      const jsm = await jetstreamManager(this.nc, { timeout: this.spec.ackTimeoutMs });
      try {
        await jsm.streams.info(this.spec.stream);
      } catch (e) {
        if (!/stream not found/i.test(String((e as Error).message))) throw e;
        if (!this.spec.createStream) {
          this.nc_.streamMissing = true;
          throw new Error(`stream ${this.spec.stream} does not exist and create_stream is off`, { cause: e });
        }
        await jsm.streams.add({
          name: this.spec.stream,
          subjects: this.spec.streamSubjects,
          num_replicas: this.spec.replicas,
          duplicate_window: nanos(this.spec.duplicateWindowMs),
        });
        this.diag.info({ output: this.name, stream: this.spec.stream }, 'stream created');
      }
      this.nc_.streamMissing = false;
      this.ready = true;
      this.failing = false;
      this.lastError = '';
      this.diag.info({ output: this.name, stream: this.spec.stream }, 'connected to NATS JetStream');
      this.pump();
    } catch (e) {
      this.fail(`stream ${this.spec.stream}: ${String((e as Error).message)}`);
      if (!this.closed)
        this.retryTimer = setTimeout(() => this.retry(() => this.checkStream()), this.spec.networkRetryMs);
    }
  }

  private retry(f: () => Promise<void>): void {
    this.retryTimer = null;
    void f();
  }

  private fail(msg: string): void {
    this.counters.errors++;
    this.lastError = msg;
    if (!this.failing) {
      this.failing = true;
      this.applyAction(this.spec.networkFailureAction, this.spec.networkFailureExe, `nats output ${this.name}: ${msg}`);
    }
  }

  protected onAppend(): void {
    this.pump();
  }

  protected pump(): void {
    if (!this.ready || !this.js || this.closed || this.suspended || this.retryTimer || this.failedInFlight) return;
    while (this.inflight.length < this.spec.maxInFlight) {
      const r = this.queue.next();
      if (!r) break;
      const f: InFlight = { end: r.end, done: false, failed: false };
      this.inflight.push(f);
      this.publish(r.data, f);
    }
  }

  private publish(entry: Buffer, f: InFlight): void {
    const nl = entry.indexOf(0x0a);
    const { id, seq, json } = parseEntryHead(entry.toString('utf8', 0, nl));
    const container = json === null ? null : this.spooledContainer(json);
    const lines = entry.toString('latin1', nl + 1).split('\n');
    const contid = contidOf(lines);
    const subject = this.subject(contid, container);
    const body = encodeBody(this.spec.payload, id, this.node, this.spec.daemon, lines, container, contid);
    this.nc_.published++;
    // The daemon travels as a header too, so a collector can split per tenant whatever the subject template is.
    const h = headers();
    h.set(DAEMON_HEADER, this.daemonToken);
    if (seq) h.set(SEQ_HEADER, formatSeqHeader(this.outputToken, seq.epoch, seq.n));
    // Only the configured stream may store it (Nats-Expected-Stream): another stream capturing the subject (the
    // configured one's subjects no longer cover it, another's do) would ack an event the configured stream never
    // got, and the entry would leave the spool. A refusal is a failed publish: kept, retried.
    (this.js as JetStreamClient)
      .publish(subject, body, {
        msgID: id,
        timeout: this.spec.ackTimeoutMs,
        headers: h,
        expect: { streamName: this.spec.stream },
      })
      .then((ack) => {
        // A server that ignores the expectation still names the stream that stored it.
        if (ack.stream !== this.spec.stream) throw new WrongStreamError(ack.stream, this.spec.stream);
        return ack;
      })
      .then(
        (ack) => {
          this.nc_.acked++;
          if (ack.duplicate) this.nc_.duplicates++;
          f.done = true;
          this.commitDone();
        },
        (e: unknown) => {
          this.nc_.publishErrors++;
          this.fail(`publish: ${String((e as Error).message)}`);
          f.done = true;
          f.failed = true;
          this.failedInFlight = true;
          this.commitDone();
        },
      );
  }

  /** Containers read back from spool entries, by their JSON text: most events in a row come from few containers. */
  private readonly parsed = new Map<string, ContainerEntry | null>();

  private spooledContainer(json: string): ContainerEntry | null {
    let e = this.parsed.get(json);
    if (e === undefined) {
      e = parseContainerJson(json);
      if (this.parsed.size >= 256) this.parsed.clear();
      this.parsed.set(json, e);
    }
    return e;
  }

  /** A publish of the window failed: no new ones until every outstanding one settled and the spool was rewound. */
  private failedInFlight = false;

  /**
   * Commits the acknowledged prefix (up to the first failed publish, if any); after a failure, waits for every publish
   * to settle, then resends from the first unacknowledged entry.
   */
  private commitDone(): void {
    let n = 0;
    while (n < this.inflight.length && (this.inflight[n] as InFlight).done && !(this.inflight[n] as InFlight).failed)
      n++;
    if (n > 0) {
      const last = this.inflight[n - 1] as InFlight;
      this.inflight.splice(0, n);
      this.queue.commit(last.end);
      this.counters.delivered += n;
      this.markDirty();
      if (this.failing && !this.failedInFlight) {
        this.failing = false;
        this.lastError = '';
        this.diag.info({ output: this.name }, 'nats output delivering again');
      }
    }
    if (this.failedInFlight) {
      if (this.inflight.some((x) => !x.done)) return;
      // Rewound to the committed cursor, which is the first failed entry: acked ones after it are resent too and the
      // stream drops them as duplicates by id.
      this.inflight = [];
      this.failedInFlight = false;
      this.queue.rewind();
      if (!this.closed && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.pump();
        }, this.spec.networkRetryMs);
      }
      return;
    }
    this.pump();
  }

  protected async shutdown(): Promise<void> {
    this.closeEvent();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    // Give acks in flight a moment so they are committed rather than resent after the restart.
    for (let i = 0; i < 20 && this.inflight.some((x) => !x.done); i++) await new Promise((r) => setTimeout(r, 50));
    this.syncQueue();
    const nc = this.nc;
    this.nc = null;
    this.ready = false;
    if (nc) await nc.close().catch(() => undefined);
  }

  protected override extraStats(): Record<string, number | string | boolean> {
    return { ...this.nc_, inFlight: this.inflight.length, connected: this.ready, stream: this.spec.stream };
  }
}

/** The stream that acknowledged a publish is not the configured one: the event is not committed. */
export class WrongStreamError extends AuditmuxError {
  constructor(got: string, want: string) {
    super('E_NATS_WRONG_STREAM', `stored by stream ${subjectToken(got)}, not ${want}`);
  }
}

const NL = Buffer.from('\n');
const CONTID_KEY = Buffer.from(' contid=', 'latin1');

/** The most bytes CONTAINER_LINE_RE can match: `node=` and a 255-byte name, then the type. */
const CONTAINER_HEAD_MAX = 300;
/**
 * The contid of an event's formatted lines as contidOf reads it from strings (the CONTAINER_ID record's first
 * ` contid=` with a value, up to a space or the ENRICHED separator, quotes off), with a string made only of the head
 * of a line that has the field.
 */
export function contidOfBuffers(lines: readonly Buffer[]): string | null {
  for (const l of lines) {
    let at = l.indexOf(CONTID_KEY);
    if (at < 0 || !CONTAINER_LINE_RE.test(l.toString('latin1', 0, Math.min(l.length, CONTAINER_HEAD_MAX)))) continue;
    for (; at >= 0; at = l.indexOf(CONTID_KEY, at + 1)) {
      const from = at + CONTID_KEY.length;
      let end = from;
      while (end < l.length && end - from < 200 && l[end] !== 0x20 && l[end] !== 0x1d) end++;
      if (end > from) return l.toString('latin1', from, end).replace(/^"|"$/g, '');
    }
  }
  return null;
}
export const DAEMON_HEADER = 'Auditmux-Daemon';
