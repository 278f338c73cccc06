// The daemon and its supervisor (systemd): readiness (sd_notify(3)) when it owns the kernel connection and when it
// stops, its registered socket in the unit's file descriptor store, the watchdog, and the signals it is sent.
import { native } from '../kernel/native';

/** What systemd tells a service about itself in its environment, as takeNotifyEnv() took it. */
export interface NotifyEnv {
  NOTIFY_SOCKET?: string | undefined;
  SYSTEMD_EXEC_PID?: string | undefined;
  WATCHDOG_USEC?: string | undefined;
  WATCHDOG_PID?: string | undefined;
}

/**
 * Takes systemd's variables out of `env` (sd_notify(3)'s unset_environment, sd_watchdog_enabled(3)'s too): the
 * daemon's children (plugins, *_exe programs, auxiliary daemons) are not the unit's main process, and must not notify
 * for it nor take its watchdog. Returns them for sdNotify() and startWatchdog().
 */
export function takeNotifyEnv(env: NodeJS.ProcessEnv = process.env): NotifyEnv {
  const taken: NotifyEnv = {
    NOTIFY_SOCKET: env.NOTIFY_SOCKET,
    SYSTEMD_EXEC_PID: env.SYSTEMD_EXEC_PID,
    WATCHDOG_USEC: env.WATCHDOG_USEC,
    WATCHDOG_PID: env.WATCHDOG_PID,
  };
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  return taken;
}

function isPid(v: string | undefined, pid: number): boolean {
  return v !== undefined && /^[1-9]\d{0,9}$/.test(v) && Number(v) === pid;
}

/**
 * systemd itself exec'd this process: SYSTEMD_EXEC_PID (systemd 248 and later, systemd.exec(5)) is our pid, as
 * LISTEN_PID is for sd_listen_fds(3). NOTIFY_SOCKET is then the service manager's. One inherited any other way (a
 * root shell or sudo with it in its environment, a child of another service) names a socket whoever set it reads.
 */
export function startedBySystemd(env: NotifyEnv, pid = process.pid): boolean {
  return isPid(env.SYSTEMD_EXEC_PID, pid);
}

/**
 * Sends `state` (READY=1, STOPPING=1, STATUS=...) to $NOTIFY_SOCKET when systemd set one; a no-op otherwise. Returns
 * whether a datagram went out. Never throws: readiness is advice to the supervisor, and a failure to give it must not
 * stop the audit trail (systemd then times the start out and says why).
 *
 * `fd` (FDSTORE=1) goes out only when systemd started this process (startedBySystemd): the registered audit socket
 * in anyone else's hands is a copy of the kernel's audit stream, and keeps the kernel naming a dead daemon.
 */
export function sdNotify(
  state: string,
  env: NotifyEnv = process.env,
  onError?: (e: Error) => void,
  fd?: number,
): boolean {
  const path = env.NOTIFY_SOCKET;
  if (!path) return false;
  if (fd !== undefined && !startedBySystemd(env)) {
    onError?.(new Error('NOTIFY_SOCKET is not from systemd (SYSTEMD_EXEC_PID is not this process): no fd sent'));
    return false;
  }
  try {
    // FDSTORE=1 passes `fd` along (SCM_RIGHTS): systemd keeps a copy and hands it back at the next start.
    if (fd !== undefined) native().notifySocket(path, state, fd);
    else native().notifySocket(path, state);
    return true;
  } catch (e) {
    onError?.(e as Error);
    return false;
  }
}

/**
 * The watchdog's interval (WatchdogSec=) in µs when it is on for this process: WATCHDOG_USEC set, and WATCHDOG_PID,
 * if set, this process (sd_watchdog_enabled(3)); null otherwise.
 */
export function watchdogUsec(env: NotifyEnv, pid = process.pid): number | null {
  const usec = env.WATCHDOG_USEC;
  if (!env.NOTIFY_SOCKET || usec === undefined || !/^[1-9]\d{0,15}$/.test(usec)) return null;
  if (env.WATCHDOG_PID !== undefined && !isPid(env.WATCHDOG_PID, pid)) return null;
  return Number(usec);
}

/**
 * WATCHDOG=1 every half watchdog interval, from a timer on the event loop: a loop that hangs sends none, and systemd
 * restarts the daemon. Returns the function that stops it, or null when the watchdog is off for this process.
 */
export function startWatchdog(env: NotifyEnv, onError?: (e: Error) => void, pid = process.pid): (() => void) | null {
  const usec = watchdogUsec(env, pid);
  if (usec === null) return null;
  const ms = Math.max(1, Math.floor(usec / 2000));
  const ping = (): boolean => sdNotify('WATCHDOG=1', env, onError);
  ping();
  const timer = setInterval(ping, ms);
  // The daemon's own handles keep it running; the watchdog must not keep a stopped daemon's process alive.
  timer.unref();
  return () => clearInterval(timer);
}

/** The signals the daemon acts on (src/daemon/run.ts): stop, reload, rotate, resume. */
export const DAEMON_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;
export type DaemonSignal = (typeof DAEMON_SIGNALS)[number];

/**
 * The daemon's signal handlers, installed first (before registration, config and start): Node's default for each of
 * these signals ends the process at once, so one that came while the daemon started killed it with the kernel half
 * set up (registered, rules, enabled and failure applied, nothing restored, no DAEMON_END), and a HUP, USR1 or USR2
 * with a status systemd takes for a clean exit. Until open(), signals are held: a stop is remembered (stopRequested),
 * the others are queued once each, in the order they came.
 */
export class SignalGate {
  /** A SIGTERM or SIGINT came (held or handled). */
  stopRequested = false;
  private readonly held: DaemonSignal[] = [];
  private handler: ((s: DaemonSignal) => void) | null = null;
  private readonly listeners = new Map<DaemonSignal, () => void>();

  constructor(private readonly proc: NodeJS.EventEmitter = process) {
    for (const s of DAEMON_SIGNALS) {
      const l = (): void => this.deliver(s);
      this.listeners.set(s, l);
      proc.on(s, l);
    }
  }

  private deliver(s: DaemonSignal): void {
    if (s === 'SIGTERM' || s === 'SIGINT') this.stopRequested = true;
    if (this.handler) this.handler(s);
    else if (!this.held.includes(s)) this.held.push(s);
  }

  /** The signals held so far (each once, in order), taken: open() will not hand them on. */
  take(): DaemonSignal[] {
    return this.held.splice(0);
  }

  /** From now on each signal goes to `handler` as it comes; any still held go first. */
  open(handler: (s: DaemonSignal) => void): void {
    this.handler = handler;
    for (const s of this.held.splice(0)) handler(s);
  }

  /** Removes the handlers (the process is about to exit, or a test is done). */
  close(): void {
    for (const [s, l] of this.listeners) this.proc.off(s, l);
    this.listeners.clear();
    this.handler = null;
  }
}
