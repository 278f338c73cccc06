// `auditmux collect`: a durable JetStream pull consumer writing per-node auditd logs, acking only after write and
// flush.
import { performance } from 'node:perf_hooks';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type Consumer,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { IoError } from '../errors';
import { openNoFollow, openReadNoFollow, readBounded, type OpenedFile } from '../safefs';
import { LogWriter } from '../output/logfile';
import type { Diag } from '../output/outputs';
import { natsConnect } from '../output/nats/connect';
import { decodeBody, PayloadError, type DecodedEvent } from '../output/nats/payload';
import { bytesToken, capToken, subjectToken } from '../output/nats/subject';
import { unescapeInterp } from '../records/encode';
import { DAEMON_HEADER } from '../output/nats/output';
import { parseSeqHeader, SEQ_HEADER, SeqHeaderError, type SeqTag } from '../output/nats/seq';
import { Reorderer, type GapInfo, type OrderItem, type PublisherState } from './order';
import type { CollectConfig } from './config';
import { ClaimStore, type ClaimResult } from './claims';
import type { MetricFamily, MetricsExporter } from '../metrics/contract';
import { createMetricsExporter } from '../metrics/exporter';
import { renderExposition } from '../metrics/exposition';
import { writeTextfileAtomic } from '../metrics/textfile';

/** How much of each node's newest logs is read at start to recognise events written but not acknowledged. */
export const TAIL_BYTES = 4 * 1024 * 1024;
/**
 * Line hashes (8 bytes each) of the logs' start tails held at once, over all logs: 128 MiB, some 650 logs of typical
 * 200-byte lines. Past it the tails read longest ago are dropped (their redeliveries are then written again).
 */
export const MAX_TAIL_HASHES = 16 * 1024 * 1024;
/** How far the NATS server's clock may run ahead of the collector's, when telling what was stored after an opening. */
export const CLOCK_SLACK_MS = 60_000;
/**
 * Node logs kept open (least recently written closed first, at a batch's end): each holds a descriptor and a 36 KiB
 * buffer, and node names come from whoever publishes, so their number must not be. The unit allows 16384 files.
 */
export const MAX_OPEN_LOGS = 4096;
/**
 * Msg ids the output makes: NODE-TOKEN:BOOT:TIME:SERIAL[:pN]:dDAEMON-TOKEN, and without the daemon as older outputs
 * made them; anything else is refused.
 */
const MSG_ID_RE =
  /^([A-Za-z0-9_~-]{1,600}):([0-9a-f]{32}|noboot):([0-9]{1,12}\.[0-9]{3}):([0-9]{1,20})(?::p[0-9]{1,6})?(?::d([A-Za-z0-9_~-]{1,200}))?$/;
/** Bytes of events held for ordering, over all publishers (each message is at most 1 MiB). */
export const MAX_HELD_BYTES = 64 * 1024 * 1024;
/** Publishers whose position the collector remembers (nodes x daemons x outputs). */
export const MAX_PUBLISHERS = 65536;
/** Publishers (daemon and output) of one node whose order is kept: a host has a few daemons, each a few outputs. */
export const MAX_PUBLISHERS_PER_NODE = 256;
/** The persisted positions: DIR/collect.order (no node token has a '.', so no node directory is named so). */
const ORDER_FILE = 'collect.order';
const MAX_ORDER_FILE = 16 * 1024 * 1024;
const PUBLISHER_RE = /^[A-Za-z0-9_~-]{1,600} [A-Za-z0-9_~-]{1,200} [A-Za-z0-9_~-]{1,200}$/;
const EPOCH_RE = /^[0-9]{1,16}$/;

const PROM_METRICS: [keyof CollectCounters, string, 'counter' | 'gauge'][] = [
  ['received', 'Messages fetched from the consumer.', 'counter'],
  ['written', 'Events written to a node log.', 'counter'],
  ['lines', 'Record lines written.', 'counter'],
  ['duplicates', 'Messages recognised as already written (by id or in the log tail) and acknowledged.', 'counter'],
  ['redeliveries', 'Messages the server delivered more than once.', 'counter'],
  ['rejected', 'Messages refused as not auditmux events (terminated, not written).', 'counter'],
  ['escaped', 'Record lines received with control bytes in their text, written escaped (\\ooo).', 'counter'],
  ['errors', 'Fetch and write errors.', 'counter'],
  ['claimWaits', 'Events left for redelivery because another instance holds their claim.', 'counter'],
  ['claimTakeovers', 'Stale claims of another instance taken over (that instance stalled or died).', 'counter'],
  [
    'claimOverruns',
    'Events whose claim was taken over while this instance wrote them (possible duplicate).',
    'counter',
  ],
  ['gaps', "Holes in a publisher's order given up on (reorder_wait passed, hold full, new epoch).", 'counter'],
  ['late', 'Events written after later ones of their publisher (their hole was already given up on).', 'counter'],
  ['seqErrors', 'Messages whose Auditmux-Seq header was malformed (written unordered).', 'counter'],
  ['held', 'Events held for ordering, waiting for an earlier one.', 'gauge'],
  ['lag', 'Messages pending on the consumer after the last one received.', 'gauge'],
  ['nodes', 'Node logs open.', 'gauge'],
];

export interface CollectCounters {
  received: number;
  written: number;
  lines: number;
  duplicates: number;
  redeliveries: number;
  rejected: number;
  /** Record lines received with control bytes in their text (written with them escaped). */
  escaped: number;
  lag: number;
  nodes: number;
  errors: number;
  claimWaits: number;
  claimTakeovers: number;
  claimOverruns: number;
  gaps: number;
  late: number;
  seqErrors: number;
  held: number;
}

