// The audit log writer: big buffered writes in auditd 3.0.9's format, flush modes, the size and time rotation
// triggers and DAEMON_* records. The file, rotation and compression are its parts (src/output/log/).
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { promises as dns } from 'node:dns';
import { errnoName } from '../errors';
import { AUDIT_UID_UNSET, MsgType } from '../kernel/constants';
import type { EventRecord } from '../records/event';
import { LineFormatter, MAX_LINE_BYTES } from './format';
import { RecentLines, type LineHolder } from './recent-lines';
import type { IdNameCache } from '../vocab/accounts';
import { contidOf, encodeEventJson, lineStamp } from './event-json';
import { ContainerCache, type ContainerDirectory } from './container-fields';
import { defaultNode, messageId, readBootId } from './nats/subject';
import { LogCompressor } from './log/compress';
import { LogFile } from './log/file';
import { LogRotation } from './log/rotation';
import type {
  FlushMode,
  LogErrorEvent,
  LogFileFormat,
  LogLevel,
  LogReporter,
  MaxLogFileAction,
  NameFormat,
} from './log/types';

export type { FlushMode, LogErrorEvent, LogFileFormat, LogLevel, MaxLogFileAction, NameFormat } from './log/types';

export interface LogWriterOptions {
  path: string;
  /** JSON: one object per whole event and line (writeEvent), its records' lines formatted ENRICHED. */
  format: LogFileFormat;
  /** The daemon that owns the log, named in JSON objects (`daemon`); default `host`. */
  daemon?: string;
  flush?: FlushMode;
  /** The incremental modes sync at the first batch end after this many records since the last sync (auditd `freq`). */
  freq?: number;
  /** max_log_file in MiB; 0 disables the size check. */
  maxLogFileMiB?: number;
  numLogs?: number;
  maxLogFileAction?: MaxLogFileAction;
  /** gid of log_group; with a non-root group files are 0640 (rotated 0440). */
  logGroupGid?: number;
  /** node= prefix (already resolved, see resolveNodeName); undefined = none. */
  node?: string;
  contidKernel?: boolean;
  ids?: IdNameCache;
  /** Bytes buffered before a write is forced. */
  bufferBytes?: number;
  /** Serial of the first DAEMON_* record; auditd starts its own counter away from the kernel's. */
  initialSerial?: number;
  logger?: (level: LogLevel, msg: string) => void;
  onError?: (e: LogErrorEvent) => void;
  /** Also rotate when the hour or the (local) day changes; checked at each flush. */
  rotateInterval?: 'hourly' | 'daily';
  /** gzip each rotated log (audit.log.1 becomes audit.log.1.gz). */
  compress?: boolean;
  /** Clock, for tests. */
  now?: () => number;
  /** JSON: the host's container registry, for each object's `container` (absent: objects have none). */
  containers?: ContainerDirectory;
}

export interface LogWriterCounters {
  records: number;
  bytes: number;
  writes: number;
  fsyncs: number;
  /** Syncs the flush mode asked for (fsyncs counts those done; a background one may cover several requests). */
  syncRequests: number;
  rotations: number;
  /** Records not written: logging suspended or a write failed. */
  lost: number;
  errors: number;
}

/** Who asked for a daemon action (from SIGNAL_INFO for signals; the daemon itself otherwise). */
export interface Requester {
  auid: number;
  uid: number;
  ses: number;
  pid: number;
}

const MiB = 1024 * 1024;
const DEFAULT_BUFFER = 1 * MiB;
const UNSET = AUDIT_UID_UNSET;

/** The lines the text logs of this process made last, for the others to copy (see RecentLines). */
export const recentLines = new RecentLines();

/**
 * Owns the line buffer, the formatter, the flush mode and what triggers a rotation (size, time, a signal); the live
 * file (LogFile), the rotated names (LogRotation) and gzip (LogCompressor) each own their own state.
 */
