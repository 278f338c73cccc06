// What an auxiliary daemon does with its routed events: its own sink (log, outputs, disk-space guard), in its own
// process or in the host's.
import { closeSync, constants, readSync } from 'node:fs';
import { AUDIT_UID_UNSET, MsgType } from '../kernel/constants';
import type { OutputConfig, OutputSpec } from '../config/schema';
import type { ContainerDirectory, Diag } from '../output/output';
import type { Sink } from '../output/sink';
import { createSink } from '../output/sinks';
import type { FreeSpaceReader } from '../output/diskspace';
import { writerOptions } from './outputs';
import { eventIdOf, type EventRecord } from './aux-ipc';
import { openNoFollow } from '../safefs';

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

  /**
   * `logPath` overrides cfg.log.file (a process that dropped privileges opens it relative to its log directory);
   * `statfs` stages free-space levels in tests.
   */
  constructor(
    private readonly cfg: AuxWriterConfig,
    private readonly report: (message: string) => void,
    private readonly diag: Diag,
    private readonly logPath = cfg.log.file,
    private readonly statfs?: FreeSpaceReader,
  ) {}

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

  /** Hands the buffered lines to the kernel (log) and to the outputs' own queues, then checks free space. */
  flush(): void {
    this.sink?.flush();
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
  }
}
