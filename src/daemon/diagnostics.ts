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

/** The host daemon's counters, in the order `auditmux status` prints them; collaborators count into this object. */
export function newHostCounters(): {
  records: number;
  kernelLost: number;
  reloads: number;
  reloadFailures: number;
  rotations: number;
  refused: number;
  dropsReported: number;
  internalErrors: number;
  /** Events routed to a daemon that was not there (a reload between its routes and its start): the host logs them. */
  noDaemon: number;
} {
  return {
    records: 0,
    kernelLost: 0,
    reloads: 0,
    reloadFailures: 0,
    rotations: 0,
    refused: 0,
    dropsReported: 0,
    internalErrors: 0,
    noDaemon: 0,
  };
}

/** process.memoryUsage() in MiB with two decimals, for status. */
export function memoryMiB(): Record<string, number> {
  return Object.fromEntries(
    Object.entries(process.memoryUsage()).map(([k, v]) => [`${k}MiB`, Math.round(v / 10485.76) / 100]),
  );
}