export class LogWriter implements LineHolder {
  private readonly opts: Required<
    Omit<
      LogWriterOptions,
      | 'node'
      | 'logGroupGid'
      | 'ids'
      | 'logger'
      | 'onError'
      | 'contidKernel'
      | 'rotateInterval'
      | 'compress'
      | 'now'
      | 'daemon'
      | 'containers'
    >
  > &
    LogWriterOptions;
  private readonly formatter: LineFormatter;
  private readonly file: LogFile;
  private readonly rotation: LogRotation;
  private readonly own = { records: 0, lost: 0, errors: 0 };
  private readonly buf: Buffer;
  private readonly bufArray: ArrayBuffer;
  private readonly bufOffset: number;
  private used = 0;
  /** Times the buffer was written out (LineHolder): a line noted in recentLines is there while this is unchanged. */
  private emptiedCount = 0;
  /** Counted among its style's logs in recentLines (a text log, until close). */
  private sharing: boolean;
  private bufferedRecords = 0;
  private logSize = 0;
  /** Records accepted since the last sync was asked for (the incremental modes' `freq` count). */
  private sinceSync = 0;
  /** Bytes were written since the last sync was asked for. */
  private unsynced = false;
  private suspended = false;
  private sizeWarned = false;
  /**
   * After a rotation that failed (a step of the chain, or log -> .1), the size the log must reach before the size
   * check tries again: every record past max_log_file asked for a rotation, each with a forced sync and an error.
   */
  private rotateRetryAt = 0;
  private serial: number;
  /** JSON: the node and boot id of the objects' `node` and `id` (the nats output's message id for the same event). */
  private readonly json: {
    node: string;
    daemon: string;
    bootId: string;
    scratch: Buffer;
    containers: ContainerCache;
  } | null;

  constructor(opts: LogWriterOptions) {
    this.opts = {
      flush: 'incremental_async',
      freq: 50,
      maxLogFileMiB: 8,
      numLogs: 5,
      maxLogFileAction: 'rotate',
      bufferBytes: DEFAULT_BUFFER,
      initialSerial: 1 + Math.floor(Math.random() * 9999),
      ...opts,
    };
    this.json =
      opts.format === 'JSON'
        ? {
            node: defaultNode(opts.node),
            daemon: opts.daemon ?? 'host',
            bootId: readBootId(),
            scratch: Buffer.allocUnsafe(MAX_LINE_BYTES),
            containers: new ContainerCache(opts.containers),
          }
        : null;
    this.formatter = new LineFormatter({
      // A JSON object carries the interpreted values beside the raw ones: its lines are ENRICHED.
      format: opts.format === 'JSON' ? 'ENRICHED' : opts.format,
      node: opts.node,
      contidKernel: opts.contidKernel ?? false,
      ...(opts.ids ? { ids: opts.ids } : {}),
    });
    this.buf = Buffer.allocUnsafe(Math.max(this.opts.bufferBytes, 4 * MAX_LINE_BYTES));
    this.bufArray = this.buf.buffer as ArrayBuffer;
    this.bufOffset = this.buf.byteOffset;
    // A JSON log formats into its own scratch, never from or into the shared lines.
    this.sharing = this.json === null;
    if (this.sharing) recentLines.join(this.formatter.style);
    this.serial = this.opts.initialSerial;
    const reporter: LogReporter = {
      log: (level, msg) => this.log(level, msg),
      report: (op, e, lost) => this.report(op, e, lost),
    };
    this.file = new LogFile(opts.path, opts.logGroupGid, reporter);
    this.rotation = new LogRotation(
      {
        path: opts.path,
        dir: this.file.dir,
        numLogs: this.opts.numLogs,
        now: opts.now ?? Date.now,
        ...(opts.logGroupGid !== undefined ? { logGroupGid: opts.logGroupGid } : {}),
        ...(opts.rotateInterval ? { rotateInterval: opts.rotateInterval } : {}),
        ...(opts.compress
          ? { compressor: new LogCompressor(opts.logGroupGid ? 0o440 : 0o400, reporter, opts.logGroupGid) }
          : {}),
      },
      reporter,
    );
  }

  /** Everything counted so far, from the writer and its parts (a snapshot). */
  get counters(): LogWriterCounters {
    this.file.takeSyncs();
    const f = this.file.counters;
    return {
      records: this.own.records,
      bytes: f.bytes,
      writes: f.writes,
      fsyncs: f.fsyncs,
      syncRequests: f.syncRequests,
      rotations: this.rotation.rotations,
      lost: this.own.lost,
      errors: this.own.errors,
    };
  }

  get isOpen(): boolean {
    return this.file.isOpen;
  }

