// The audit log writer: big buffered writes in auditd 3.0.9's format, flush modes, size rotation and DAEMON_* records.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname } from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import * as zlib from 'node:zlib';
import { promises as dns } from 'node:dns';
import { IoError, errnoName } from '../errors';
import { checkDirSafe, createExclusive, lstatOrNull, openAppendNoFollow, openNoFollow, readBounded } from '../safefs';
import { AUDIT_UID_UNSET, MsgType } from '../kernel/constants';
import type { AuditEvent } from '../records/reassembler';
import { IdNameCache, LineFormatter, MAX_LINE_BYTES, type LogFormat } from './format';

export type FlushMode = 'none' | 'incremental' | 'incremental_async' | 'data' | 'sync';
export type MaxLogFileAction = 'ignore' | 'syslog' | 'suspend' | 'rotate' | 'keep_logs';
export type NameFormat = 'none' | 'hostname' | 'fqd' | 'numeric' | 'user';
export type LogLevel = 'info' | 'warn' | 'error';

/** A failed write, fsync, rename or open: reported, counted, never thrown out of the hot path. */
export interface LogErrorEvent {
  op: 'write' | 'fsync' | 'rotate' | 'open' | 'close';
  code: string;
  errno: number;
  message: string;
  /** Records dropped because of this error. */
  lostRecords: number;
  /** How many errors so far. */
  errors: number;
}

export interface LogWriterOptions {
  path: string;
  format: LogFormat;
  flush?: FlushMode;
  /** Records between explicit flushes for the incremental modes (auditd `freq`). */
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
}

export interface LogWriterCounters {
  records: number;
  bytes: number;
  writes: number;
  fsyncs: number;
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

export class LogWriter {
  readonly counters: LogWriterCounters = {
    records: 0,
    bytes: 0,
    writes: 0,
    fsyncs: 0,
    rotations: 0,
    lost: 0,
    errors: 0,
  };
  private readonly opts: Required<
    Omit<
      LogWriterOptions,
      'node' | 'logGroupGid' | 'ids' | 'logger' | 'onError' | 'contidKernel' | 'rotateInterval' | 'compress' | 'now'
    >
  > &
    LogWriterOptions;
  private readonly formatter: LineFormatter;
  private readonly buf: Buffer;
  private used = 0;
  private bufferedRecords = 0;
  private fd = -1;
  private logSize = 0;
  private sinceFlush = 0;
  private suspended = false;
  private sizeWarned = false;
  private asyncFsyncBusy = false;
  private asyncFsyncAgain = false;
  private lastLog = 1;
  private serial: number;
  private period = '';
  private readonly now: () => number;

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
    this.formatter = new LineFormatter({
      format: opts.format,
      node: opts.node,
      contidKernel: opts.contidKernel ?? false,
      ids: opts.ids ?? new IdNameCache(),
    });
    this.buf = Buffer.allocUnsafe(Math.max(this.opts.bufferBytes, 4 * MAX_LINE_BYTES));
    this.now = opts.now ?? Date.now;
    this.serial = this.opts.initialSerial;
  }

