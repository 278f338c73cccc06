// What an auxiliary daemon does with its routed events: its own sink (log, outputs, disk-space guard), in its own
// process or in the host's.
import { Buffer } from 'node:buffer';
import { closeSync, constants, readSync } from 'node:fs';
import { AUDIT_UID_UNSET, MsgType } from '../kernel/constants';
import type { OutputConfig, OutputSpec } from '../config/schema';
import type { ContainerDirectory, Diag } from '../output/output';
import type { Sink } from '../output/sink';
import { createSink } from '../output/sinks';
import type { FreeSpaceReader } from '../output/diskspace';
import { writerOptions } from './outputs';
import { EVENT_RECORDS_AT, checkEvent, decodeEvent, eventIdOf, type EventRecord } from './aux-ipc';
import { openNoFollow } from '../safefs';
import { u16le, u32le } from '../bytes';

export interface AuxWriterConfig {
  name: string;
  log: OutputConfig;
  outputs: OutputSpec[];
  nodeName: string | null;
  contidKernel: boolean;
  /** The containers outputs and a JSON log show: the host's registry (inline), or what the host sent (process). */
  containers?: ContainerDirectory;
}

/** How much of the log's tail is read at start to recognise events the host sends again after a crash. */
const TAIL_BYTES = 4 * 1024 * 1024;

/** A window of the report limiter: each distinct message once in it, the rest counted in one summary at its end. */
export const REPORT_WINDOW_MS = 10_000;
/** Distinct messages sent in one window; past these, messages are counted too. */
export const REPORTS_PER_WINDOW = 20;

/**
 * What an AuxWriter reports goes to the host (an ERROR frame each, in the daemon's own process), and the host stops a
 * process past 1000 ERROR frames a minute as a protocol error (SIGKILL, restarts, then failed). A degraded log reports
 * every failed write: with disk_full_action or disk_error_action syslog or ignore, a busy tenant's full disk reached
 * that limit and the daemon was killed for it. Per window, each distinct message is sent once (REPORTS_PER_WINDOW of
 * them at most) and the others are counted: one summary with the count once the window is over (seen at the next
 * message, flush or close). At most 21 messages every 10 s, so never near the host's limit.
 */
export class ReportLimiter {
  /** Messages counted and not sent, in all. */
  suppressed = 0;
  private windowStart = Number.NEGATIVE_INFINITY;
  private readonly sent = new Set<string>();
  /** Counted in the current window, and the latest of them (the summary names it). */
  private held = 0;
  private latest = '';

  constructor(
    private readonly send: (message: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  say(message: string): void {
    this.roll();
    if (this.sent.has(message) || this.sent.size >= REPORTS_PER_WINDOW) {
      this.held++;
      this.suppressed++;
      this.latest = message;
      return;
    }
    this.sent.add(message);
    this.send(message);
  }

  /** Ends the window when its time is over (`force`: now, at close), sending the summary of what it held back. */
  roll(force = false): void {
    const t = this.now();
    if (!force && t - this.windowStart < REPORT_WINDOW_MS) return;
    if (this.held > 0) {
      const s = Math.max(0, Math.round((t - this.windowStart) / 1000));
      this.send(`${this.held} more log error message(s) not sent in the last ${s} s; the latest: ${this.latest}`);
    }
    this.held = 0;
    this.latest = '';
    this.sent.clear();
    this.windowStart = t;
  }
}

/** Event ids (`SEC.MSEC:SERIAL`) in the last TAIL_BYTES of a log, with how many of their records (lines) it holds. */
export function recentEventIds(path: string): Map<string, number> {
  const ids = new Map<string, number>();
  let fd: number;
  let size: number;
  try {
    // A symlink or a hard link at the log's name is not our log (and the writer refuses it just after): read nothing.
    ({
      fd,
      stat: { size },
    } = openNoFollow(path, constants.O_RDONLY, { what: 'log file' }));
  } catch {
    return ids;
  }
  try {
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString('latin1');
    const re = /msg=audit\((\d+\.\d+:\d+)\)/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text))) ids.set(m[1]!, (ids.get(m[1]!) ?? 0) + 1);
  } finally {
    closeSync(fd);
  }
  return ids;
}

/**
 * One auxiliary daemon's sink: its log, outputs and the disk-space guard its own `log:` settings ask for. After a
 * crash the host sends again whatever was not acknowledged: records the log already holds (found in its tail at open)
 * are not written twice, and an event cut short by the crash is completed with the records it lacks.
 */
export class AuxWriter {
  private sink: Sink | null = null;
  private recent = new Map<string, number>();
  /** Everything reported goes through it: see ReportLimiter. */
  private readonly reports: ReportLimiter;

  /**
   * `logPath` overrides cfg.log.file (a process that dropped privileges opens it relative to its log directory);
   * `statfs` stages free-space levels and `now` the report limiter's clock in tests.
   */
  constructor(
    private readonly cfg: AuxWriterConfig,
    report: (message: string) => void,
    private readonly diag: Diag,
    private readonly logPath = cfg.log.file,
    private readonly statfs?: FreeSpaceReader,
    now: () => number = Date.now,
  ) {
    this.reports = new ReportLimiter(report, now);
  }

  /** Reports not sent to the host so far (counted in the limiter's summaries). */
  get suppressedReports(): number {
    return this.reports.suppressed;
  }