  /** Whether the log takes whole events only (JSON): its daemon must hand it events, not a stream of records. */
  get wholeEvents(): boolean {
    return this.json !== null;
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  /** Where the disk-space check measures the log's file system (LogFile.spaceTarget). */
  get spaceTarget(): string {
    return this.file.spaceTarget;
  }

  /** Current file size including buffered bytes. */
  get size(): number {
    return this.logSize;
  }

  /** Opens (creating if needed) and prunes excess rotated logs as auditd does at startup. Throws IoError. */
  open(): void {
    this.rotation.startPeriod();
    try {
      this.logSize = this.file.open();
    } catch (e) {
      // The directory may be held already: a writer that never opened is dropped by its caller, so let it go now,
      // and its style's count with it (a lone log of that style would go on noting and looking up every line).
      this.file.close();
      this.leaveStyle();
      throw e;
    }
    this.rotation.removeExcess(this.opts.maxLogFileAction);
    this.checkLogFileSize();
  }

  /** Formats and buffers one record; false when it was dropped (suspended or closed) and counted lost. */
  writeRecord(type: number, payload: Buffer): boolean {
    return this.writeRecordAt(type, payload, 0, payload.length);
  }

  /** writeRecord of the payload src[start..end), read where it lies (a record of the kernel's batch, streamed). */
  writeRecordAt(type: number, src: Buffer, start: number, end: number): boolean {
    if (type === MsgType.EOE) return true; // auditd never writes EOE to disk
    // A record alone (a DAEMON_* record, a stream) is an event of one record to a JSON log.
    if (this.json) return this.writeEvent([{ type, payload: src.subarray(start, end) }]);
    if (this.suspended || !this.file.isOpen) {
      this.own.lost++;
      return false;
    }
    if (this.buf.length - this.used < MAX_LINE_BYTES) this.flushBuffer();
    const before = this.used;
    // A record (an event's, which other logs of this process may write too: a payload of its own or a range of the
    // batch) is looked for among the lines made last: a log of the same style that wrote it already holds its line.
    const style = this.formatter.style;
    const share = recentLines.shares(style);
    let after = share ? recentLines.copy(type, src, start, end, style, this.buf, before) : -1;
    if (after < 0) {
      after = this.formatter.formatRangeInto(type, src, start, end, this.buf, before);
      if (share) recentLines.note(type, src, start, end, style, this, before, after);
    }
    this.used = after;
    this.bufferedRecords++;
    this.own.records++;
    this.logSize += this.used - before;
    this.afterRecord();
    return true;
  }

  /**
   * A line formatted elsewhere (an aggregator's clients send whole `node=... type=... msg=...` lines): written as is,
   * with the newline added when missing, under the same buffering, flush and rotation rules as records.
   */
  writeLine(line: Buffer): boolean {
    if (this.suspended || !this.file.isOpen) {
      this.own.lost++;
      return false;
    }
    let end = line.length;
    while (end > 0 && (line[end - 1] === 0x0a || line[end - 1] === 0x00)) end--;
    if (end > MAX_LINE_BYTES - 1) end = MAX_LINE_BYTES - 1;
    // A JSON log gets each forwarded line as an event of one record (peers send records, not events). A peer's contid
    // names a container of the peer's host: this host's registry has nothing to say about it.
    if (this.json) return this.writeJson([line.toString('latin1', 0, end)], 1, false);
    if (this.buf.length - this.used < MAX_LINE_BYTES) this.flushBuffer();
    line.copy(this.buf, this.used, 0, end);
    this.used += end;
    this.buf[this.used++] = 0x0a;
    this.bufferedRecords++;
    this.own.records++;
    this.logSize += end + 1;
    this.afterRecord();
    return true;
  }

  /**
   * One whole event (EOE skipped): a JSON log writes it as one object on one line, the other formats one line per
   * record. False when it was dropped (suspended or closed) and its records counted lost.
   */
  writeEvent(records: readonly EventRecord[]): boolean {
    const json = this.json;
    if (!json) {
      let ok = true;
      for (const r of records) ok = this.writeRecord(r.type, r.payload) && ok;
      return ok;
    }
    const lines: string[] = [];
    for (const r of records) {
      if (r.type === MsgType.EOE) continue;
      const end = this.formatter.formatInto(r.type, r.payload, json.scratch, 0);
      lines.push(json.scratch.toString('latin1', 0, end - 1));
    }
    return lines.length === 0 || this.writeJson(lines, lines.length);
  }

  /**
   * The event of `lines` as one JSON line; `records` of them counted as written (or lost). `local`: the event is this
   * host's, so its contid's container is looked up in the host's registry.
   */
  private writeJson(lines: readonly string[], records: number, local = true): boolean {
    const json = this.json!;
    if (this.suspended || !this.file.isOpen) {
      this.own.lost += records;
      return false;
    }
    const st = lineStamp(lines[0]!);
    const id = messageId(json.node, json.bootId, st?.time ?? '0.000', st?.serial ?? '0', 0, json.daemon);
    const contid = contidOf(lines);
    const container = local ? json.containers.lookup(contid)?.fields : undefined;
    const obj = encodeEventJson(id, json.node, json.daemon, lines, container, contid);
    const n = obj.length + 1;
    if (this.buf.length - this.used < n) this.flushBuffer();
    if (n > this.buf.length) {
      // An event larger than the whole buffer (thousands of records) is written on its own, as the buffer would be.
      const line = Buffer.concat([obj, Buffer.from('\n')]);
      const failed = this.file.write(line, line.length);
      if (failed) {
        this.own.lost += records;
        this.logSize += failed.written;
        this.report('write', failed.error, records);
        return false;
      }
      this.logSize += n;
      this.unsynced = true;
    } else {
      obj.copy(this.buf, this.used);
      this.used += obj.length;
      this.buf[this.used++] = 0x0a;
      this.bufferedRecords += records;
      this.logSize += n;
    }
    this.own.records += records;
    this.afterRecord();
    return true;
  }

  /** A record produced by the daemon (DAEMON_*), stamped now with the daemon's own serial counter. */
  writeDaemonRecord(type: number, body: string, nowMs = Date.now()): boolean {
    return this.writeRecord(type, this.daemonPayload(body, nowMs));
  }

  /** The payload of one of the daemon's own records, with the next of its serials (for outputs that get it too). */
  daemonPayload(body: string, nowMs = Date.now()): Buffer {
    const sec = Math.floor(nowMs / 1000);
    const ms = nowMs - sec * 1000;
    const s = this.serial++;
    return Buffer.from(`audit(${sec}.${String(ms).padStart(3, '0')}:${s}): ${body}`, 'latin1');
  }

  /**
   * The end of a batch: hands buffered bytes to the kernel in one write (the records now survive a crash of this
   * process), then asks for the sync the flush mode promises: `data` and `sync` always (auditd opens its log O_DSYNC /
   * O_SYNC), the incremental modes once `freq` records were accepted since the last one (one sync for the whole
   * batch, however many times it crossed `freq`; auditd fsyncs every `freq` records, inside the batch). False when
   * that write or sync failed.
   */
  flush(): boolean {
    const { errors, lost } = this.own;
    this.writeOut(false);
    // Whoever acknowledges records to a peer after this (an aggregator, the collector) must not when a write or a sync
    // failed, or records were dropped (a closed file).
    const ok = this.own.errors === errors && this.own.lost === lost;
    if (this.file.isOpen && this.rotation.periodChanged()) {
      this.log(
        'info',
        `Audit daemon rotating log files (new ${this.opts.rotateInterval === 'hourly' ? 'hour' : 'day'})`,
      );
      this.rotateNow({ auid: UNSET, uid: process.getuid?.() ?? 0, ses: UNSET, pid: process.pid });
    }
    return ok;
  }

  /** Bytes formatted but not yet written. */
  get bufferedBytes(): number {
    return this.used;
  }

  /**
   * Whether the next flush() asks for a sync: `data` and `sync` whenever something is buffered, the incremental modes
   * once `freq` records were taken since the last sync.
   */
  get syncDue(): boolean {
    const mode = this.opts.flush;
    if (mode === 'data' || mode === 'sync') return this.used > 0;
    if (mode === 'incremental' || mode === 'incremental_async') return this.sinceSync >= Math.max(1, this.opts.freq);
    return false;
  }

  /** SIGUSR1: rotate now (keep_logs shifts instead), then log DAEMON_ROTATE into the new file. */
  rotateNow(by: Requester): void {
    if (!this.file.isOpen) return;
    this.writeOut(true);
    if (this.opts.maxLogFileAction === 'keep_logs') this.shiftLogs();
    else this.rotateLogs(0);
    this.writeDaemonRecord(MsgType.DAEMON_ROTATE, daemonRotateBody(by));
    this.writeOut(true);
  }

  /**
   * Stops writing: records are refused and counted lost until resume(). `closeFile` (the exec disk actions, as
   * auditd): what was written is synced and the file closed, so the program can move or compress it; resume() opens
   * the log again. Kept open, the daemon wrote on into the moved (or deleted) file after the resume.
   */
  suspend(closeFile = false): void {
    this.writeOut(true);
    this.suspended = true;
    if (closeFile && this.file.isOpen) {
      this.unsynced = false;
      this.sinceSync = 0;
      this.file.release();
    }
  }

  /** SIGUSR2 / `auditctl --signal resume`: reopen if needed and start writing again. */
  resume(): void {
    this.suspended = false;
    this.sizeWarned = false;
    this.rotateRetryAt = 0;
    if (!this.file.isOpen) {
      try {
        this.logSize = this.file.open();
      } catch (e) {
        this.suspended = true;
        this.report('open', e, 0);
        return;
      }
    }
    this.checkLogFileSize();
  }

  private leaveStyle(): void {
    if (this.sharing) {
      this.sharing = false;
      recentLines.leave(this.formatter.style, this);
    }
  }

  /** Writes everything, fsyncs and closes; every accepted record is on disk afterwards. */
  close(): void {
    this.leaveStyle();
    if (!this.file.isOpen) {
      // Suspended after a failed reopen: no file, but its held directory still goes.
      this.file.close();
      return;
    }
    this.flushBuffer();
    this.unsynced = false;
    this.sinceSync = 0;
    this.file.close();
  }

  private afterRecord(): void {
    // Counted only: the write and the sync wait for the batch's end (flush), one each however big the batch.
    this.sinceSync++;
    this.checkLogFileSize();
  }

  /**
   * Writes the buffer, then asks for a sync when the mode wants one now; `force` (a rotation, a suspension) syncs
   * whatever was written in any mode but `none`, `freq` or not.
   */
  private writeOut(force: boolean): void {
    this.flushBuffer();
    if (!this.unsynced || !this.file.isOpen) return;
    const mode = this.opts.flush;
    if (mode === 'none') return;
    const incremental = mode === 'incremental' || mode === 'incremental_async';
    if (incremental && !force && this.sinceSync < Math.max(1, this.opts.freq)) return;
    this.unsynced = false;
    this.sinceSync = 0;
    this.file.sync(mode);
  }

  get emptied(): number {
    return this.emptiedCount;
  }

  /** LineHolder: where the buffer whose lines recentLines notes lies (read only there, to copy a line out). */
  get lineArrayBuffer(): ArrayBuffer {
    return this.bufArray;
  }

  get lineByteOffset(): number {
    return this.bufOffset;
  }

  /** Writes the buffer (no sync: see writeOut); records of a failed write are counted lost. */
  private flushBuffer(): void {
    // Whatever happens below, the bytes before `used` may be overwritten from here on.
    this.emptiedCount++;
    if (this.used === 0 || !this.file.isOpen) {
      if (!this.file.isOpen && this.bufferedRecords > 0) {
        this.own.lost += this.bufferedRecords;
        this.used = 0;
        this.bufferedRecords = 0;
      }
      return;
    }
    const n = this.used;
    const recs = this.bufferedRecords;
    this.used = 0;
    this.bufferedRecords = 0;
    const failed = this.file.write(this.buf, n);
    if (failed) {
      // Bytes already written stay; the rest of the batch is lost (proportionally, records are roughly equal).
      const unwritten = n - failed.written;
      const lost = Math.max(1, Math.round((recs * unwritten) / n));
      this.own.lost += lost;
      this.logSize -= unwritten;
      this.report('write', failed.error, lost);
      return;
    }
    this.unsynced = true;
  }

  private checkLogFileSize(): void {
    const max = this.opts.maxLogFileMiB;
    if (max <= 0 || !this.file.isOpen || this.suspended) return;
    if (Math.floor(this.logSize / MiB) < max) return;
    switch (this.opts.maxLogFileAction) {
      case 'ignore':
        break;
      case 'syslog':
        if (!this.sizeWarned) {
          this.sizeWarned = true;
          this.log('error', 'Audit daemon log file is larger than max size');
        }
        break;
      case 'suspend':
        this.log('error', 'Audit daemon is suspending logging due to logfile size.');
        this.suspend();
        break;
      case 'rotate':
        if (this.logSize < this.rotateRetryAt) break;
        if (this.opts.numLogs > 1) {
          this.log('info', 'Audit daemon rotating log files');
          this.writeOut(true);
          this.rotateLogs(0);
        }
        break;
      case 'keep_logs':
        if (this.logSize < this.rotateRetryAt) break;
        this.log('info', 'Audit daemon rotating log files with keep option');
        this.writeOut(true);
        this.shiftLogs();
        break;
    }
  }

  /** Rotates the files (n = 0: num_logs; `keep`: keep_logs), then writes on in a new live log. */
  private rotateLogs(n: number, keep = false): void {
    const before = this.logSize;
    // Failed or not, the size check waits for another MiB before trying again; a rotation that worked starts small.
    this.rotateRetryAt = before + MiB;
    if (!this.rotation.rotate(this.file, n, keep)) return;
    this.sizeWarned = false;
    try {
      this.logSize = this.file.open();
    } catch (e) {
      this.log('error', 'Could not reopen a log after rotating.');
      this.suspended = true;
      this.report('open', e, 0);
    }
    if (this.logSize < before) this.rotateRetryAt = 0;
  }

  /** keep_logs: like rotate, but the highest number grows instead of old logs being deleted. */
  private shiftLogs(): void {
    this.rotateLogs(this.rotation.keepNumber(), true);
  }

  private log(level: LogLevel, msg: string): void {
    this.opts.logger?.(level, msg);
  }

  private report(op: LogErrorEvent['op'], e: unknown, lostRecords: number): void {
    this.own.errors++;
    const err = e as NodeJS.ErrnoException;
    const errno = typeof err.errno === 'number' ? Math.abs(err.errno) : 0;
    const ev: LogErrorEvent = {
      op,
      code: err.code ?? errnoName(errno),
      errno,
      message: err.message ?? String(e),
      lostRecords,
      errors: this.own.errors,
    };
    this.opts.onError?.(ev);
  }
}

export interface DaemonStartInfo extends Requester {
  ver: string;
  format: LogFileFormat;
  kernel?: string;
}

/** DAEMON_START body as auditd 3.0.9 writes it (the requester is the daemon itself). */
export function daemonStartBody(i: DaemonStartInfo): string {
  const kernel = i.kernel ?? os.release();
  return `op=start ver=${i.ver} format=${i.format.toLowerCase()} kernel=${kernel} auid=${i.auid} pid=${i.pid} uid=${i.uid} ses=${i.ses} res=success`;
}

/** DAEMON_END body for a SIGTERM from `by`. */
export function daemonEndBody(by: Requester): string {
  return `op=terminate auid=${by.auid} uid=${by.uid} ses=${by.ses} pid=${by.pid} res=success`;
}

/** DAEMON_RESUME body for a SIGUSR2 or `auditmux resume` from `by`. */
export function daemonResumeBody(by: Requester): string {
  return `op=resume auid=${by.auid} uid=${by.uid} ses=${by.ses} pid=${by.pid} res=success`;
}

/** DAEMON_ROTATE body for a SIGUSR1 from `by`. */
export function daemonRotateBody(by: Requester): string {
  return `op=rotate-logs auid=${by.auid} uid=${by.uid} ses=${by.ses} pid=${by.pid} res=success`;
}

/** DAEMON_CONFIG body after a reconfigure (SIGHUP) from `by`; not yet checked against a captured auditd line. */
export function daemonConfigBody(by: Requester, ok: boolean): string {
  return `op=reconfigure state=${ok ? 'changed' : 'no-change'} auid=${by.auid} uid=${by.uid} ses=${by.ses} pid=${by.pid} res=${ok ? 'success' : 'failed'}`;
}

/** This process as a requester (DAEMON_START): auid/ses from /proc/self, unset when unreadable. */
export function selfRequester(): Requester {
  const read = (p: string): number => {
    try {
      const v = Number(fs.readFileSync(p, 'latin1').trim());
      return Number.isInteger(v) ? v : UNSET;
    } catch {
      return UNSET;
    }
  };
  return {
    auid: read('/proc/self/loginuid'),
    uid: process.getuid?.() ?? 0,
    ses: read('/proc/self/sessionid'),
    pid: process.pid,
  };
}

/** name_format/name -> the node= value; undefined for none. */
export async function resolveNodeName(format: NameFormat, name?: string): Promise<string | undefined> {
  switch (format) {
    case 'none':
      return undefined;
    case 'user':
      return name && name.length > 0 ? name : undefined;
    case 'hostname':
      return os.hostname();
    case 'numeric': {
      try {
        return (await dns.lookup(os.hostname())).address;
      } catch {
        return os.hostname();
      }
    }
    case 'fqd': {
      const host = os.hostname();
      try {
        const { address } = await dns.lookup(host);
        const names = await dns.reverse(address);
        return names[0] ?? host;
      } catch {
        return host;
      }
    }
  }
}
