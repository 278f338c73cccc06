// The host's record path: kernel records -> events -> routing -> the host log and outputs or an auxiliary daemon.
import { Buffer } from 'node:buffer';
import type { ContainerDirectory } from '../contid/meta-selector';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { MsgType } from '../kernel/constants';
import { bufferView, indexOfByte } from '../bytes';
import type { Config, OutputConfig } from '../config';
import { Reassembler, type AuditEvent, type PassThrough } from '../records/reassembler';
import type { AuditRecord } from '../records/record';
import { StreamedEvent } from './streamed-event';
import { recentLines, type LogWriter, type Requester } from '../output/logfile';
import { Router } from '../routing/router';
import { Pipeline, type KeyGroup } from '../routing/pipeline';
import type { ContidTracker } from '../contid/tracker';
import type { Chain } from '../contid/chain';
import type { EventRecord } from '../records/event';
import { writerOptions } from './outputs';
import type { Sink, SinkSpec } from '../output/sink';
import { createSink } from '../output/sinks';
import type { DaemonRegistry } from './daemon-registry';
import type { Diag } from './diagnostics';

export interface RecordPathOptions {
  diag: Diag;
  tracker: ContidTracker;
  registry: DaemonRegistry;
  /** The keys an event's owner sees (the kernel session's rule union). */
  keysFor: (owner: string | null, full: string[]) => readonly string[];
  /** A group tag's owners and keys (the rule union's, see mergeRules). */
  keyGroup: (tag: string) => KeyGroup | undefined;
  /** Per-container counters: an event of `chain` reached `routed` daemons, `dropped` refused it. */
  noteEvent: (chain: Chain, routed: number, dropped: number) => void;
  /** The containers route selectors by name ask about; told when a batch ends (one clock read per batch). */
  containers?: ContainerDirectory & { endBatch(now: number): void };
  counters: { records: number; internalErrors: number; noDaemon: number };
  /** The reassembler's monotonic clock in ms (tests); performance.now() by default. */
  clock?: () => number;
}

export class RecordPath {
  /** The host's log, outputs and disk-space guard: the same Sink an auxiliary daemon writes to. */
  sink: Sink | null = null;
  private pipeline: Pipeline;
  private readonly reassembler: Reassembler;
  /** What the daemon asks for (contids, auxiliary daemons); see eventMode. */
  private wantEvents = false;
  /**
   * Records that came while no sink was open (before openSink, after close): dropped, counted here (status()'s
   * `intake`), and the first of them logged; they were dropped silently.
   */
  private droppedNoLog = 0;
  /**
   * Syscall events pass through (StreamedEvent) when routing needs nothing past the SYSCALL record: no route selects
   * record types and the kernel sends no CONTAINER_ID records (the patch set's come with the event's other records).
   */
  private streamEvents = false;
  private readonly streamed: StreamedEvent;
  /** The SYSCALL record routed alone, in one array for every event. */
  private readonly first: EventRecord[] = [];

  constructor(
    private readonly opts: RecordPathOptions,
    config: Config,
  ) {
    const r = config.host.reassembly;
    // Records are views into the receive batch (no copy per record); the batch is valid until endBatch, where the
    // reassembler copies out the records of events still waiting.
    this.reassembler = new Reassembler((ev) => this.onEvent(ev), {
      timeoutMs: r.timeoutMs,
      maxInFlight: r.maxInFlight,
      copy: false,
      ...(opts.clock ? { clock: opts.clock } : {}),
      passThrough: (rec) => this.passThrough(rec),
    });
    this.streamed = new StreamedEvent({
      toHost: (records) => this.toHost(records),
      enqueue: (name, records) => opts.registry.enqueue(name, records),
      noteEvent: (chain, routed, dropped) => opts.noteEvent(chain, routed, dropped),
      noDaemon: () => opts.counters.noDaemon++,
    });
    this.pipeline = this.makePipeline(config, false);
    // Events held for a template daemon that could not be made end here, as an event no route took.
    opts.registry.hostLog = (records) => {
      for (const r of records) this.log?.writeRecord(r.type, r.payload);
    };
  }