/** A message that passed the checks, on its way to the log (held first when it carries an order tag). */
interface Checked {
  m: JsMsg;
  /**
   * Delivered before, or stored by the stream before its log was opened (a server that lost its consumer's state in
   * a crash delivers events again as first deliveries), so maybe written by an earlier run: compared with the tail.
   */
  redelivered: boolean;
  /** When the stream stored it (ms since 1970, the server's clock; NaN unknown). */
  storedMs: number;
  /**
   * What it is deduplicated on (recent ids, claims): its id with the daemon when logs are per daemon, so the host's
   * and a tenant's copy of one event each reach their log; without it when they share the node's log, one is written.
   */
  id: string;
  lines: string[];
  node: string;
}

/** A bounded set of recent ids, oldest dropped first. */
export class RecentIds {
  private readonly set = new Set<string>();
  constructor(private readonly max: number) {}
  has(id: string): boolean {
    return this.set.has(id);
  }
  add(id: string): void {
    if (this.set.has(id)) return;
    this.set.add(id);
    if (this.set.size > this.max) this.set.delete(this.set.values().next().value as string);
  }
  get size(): number {
    return this.set.size;
  }
}

/** 52 bits of a line's SHA-256 (exact in a double): a false match among a tail's lines is about 2^-36 likely. */
function lineHash(line: string | Buffer): number {
  const d = createHash('sha256')
    .update(typeof line === 'string' ? Buffer.from(line, 'latin1') : line)
    .digest();
  return d.readUIntBE(0, 6) * 16 + ((d[6] as number) >> 4);
}

