// The daemon's own diagnostics (pino to stderr, which systemd sends to the journal); never the audit records.
import pino, { type Logger } from 'pino';

export type Diag = Logger;

export function createDiagnostics(level = 'info', dest: number = 2): Diag {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: dest, sync: true }),
  );
}
