// `auditmux daemon` start path: registers with the kernel (or adopts systemd's stored socket) before the CLI, the
// config and the daemon are loaded, so the kernel stops dropping records within a few tens of ms of exec.
import { DEFAULT_CONFIG_PATH } from '../config/schema';
import {
  EARLY_RECEIVE_BUFFER,
  FDNAME_PREFIX,
  listenedSocket,
  registerFirst,
  type EarlyStart,
} from '../kernel/registration';
import { SignalGate, sdNotify, takeNotifyEnv, type NotifyEnv } from '../daemon/sd-notify';

export interface DaemonArgs {
  configPath: string | null;
  logLevel?: string;
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * The command lines this path takes: `daemon` with -c/--config FILE, --defaults and --log-level LEVEL, each at most
 * once. Anything else (help, a typo, an unknown option) returns null and goes through the full CLI, which reports it.
 */
export function parseDaemonArgs(argv: string[]): DaemonArgs | null {
  if (argv[2] !== 'daemon') return null;
  let config: string | undefined;
  let defaults = false;
  let logLevel: string | undefined;
  for (let i = 3; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const value = (): string | undefined => inline ?? argv[++i];
    if ((name === '-c' || name === '--config') && config === undefined) {
      config = value();
      if (!config) return null;
    } else if (name === '--log-level' && logLevel === undefined) {
      logLevel = value();
      if (!logLevel) return null;
    } else if (a === '--defaults' && !defaults) defaults = true;
    else return null;
  }
  if (logLevel !== undefined && !LEVELS.has(logLevel)) return null;
  return { configPath: defaults ? null : (config ?? DEFAULT_CONFIG_PATH), ...(logLevel ? { logLevel } : {}) };
}

/**
 * Registers with the kernel, or adopts the socket systemd kept, and puts a new registration in systemd's file
 * descriptor store when systemd started this process (`notify`: what takeNotifyEnv() took from the environment).
 */
export async function registerEarly(notify: NotifyEnv, env: NodeJS.ProcessEnv = process.env): Promise<EarlyStart> {
  const listened = listenedSocket(env);
  // sd_listen_fds(3) unsets them: children (plugins, auxiliary daemons) must not take the fds for theirs.
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  try {
    const socket = await registerFirst({
      receiveBuffer: EARLY_RECEIVE_BUFFER,
      ...(listened
        ? {
            inherited: {
              fd: listened.fd,
              ...(listened.registeredBy !== undefined ? { registeredBy: listened.registeredBy } : {}),
            },
          }
        : {}),
    });
    let storedAs = listened ? listened.name : null;
    // Into systemd's store at once, before anything slower can crash: from here a restart loses nothing. The name
    // records who registered the socket; a fresh registration on an inherited socket renames it.
    // Only into systemd's: sdNotify sends no fd to a NOTIFY_SOCKET that systemd did not give this process.
    if (!socket.registration!.adopted && notify.NOTIFY_SOCKET) {
      const name = `${FDNAME_PREFIX}${socket.registration!.pid}`;
      if (storedAs && storedAs !== name) sdNotify(`FDSTOREREMOVE=1\nFDNAME=${storedAs}`, notify);
      if (sdNotify(`FDSTORE=1\nFDNAME=${name}`, notify, undefined, socket.fd)) storedAs = name;
    }
    return { socket, error: null, storedAs };
  } catch (e) {
    return { socket: null, error: e, storedAs: listened ? listened.name : null };
  }
}

/** `auditmux daemon ...`: signal handlers, then registration, then the daemon (loaded only now). */
export async function runDaemonFirst(args: DaemonArgs): Promise<number> {
  const signals = new SignalGate();
  const notify = takeNotifyEnv();
  const early = await registerEarly(notify);
  const { runDaemon } = await import('../daemon/run');
  return runDaemon({ ...args, early, signals, notify });
}
