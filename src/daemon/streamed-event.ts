// An event written to its destinations record by record as the kernel's records come (the reassembler's pass-through).
import { Buffer } from 'node:buffer';
import { MsgType } from '../kernel/constants';
import { bufferView } from '../bytes';
import type { CompletionReason, PassThrough } from '../records/reassembler';
import type { EventRecord } from '../records/event';
import type { Sink } from '../output/sink';
import type { Chain } from '../contid/chain';

/** A daemon that takes an event's records one by one as they come (an inline auxiliary daemon, AuxDaemon). */
export interface RecordStream {
  /** One event begins (counted delivered, as an event written whole). */
  beginStream(): void;
  /** The event begun is taken back: it comes again whole (not counted twice). */
  cancelStream(): void;
  /** One record, src[start, end); false when the daemon's writer failed (it is reopened as after a crash). */
  streamRecord(type: number, src: Buffer, start: number, end: number): boolean;
  /** The daemon has outputs (plugins get EOE, as auditd's dispatcher sends it); its log alone skips EOE. */
  readonly takesEoe: boolean;
}

export interface StreamedEventHooks {
  /** An event to the host's log and outputs whole (see toHost; an event whose daemon is gone). */
  toHost(records: readonly EventRecord[]): void;
  /** An event whole to daemon `name` (DaemonRegistry.enqueue): true taken, false dropped, undefined no such daemon. */
  enqueue(name: string, records: EventRecord[]): boolean | undefined;
  /** Per-container counters, as for an event routed whole. */
  noteEvent(chain: Chain, routed: number, dropped: number): void;
  /** An event whose daemon is gone went to the host (counted as record-path.ts counts it for an event made whole). */
  noDaemon(): void;
}

/** A record that outlives the kernel's batch: its own bytes. */
function owned(type: number, src: Buffer, start: number, end: number): EventRecord {
  return { type, payload: Buffer.from(bufferView(src, start, end - start)) };
}

function ownedRecord(r: EventRecord): EventRecord {
  return { type: r.type, payload: Buffer.from(r.payload) };
}

const EMPTY = Buffer.alloc(0);

/** The header `audit(...): ` an EOE carries is at most this long (20 + 3 + 10 digits and the punctuation). */
const EOE_MAX = 64;

/**
 * Why: in event mode each record became an object, each event an object and an array, held until the event's last
 * record, then routed and written: two to three times the JavaScript of the stream path, where a record is written
 * where it lies in the batch. A syscall event's destinations are known from its SYSCALL record (the key field, the
 * process's contid) once no route asks for record types and the kernel sends no CONTAINER_ID record: the records
 * after it go to those destinations as they come. A destination that needs the event whole (a JSON log, a queued,
 * held or process daemon) gets it at its end, from copies. One object serves event after event: the reassembler
 * passes one event through at a time and ends it before the next begins.
 */
