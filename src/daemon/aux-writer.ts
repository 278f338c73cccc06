// What an auxiliary daemon does with its routed events: its own log and outputs, in its own process or in the host's.
import { closeSync, constants, readSync } from 'node:fs';
import { AUDIT_UID_UNSET, MsgType } from '../kernel/constants';
import type { OutputConfig, OutputSpec } from '../config/schema';
import { closeAll, createOutputs, flushAll, writeAll, type Diag, type RecordOutput } from '../output/outputs';
import { LogWriter } from '../output/logfile';
import { writerOptions } from './outputs';
import { eventIdOf, type EventRecord } from './aux-ipc';
import { openNoFollow } from '../safefs';

export interface AuxWriterConfig {
  name: string;
  log: OutputConfig;
  outputs: OutputSpec[];
  nodeName: string | null;
  contidKernel: boolean;
}

/** How much of the log's tail is read at start to recognise events the host sends again after a crash. */
const TAIL_BYTES = 4 * 1024 * 1024;

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
 * One auxiliary daemon's log and outputs. After a crash the host sends again whatever was not acknowledged: records
 * the log already holds (found in its tail at open) are not written twice, and an event cut short by the crash is
 * completed with the records it lacks.
 */
export class AuxWriter {
  private log: LogWriter | null = null;
  private outputs: RecordOutput[] = [];
  private recent = new Map<string, number>();

  /** `logPath` overrides cfg.log.file (a process that dropped privileges opens it relative to its log directory). */
  constructor(
    private readonly cfg: AuxWriterConfig,
    private readonly report: (message: string) => void,
    private readonly diag: Diag,
    private readonly logPath = cfg.log.file,
  ) {}

  /** Opens the log (throws when it cannot) and the outputs (an output that fails is reported, the log still runs). */
  open(): number {
    this.recent = recentEventIds(this.logPath);
    const log = new LogWriter({
      ...writerOptions({ ...this.cfg.log, file: this.logPath }, this.cfg.nodeName ?? undefined, this.cfg.contidKernel),
      logger: (level, m) => {
        if (level !== 'info') this.report(m);
      },
      onError: (e) => this.report(`log ${e.op} failed: ${e.message}`),
    });
    log.open();
    this.log = log;
    try {
      this.outputs = createOutputs(this.cfg.outputs ?? [], {
        ...(this.cfg.nodeName ? { nodeName: this.cfg.nodeName } : {}),
        contidKernel: this.cfg.contidKernel,
        diag: this.diag,
      });
    } catch (e) {
      this.report(`outputs: ${(e as Error).message}`);
    }
    return this.recent.size;
  }

  get bufferedBytes(): number {
    return this.log?.bufferedBytes ?? 0;
  }

  write(records: readonly EventRecord[]): void {
    const log = this.log;
    if (!log) throw new Error('auxiliary log is not open');
    let have = 0;
    if (this.recent.size) {
      const id = records.length ? eventIdOf(records[0]!.payload) : '';
      have = (id && this.recent.get(id)) || 0;
      if (have) this.recent.delete(id);
    }
    let logged = 0;
    for (const r of records) {
      if (r.type === MsgType.EOE) continue;
      // The same records come again in the same order, so the first `have` are the ones already in the log.
      if (logged++ >= have) log.writeRecord(r.type, r.payload);
    }
    // Outputs have their own at-least-once delivery: an event the log lacked (even in part) goes to them whole.
    if (this.outputs.length && logged > have) for (const r of records) writeAll(this.outputs, r.type, r.payload);
  }

  /** Hands the buffered lines to the kernel (log) and to the outputs' own queues. */
  flush(): void {
    this.log?.flush();
    if (this.outputs.length) flushAll(this.outputs);
  }

  rotate(pid: number): void {
    this.log?.rotateNow({ auid: AUDIT_UID_UNSET, uid: 0, ses: AUDIT_UID_UNSET, pid });
  }

  resume(): void {
    this.log?.resume();
    for (const o of this.outputs) o.resume?.();
  }

  async close(): Promise<void> {
    await closeAll(this.outputs).catch(() => undefined);
    this.outputs = [];
    this.log?.close();
    this.log = null;
  }
}
