// The daemon's own diagnostics (pino to stderr, which systemd sends to the journal); never the audit records.
import pino, { type Logger } from 'pino';

export type { Diag } from '../shared';

/** pino satisfies Diag; the daemon's entry point also sets its level and logs fatal errors. */
export function createDiagnostics(level = 'info', dest: number = 2): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: dest, sync: true }),
  );
}