  /** A new route table (after a reload or a daemon added or removed). */
  reroute(config: Config, contidKernel: boolean): void {
    this.pipeline = this.makePipeline(config, contidKernel);
  }

  private makePipeline(config: Config, contidKernel: boolean): Pipeline {
    const reg = this.opts.registry;
    const routes = reg.allRoutes();
    this.streamEvents = !contidKernel && !routes.some((r) => r.types);
    return new Pipeline({
      router: new Router(routes, this.opts.containers ?? null),
      tracker: this.opts.tracker,
      contidKernel,
      daemonsWithRules: reg.rulesOwners(),
      keep: config.host.keep,
      keyGroup: this.opts.keyGroup,
    });
  }

  /**
   * Opens the host's sink: its log, then `start` (DAEMON_START) into the log alone, as auditd writes it before its
   * dispatcher starts, then the outputs. Outputs that cannot be built refuse the start (thrown after DAEMON_START, so
   * the log tells the start and, from the shutdown that follows, its end).
   */
  openSink(config: Config, nodeName: string | undefined, contidKernel: boolean, start: string): void {
    let failed: Error | null = null;
    const log = config.host.log;
    const diag = this.opts.diag;
    this.sink = createSink(
      { ...this.logSpec(log, nodeName, contidKernel), outputs: config.host.outputs },
      {
        ...(nodeName !== undefined ? { nodeName } : {}),
        contidKernel,
        diag,
        ...(this.opts.containers ? { containers: this.opts.containers } : {}),
        logger: (level, msg) => diag[level](msg),
        onLogError: (e) =>
          diag.error({ op: e.op, code: e.code, lost: e.lostRecords }, `log ${e.op} failed: ${e.message}`),
        onOutputsError: (e) => (failed = e),
      },
    );
    this.sink.log.writeDaemonRecord(MsgType.DAEMON_START, start);
    if (failed) throw failed;
  }

  /** A reload with new `log:` or node name settings: a new log in the same sink, the outputs keep running. */
  replaceLog(log: OutputConfig, nodeName: string | undefined, contidKernel: boolean): void {
    this.sink?.replaceLog(this.logSpec(log, nodeName, contidKernel));
  }

  private logSpec(log: OutputConfig, nodeName: string | undefined, contidKernel: boolean): Omit<SinkSpec, 'outputs'> {
    // auditd expects the directory to exist; a fresh machine without the unit's LogsDirectory= gets it made here.
    mkdirSync(dirname(log.file), { recursive: true, mode: 0o700 });
    return { log: writerOptions(log, nodeName, contidKernel), ...(log.diskSpace ? { diskSpace: log.diskSpace } : {}) };
  }

  /**
   * Records are reassembled into events and routed; otherwise streamed to the host log as they come. A JSON host log
   * takes whole events only, so it keeps the path in event mode whatever the daemon asks for.
   */
  get eventMode(): boolean {
    return this.wantEvents || (this.sink?.log.wholeEvents ?? false);
  }

  set eventMode(on: boolean) {
    const was = this.eventMode;
    this.wantEvents = on;
    // Leaving event mode: the events being assembled go out now, ahead of the records streamed from here on (their
    // SYSCALL waited in the reassembler while their PATH and PROCTITLE reached the log first, the event split for
    // the 2 s of the timeout). Entering it needs nothing: a tail whose head was streamed is an event of its own,
    // which no SYSCALL routes anywhere but the host, where its head went.
    if (was && !this.eventMode) this.reassembler.flush();
  }

  /** The host log's writer (null before start). */
  get log(): LogWriter | null {
    return this.sink?.log ?? null;
  }

  onRecord(type: number, buf: Buffer, start: number, end: number): void {
    this.opts.counters.records++;
    try {
      if (this.eventMode) this.reassembler.push(type, buf, start, end);
      // Plugins get EOE, as auditd's dispatcher sends it; the disk log never does.
      else if (this.sink) this.sink.writeRecordAt(type, buf, start, end);
      else this.dropNoLog(1);
    } catch (e) {
      this.recordFailed(e, type, buf, start, end);
    }
  }