export class StreamedEvent implements PassThrough {
  private chain: Chain | null = null;
  /** The host's sink when the host takes the records as they come. */
  private host: Sink | null = null;
  /** The host is a destination of the event (streamed or collected). */
  private hostHas = false;
  private readonly streams: Array<RecordStream | null> = [];
  private readonly streamNames: string[] = [];
  /** Each stream's shaped head as routing made it (views of the batch until endBatch copies them). */
  private readonly heads: Array<readonly EventRecord[] | null> = [];
  private nStreams = 0;
  /**
   * Destinations that get the event whole at its end: a daemon's name (null: the host), its shaped head and what came
   * before, copied, and where its share of `rest` starts.
   */
  private readonly collectors: Array<{ name: string | null; head: EventRecord[]; from: number }> = [];
  /** Copies of the records after the head, kept while some destination collects. */
  private rest: EventRecord[] | null = null;
  /**
   * The records after the head in this batch, by position (no object per record): what a stream whose writer fails
   * gets again whole, from copies made then. Records of earlier batches were copied into `past` at their end.
   */
  private readonly types: number[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly srcs: Buffer[] = [];
  private seen = 0;
  private past: EventRecord[] | null = null;
  private routed = 0;
  /**
   * The stamp `audit(...): ` of the event, for the EOE plugins get after PROCTITLE: read from the SYSCALL record
   * (`first`, in the batch) while its batch lasts, copied out at the batch's end when the event goes on past it.
   */
  private readonly stamp = Buffer.alloc(EOE_MAX);
  private stampLength = 0;
  private first: Buffer = EMPTY;
  private stampOwned = false;
  /** Some destination takes EOE (outputs, an event collected whole): else no EOE is made after PROCTITLE. */
  private eoeWanted = false;

  constructor(private readonly hooks: StreamedEventHooks) {}

  /** A new event from its SYSCALL record (`first`: payload and where its body starts); then its destinations. */
  begin(first: EventRecord & { bodyStart: number }, chain: Chain | null): void {
    // Clean already after end(); anything a failure left behind goes here, before a record of this event is written.
    this.reset();
    this.chain = chain;
    this.hostHas = false;
    this.routed = 0;
    const p = first.payload;
    // The header's end as the EOE of an event made whole carries it (record-path.ts): a payload that ends at `):`
    // has no byte for the space.
    this.stampLength = Math.min(first.bodyStart > 0 ? first.bodyStart : p.length, EOE_MAX);
    this.first = p;
    this.stampOwned = false;
    this.eoeWanted = false;
  }

  /**
   * The host takes the event: its shaped head now, the rest as it comes (or whole at the end: a JSON log, an output
   * that gathers events).
   */
  toHost(sink: Sink, head: readonly EventRecord[]): void {
    this.hostHas = true;
    if (sink.outputs.length !== 0) this.eoeWanted = true;
    if (!sink.takesStream) {
      this.collect(null, head);
      return;
    }
    this.host = sink;
    for (const r of head) sink.writeRecord(r.type, r.payload);
  }

  /** Daemon `name` takes the records as they come: its shaped head now. */
  stream(name: string, s: RecordStream, head: readonly EventRecord[]): void {
    s.beginStream();
    if (s.takesEoe) this.eoeWanted = true;
    this.routed++;
    const i = this.nStreams++;
    this.streams[i] = s;
    this.streamNames[i] = name;
    this.heads[i] = head;
    for (const r of head)
      if (!s.streamRecord(r.type, r.payload, 0, r.payload.length)) {
        this.fail(i);
        break;
      }
  }

  /** Daemon `name` (null: the host) gets the event whole at its end: its head copied now (it lies in the batch). */
  collect(name: string | null, head: readonly EventRecord[]): void {
    if (name === null) this.hostHas = true;
    this.eoeWanted = true;
    this.collectors.push({ name, head: head.map(ownedRecord), from: this.rest?.length ?? 0 });
    this.rest ??= [];
  }

  record(type: number, buf: Buffer, start: number, end: number): void {
    // Kept for a stream that fails later; streams only go during an event, so none left needs none kept.
    if (this.nStreams !== 0) {
      const k = this.seen++;
      this.types[k] = type;
      this.starts[k] = start;
      this.ends[k] = end;
      this.srcs[k] = buf;
    }
    if (this.host !== null) this.host.writeRecordAt(type, buf, start, end);
    if (this.rest !== null) this.rest.push(owned(type, buf, start, end));
    for (let i = 0; i < this.nStreams; i++)
      if (!this.streams[i]!.streamRecord(type, buf, start, end)) {
        this.fail(i);
        i--;
      }
  }

  /**
   * Stream `i`'s writer failed (it is closed, and opened again as after a crash): the daemon gets the event whole at
   * its end, as an inline write that fails re-queues its event; the reopened log's tail tells which records it has.
   */
  private fail(i: number): void {
    const name = this.streamNames[i]!;
    const head = this.heads[i]!.map(ownedRecord);
    if (this.past !== null) for (const r of this.past) head.push(r);
    for (let k = 0; k < this.seen; k++) head.push(owned(this.types[k]!, this.srcs[k]!, this.starts[k]!, this.ends[k]!));
    const last = --this.nStreams;
    this.streams[i] = this.streams[last]!;
    this.streamNames[i] = this.streamNames[last]!;
    this.heads[i] = this.heads[last]!;
    this.streams[last] = null;
    this.heads[last] = null;
    this.routed--;
    this.eoeWanted = true;
    this.collectors.push({ name, head, from: this.rest?.length ?? 0 });
    this.rest ??= [];
  }

  /** The batch's buffer is reused after this: what a failing stream would need again is copied out of it. */
  endBatch(): void {
    if (!this.stampOwned) {
      // About 30 bytes: a loop, not a view to copy from (a view costs more than the copy).
      const stamp = this.stamp;
      const p = this.first;
      for (let i = 0; i < this.stampLength; i++) stamp[i] = p[i]!;
      this.stampOwned = true;
      this.first = EMPTY;
    }
    if (this.nStreams === 0) return;
    for (let i = 0; i < this.nStreams; i++) this.heads[i] = this.heads[i]!.map(ownedRecord);
    this.past ??= [];
    for (let k = 0; k < this.seen; k++)
      this.past.push(owned(this.types[k]!, this.srcs[k]!, this.starts[k]!, this.ends[k]!));
    this.seen = 0;
  }

  end(reason: CompletionReason): void {
    // After PROCTITLE (or KERNEL) the event ends before the kernel's EOE: plugins get one made of the stamp, as for an
    // event made whole; the logs skip it. An 'eoe' event passed the kernel's own.
    if (reason === 'last' && this.eoeWanted)
      this.record(MsgType.EOE, this.stampOwned ? this.stamp : this.first, 0, this.stampLength);
    let routed = this.routed;
    let dropped = 0;
    let orphan: EventRecord[] | null = null;
    for (const c of this.collectors) {
      const rest = this.rest!;
      const records = c.head.concat(c.from === 0 ? rest : rest.slice(c.from));
      if (c.name === null) {
        this.hooks.toHost(records);
        continue;
      }
      const taken = this.hooks.enqueue(c.name, records);
      if (taken === true) routed++;
      else if (taken === false) dropped++;
      else orphan ??= records;
    }
    // A daemon gone since the event began: the event is the host's, as one no route took (record-path.ts).
    if (orphan !== null && !this.hostHas) {
      this.hooks.noDaemon();
      this.hooks.toHost(orphan);
    }
    const chain = this.chain;
    this.reset();
    if (chain !== null) this.hooks.noteEvent(chain, routed, dropped);
  }

  /**
   * Lets the event go before any record after its head was written (its head could not be written everywhere): it
   * is made whole instead, so the streams that began it take their count back.
   */
  abandon(): void {
    for (let i = 0; i < this.nStreams; i++) this.streams[i]!.cancelStream();
    this.reset();
  }

  /** Forgets the event: nothing of it is written from here on, and nothing of it is kept (batch views, copies). */
  reset(): void {
    this.chain = null;
    this.first = EMPTY;
    this.host = null;
    if (this.collectors.length !== 0) this.collectors.length = 0;
    this.rest = null;
    this.past = null;
    for (let i = 0; i < this.nStreams; i++) {
      this.streams[i] = null;
      this.heads[i] = null;
    }
    for (let k = 0; k < this.seen; k++) this.srcs[k] = EMPTY;
    this.nStreams = 0;
    this.seen = 0;
  }
}
