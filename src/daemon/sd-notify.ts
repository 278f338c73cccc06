// systemd readiness (sd_notify(3)): the daemon tells its unit when it owns the kernel connection, and when it stops.
import { native } from '../kernel/native';

/**
 * Sends `state` (READY=1, STOPPING=1, STATUS=...) to $NOTIFY_SOCKET when systemd set one; a no-op otherwise. Returns
 * whether a datagram went out. Never throws: readiness is advice to the supervisor, and a failure to give it must not
 * stop the audit trail (systemd then times the start out and says why).
 */
export function sdNotify(
  state: string,
  env: NodeJS.ProcessEnv = process.env,
  onError?: (e: Error) => void,
  fd?: number,
): boolean {
  const path = env.NOTIFY_SOCKET;
  if (!path) return false;
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