  /**
   * A bug on one record must not lose it or leave the event passing through half-made: that event ends here (its
   * destinations get what came so far; its later records are made whole, as an event of their own) and the record
   * goes to the host log as it came. A record the host had already may so be there twice: a duplicate, not a loss.
   */
  private recordFailed(e: unknown, type: number, buf: Buffer, start: number, end: number): void {
    this.internalError(e, 'record path failed; the record is written to the host log');
    try {
      this.reassembler.closeThrough();
    } catch {
      // Its end failed too; what it held is let go below.
    }
    // Whatever was passing through is over, ended or not (an end that threw part-way, after the reassembler had let
    // it go, finds nothing to close): nothing of it is kept for the next event.
    this.streamed.reset();
    if (this.sink) this.sink.writeRecordAt(type, buf, start, end);
    else this.dropNoLog(1);
  }

  /** A bug met on the record path: counted (status `internalErrors`) and logged with its stack; the caller recovers. */
  private internalError(e: unknown, message: string): void {
    this.opts.counters.internalErrors++;
    this.opts.diag.error({ err: (e as Error).stack }, message);
  }

  private dropNoLog(records: number): void {
    if (this.droppedNoLog === 0)
      this.opts.diag.warn({ records }, 'records came while the host log was not open: dropped (counted in intake)');
    this.droppedNoLog += records;
  }

  /**
   * The reassembler's question at a SYSCALL record that begins an event: routed now, alone, the event's records go to
   * its destinations as they come (null: the event is made whole first, as before).
   */
  private passThrough(rec: AuditRecord): PassThrough | null {
    const sink = this.sink;
    if (!this.streamEvents || sink === null) return null;
    const one = this.first;
    one[0] = rec;
    let routed;
    try {
      routed = this.pipeline.route(one, this.opts.keysFor, this.pipeline.scratch);
    } catch (e) {
      // Made whole instead, where a second failure writes it to the host log (onEvent).
      this.internalError(e, 'routing failed; the event is made whole');
      return null;
    }
    const ev = this.streamed;
    try {
      ev.begin(rec, routed.chain);
      let host = false;
      let orphan: readonly EventRecord[] | null = null;
      for (const d of routed.destinations) {
        if (d.daemon === null) {
          host = true;
          ev.toHost(sink, d.records);
          continue;
        }
        const s = this.opts.registry.streamTo(d.daemon);
        if (s === undefined) orphan ??= d.records;
        else if (s === null) ev.collect(d.daemon, d.records);
        else ev.stream(d.daemon, s, d.records);
      }
      if (orphan && !host) {
        ev.toHost(sink, orphan);
        this.opts.counters.noDaemon++;
      }
    } catch (e) {
      // Nothing of this event may be left for the next one (a collector, a stream): it is made whole instead, and a
      // destination that had its head already gets it twice, not never (counted once: routed again whole, it is
      // counted then).
      ev.abandon();
      this.pipeline.uncount(routed);
      this.internalError(e, 'writing an event passing through failed; the event is made whole');
      return null;
    }
    return ev;
  }

