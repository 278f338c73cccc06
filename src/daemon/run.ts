// Runs the host daemon in the foreground: signals (TERM/INT stop, HUP reload, USR1 rotate, USR2 resume), systemd's
// readiness and watchdog, and exit codes.
import { AuditmuxError, ExitCode } from '../errors';
import { createDiagnostics } from './diagnostics';
import { HostDaemon } from './host';
import { raisePriority } from './priority';
import { SignalGate, sdNotify, startWatchdog, takeNotifyEnv, type DaemonSignal, type NotifyEnv } from './sd-notify';
import type { AuditSocket } from '../kernel/socket';
import {
  EARLY_RECEIVE_BUFFER,
  inheritedFdsCloseOnExec,
  undoRegistration,
  type EarlyStart,
} from '../kernel/registration';
import type { Diag } from './diagnostics';

export interface RunDaemonOptions {
  configPath: string | null;
  logLevel?: string;
  socket?: AuditSocket;
  /** The kernel registration made before this module loaded (src/cli/daemon-start.ts). */
  early?: EarlyStart;
  /** The signal handlers installed before registration (src/cli/daemon-start.ts); installed here otherwise. */
  signals?: SignalGate;
  /** systemd's variables, taken out of the environment before registration; taken here otherwise. */
  notify?: NotifyEnv;
}

export async function runDaemon(opts: RunDaemonOptions): Promise<number> {
  // First of all: from here a signal waits for the daemon to act on it, instead of ending the process at once.
  const signals = opts.signals ?? new SignalGate();
  const notify = opts.notify ?? takeNotifyEnv();
  // Before any child exists (plugins, *_exe programs and aux processes are started by the daemon's start()).
  inheritedFdsCloseOnExec();
  try {
    return await run(opts, signals, notify);
  } finally {
    signals.close();
  }
}

async function run(opts: RunDaemonOptions, signals: SignalGate, notify: NotifyEnv): Promise<number> {
  const diag = createDiagnostics(opts.logLevel ?? 'info');
  const early = opts.early;
  const held = early?.socket ?? null;
  const notifyFailed = (e: Error): void => diag.warn({ err: e.message }, 'sd_notify failed');
  let daemon: HostDaemon;
  try {
    const socket = opts.socket ?? held;
    daemon = new HostDaemon({ configPath: opts.configPath, diag, ...(socket ? { socket } : {}) });
    if (!opts.logLevel) diag.level = daemon.config.host.diagnostics.level;
    const prio = raisePriority(daemon.config.host.priorityBoost);
    if (prio.error)
      diag.warn(
        { err: prio.error, nice: prio.target },
        'cannot raise the daemon priority (priority_boost); under systemd set Nice= in the unit',
      );
    else if (prio.raised > 0)
      diag.info({ nice: prio.target, threads: prio.raised }, 'priority raised (priority_boost)');
    // A config error is reported before a registration error, as when the daemon registered after reading it.
    if (early?.error) throw early.error;
    if (signals.stopRequested) {
      // Stopped before the kernel was set up: only the registration to undo, and no stop to run.
      diag.info('stop requested while starting: the daemon does not start');
      if (early) await letGo(early, diag, notify);
      return ExitCode.OK;
    }
    // Never below what registration gave it: records may already fill that much, and restarts need the room.
    if (held && daemon.config.host.receiveBuffer > EARLY_RECEIVE_BUFFER)
      held.records.setReceiveBuffer(daemon.config.host.receiveBuffer);
    // A stop that comes now waits for start() to settle: the stop below then restores what it applied.
    await daemon.start();
    // Records waited in the socket while the daemon started: its log, outputs and routes are ready for them now.
    held?.release();
  } catch (e) {
    if (early) await letGo(early, diag, notify);
    if (e instanceof AuditmuxError) {
      diag.fatal({ code: e.code }, e.message);
      process.stderr.write(`auditmux: ${e.message}\n`);
      return e.exitCode;
    }
    diag.fatal({ err: e }, 'daemon failed to start');
    return ExitCode.FAILURE;
  }

  return new Promise<number>((resolve) => {
    let internalErrors = 0;
    let stopping = false;
    let stopWatchdog: (() => void) | null = null;
    // A bug in one path must not take the audit trail down with it: report, count, keep running; stop after a storm.
    const onException = (e: Error): void => {
      internalErrors++;
      diag.error({ err: e.stack ?? String(e), internalErrors }, 'internal error');
      if (internalErrors > 100) stop('abort', ExitCode.FAILURE);
    };
    const onRejection = (e: unknown): void => {
      internalErrors++;
      diag.error({ err: e instanceof Error ? e.stack : String(e), internalErrors }, 'internal error (promise)');
    };
    const finish = (code: number): void => {
      stopWatchdog?.();
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
      resolve(code);
    };
    const stop = (reason: string, code: number): void => {
      if (stopping) return;
      stopping = true;
      sdNotify('STOPPING=1', notify);
      daemon.stop(reason).then(
        () => {
          // A stop, not a crash: systemd drops its copy of the socket (an adopted registration ends with it).
          if (early?.storedAs) sdNotify(`FDSTOREREMOVE=1\nFDNAME=${early.storedAs}`, notify);
          finish(code);
        },
        (e: unknown) => {
          diag.error({ err: (e as Error).message }, 'error while stopping');
          finish(ExitCode.FAILURE);
        },
      );
    };
    const onSignal = (s: DaemonSignal): Promise<unknown> => {
      switch (s) {
        case 'SIGTERM':
        case 'SIGINT':
          stop('terminate', ExitCode.OK);
          return Promise.resolve();
        case 'SIGHUP':
          return daemon.reload().catch((e: Error) => diag.error({ err: e.message }, 'reload failed'));
        case 'SIGUSR1':
          return daemon.rotate().catch((e: Error) => diag.error({ err: e.message }, 'rotate failed'));
        case 'SIGUSR2':
          return daemon.resume().catch((e: Error) => diag.error({ err: e.message }, 'resume failed'));
      }
    };
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);
    const whileStarting = signals.take();
    signals.open((s) => void onSignal(s));
    // SIGTERM while starting: the stop runs now that start() has settled, and systemd never hears READY.
    if (signals.stopRequested) return stop('terminate', ExitCode.OK);
    void (async () => {
      // A reload, rotate or resume asked for while starting is done before READY, one after the other.
      for (const s of whileStarting) await onSignal(s);
      if (stopping) return;
      // Type=notify: the unit is started once the kernel names us, rules are in and the control socket answers, not
      // after a guessed delay; units ordered after auditmux (an orchestrator tagging containers) can rely on that.
      sdNotify(`READY=1\nMAINPID=${process.pid}\nSTATUS=auditing`, notify, notifyFailed);
      // WatchdogSec=: WATCHDOG=1 from the event loop from now on (a hung loop gets the daemon restarted).
      stopWatchdog = startWatchdog(notify, notifyFailed);
    })();
  });
}

/**
 * The daemon will not run: the kernel must not be left naming a pid about to exit, nor systemd keep a socket the
 * kernel would fill for nobody (a full socket stalls kauditd, and with backlog_wait_time every audited process).
 */
async function letGo(early: EarlyStart, diag: Diag, notify: NotifyEnv): Promise<void> {
  try {
    if (early.socket) await undoRegistration(early.socket);
  } catch (e) {
    diag.error({ err: (e as Error).message }, 'could not undo the kernel registration');
  }
  if (early.storedAs) sdNotify(`FDSTOREREMOVE=1\nFDNAME=${early.storedAs}`, notify);
}
