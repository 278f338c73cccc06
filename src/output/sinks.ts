// The sink factory: opens a daemon's log, its disk-space guard and its outputs as one Sink (contract in ./sink.ts).
import { DiskSpaceGuard, type DiskLevel } from './diskspace';
import { LogWriter, type Requester } from './logfile';
import type { RecordOutput } from './output';
import type { EventRecord } from '../records/event';
import { closeAll, createOutputs, flushAll, writeAll } from './outputs';
import type { Sink, SinkContext, SinkLogStatus, SinkSpec, SinkState } from './sink';

/** Free-space levels move slowly and batches come thousands of times a second: one statfs a second at most. */
const SPACE_CHECK_MS = 1000;

/**
 * Opens the log (throws IoError when it cannot), its guard, then the outputs (see SinkContext.onOutputsError for
 * when they fail). The guard acts on the log's own space settings whichever daemon holds the sink.
 */
export function createSink(spec: SinkSpec, ctx: SinkContext): Sink {
  return new DaemonSink(spec, ctx);
}

class DaemonSink implements Sink {
  log: LogWriter;
  outputs: readonly RecordOutput[] = [];
  private guard: DiskSpaceGuard;
  private readonly now: () => number;
  private readonly diag: SinkContext['diag'];
  private lastSpaceCheck = 0;

  constructor(
    spec: SinkSpec,
    private readonly ctx: SinkContext,
  ) {
    this.now = ctx.now ?? Date.now;
    this.diag = ctx.diag;
    const { log, guard } = this.openLog(spec);
    this.log = log;
    this.guard = guard;
    try {
      this.outputs = createOutputs([...(spec.outputs ?? [])], {
        ...(ctx.nodeName !== undefined ? { nodeName: ctx.nodeName } : {}),
        contidKernel: ctx.contidKernel,
        diag: ctx.diag,
        ...(ctx.containers ? { containers: ctx.containers } : {}),
      });
    } catch (e) {
      if (!ctx.onOutputsError) {
        log.close();
        throw e;
      }
      ctx.onOutputsError(e as Error);
    }
  }

  /** A writer whose errors reach the guard it is paired with (not a later one), and that guard; the log is open. */
  private openLog(spec: Omit<SinkSpec, 'outputs'>): { log: LogWriter; guard: DiskSpaceGuard } {
    const ctx = this.ctx;
    const pair: { guard?: DiskSpaceGuard } = {};
    const log = new LogWriter({
      ...spec.log,
      ...(ctx.containers ? { containers: ctx.containers } : {}),
      ...(ctx.logger ? { logger: ctx.logger } : {}),
      onError: (e) => {
        ctx.onLogError?.(e);
        pair.guard?.onWriteError(e.code);
      },
    });
    const guard = new DiskSpaceGuard(spec.log.path, spec.diskSpace, log, ctx.diag, spec.log.numLogs ?? 5, ctx.statfs);
    pair.guard = guard;
    log.open();
    return { log, guard };
  }

  get takesStream(): boolean {
    if (this.log.wholeEvents) return false;
    const outs = this.outputs;
    for (let i = 0; i < outs.length; i++) if (outs[i]!.groupsEvents === true) return false;
    return true;
  }

  replaceLog(spec: Omit<SinkSpec, 'outputs'>): void {
    const next = this.openLog(spec);
    const old = this.log;
    this.log = next.log;
    this.guard = next.guard;
    // The new guard looks at its file system at the next flush, not a second later.
    this.lastSpaceCheck = Number.NEGATIVE_INFINITY;
    old.close();
  }

  get bufferedBytes(): number {
    return this.log.bufferedBytes;
  }

  writeRecord(type: number, payload: Buffer): void {
    this.log.writeRecord(type, payload);
    if (this.outputs.length) writeAll(this.outputs, type, payload);
  }

  writeRecordAt(type: number, src: Buffer, start: number, end: number): void {
    this.log.writeRecordAt(type, src, start, end);
    // Outputs keep what they are given past the call (queues, spools): they get a view of their own.
    if (this.outputs.length) writeAll(this.outputs, type, src.subarray(start, end));
  }

  writeLog(type: number, payload: Buffer): boolean {
    return this.log.writeRecord(type, payload);
  }

  writeLogEvent(records: readonly EventRecord[]): boolean {
    return this.log.writeEvent(records);
  }

  writeOutputs(type: number, payload: Buffer): void {
    if (this.outputs.length) writeAll(this.outputs, type, payload);
  }

  writeDaemonRecord(type: number, body: string): void {
    // auditd dispatches its own records to plugins as well: one payload, one serial, for the log and the outputs.
    this.writeRecord(type, this.log.daemonPayload(body));
  }

  /** The log's flush, the outputs' and the disk check; false when the log's write or sync failed (see LogWriter). */
  flush(): boolean {
    const ok = this.log.flush();
    if (this.outputs.length) flushAll(this.outputs);
    this.checkSpace();
    return ok;
  }

  checkSpace(): DiskLevel {
    const now = this.now();
    if (now - this.lastSpaceCheck >= SPACE_CHECK_MS) {
      this.lastSpaceCheck = now;
      this.guard.afterFlush();
    }
    return this.guard.lastLevel;
  }

  rotate(by: Requester): void {
    this.log.rotateNow(by);
  }

  resume(): void {
    this.guard.resume();
    for (const o of this.outputs) o.resume?.();
  }

  state(): SinkState {
    // A full disk says DISKFULL to a peer even when its action suspended the log.
    if (this.guard.lastLevel === 'disk_full') return 'disk-full';
    if (this.log.isSuspended) return 'suspended';
    return this.guard.lastLevel !== 'ok' ? 'disk-low' : 'ok';
  }

  logStatus(): SinkLogStatus {
    return { ...this.log.counters, suspended: this.log.isSuspended, diskLevel: this.guard.lastLevel };
  }

  outputStats(): Record<string, Record<string, number | string | boolean>> {
    return Object.fromEntries(this.outputs.map((o) => [o.name, o.stats()]));
  }

  async close(last?: { type: number; body: string }): Promise<void> {
    const outputs = this.outputs;
    this.outputs = [];
    await closeAll(outputs).catch((e: Error) => this.diag.error({ err: e.message }, 'closing outputs failed'));
    if (last) this.log.writeDaemonRecord(last.type, last.body);
    this.log.close();
  }
}
