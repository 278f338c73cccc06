// Runs the host daemon in the foreground: signals (TERM/INT stop, HUP reload, USR1 rotate, USR2 resume) and exit codes.
import { AuditmuxError, ExitCode } from '../errors';
import { createDiagnostics } from './diagnostics';
import { HostDaemon } from './host';
import { sdNotify } from './sd-notify';
import type { AuditSocket } from '../kernel/socket';

export interface RunDaemonOptions {
  configPath: string | null;
  logLevel?: string;
  socket?: AuditSocket;
}

export async function runDaemon(opts: RunDaemonOptions): Promise<number> {
  const diag = createDiagnostics(opts.logLevel ?? 'info');
  let daemon: HostDaemon;
  try {
    daemon = new HostDaemon({ configPath: opts.configPath, diag, ...(opts.socket ? { socket: opts.socket } : {}) });
    if (!opts.logLevel) diag.level = daemon.config.host.diagnostics.level;
    await daemon.start();
  } catch (e) {
    if (e instanceof AuditmuxError) {
      diag.fatal({ code: e.code }, e.message);
      process.stderr.write(`auditmux: ${e.message}\n`);
      return e.exitCode;
    }
    diag.fatal({ err: e }, 'daemon failed to start');
    return ExitCode.FAILURE;
  }

  // Type=notify: the unit is started once the kernel names us, rules are in and the control socket answers, not
  // after a guessed delay; units ordered after auditmux (an orchestrator tagging containers) can rely on that.
  sdNotify(`READY=1\nMAINPID=${process.pid}\nSTATUS=auditing`, process.env, (e) =>
    diag.warn({ err: e.message }, 'sd_notify failed'),
  );

  return new Promise<number>((resolve) => {
    let internalErrors = 0;
    const stop = (reason: string, code: number): void => {
      sdNotify('STOPPING=1');
      daemon.stop(reason).then(
        () => resolve(code),
        (e: unknown) => {
          diag.error({ err: (e as Error).message }, 'error while stopping');
          resolve(ExitCode.FAILURE);
        },
      );
    };
    process.on('SIGTERM', () => stop('terminate', ExitCode.OK));
    process.on('SIGINT', () => stop('terminate', ExitCode.OK));
    process.on('SIGHUP', () => void daemon.reload());
    process.on(
      'SIGUSR1',
      () => void daemon.rotate().catch((e: Error) => diag.error({ err: e.message }, 'rotate failed')),
    );
    process.on(
      'SIGUSR2',
      () => void daemon.resume().catch((e: Error) => diag.error({ err: e.message }, 'resume failed')),
    );
    // A bug in one path must not take the audit trail down with it: report, count, keep running; stop after a storm.
    process.on('uncaughtException', (e) => {
      internalErrors++;
      diag.error({ err: e.stack ?? String(e), internalErrors }, 'internal error');
      if (internalErrors > 100) stop('abort', ExitCode.FAILURE);
    });
    process.on('unhandledRejection', (e) => {
      internalErrors++;
      diag.error({ err: e instanceof Error ? e.stack : String(e), internalErrors }, 'internal error (promise)');
    });
  });
}
