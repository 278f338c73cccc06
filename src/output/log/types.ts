// The log writer's shared vocabulary: its setting values, its error event and how its parts report.
export type FlushMode = 'none' | 'incremental' | 'incremental_async' | 'data' | 'sync';
export type MaxLogFileAction = 'ignore' | 'syslog' | 'suspend' | 'rotate' | 'keep_logs';
export type NameFormat = 'none' | 'hostname' | 'fqd' | 'numeric' | 'user';
export type LogLevel = 'info' | 'warn' | 'error';
/** A log file's format: auditd's lines (RAW, ENRICHED) or one JSON object per event and line (output/event-json.ts). */
export type LogFileFormat = 'RAW' | 'ENRICHED' | 'JSON';

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

/** How the file, rotation and compression parts tell the writer what happened; the writer counts and forwards. */
export interface LogReporter {
  /** A message for the daemon's diagnostics (auditd's syslog lines). */
  log(level: LogLevel, msg: string): void;
  /** A failed operation: counted as an error and passed to the writer's onError. */
  report(op: LogErrorEvent['op'], e: unknown, lostRecords: number): void;
}

/** The short reason of a failed call: its errno code when it has one. */
export function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message ?? String(e);
}
