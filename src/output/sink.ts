// The sink contract: everything one daemon (the host or an auxiliary daemon) writes its records to, in one piece —
// its audit log, its outputs and the disk-space guard of the log's file system. The factory is in ./sinks.ts.
import type { DiskSpaceConfig, OutputSpec } from '../config/schema';
import type { DiskLevel, FreeSpaceReader } from './diskspace';
import type { LogWriter, LogWriterCounters, LogWriterOptions, Requester } from './logfile';
import type { LogErrorEvent, LogLevel } from './log/types';
import type { OutputContext, RecordOutput } from './output';
import type { EventRecord } from '../records/event';

/** Whether the log can take records; what an aggregator answers its peers (auditd's write_to_log replies). */
export type SinkState = 'ok' | 'disk-low' | 'disk-full' | 'disk-error' | 'suspended';

/** What a sink is made of: the `log:` settings of one daemon and its `outputs:`. */
export interface SinkSpec {
  /** The log writer's settings (`writerOptions(cfg.log, ...)`); logger and onError are the sink's, see SinkContext. */
  log: Omit<LogWriterOptions, 'logger' | 'onError'>;
  /** The log's space_left, admin_space_left, disk_full and disk_error settings; undefined = auditd's defaults. */
  diskSpace?: DiskSpaceConfig;
  outputs?: readonly OutputSpec[];
}

/** What the daemon that holds the sink gives it (node name, contid kernel and diagnostics go to the outputs too). */
export interface SinkContext extends OutputContext {
  /** The log's own messages (rotation, size and space actions: auditd's syslog lines). */
  logger?: (level: LogLevel, msg: string) => void;
  /** A failed write, fsync, rotation or open of the log; the guard's disk_full / disk_error action follows it. */
  onLogError?: (e: LogErrorEvent) => void;
  /**
   * Outputs that cannot be built (a spool that cannot be opened, a refused plugin). Without this handler createSink
   * closes the log and throws (a host refuses to start); with it the log runs on without outputs.
   */
  onOutputsError?: (e: Error) => void;
  /** The free-space reader of the guard (tests stage levels with it); default statfs(2). */
  statfs?: FreeSpaceReader;
  /** Clock of the once-a-second space check; default Date.now. */
  now?: () => number;
}

/** The log's side of a daemon's status: the writer's counters, whether it is suspended and the disk level. */
export interface SinkLogStatus extends LogWriterCounters {
  suspended: boolean;
  diskLevel: DiskLevel;
}

/**
 * One daemon's log, outputs and disk-space guard. Nothing in it throws on a record: failures are counted, reported
 * and acted on (disk_full_action...). Build it with createSink (src/output/sinks.ts); it is open from then on.
 */
export interface Sink {
  /** The log writer, for what only a log does (daemonPayload, an aggregator's writeLine); replaceLog swaps it. */
  readonly log: LogWriter;
  readonly outputs: readonly RecordOutput[];
  /**
   * The sink may be given an event's records as they come, mixed with other events' (the stream path, an event
   * passed through): a text log and no output that gathers events (RecordOutput.groupsEvents).
   */
  readonly takesStream: boolean;
  /** Bytes formatted for the log and not yet written (a caller may flush early past a threshold). */
  readonly bufferedBytes: number;
  /** One record to the log and to every output (the log skips EOE; plugins get it). */
  writeRecord(type: number, payload: Buffer): void;
  /** writeRecord of src[start..end), without a view of it for the log (the host's stream of kernel records). */
  writeRecordAt(type: number, src: Buffer, start: number, end: number): void;
  /** One record to the log only; false when the log dropped it (suspended, closed) and counted it lost. */
  writeLog(type: number, payload: Buffer): boolean;
  /**
   * One whole event to the log only (EOE skipped): one line per record, or one JSON object for a `format: JSON` log,
   * which needs its daemon to hand it whole events. False when the log dropped it and counted its records lost.
   */
  writeLogEvent(records: readonly EventRecord[]): boolean;
  /** One record to the outputs only. */
  writeOutputs(type: number, payload: Buffer): void;
  /** A DAEMON_* record from this daemon, stamped now with the log's serial, to the log and every output. */
  writeDaemonRecord(type: number, body: string): void;
  /**
   * Hands the log's buffer to the kernel, lets the outputs send, then checks free space (at most once a second).
   * False when the log's write or sync failed: records received from a peer must not be acknowledged then.
   */
  flush(): boolean;
  /**
   * A reload with new `log:` settings (path, format, rotation, disk space): opens the new log and its guard, then
   * closes the old log; the outputs keep running with their spools and connections. Throws IoError when the new log
   * cannot be opened, and the old one stays.
   */
  replaceLog(spec: Omit<SinkSpec, 'outputs'>): void;
  /** The disk-space check alone, at most once a second (a caller about to answer a peer asks for a fresh level). */
  checkSpace(): DiskLevel;
  /** Rotates the log now (SIGUSR1 / `auditmux rotate`), writing DAEMON_ROTATE with `by` into the new file. */
  rotate(by: Requester): void;
  /** SIGUSR2 / `auditmux resume`: re-arms every disk-space level, reopens the log if needed, resumes the outputs. */
  resume(): void;
  /** What the log can do now, for an aggregator's replies. */
  state(): SinkState;
  logStatus(): SinkLogStatus;
  /** Every output's stats by output name. */
  outputStats(): Record<string, Record<string, number | string | boolean>>;
  /**
   * Closes the outputs, then writes `last` (the host's DAEMON_END) to the log alone, then closes the log: every
   * accepted record is on disk afterwards. A failing output close is reported, never thrown.
   */
  close(last?: { type: number; body: string }): Promise<void>;
}