  get isOpen(): boolean {
    return this.fd >= 0;
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  /** Current file size including buffered bytes. */
  get size(): number {
    return this.logSize;
  }

  /** Opens (creating if needed) and prunes excess rotated logs as auditd does at startup. Throws IoError. */
  open(): void {
    this.period = this.periodKey();
    this.openLog();
    this.checkExcessLogs();
    this.checkLogFileSize();
  }

  /** Formats and buffers one record; false when it was dropped (suspended or closed) and counted lost. */
  writeRecord(type: number, payload: Buffer): boolean {
    if (type === MsgType.EOE) return true; // auditd never writes EOE to disk
    if (this.suspended || this.fd < 0) {
      this.counters.lost++;
      return false;
    }
    if (this.buf.length - this.used < MAX_LINE_BYTES) this.flushBuffer();
    const before = this.used;
    this.used = this.formatter.formatInto(type, payload, this.buf, this.used);
    this.bufferedRecords++;
    this.counters.records++;
    this.logSize += this.used - before;
    this.afterRecord();
    return true;
  }

  /**
   * A line formatted elsewhere (an aggregator's clients send whole `node=... type=... msg=...` lines): written as is,
   * with the newline added when missing, under the same buffering, flush and rotation rules as records.
   */
  writeLine(line: Buffer): boolean {
    if (this.suspended || this.fd < 0) {
      this.counters.lost++;
      return false;
    }
    let end = line.length;
    while (end > 0 && (line[end - 1] === 0x0a || line[end - 1] === 0x00)) end--;
    if (end > MAX_LINE_BYTES - 1) end = MAX_LINE_BYTES - 1;
    if (this.buf.length - this.used < MAX_LINE_BYTES) this.flushBuffer();
    line.copy(this.buf, this.used, 0, end);
    this.used += end;
    this.buf[this.used++] = 0x0a;
    this.bufferedRecords++;
    this.counters.records++;
    this.logSize += end + 1;
    this.afterRecord();
    return true;
  }

  writeEvent(ev: AuditEvent): void {
    for (const r of ev.records) this.writeRecord(r.type, r.raw);
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
   * Hands buffered bytes to the kernel (the records now survive a crash of this process). Only `data` and `sync` also
   * sync here; the incremental modes sync every `freq` records, as auditd does, not on every batch.
   */
  flush(): void {
    const mode = this.opts.flush;
    this.flushBuffer(mode === 'data' || mode === 'sync');
    if (this.opts.rotateInterval && this.fd >= 0) {
      const p = this.periodKey();
      if (p !== this.period) {
        this.period = p;
        this.log(
          'info',
          `Audit daemon rotating log files (new ${this.opts.rotateInterval === 'hourly' ? 'hour' : 'day'})`,
        );
        this.rotateNow({ auid: UNSET, uid: process.getuid?.() ?? 0, ses: UNSET, pid: process.pid });
      }
    }
  }

  /** The current hour or local day, for time-based rotation. */
  private periodKey(): string {
    if (!this.opts.rotateInterval) return '';
    const d = new Date(this.now());
    const day = `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
    return this.opts.rotateInterval === 'daily' ? day : `${day}T${d.getHours()}`;
  }

  /** Bytes formatted but not yet written. */
  get bufferedBytes(): number {
    return this.used;
  }

  /** SIGUSR1: rotate now (keep_logs shifts instead), then log DAEMON_ROTATE into the new file. */
  rotateNow(by: Requester): void {
    if (this.fd < 0) return;
    this.flushBuffer();
    if (this.opts.maxLogFileAction === 'keep_logs') this.shiftLogs();
    else this.rotateLogs(0);
    this.writeDaemonRecord(MsgType.DAEMON_ROTATE, daemonRotateBody(by));
    this.flushBuffer();
  }

  suspend(): void {
    this.flushBuffer();
    this.suspended = true;
  }

  /** SIGUSR2 / `auditctl --signal resume`: reopen if needed and start writing again. */
  resume(): void {
    this.suspended = false;
    this.sizeWarned = false;
    if (this.fd < 0) {
      try {
        this.openLog();
      } catch (e) {
        this.suspended = true;
        this.report('open', e, 0);
        return;
      }
    }
    this.checkLogFileSize();
  }

  /** Writes everything, fsyncs and closes; every accepted record is on disk afterwards. */
  close(): void {
    if (this.fd < 0) return;
    this.flushBuffer();
    try {
      fs.fsyncSync(this.fd);
      this.counters.fsyncs++;
    } catch (e) {
      this.report('fsync', e, 0);
    }
    try {
      fs.closeSync(this.fd);
    } catch (e) {
      this.report('close', e, 0);
    }
    this.fd = -1;
  }

  private afterRecord(): void {
    const mode = this.opts.flush;
    if (mode === 'incremental' || mode === 'incremental_async') {
      if (++this.sinceFlush >= Math.max(1, this.opts.freq)) {
        this.sinceFlush = 0;
        this.flushBuffer();
      }
    }
    this.checkLogFileSize();
  }

  private flushBuffer(sync = true): void {
    if (this.used === 0 || this.fd < 0) {
      if (this.fd < 0 && this.bufferedRecords > 0) {
        this.counters.lost += this.bufferedRecords;
        this.used = 0;
        this.bufferedRecords = 0;
      }
      return;
    }
    const n = this.used;
    const recs = this.bufferedRecords;
    this.used = 0;
    this.bufferedRecords = 0;
    let off = 0;
    try {
      while (off < n) off += fs.writeSync(this.fd, this.buf, off, n - off);
      this.counters.writes++;
      this.counters.bytes += n;
    } catch (e) {
      // Bytes already written stay; the rest of the batch is lost (proportionally, records are roughly equal).
      const lost = Math.max(1, Math.round((recs * (n - off)) / n));
      this.counters.lost += lost;
      this.logSize -= n - off;
      this.report('write', e, lost);
      return;
    }
    if (sync) this.syncAfterWrite();
  }

  private syncAfterWrite(): void {
    const mode = this.opts.flush;
    try {
      if (mode === 'data') {
        fs.fdatasyncSync(this.fd);
        this.counters.fsyncs++;
      } else if (mode === 'sync' || mode === 'incremental') {
        fs.fsyncSync(this.fd);
        this.counters.fsyncs++;
      } else if (mode === 'incremental_async') {
        this.asyncFsync();
      }
    } catch (e) {
      this.report('fsync', e, 0);
    }
  }

  // At most one fsync in flight; requests during it coalesce into one more, as auditd's flush thread loops.
  private asyncFsync(): void {
    if (this.asyncFsyncBusy) {
      this.asyncFsyncAgain = true;
      return;
    }
    this.asyncFsyncBusy = true;
    const fd = this.fd;
    fs.fsync(fd, (err) => {
      this.asyncFsyncBusy = false;
      if (err) {
        if (fd === this.fd) this.report('fsync', err, 0);
      } else this.counters.fsyncs++;
      if (this.asyncFsyncAgain && this.fd >= 0) {
        this.asyncFsyncAgain = false;
        this.asyncFsync();
      }
    });
  }

  private checkLogFileSize(): void {
    const max = this.opts.maxLogFileMiB;
    if (max <= 0 || this.fd < 0 || this.suspended) return;
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
        if (this.opts.numLogs > 1) {
          this.log('info', 'Audit daemon rotating log files');
          this.flushBuffer();
          this.rotateLogs(0);
        }
        break;
      case 'keep_logs':
        this.log('info', 'Audit daemon rotating log files with keep option');
        this.flushBuffer();
        this.shiftLogs();
        break;
    }
  }

  private rotatedName(i: number): string {
    return `${this.opts.path}.${i}`;
  }

  /** rotate_logs(): .N-2 -> .N-1 ... .1 -> .2, log -> .1, reopen; with n = 0 the configured num_logs. */
  private rotateLogs(n: number): void {
    if (this.opts.numLogs < 2) {
      this.log('info', 'Log rotation disabled (num_logs < 2), skipping');
      return;
    }
    const group = this.opts.logGroupGid;
    try {
      fs.fchmodSync(this.fd, group ? 0o440 : 0o400);
    } catch (e) {
      this.log('warn', `Couldn't change permissions while rotating log file (${errText(e)})`);
    }
    this.closeQuietly();
    const num = n === 0 ? this.opts.numLogs : n;
    for (let i = num - 1; i > 1; i--) {
      this.renameIfExists(this.rotatedName(i - 1), this.rotatedName(i));
      this.renameIfExists(this.rotatedName(i - 1) + '.gz', this.rotatedName(i) + '.gz');
    }
    if (!this.renameIfExists(this.opts.path, this.rotatedName(1))) {
      try {
        // Through a descriptor: chmod(2) on the name would follow a symlink planted there.
        const { fd } = openNoFollow(this.opts.path, fs.constants.O_RDONLY, { what: 'log file' });
        try {
          fs.fchmodSync(fd, group ? 0o640 : 0o600);
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        // the reopen below reports the real problem
      }
    }
    this.counters.rotations++;
    this.sizeWarned = false;
    if (this.opts.compress) this.compressRotated(this.rotatedName(1));
    try {
      this.openLog();
    } catch (e) {
      this.log('error', 'Could not reopen a log after rotating.');
      this.suspended = true;
      this.report('open', e, 0);
    }
  }

  /** shift_logs(): like rotate, but the highest number grows instead of old logs being deleted. */
  private shiftLogs(): void {
    let num = this.lastLog;
    while (lstatOrNull(this.rotatedName(num))) num++;
    if (num <= this.lastLog && this.lastLog > 1) {
      this.log('warn', `Last known log disappeared (${this.rotatedName(num)})`);
      num = this.lastLog = 1;
      while (lstatOrNull(this.rotatedName(num))) num++;
    }
    this.lastLog = num;
    this.rotateLogs(num + 1);
  }

  /**
   * gzip a just-rotated log in place (name.gz, then the plain file goes). Synchronous at level 1: rotations are rare,
   * an 8 MiB log takes tens of ms, and no later rotation can rename the file while it is being read.
   */
  private compressRotated(file: string): void {
    const tmp = `${file}.gz.tmp`;
    let created = false;
    try {
      // The file we just renamed: read without following a symlink, and never copy out a file linked elsewhere.
      const { data, stat } = readBounded(file, {
        limit: bufferConstants.MAX_LENGTH,
        noFollow: true,
        what: 'rotated log',
      });
      if (stat.nlink > 1) throw new IoError(`rotated log ${file} has ${stat.nlink} hard links`, 'E_HARDLINK');
      const gz = zlib.gzipSync(data, { level: 1 });
      // O_EXCL: a name planted at the temporary (a symlink to any file) is removed, never written through.
      const { fd } = createExclusive(tmp, {
        mode: this.opts.logGroupGid ? 0o440 : 0o400,
        what: 'temporary file',
        replaceStale: true,
      });
      created = true;
      try {
        let off = 0;
        while (off < gz.length) off += fs.writeSync(fd, gz, off, gz.length - off);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, `${file}.gz`);
      created = false;
      fs.unlinkSync(file);
    } catch (e) {
      if (created) fs.rmSync(tmp, { force: true });
      // The plain rotated file stays: nothing is lost, it is just not compressed.
      this.log('warn', `Could not compress ${file} (${errText(e)})`);
    }
  }

  /**
   * rename(2) never follows a symlink, but a symlink moved along the rotated names would later be read by search and
   * compression as if it were a log: one found where a log belongs was planted, and only its name is removed.
   */
  private renameIfExists(from: string, to: string): boolean {
    let st: fs.Stats | null;
    try {
      st = lstatOrNull(from);
    } catch (e) {
      this.log('error', `Error rotating logs from ${from} to ${to} (${errText(e)})`);
      this.report('rotate', e, 0);
      return false;
    }
    if (!st) return true;
    if (st.isSymbolicLink()) {
      try {
        fs.unlinkSync(from);
        this.log('warn', `Removed ${from}: a symbolic link where a log belongs, not written by auditmux`);
        return true;
      } catch (e) {
        this.log('error', `Could not remove the symbolic link ${from} (${errText(e)})`);
        this.report('rotate', e, 0);
        return false;
      }
    }
    if (!st.isFile()) {
      this.log('error', `Error rotating logs from ${from} to ${to} (not a regular file)`);
      this.report('rotate', Object.assign(new Error(`${from} is not a regular file`), { code: 'E_LOG_NOT_FILE' }), 0);
      return false;
    }
    try {
      fs.renameSync(from, to);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
      this.log('error', `Error rotating logs from ${from} to ${to} (${errText(e)})`);
      this.report('rotate', e, 0);
      return false;
    }
  }

  /** check_excess_logs(): only with rotate and num_logs >= 2, removes .num_logs, .num_logs+1, ... */
  private checkExcessLogs(): void {
    if (this.opts.maxLogFileAction !== 'rotate' || this.opts.numLogs < 2) return;
    for (let i = this.opts.numLogs; ; i++) {
      let removed = false;
      for (const name of [this.rotatedName(i), this.rotatedName(i) + '.gz']) {
        try {
          fs.unlinkSync(name);
          removed = true;
          this.log('info', `Log ${name} removed as it exceeds num_logs parameter`);
        } catch {
          // not there
        }
      }
      if (!removed) break;
    }
  }

  private openLog(): void {
    const path = this.opts.path;
    const group = this.opts.logGroupGid;
    const mode = group ? 0o640 : 0o600;
    // Whoever else can write in the log's directory can delete or replace the trail, whatever the file's own mode.
    const dir = dirname(path);
    try {
      checkDirSafe(dir, { owners: [0, process.geteuid?.() ?? 0], what: 'log directory' });
    } catch (e) {
      const hint =
        (e as IoError).code === 'E_UNSAFE_DIR'
          ? ` (make it root's alone: chown root: ${dir} && chmod go-w ${dir}, and check the files in it)`
          : '';
      throw new IoError(`${(e as Error).message}${hint}`, 'E_LOG_DIR_UNSAFE', { cause: e });
    }
    // libuv adds O_CLOEXEC. O_NOFOLLOW, one link only: a name planted at the log path must not redirect root's writes.
    let fd: number;
    let st: fs.Stats;
    try {
      ({ fd, stat: st } = openAppendNoFollow(path, { mode, what: 'log file' }));
    } catch (e) {
      const code =
        { E_SYMLINK: 'E_LOG_SYMLINK', E_NOT_REGULAR: 'E_LOG_NOT_FILE', E_HARDLINK: 'E_LOG_HARDLINK' }[
          (e as IoError).code
        ] ?? 'E_LOG_OPEN';
      throw new IoError((e as Error).message, code, { cause: e });
    }
    try {
      fs.fchmodSync(fd, mode);
      if (process.getuid?.() === 0) fs.fchownSync(fd, 0, group ?? 0);
    } catch (e) {
      fs.closeSync(fd);
      throw new IoError(`cannot set owner/permissions of log file ${path}: ${errText(e)}`, 'E_LOG_OPEN', { cause: e });
    }
    this.fd = fd;
    this.logSize = st.size;
  }

  private closeQuietly(): void {
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // closing a file we are rotating away: nothing useful to do on failure
    }
    this.fd = -1;
  }

  private log(level: LogLevel, msg: string): void {
    this.opts.logger?.(level, msg);
  }

  private report(op: LogErrorEvent['op'], e: unknown, lostRecords: number): void {
    this.counters.errors++;
    const err = e as NodeJS.ErrnoException;
    const errno = typeof err.errno === 'number' ? Math.abs(err.errno) : 0;
    const ev: LogErrorEvent = {
      op,
      code: err.code ?? errnoName(errno),
      errno,
      message: err.message ?? String(e),
      lostRecords,
      errors: this.counters.errors,
    };
    this.opts.onError?.(ev);
  }
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message ?? String(e);
}

export interface DaemonStartInfo extends Requester {
  ver: string;
  format: LogFormat;
  kernel?: string;
}

/** DAEMON_START body as auditd 3.0.9 writes it (the requester is the daemon itself). */
export function daemonStartBody(i: DaemonStartInfo): string {
  const kernel = i.kernel ?? os.release();
  return `op=start ver=${i.ver} format=${i.format === 'RAW' ? 'raw' : 'enriched'} kernel=${kernel} auid=${i.auid} pid=${i.pid} uid=${i.uid} ses=${i.ses} res=success`;
}

/** DAEMON_END body for a SIGTERM from `by`. */
export function daemonEndBody(by: Requester): string {
  return `op=terminate auid=${by.auid} uid=${by.uid} ses=${by.ses} pid=${by.pid} res=success`;
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
