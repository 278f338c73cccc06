// The host's record path: kernel records -> events -> routing -> the host log and outputs or an auxiliary daemon.
import type { ContainerDirectory } from '../contid/meta-selector';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { MsgType } from '../kernel/constants';
import { FLUSH_DELAY_MS, FLUSH_NOW_BYTES } from '../shared';
import type { Config, OutputConfig } from '../config';
import { Reassembler, type AuditEvent } from '../records/reassembler';
import { LogWriter } from '../output/logfile';
import { Router } from '../routing/router';
import { Pipeline } from '../routing/pipeline';
import type { ContidTracker } from '../contid/tracker';
import type { Chain } from '../contid/chain';
import type { EventRecord } from './aux-ipc';
import { writerOptions } from './outputs';
import { closeAll, createOutputs, flushAll, writeAll, type RecordOutput } from '../output/outputs';
import { DiskSpaceGuard } from '../output/diskspace';
import type { DaemonRegistry } from './daemon-registry';
import type { Diag } from './diagnostics';

export interface RecordPathOptions {
  diag: Diag;
  tracker: ContidTracker;
  registry: DaemonRegistry;
  /** The keys an event's owner sees (the kernel session's rule union). */
  keysFor: (owner: string | null, full: string[]) => string[];
  /** Per-container counters: an event of `chain` reached `routed` daemons, `dropped` refused it. */
  noteEvent: (chain: Chain, routed: number, dropped: number) => void;
  /** The containers route selectors by name ask about; told when a batch ends (one clock read per batch). */
  containers?: ContainerDirectory & { endBatch(now: number): void };
  counters: { records: number; internalErrors: number };
}