/** The lines of a log tail as sorted hashes: 8 bytes a line, where a Set of the line strings took some 140. */
export class TailIndex {
  private readonly hashes: Float64Array;
  constructor(chunks: readonly Buffer[]) {
    const all: number[] = [];
    for (const b of chunks) {
      let start = 0;
      for (let nl = b.indexOf(0x0a); nl >= 0; start = nl + 1, nl = b.indexOf(0x0a, start))
        if (nl > start) all.push(lineHash(b.subarray(start, nl)));
      if (start < b.length) all.push(lineHash(b.subarray(start)));
    }
    this.hashes = Float64Array.from(all).sort();
  }
  has(line: string): boolean {
    const h = lineHash(line);
    const a = this.hashes;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((a[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    return lo < a.length && a[lo] === h;
  }
  get size(): number {
    return this.hashes.length;
  }
}

/** Where a log file was when its node's log was opened: its inode and size. */
interface FoundFile {
  ino: number;
  size: number;
  /** How much of its end is read (TAIL_BYTES for audit.log, a quarter of it for audit.log.1). */
  limit: number;
}

/**
 * The whole lines of the `limit` bytes before `end` of a regular file (not a symlink), as one buffer; null when it is
 * absent or is no longer the file of inode `ino` (rotated away: the caller looks at the next name).
 */
export function tailBytes(file: string, limit = TAIL_BYTES, found?: { ino: number; size: number }): Buffer | null {
  const opened = openReadNoFollow(file, 'collector log', true);
  if (opened === null) return null;
  const { fd, stat: st } = opened;
  try {
    if (found && st.ino !== found.ino) return null;
    const end = Math.min(st.size, found?.size ?? st.size);
    const n = Math.min(end, limit);
    const b = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const r = fs.readSync(fd, b, got, n - got, end - n + got);
      if (r === 0) break;
      got += r;
    }
    let from = 0;
    if (n < end) from = b.indexOf(0x0a) + 1; // a partial first line
    return from > 0 || n === end ? b.subarray(from, got) : Buffer.alloc(0);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Cuts a torn last line (the collector was killed inside a write) off a log the collector owns, so the next line does
 * not glue onto it; the event it belonged to was not acknowledged and comes again.
 */
export function cutTornTail(file: string): number {
  let opened: OpenedFile;
  try {
    opened = openNoFollow(file, fs.constants.O_RDWR, { what: 'collector log' });
  } catch (e) {
    if ((e as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') return 0;
    throw e;
  }
  const { fd, stat: st } = opened;
  try {
    if (st.size === 0) return 0;
    const n = Math.min(st.size, 64 * 1024);
    const b = Buffer.alloc(n);
    fs.readSync(fd, b, 0, n, st.size - n);
    if (b[n - 1] === 0x0a) return 0;
    const nl = b.lastIndexOf(0x0a);
    const keep = nl < 0 ? (n === st.size ? 0 : st.size - n) : st.size - n + nl + 1;
    fs.ftruncateSync(fd, keep);
    fs.fsyncSync(fd);
    return st.size - keep;
  } finally {
    fs.closeSync(fd);
  }
}

interface NodeLog {
  token: string;
  file: string;
  writer: LogWriter;
  /**
   * audit.log and audit.log.1 as found at opening: their ends hold what was written before a crash, perhaps never
   * acknowledged. Read only when a message that may be there comes for this log (redelivered, or stored before the
   * opening), and only up to their size then: what this instance wrote since is known by id.
   */
  found: FoundFile[];
  /** Those lines' hashes once read; null: not read, or dropped. */
  tail: TailIndex | null;
  /** Whether the tail may still be read: until it is read, or 2 x ack_wait passed since the opening. */
  tailUnread: boolean;
  /** When it was opened: its tail is needed only for what was in flight then (redelivered within ack_wait). */
  openedAt: number;
  /** The same in ms since 1970, compared with the stream's store times. */
  openedWall: number;
}

/**
 * One collector instance. Several instances may share the durable consumer (the server hands each message to one of
 * them); each writes its own directory. Within an instance an event is written once: by msg id while running, and
 * by its exact lines against the log tail after a restart (written, then killed before the ack).
 */
/**
 * A node's (or daemon's) directory name: its token, or past 200 bytes (a file name's limit is 255) its first 167
 * and `~~` and 32 hex digits of its SHA-256. Cutting alone would give two long tokens with one beginning one
 * directory, and two writers one file. No token holds `~~` (subject.ts), so a short token never names a long one's.
 */
export function dirPart(token: string): string {
  return capToken(token, 200, 167);
}

export class Collector {
  readonly counters: CollectCounters = {
    received: 0,
    written: 0,
    lines: 0,
    duplicates: 0,
    redeliveries: 0,
    rejected: 0,
    escaped: 0,
    lag: 0,
    nodes: 0,
    errors: 0,
    claimWaits: 0,
    claimTakeovers: 0,
    claimOverruns: 0,
    gaps: 0,
    late: 0,
    seqErrors: 0,
    held: 0,
  };
  /** Null when reorder_wait is 0: events are written in the order they arrive. */
  private order: Reorderer<Checked> | null = null;
  private wakeLoop: (() => void) | null = null;
  private orderTimer: NodeJS.Timeout | null = null;
  private claims: ClaimStore | null = null;
  private nc: NatsConnection | null = null;
  private consumer: Consumer | null = null;
  private readonly logs = new Map<string, NodeLog>();
  /** Logs whose tail is held, read longest ago first, and their hashes in all (MAX_TAIL_HASHES). */
  private readonly tails = new Set<NodeLog>();
  private tailHashes = 0;
  /** MAX_TAIL_HASHES (a test sets fewer). */
  private maxTailHashes = MAX_TAIL_HASHES;
  /** MAX_OPEN_LOGS (a test sets fewer). */
  private maxOpenLogs = MAX_OPEN_LOGS;
  private readonly recent: RecentIds;
  private running = false;
  private loop: Promise<void> | null = null;
  private stopConsume: (() => void) | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private exporter: MetricsExporter | null = null;
  private lastError = '';

  constructor(
    private readonly cfg: CollectConfig,
    private readonly diag: Diag,
  ) {
    this.recent = new RecentIds(cfg.recentIds);
    if (cfg.reorderWaitMs > 0) this.order = this.makeOrder(cfg.reorderMax);
  }

  private makeOrder(maxHeld: number): Reorderer<Checked> {
    return new Reorderer<Checked>({
      waitMs: this.cfg.reorderWaitMs,
      maxHeld,
      maxHeldBytes: MAX_HELD_BYTES,
      maxPublishers: MAX_PUBLISHERS,
      maxPerNode: MAX_PUBLISHERS_PER_NODE,
      onGap: (g) => this.gap(g),
    });
  }

  private gap(g: GapInfo): void {
    // Every part is a token or digits (checked when parsed): nothing from the publisher reaches the log unescaped.
    const [node, daemon, output] = g.publisher.split(' ');
    if (g.reason === 'start') {
      this.diag.info(
        { node, daemon, output, epoch: g.epoch, from: g.from, to: g.to },
        'publisher first seen past its first events: starting where its events begin',
      );
      return;
    }
    this.diag.warn(
      { node, daemon, output, epoch: g.epoch, from: g.from, to: g.to, reason: g.reason },
      'order gap passed: events of this publisher are missing or came too late',
    );
  }

  /** Checks the durable consumer, creating it when missing and allowed; its max_ack_pending bounds the hold. */
  private async openConsumer(): Promise<{ jsm: JetStreamManager; maxAckPending: number }> {
    const nc = this.nc!;
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.consumers.info(this.cfg.stream, this.cfg.consumer);
    } catch (e) {
      const msg = String((e as Error).message);
      if (/stream not found/i.test(msg)) throw new IoError(`stream ${this.cfg.stream} does not exist`, 'E_NATS_STREAM');
      if (!/consumer not found/i.test(msg)) throw e;
      if (!this.cfg.createConsumer)
        throw new IoError(
          `consumer ${this.cfg.consumer} of stream ${this.cfg.stream} does not exist and create_consumer is off`,
          'E_NATS_CONSUMER',
        );
      await jsm.consumers
        .add(this.cfg.stream, {
          durable_name: this.cfg.consumer,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(this.cfg.ackWaitMs),
          // Held events stay unacknowledged: room for twice the hold, so the missing one can still be delivered.
          max_ack_pending: Math.max(1000, this.cfg.batch * 4, this.cfg.reorderMax * 2),
          ...(this.cfg.filterSubject ? { filter_subject: this.cfg.filterSubject } : {}),
        })
        .catch((err: Error) => {
          // Another instance created it first: that is the shared consumer.
          if (!/already (exists|in use)/i.test(err.message)) throw err;
        });
    }
    this.consumer = await jetstream(nc).consumers.get(this.cfg.stream, this.cfg.consumer);
    // get() fetched the consumer's info: its cached copy, no second request.
    const info = await this.consumer.info(true);
    return { jsm, maxAckPending: info.config.max_ack_pending ?? -1 };
  }

  /**
   * Runs `step` until it succeeds, again while JetStream does not answer (timeouts, no responders, 503: a cluster
   * without its leaders), with a growing pause, up to `start_wait`; any other error, or the last one, is thrown.
   */
  private async whenJetStream<T>(what: string, step: () => Promise<T>): Promise<T> {
    const end = performance.now() + this.cfg.startWaitMs;
    let pause = 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (e) {
        if (!jetStreamUnavailable(e) || performance.now() + pause > end || (this.nc?.isClosed() ?? true)) throw e;
        this.diag.warn({ err: (e as Error).message, attempt }, `JetStream not answering; waiting to ${what}`);
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 4000);
      }
    }
  }

  /**
   * Connects, checks or creates the durable consumer; throws a clear error when it is missing and creation is off.
   * JetStream that does not answer yet (a cluster electing its leaders, a server still starting) is waited for, up
   * to `start_wait`.
   */
  async start(): Promise<void> {
    fs.mkdirSync(this.cfg.dir, { recursive: true, mode: 0o750 });
    this.nc = await natsConnect(this.cfg, `auditmux collect ${this.cfg.consumer}`, 1000);
    const { jsm, maxAckPending } = await this.whenJetStream('open the consumer', () => this.openConsumer());
    if (this.order) {
      // A consumer made elsewhere may allow fewer unacknowledged messages: hold at most half of them, so the server
      // can still deliver the event the held ones wait for.
      const bound = maxAckPending > 0 ? Math.max(1, Math.min(this.cfg.reorderMax, Math.floor(maxAckPending / 2))) : 0;
      if (bound > 0 && bound < this.cfg.reorderMax) {
        this.diag.warn({ maxAckPending, held: bound }, 'consumer max_ack_pending bounds the events held for order');
        this.order = this.makeOrder(bound);
      }
      this.loadOrder();
    }
    if (this.cfg.claims) {
      const claims = new ClaimStore(this.cfg.claims, jetstream(this.nc), jsm, this.cfg.consumer);
      await this.whenJetStream('open the claims stream', () => claims.ensure());
      this.claims = claims;
    }
    if (this.cfg.metrics) {
      this.exporter = createMetricsExporter(this.cfg.metrics, this, (e) =>
        this.diag.warn({ err: e.message }, 'metrics not written'),
      );
      await this.exporter.start();
    }
    this.running = true;
    this.statusTimer = setInterval(() => this.writeStatus(), 1000);
    if (this.order) {
      const order = this.order;
      this.orderTimer = setInterval(
        () => {
          const now = performance.now();
          // Held events are not redelivered meanwhile: the server is told they are being worked on.
          for (const c of order.stale(now, this.cfg.ackWaitMs / 3)) c.m.working();
          if (order.due(now)) this.wakeLoop?.();
        },
        Math.max(50, Math.min(1000, this.cfg.reorderWaitMs / 4, this.cfg.ackWaitMs / 4)),
      );
    }
    this.loop = this.run();
  }

  /**
   * Consumes continuously and handles whatever has arrived as one batch (up to `batch`): under load batches fill up
   * while the previous one is written; when idle an event is written as soon as it comes, not after a fetch expires.
   */
  private async run(): Promise<void> {
    while (this.running) {
      try {
        const msgs = await (this.consumer as Consumer).consume({ max_messages: this.cfg.batch, expires: 5000 });
        const queue: JsMsg[] = [];
        let wake: (() => void) | null = null;
        let ended = false;
        const poke = (): void => {
          const w = wake;
          wake = null;
          w?.();
        };
        this.stopConsume = () => {
          msgs.stop();
          poke();
        };
        this.wakeLoop = poke;
        // Its failure (the server ends the consumer: a deleted consumer, a 409) is kept and thrown below, where the
        // loop retries: a rejection left unhandled while the loop waits would end the process.
        let pumpError: unknown = null;
        const pump = (async () => {
          try {
            for await (const m of msgs) {
              queue.push(m);
              poke();
            }
          } finally {
            ended = true;
            poke();
          }
        })().catch((e: unknown) => {
          pumpError = e;
        });
        try {
          while (this.running) {
            if (queue.length === 0) {
              if (this.order?.due(performance.now())) {
                await this.handle([]);
                continue;
              }
              if (ended) break;
              await new Promise<void>((r) => (wake = r));
              continue;
            }
            // One macrotask first: the iterator hands over what already arrived one microtask at a time, and without
            // this each batch (and its fdatasync) held a single message.
            if (queue.length < this.cfg.batch) await new Promise((r) => setImmediate(r));
            await this.handle(queue.splice(0, this.cfg.batch));
          }
        } finally {
          // Also when a batch failed: the next try consumes anew, and this iterator must not go on fetching.
          msgs.stop();
        }
        await pump;
        if (pumpError !== null) throw pumpError;
      } catch (e) {
        if (!this.running) break;
        this.counters.errors++;
        this.lastError = String((e as Error).message);
        this.diag.warn({ err: this.lastError }, 'consume failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /**
   * Writes a batch, flushes every log it touched, then acknowledges: an ack always follows the data on disk. Events
   * with an order tag pass the reorderer first: one ahead of its publisher's next number is held (unacknowledged) and
   * written later, with the ones before it. With claims, each event is first claimed for this instance, written only
   * while the claim is fresh, and marked written before the ack (see ClaimStore for the bound this gives).
   */
  async handle(batch: JsMsg[]): Promise<void> {
    const acks: JsMsg[] = [];
    const ready: OrderItem<Checked>[] = [];
    const now = performance.now();
    for (const m of batch) {
      const c = this.check(m);
      if (!c) continue;
      if (c.tag && this.order)
        ready.push(...this.order.offer(c.publisher, c.tag, c.item.id, m.data.length, c.item, now));
      else ready.push({ value: c.item, late: false });
    }
    if (this.order) {
      ready.push(...this.order.expire(now));
      this.counters.held = this.order.held;
      this.counters.gaps = this.order.gaps;
    }
    const cands: { m: JsMsg; id: string; log: NodeLog; node: string; fresh: string[]; late: boolean }[] = [];
    const inBatch = new Set<string>();
    for (const { value: c, late } of ready) {
      const { m, id } = c;
      if (this.recent.has(id) || inBatch.has(id)) {
        this.counters.duplicates++;
        acks.push(m);
        continue;
      }
      let log: NodeLog;
      try {
        log = this.nodeLog(c.node);
      } catch (e) {
        // This node's log cannot be opened (a planted symlink, a full disk): the others' events still go through.
        this.counters.errors++;
        this.lastError = `log of ${c.node}: ${String((e as Error).message)}`;
        this.diag.error(
          { node: c.node, err: this.lastError },
          'node log cannot be opened; message left for redelivery',
        );
        m.nak(5000);
        continue;
      }
      // Lines carry the event's stamp, so a line already in the tail was written by this event before a crash.
      // A message stored after the opening (by more than the clocks may differ) was never delivered to an earlier run,
      // so its lines cannot be there: most messages, and most logs never need their tail read.
      const maybeWritten = c.redelivered || !(c.storedMs > log.openedWall + CLOCK_SLACK_MS);
      const tail = maybeWritten ? this.tailOf(log) : null;
      const fresh = tail ? c.lines.filter((l) => !tail.has(l)) : c.lines;
      if (fresh.length === 0) {
        this.counters.duplicates++;
        this.recent.add(id);
        acks.push(m);
        continue;
      }
      inBatch.add(id);
      cands.push({ m, id, log, node: c.node, fresh, late });
    }
    const claims = this.claims;
    const claimed: (ClaimResult | Error | null)[] = claims
      ? await Promise.all(cands.map((c) => claims.acquire(c.id).catch((e: Error) => e)))
      : cands.map(() => null);
    const touched = new Set<NodeLog>();
    const written: { id: string; seq: number; at: number; m: JsMsg }[] = [];
    /** Buffered in their logs: acknowledged once their log's flush (its write and the sync its mode asks) succeeded. */
    const buffered: { c: (typeof cands)[number]; cl: Extract<ClaimResult, { kind: 'own' }> | null }[] = [];
    for (const [i, c] of cands.entries()) {
      const cl = claimed[i] ?? null;
      if (cl instanceof Error) {
        this.counters.errors++;
        this.lastError = `claim: ${cl.message}`;
        c.m.nak(1000);
        continue;
      }
      if (cl && cl.kind === 'written') {
        // Another instance wrote it (and may not have acknowledged it yet): nothing to write here.
        this.counters.duplicates++;
        this.recent.add(c.id);
        acks.push(c.m);
        continue;
      }
      if (cl && cl.kind !== 'own') {
        this.counters.claimWaits++;
        c.m.nak(cl.kind === 'wait' ? cl.ms : 1000);
        continue;
      }
      if (cl && !(claims as ClaimStore).mayWrite(cl)) {
        // Claimed too long ago to still be sure no other instance takes it over while this one writes.
        this.counters.claimWaits++;
        c.m.nak(0);
        continue;
      }
      if (cl?.tookOverFrom !== undefined) {
        this.counters.claimTakeovers++;
        this.diag.warn({ id: c.id, from: cl.tookOverFrom }, 'stale claim of another instance taken over');
      }
      touched.add(c.log);
      // A suspended log (disk full, max_log_file_action suspend) takes nothing: the event is redelivered later.
      if (!c.fresh.every((l) => c.log.writer.writeLine(Buffer.from(l, 'latin1')))) {
        this.counters.errors++;
        this.lastError = `log of ${c.node} refused a write (suspended?)`;
        c.m.nak(5000);
        continue;
      }
      buffered.push({ c, cl });
    }
    const failed = new Set<NodeLog>();
    for (const l of touched) if (!l.writer.flush()) failed.add(l);
    for (const { c, cl } of buffered) {
      if (failed.has(c.log)) {
        // Its log's write or sync failed (ENOSPC, EIO): not acknowledged, so the server sends it again. Lines of it
        // that did reach the file before the failure are written again then: a duplicate line, never a lost one.
        this.counters.errors++;
        this.lastError = `log of ${c.node} failed to write or sync`;
        c.m.nak(5000);
        continue;
      }
      this.counters.written++;
      if (c.late) this.counters.late++;
      this.counters.lines += c.fresh.length;
      this.recent.add(c.id);
      if (cl) written.push({ id: c.id, seq: cl.seq, at: cl.at, m: c.m });
      else acks.push(c.m);
    }
    if (this.order?.dirty) this.saveOrder();
    if (claims && written.length) {
      const marked = await Promise.all(written.map((w) => claims.markWritten(w.id, w.seq).catch(() => false)));
      for (const [i, w] of written.entries()) {
        if (!marked[i]) {
          // Taken over while this instance wrote: the other instance may write it too. Counted, never silent.
          this.counters.claimOverruns++;
          this.lastError = `claim of ${w.id} was taken over while it was written`;
          this.diag.error({ id: w.id }, 'claim overrun: this event may be written by another instance too');
        }
        acks.push(w.m);
      }
    }
    for (const m of acks) m.ack();
    this.trimLogs();
  }

  /**
   * After a batch: the least recently written logs past MAX_OPEN_LOGS are closed (opened again when their node
   * writes), and a log's start tail goes once anything in flight at its opening was redelivered (2 x ack_wait).
   */
  private trimLogs(): void {
    for (const [token, l] of this.logs) {
      if (this.logs.size <= this.maxOpenLogs) break;
      l.writer.flush();
      l.writer.close();
      this.dropTail(l);
      this.logs.delete(token);
    }
    this.counters.nodes = this.logs.size;
    const now = performance.now();
    for (const l of this.logs.values()) if (now - l.openedAt > 2 * this.cfg.ackWaitMs) this.dropTail(l);
  }

  /** A log's start tail, read at the first redelivery that needs it; null when there is none (anymore). */
  private tailOf(l: NodeLog): TailIndex | null {
    if (!l.tailUnread) return l.tail;
    l.tailUnread = false;
    if (performance.now() - l.openedAt > 2 * this.cfg.ackWaitMs) return null;
    const chunks: Buffer[] = [];
    for (const f of l.found) {
      // Found at opening as audit.log.K; rotated since (ino kept by the rename), it is a later name now.
      for (let k = 0; k <= 3; k++) {
        const b = tailBytes(k === 0 ? l.file : `${l.file}.${k}`, f.limit, f);
        if (b !== null) {
          chunks.push(b);
          break;
        }
      }
    }
    const tail = new TailIndex(chunks);
    if (tail.size === 0) return null;
    // Within the budget: the tails read longest ago go first (their redeliveries most likely came already).
    for (const old of this.tails) {
      if (this.tailHashes + tail.size <= this.maxTailHashes) break;
      this.diag.warn({ node: old.token }, 'log tail dropped (tail budget): its redeliveries are not compared');
      this.dropTail(old);
    }
    if (this.tailHashes + tail.size > this.maxTailHashes) {
      this.diag.warn({ node: l.token }, 'log tail not kept (tail budget): its redeliveries are not compared');
      return null;
    }
    l.tail = tail;
    this.tails.add(l);
    this.tailHashes += tail.size;
    return tail;
  }

  private dropTail(l: NodeLog): void {
    l.tailUnread = false;
    if (!l.tail) return;
    this.tailHashes -= l.tail.size;
    this.tails.delete(l);
    l.tail = null;
  }

  /**
   * Checks one message as whoever published it could have made it: refused (terminated, counted) unless it is an
   * auditmux event; its order tag, when malformed, is counted and ignored (the event is still written).
   */
  private check(m: JsMsg): { item: Checked; tag: SeqTag | null; publisher: string } | null {
    this.counters.received++;
    let id: string;
    let ev: DecodedEvent;
    let idm: RegExpExecArray | null;
    let d: string;
    let sh: string;
    let redelivered: boolean;
    let storedMs: number;
    try {
      // Inside the refusal: nats.js decodes the headers on first use and throws on a header name with a space, a
      // control or a non-ASCII byte, and m.info throws on a reply subject that is not a JetStream ack subject. Thrown
      // out of here, the batch failed whole and the message came back for good, stopping every node's collection.
      const info = m.info;
      redelivered = info.redelivered;
      storedMs = info.timestampNanos / 1e6;
      if (redelivered) this.counters.redeliveries++;
      this.counters.lag = info.pending;
      const h = m.headers;
      id = h?.get('Nats-Msg-Id') ?? '';
      d = h?.get(DAEMON_HEADER) ?? '';
      sh = h?.get(SEQ_HEADER) ?? '';
      idm = MSG_ID_RE.exec(id);
      if (!idm) throw new PayloadError(`Nats-Msg-Id "${subjectToken(id.slice(0, 80))}" is not an auditmux event id`);
      ev = decodeBody(m.data);
      if (ev.time !== idm[3] || ev.serial !== idm[4])
        throw new PayloadError('Nats-Msg-Id names another event than its lines');
      const problem = this.nodeProblem(m.subject, idm[1] as string, ev.node);
      if (problem) throw new PayloadError(problem);
      if (idm[5] !== undefined && d !== '' && d !== idm[5])
        throw new PayloadError(`Nats-Msg-Id names daemon "${idm[5]}", the ${DAEMON_HEADER} header another`);
    } catch (e) {
      // Whatever failed, the message is refused, never thrown: the rest of the batch goes on.
      this.refuse(m, e instanceof PayloadError ? e.message : `unreadable message: ${printable(e)}`);
      return null;
    }
    this.counters.escaped += ev.escaped;
    // The id's token, checked against the subject's and the lines' (unless node_token is 0: the lines' then, as
    // before). A token of the lines' escaped text would differ from it for any name the escape changes.
    const node = this.cfg.nodeToken === 0 && ev.node !== null ? lineNodeToken(ev.node) : (idm[1] as string);
    // The id's daemon (checked: a token, the header's), else the header from whoever published: used only if it is
    // already a token ([A-Za-z0-9_~-]), never as a path.
    const idDaemon = idm[5];
    const daemon = idDaemon ?? (/^[A-Za-z0-9_~-]{1,200}$/.test(d) ? d : '~');
    const core = idDaemon === undefined ? id : id.slice(0, id.length - idDaemon.length - 2);
    const key = this.cfg.perDaemon ? `${core}:d${daemon}` : core;
    let tag: SeqTag | null = null;
    if (sh !== '') {
      try {
        tag = parseSeqHeader(sh);
      } catch (e) {
        if (!(e instanceof SeqHeaderError)) throw e;
        this.counters.seqErrors++;
        this.lastError = `message ${m.seq}: ${e.message}`;
        this.diag.warn({ seq: m.seq, reason: e.message }, 'order header refused; event written unordered');
      }
    }
    return {
      item: {
        m,
        redelivered,
        storedMs,
        id: key,
        lines: ev.lines,
        node: this.cfg.perDaemon ? `${node}/${daemon}` : node,
      },
      tag,
      publisher: tag ? `${node} ${daemon} ${tag.output}` : '',
    };
  }

  /** Counts, reports (the subject escaped: it came from whoever published) and terminates a refused message. */
  private refuse(m: JsMsg, reason: string): void {
    this.counters.rejected++;
    let seq = -1;
    try {
      seq = m.seq; // parsed from the reply subject, which may be what was wrong
    } catch {
      // reported as -1
    }
    this.diag.warn(
      {
        subject: m.subject
          .split('.')
          .map((t) => subjectToken(t))
          .join('.'),
        seq,
        reason,
      },
      'message refused',
    );
    try {
      m.term();
    } catch (e) {
      // A connection closed meanwhile: the message comes again and is refused again.
      this.lastError = `term: ${printable(e)}`;
    }
  }

  /**
   * Why a message may not be written as its node's (null when it may): the node its subject names (node_token) must
   * be the one its id and its lines name. Publish permissions are granted by subject, so this is what keeps a host
   * that may publish only under `audit.<itself>.>` out of another node's log.
   */
  private nodeProblem(subject: string, idNode: string, lineNode: string | null): string | null {
    const at = this.cfg.nodeToken;
    if (at === 0) return null;
    const tok = subject.split('.')[at - 1];
    const fromLines = lineNode === null ? idNode : lineNodeToken(lineNode);
    if (tok === idNode && fromLines === idNode) return null;
    const why = `subject token ${at} names node "${subjectToken(tok ?? '')}", the id "${idNode}", the lines "${fromLines}"`;
    // Id and lines agree and another token of the subject is that node: most likely outputs whose subject template
    // puts {node} elsewhere than the collector's node_token expects (an upgrade from before node_token), so say so.
    const other = subject.split('.').indexOf(idNode);
    return fromLines === idNode && other >= 0
      ? `${why}; token ${other + 1} names it: if the outputs' subject puts {node} there, set node_token: ${other + 1}`
      : why;
  }

  /** Reads the publishers' positions written before a restart; a damaged file is reported and ignored. */
  private loadOrder(): void {
    const file = path.join(this.cfg.dir, ORDER_FILE);
    let text: string;
    try {
      text = readBounded(file, { limit: MAX_ORDER_FILE, noFollow: true, what: 'collector order state' }).data.toString(
        'utf8',
      );
    } catch (e) {
      if ((e as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT') return;
      this.diag.warn({ file, err: String((e as Error).message) }, 'order state not read; publishers start afresh');
      return;
    }
    const state = parseOrderState(text);
    if (state.bad) this.diag.warn({ file, bad: state.bad }, 'order state entries ignored (damaged)');
    this.order?.restore(state.publishers);
  }

  /** Writes every publisher's position (after the flush, before the acks): a restart resumes where this one was. */
  private saveOrder(): void {
    const order = this.order as Reorderer<Checked>;
    order.dirty = false;
    try {
      writeTextfileAtomic(
        path.join(this.cfg.dir, ORDER_FILE),
        JSON.stringify({ v: 1, publishers: order.snapshot() }) + '\n',
        0o640,
      );
    } catch (e) {
      this.counters.errors++;
      this.lastError = `order state: ${String((e as Error).message)}`;
      this.diag.warn({ err: this.lastError }, 'order state not written');
    }
  }

  /** The log of one node: DIR/NODE-TOKEN/audit.log; the token has no '/', no '.', so it stays inside DIR. */
  private nodeLog(token: string): NodeLog {
    let l = this.logs.get(token);
    if (l) {
      // Most recently written last: trimLogs closes from the front.
      this.logs.delete(token);
      this.logs.set(token, l);
      return l;
    }
    // NODE or NODE/DAEMON, each part a token: no '.', no '/', so every directory stays inside DIR.
    let dir = this.cfg.dir;
    for (const part of token.split('/')) {
      dir = path.join(dir, dirPart(part));
      try {
        fs.mkdirSync(dir, { mode: 0o750 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      // A symlink planted where a node directory goes would send the node's log elsewhere.
      if (!fs.lstatSync(dir).isDirectory()) throw new IoError(`${dir} is not a directory (refused)`, 'E_NOT_DIR');
    }
    const file = path.join(dir, 'audit.log');
    const cut = cutTornTail(file);
    if (cut) this.diag.warn({ node: token, bytes: cut }, 'torn last line of the log removed');
    // Only where the files end now is noted: their tails are read if a redelivery comes (tailOf).
    const found: FoundFile[] = [];
    for (const [f, limit] of [
      [`${file}.1`, TAIL_BYTES / 4],
      [file, TAIL_BYTES],
    ] as const) {
      try {
        const st = fs.lstatSync(f);
        if (st.isFile() && st.size > 0) found.push({ ino: st.ino, size: st.size, limit });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    const writer = new LogWriter({
      path: file,
      format: this.cfg.log.format,
      flush: this.cfg.log.flush,
      freq: 50,
      maxLogFileMiB: this.cfg.log.maxLogFileMiB,
      numLogs: this.cfg.log.numLogs,
      maxLogFileAction: this.cfg.log.maxLogFileAction,
      logger: (level, msg) =>
        this.diag[level === 'info' ? 'info' : level === 'warn' ? 'warn' : 'error']({ node: token }, msg),
    });
    writer.open();
    l = {
      token,
      file,
      writer,
      found,
      tail: null,
      tailUnread: found.length > 0,
      openedAt: performance.now(),
      openedWall: Date.now(),
    };
    this.logs.set(token, l);
    this.counters.nodes = this.logs.size;
    return l;
  }

  status(): Record<string, number | string> {
    return {
      ...this.counters,
      recentIds: this.recent.size,
      publishers: this.order?.publishers ?? 0,
      unordered: this.order?.unordered ?? 0,
      lastError: this.lastError,
    };
  }

  /** The counters as metric families, labelled with the stream and the consumer. */
  metrics(): MetricFamily[] {
    const labels = { stream: this.cfg.stream, consumer: this.cfg.consumer };
    return PROM_METRICS.map(([k, help, type]) => ({
      name: `auditmux_collect_${k.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)}${type === 'counter' ? '_total' : ''}`,
      help,
      type,
      samples: [{ labels, value: this.counters[k] }],
    }));
  }

  /** The counters in the Prometheus text format. */
  prometheus(): string {
    return renderExposition(this.metrics());
  }

  /** The address metrics are served on (listen: with port 0 this is the port the system chose), else null. */
  metricsAddress(): { host: string; port: number } | null {
    return this.exporter?.address() ?? null;
  }

  /** Status as a file (`auditmux collect --status` reads it): written to a temporary name, then renamed. */
  private writeStatus(): void {
    try {
      writeTextfileAtomic(this.cfg.statusFile, JSON.stringify(this.status()) + '\n');
    } catch (e) {
      this.diag.warn({ file: this.cfg.statusFile, err: String((e as Error).message) }, 'status file not written');
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopConsume?.();
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = null;
    if (this.orderTimer) clearInterval(this.orderTimer);
    this.orderTimer = null;
    await this.loop?.catch(() => undefined);
    this.writeStatus();
    await this.exporter?.stop();
    this.exporter = null;
    for (const l of this.logs.values()) {
      l.writer.flush();
      l.writer.close();
    }
    this.logs.clear();
    this.tails.clear();
    this.tailHashes = 0;
    await this.nc?.close().catch(() => undefined);
    this.nc = null;
  }
}

/**
 * The subject token of a line's node= value: its `\\ooo` escapes (nodeText: a space, a backslash, controls and every
 * byte above 0x7e) undone, then its bytes escaped as the output escaped the name's UTF-8 bytes for the id and the
 * subject, so the two compare byte for byte. The line is latin1 (one char a byte): no UTF-8 decoding in between,
 * which would turn an invalid sequence into U+FFFD and make two names one.
 */
export function lineNodeToken(lineNode: string): string {
  return bytesToken(Buffer.from(unescapeInterp(lineNode), 'latin1'));
}

/**
 * An error's name and message for the diagnostics: printable ASCII only (a client error may quote a header name the
 * publisher chose), at most 200 characters.
 */
export function printable(e: unknown): string {
  let text: string;
  try {
    text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  } catch {
    text = 'an error that cannot be shown';
  }
  return text.slice(0, 200).replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Whether an error says JetStream is not answering yet rather than refusing: a request timeout, no responders (the
 * server's JetStream not up), or the API's 503 (a cluster without its metadata or stream leader). Names are compared,
 * not classes: the client's error classes are re-exported by more than one of its packages.
 */
export function jetStreamUnavailable(e: unknown, depth = 0): boolean {
  if (e instanceof JetStreamApiError) return e.status === 503;
  const err = e as (Error & { cause?: unknown }) | undefined;
  const name = err?.name;
  if (name === 'TimeoutError' || name === 'NoResponders' || name === 'JetStreamNotEnabled') return true;
  // A failed request carries what failed it.
  return name === 'RequestError' && depth < 4 && err?.cause !== undefined && jetStreamUnavailable(err.cause, depth + 1);
}

/**
 * The order state file's text: `{"v":1,"publishers":{"NODE DAEMON OUTPUT":[EPOCH,NEXT,EARLIER...]}}`. The collector
 * wrote it, but it is read strictly anyway: entries that are not tokens and digits are counted and dropped.
 */
export function parseOrderState(text: string): { publishers: Record<string, PublisherState>; bad: number } {
  const publishers: Record<string, PublisherState> = {};
  let bad = 0;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { publishers, bad: 1 };
  }
  const pubs = (doc as { v?: unknown; publishers?: unknown } | null)?.publishers;
  if ((doc as { v?: unknown } | null)?.v !== 1 || typeof pubs !== 'object' || pubs === null || Array.isArray(pubs))
    return { publishers, bad: 1 };
  let n = 0;
  for (const [k, v] of Object.entries(pubs as Record<string, unknown>)) {
    if (++n > MAX_PUBLISHERS) {
      bad++;
      continue;
    }
    const ok =
      PUBLISHER_RE.test(k) &&
      Array.isArray(v) &&
      v.length >= 2 &&
      v.length <= 6 &&
      typeof v[0] === 'string' &&
      EPOCH_RE.test(v[0]) &&
      Number.isSafeInteger(v[1]) &&
      (v[1] as number) >= 1 &&
      v.slice(2).every((e) => typeof e === 'string' && EPOCH_RE.test(e));
    if (ok) publishers[k] = v as PublisherState;
    else bad++;
  }
  return { publishers, bad };
}