  private report(message: string): void {
    this.reports.say(message);
  }

  /** Opens the log (throws when it cannot) and the outputs (an output that fails is reported, the log still runs). */
  open(): number {
    this.recent = recentEventIds(this.logPath);
    this.sink = createSink(
      {
        log: {
          ...writerOptions(
            { ...this.cfg.log, file: this.logPath },
            this.cfg.nodeName ?? undefined,
            this.cfg.contidKernel,
          ),
          daemon: this.cfg.name,
        },
        ...(this.cfg.log.diskSpace ? { diskSpace: this.cfg.log.diskSpace } : {}),
        outputs: this.cfg.outputs ?? [],
      },
      {
        ...(this.cfg.nodeName ? { nodeName: this.cfg.nodeName } : {}),
        contidKernel: this.cfg.contidKernel,
        diag: this.diag,
        ...(this.cfg.containers ? { containers: this.cfg.containers } : {}),
        logger: (level, m) => {
          if (level !== 'info') this.report(m);
        },
        onLogError: (e) => this.report(`log ${e.op} failed: ${e.message}`),
        onOutputsError: (e) => this.report(`outputs: ${e.message}`),
        ...(this.statfs ? { statfs: this.statfs } : {}),
      },
    );
    return this.recent.size;
  }

  get bufferedBytes(): number {
    return this.sink?.bufferedBytes ?? 0;
  }

  write(records: readonly EventRecord[]): void {
    const sink = this.sink;
    if (!sink) throw new Error('auxiliary log is not open');
    let have = 0;
    if (this.recent.size) {
      const id = records.length ? eventIdOf(records[0]!.payload) : '';
      have = (id && this.recent.get(id)) || 0;
      if (have) this.recent.delete(id);
      // What the host sends again comes first, in the order it was sent, and the log holds a prefix of it (its last
      // event maybe cut short): the first event the log lacks ends what it can hold already. Kept, the ids of the
      // tail (thousands, read at every start on an existing log) were looked up for every event from then on, and
      // kept a process daemon off writeFrame's path without record objects.
      else this.recent.clear();
    }
    let logged = 0;
    if (sink.log.wholeEvents) {
      // A JSON log holds an event on one line, whole or not at all: written unless the tail already has it.
      for (const r of records) if (r.type !== MsgType.EOE) logged++;
      if (have) have = logged;
      else sink.writeLogEvent(records);
    } else {
      for (const r of records) {
        if (r.type === MsgType.EOE) continue;
        // The same records come again in the same order, so the first `have` are the ones already in the log.
        if (logged++ >= have) sink.writeLog(r.type, r.payload);
      }
    }
    // Outputs have their own at-least-once delivery: an event the log lacked (even in part) goes to them whole.
    if (sink.outputs.length && logged > have) for (const r of records) sink.writeOutputs(r.type, r.payload);
  }

  /** The sink has outputs (which, unlike the log, take EOE). */
  get hasOutputs(): boolean {
    return (this.sink?.outputs.length ?? 0) !== 0;
  }

  /**
   * Whether an event may be written record by record as it comes (writeRecordAt): the sink takes a stream (a text log,
   * no output that gathers events) and no tail is left to skip.
   */
  get streams(): boolean {
    const sink = this.sink;
    return sink !== null && sink.takesStream && this.recent.size === 0;
  }

  /** One record of an event streamed to the daemon (see streams), src[start, end): to the log (not EOE) and outputs. */
  writeRecordAt(type: number, src: Buffer, start: number, end: number): void {
    const sink = this.sink;
    if (!sink) throw new Error('auxiliary log is not open');
    sink.writeRecordAt(type, src, start, end);
  }

  /**
   * write() of an EVENT frame's body (aux-ipc); returns the event's seq. A text log with no outputs and no tail left to
   * skip (the usual case) formats each record where it lies in the frame: no record object or view per record, which
   * were most of a process daemon's garbage. Anything else goes through write().
   */
  writeFrame(body: Buffer): number {
    const sink = this.sink;
    if (!sink || sink.log.wholeEvents || sink.outputs.length || this.recent.size) {
      const { seq, records } = decodeEvent(body);
      this.write(records);
      return seq;
    }
    const n = checkEvent(body);
    let off = EVENT_RECORDS_AT;
    for (let i = 0; i < n; i++) {
      const start = off + 6;
      off = start + u32le(body, off + 2);
      // EOE is skipped by the log itself, as write() does.
      sink.writeRecordAt(u16le(body, start - 6), body, start, off);
    }
    return body.readDoubleLE(0);
  }

  /** Hands the buffered lines to the kernel (log) and to the outputs' own queues, then checks free space. */
  flush(): void {
    this.sink?.flush();
    // A summary due is sent with the next batch, even when the errors have stopped.
    this.reports.roll();
  }

  rotate(pid: number): void {
    this.sink?.rotate({ auid: AUDIT_UID_UNSET, uid: 0, ses: AUDIT_UID_UNSET, pid });
  }

  /** SIGUSR2 / `auditmux resume`: re-arms the disk-space levels, reopens a suspended log, resumes the outputs. */
  resume(): void {
    this.sink?.resume();
  }

  async close(): Promise<void> {
    const sink = this.sink;
    this.sink = null;
    await sink?.close();
    this.reports.roll(true);
  }
}