export class RecordPath {
  log: LogWriter | null = null;
  private guard: DiskSpaceGuard | null = null;
  private lastSpaceCheck = 0;
  private outputs: RecordOutput[] = [];
  private pipeline: Pipeline;
  private readonly reassembler: Reassembler;
  /** Records are reassembled into events and routed; otherwise streamed to the host log as they come. */
  eventMode = false;
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: RecordPathOptions,
    config: Config,
  ) {
    const r = config.host.reassembly;
    // The addon hands over a fresh buffer per batch, so records can point into it without a copy.
    this.reassembler = new Reassembler((ev) => this.onEvent(ev), {
      timeoutMs: r.timeoutMs,
      maxInFlight: r.maxInFlight,
      copy: false,
    });
    this.pipeline = this.makePipeline(config, false);
  }

  /** A new route table (after a reload or a daemon added or removed). */
  reroute(config: Config, contidKernel: boolean): void {
    this.pipeline = this.makePipeline(config, contidKernel);
  }

  private makePipeline(config: Config, contidKernel: boolean): Pipeline {
    const reg = this.opts.registry;
    return new Pipeline({
      router: new Router(reg.allRoutes(), this.opts.containers ?? null),
      tracker: this.opts.tracker,
      contidKernel,
      daemonsWithRules: new Set(
        reg
          .configs()
          .filter((d) => d.rules)
          .map((d) => d.name),
      ),
      keep: config.host.keep,
    });
  }

  /** Opens (or, on reload, replaces) the host log and its disk-space guard. */
  openLog(log: OutputConfig, nodeName: string | undefined, contidKernel: boolean): void {
    // auditd expects the directory to exist; a fresh machine without the unit's LogsDirectory= gets it made here.
    mkdirSync(dirname(log.file), { recursive: true, mode: 0o700 });
    const diag = this.opts.diag;
    const w = new LogWriter({
      ...writerOptions(log, nodeName, contidKernel),
      logger: (level, msg) => diag[level](msg),
      onError: (e) => {
        diag.error({ op: e.op, code: e.code, lost: e.lostRecords }, `log ${e.op} failed: ${e.message}`);
        this.guard?.onWriteError(e.code);
      },
    });
    w.open();
    const old = this.log;
    this.log = w;
    this.guard = new DiskSpaceGuard(log.file, log.diskSpace, w, diag, log.numLogs);
    old?.close();
  }

  get diskGuard(): DiskSpaceGuard | null {
    return this.guard;
  }

  openOutputs(config: Config, nodeName: string | undefined, contidKernel: boolean): void {
    this.outputs = createOutputs(config.host.outputs, {
      ...(nodeName !== undefined ? { nodeName } : {}),
      contidKernel,
      diag: this.opts.diag,
    });
  }

  onRecord(type: number, buf: Buffer, start: number, end: number): void {
    this.opts.counters.records++;
    if (this.eventMode) this.reassembler.push(type, buf, start, end);
    else {
      const payload = buf.subarray(start, end);
      if (type !== MsgType.EOE) this.log?.writeRecord(type, payload);
      // Plugins get EOE, as auditd's dispatcher sends it; the disk log never does.
      if (this.outputs.length) writeAll(this.outputs, type, payload);
    }
  }

  private onEvent(ev: AuditEvent): void {
    try {
      const records: EventRecord[] = ev.records.map((r) => ({ type: r.type, payload: r.raw }));
      // Syscall events end with the kernel's EOE, which the reassembler consumes (or, after PROCTITLE, drops):
      // plugins expect it, as auditd's dispatcher forwards it; logs skip it.
      if ((ev.reason === 'eoe' || ev.reason === 'last') && ev.records[0]!.type >= MsgType.SYSCALL) {
        const first = ev.records[0]!;
        // The header `audit(...): ` is what EOE carries; its end is known from the parse (indexOf(')') + 3).
        const head = first.raw[first.bodyStart - 1] === 0x20 ? first.bodyStart : first.raw.indexOf(')') + 3;
        records.push({ type: MsgType.EOE, payload: first.raw.subarray(0, head) });
      }
      // One result object for every event (no allocation per event): it is read before the next route.
      const { destinations, chain } = this.pipeline.route(records, this.opts.keysFor, this.pipeline.scratch);
      let routed = 0;
      let dropped = 0;
      for (const d of destinations) {
        if (d.daemon === null) {
          for (const r of d.records) this.log!.writeRecord(r.type, r.payload);
          if (this.outputs.length) for (const r of d.records) writeAll(this.outputs, r.type, r.payload);
        } else if (this.opts.registry.enqueue(d.daemon, d.records) === false) dropped++;
        else routed++;
      }
      if (chain) this.opts.noteEvent(chain, routed, dropped);
    } catch (e) {
      // A bug on one event must not lose the others: count it and keep the raw records in the host log.
      this.opts.counters.internalErrors++;
      this.opts.diag.error({ err: (e as Error).stack }, 'routing failed; event written to the host log');
      for (const r of ev.records) this.log!.writeRecord(r.type, r.raw);
    }
  }

  endBatch(): void {
    if (this.eventMode) this.reassembler.endBatch();
    // Small batches (low rates) are written together a few ms later: one write() instead of one per wake-up.
    const log = this.log;
    if (log && log.bufferedBytes >= FLUSH_NOW_BYTES) log.flush();
    else if (log && log.bufferedBytes > 0 && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.log?.flush();
      }, FLUSH_DELAY_MS);
    }
    if (this.outputs.length) flushAll(this.outputs);
    const now = Date.now();
    this.opts.containers?.endBatch(now);
    // One statfs a second at most: disk-space levels move slowly, batches arrive thousands of times a second.
    if (this.guard && now - this.lastSpaceCheck >= 1000) {
      this.lastSpaceCheck = now;
      this.guard.afterFlush();
    }
    this.opts.registry.pumpAll();
  }

  /** Events the kernel never finished are closed by age. */
  tick(now: number): void {
    this.reassembler.tick(now);
  }

  /** auditmux's own record, to the host log and (as auditd's dispatcher does) the host's outputs. */
  daemonRecord(type: number, body: string): void {
    if (!this.log) return;
    const payload = this.log.daemonPayload(body);
    this.log.writeRecord(type, payload);
    if (this.outputs.length) writeAll(this.outputs, type, payload);
    this.log?.flush();
  }

  resume(): void {
    if (this.guard) this.guard.resume();
    else this.log!.resume();
    for (const o of this.outputs) o.resume?.();
  }

  /** Events still being assembled go out as they are. */
  drain(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.reassembler.flush();
  }

  closeOutputs(): Promise<void> {
    return closeAll(this.outputs).catch((e: Error) =>
      this.opts.diag.error({ err: e.message }, 'closing outputs failed'),
    );
  }

  status(): Record<string, unknown> {
    return {
      reassembly: { ...this.reassembler.counters, inFlight: this.reassembler.inFlightCount },
      routing: { ...this.pipeline.counters },
    };
  }

  sinkStatus(): Record<string, unknown> {
    return {
      log: this.log
        ? { ...this.log.counters, suspended: this.log.isSuspended, diskLevel: this.guard?.lastLevel ?? 'ok' }
        : {},
      outputs: Object.fromEntries(this.outputs.map((o) => [o.name, o.stats()])),
    };
  }
}