  private onEvent(ev: AuditEvent): void {
    try {
      // The event's own records travel on (an AuditRecord is an EventRecord): the event is done with them.
      const records: EventRecord[] = ev.records;
      // Syscall events end with the kernel's EOE, which the reassembler consumes (or, after PROCTITLE, drops):
      // plugins expect it, as auditd's dispatcher forwards it; logs skip it.
      if ((ev.reason === 'eoe' || ev.reason === 'last') && records[0]!.type >= MsgType.SYSCALL) {
        const first = ev.records[0]!;
        // The header `audit(...): ` is what EOE carries; its end is known from the parse (indexOf(')') + 3).
        const p = first.payload;
        const head = p[first.bodyStart - 1] === 0x20 ? first.bodyStart : indexOfByte(p, 0x29, 0) + 3;
        // A payload that ends at `):` has no byte for the space: the EOE stops where the record does.
        records.push({ type: MsgType.EOE, payload: bufferView(p, 0, Math.min(head, p.length)) });
      }
      // One result object for every event (no allocation per event): it is read before the next route.
      const { destinations, chain } = this.pipeline.route(records, this.opts.keysFor, this.pipeline.scratch);
      let routed = 0;
      let dropped = 0;
      let host = false;
      let orphan: readonly EventRecord[] | null = null;
      for (const d of destinations) {
        if (d.daemon === null) {
          host = true;
          this.toHost(d.records);
          continue;
        }
        const taken = this.opts.registry.enqueue(d.daemon, d.records);
        if (taken === false) dropped++;
        else if (taken === true) routed++;
        // No such daemon (a reload's new route before its daemon starts): the event is the host's, as one no route
        // took, never nowhere. It was counted as routed and written nowhere.
        else orphan ??= d.records;
      }
      if (orphan && !host) {
        this.opts.counters.noDaemon++;
        this.toHost(orphan);
      }
      if (chain) this.opts.noteEvent(chain, routed, dropped);
    } catch (e) {
      // A bug on one event must not lose the others: count it and keep the raw records in the host log.
      this.internalError(e, 'routing failed; event written to the host log');
      if (this.sink) this.sink.writeLogEvent(ev.records);
      else this.dropNoLog(ev.records.length);
    }
  }

  /** An event to the host's log and outputs. */
  private toHost(records: readonly EventRecord[]): void {
    const sink = this.sink;
    if (!sink) {
      this.dropNoLog(records.length);
      return;
    }
    sink.writeLogEvent(records);
    for (const r of records) sink.writeOutputs(r.type, r.payload);
  }

  endBatch(): void {
    // Every record of the batch is written or copied into the logs' buffers: the lines other logs could copy lie in
    // a batch buffer about to be refilled. First, so that nothing below that throws can leave them copyable.
    recentLines.endBatch();
    // Also in stream mode (nothing waits then): a batch whose mode changed half-way still ends for the reassembler.
    this.reassembler.endBatch();
    // One write() per receive batch, then the sync the flush mode asks for (also after a batch whose bytes a full
    // buffer already wrote), the outputs' send and the disk check (statfs once a second at most): a kill -9 loses at
    // most the batch being processed, and writing every batch cost no more CPU than a timer (bench/findings.md).
    this.sink?.flush();
    this.opts.containers?.endBatch(Date.now());
    this.opts.registry.pumpAll();
    // And the lines the queues' events made just now: none outlives the batch end it was made in.
    recentLines.endBatch();
  }

  /**
   * Events the kernel never finished are closed by age. The reassembler reads its own monotonic clock: no caller's
   * time is taken (a wall clock, which NTP or an admin can step back, held events without EOE for an hour).
   */
  tick(): void {
    try {
      this.reassembler.tick();
    } catch (e) {
      // An event passing through whose end threw (a bug): let go, as recordFailed does; the events due with it go at
      // the next tick.
      this.streamed.reset();
      this.internalError(e, 'ending timed-out events failed');
    }
  }

  /** auditmux's own record, to the host log and (as auditd's dispatcher does) the host's outputs. */
  daemonRecord(type: number, body: string): void {
    if (!this.sink) return;
    this.sink.writeDaemonRecord(type, body);
    this.sink.log.flush();
  }

  rotate(by: Requester): void {
    this.sink?.rotate(by);
  }

  resume(): void {
    this.sink?.resume();
  }

  /** Events still being assembled go out as they are. */
  drain(): void {
    this.reassembler.flush();
  }

  /** Closes the outputs, writes `last` (DAEMON_END) to the log alone and closes it: every record is on disk. */
  async close(last: { type: number; body: string }): Promise<void> {
    const sink = this.sink;
    this.sink = null;
    await sink?.close(last);
  }

  status(): Record<string, unknown> {
    return {
      reassembly: { ...this.reassembler.counters, inFlight: this.reassembler.inFlightCount },
      routing: { ...this.pipeline.counters },
      intake: { droppedNoLog: this.droppedNoLog },
    };
  }

  sinkStatus(): Record<string, unknown> {
    return { log: this.sink ? this.sink.logStatus() : {}, outputs: this.sink ? this.sink.outputStats() : {} };
  }
}
