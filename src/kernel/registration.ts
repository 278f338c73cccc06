// Register first: the daemon's kernel registration, made before its modules and config load, or adopted from an
// inherited socket; the socket's records wait in its buffer until the daemon's pipeline is ready for them.
import { DaemonBusyError, KernelError } from '../errors';
import { AuditClient, processAlive } from './client';
import { MsgType } from './constants';
import { native } from './native';
import { NativeAuditSocket, type AuditSocket, type BatchHandler, type Registration } from './socket';
import { encodeRequest, statusChangeToStruct } from './wire';

/**
 * The socket's receive buffer from registration on. Records queue in it while the daemon starts (a few hundred ms,
 * more on a busy machine) and across a crash restart; one getppid event is about 3 KiB of socket memory (SYSCALL,
 * PROCTITLE, EOE), so 64 MiB (the kernel doubles it) holds about 40k events, 2 s at 20k ev/s. Once it is full the
 * kernel drops records without counting them as lost (no audit=1 on the command line). The limit costs nothing
 * while the daemon keeps up; a larger host.receive_buffer raises it.
 */
export const EARLY_RECEIVE_BUFFER = 64 * 1024 * 1024;

/** The name auditmux gives the socket in systemd's file descriptor store: the pid that registered it follows. */
export const FDNAME_PREFIX = 'audit-netlink-';

/**
 * A registered socket with records held back: requests and their replies travel over a second, unregistered socket,
 * so asking the kernel anything never means reading (and dropping) records the daemon is not ready to write. The
 * records socket is read only after release().
 */
export class HeldAuditSocket implements AuditSocket {
  registration?: Registration;
  private handlers: { onBatch: BatchHandler; onError: (e: KernelError) => void } | null = null;
  private started = false;
  private released = false;

  constructor(
    readonly records: NativeAuditSocket,
    private readonly control: NativeAuditSocket,
  ) {}

  get portId(): number {
    return this.records.portId;
  }

  /** The registered socket's fd, for systemd's file descriptor store. */
  get fd(): number {
    return this.records.fd;
  }

  send(msg: Buffer): void {
    this.control.send(msg);
  }

  start(onBatch: BatchHandler, onError: (err: KernelError) => void): void {
    this.handlers = { onBatch, onError };
    this.started = true;
    this.control.start(onBatch, onError);
    if (this.released) this.records.start(onBatch, onError);
  }

  stop(): void {
    this.started = false;
    this.control.stop();
    this.records.stop();
  }

  /** Lets the records through to whoever start()ed last (at once if it is reading now). */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.started && this.handlers) this.records.start(this.handlers.onBatch, this.handlers.onError);
  }

  close(): void {
    this.records.close();
    this.control.close();
  }
}

/** What the kernel registration came to before the daemon was built: a held socket, or the error to report. */
export interface EarlyStart {
  socket: HeldAuditSocket | null;
  error: unknown;
  /** The name the socket has in systemd's file descriptor store, if it is there. */
  storedAs: string | null;
}

export interface RegisterFirstOptions {
  /** SO_RCVBUFFORCE for a new socket (an inherited one keeps what its first owner gave it). */
  receiveBuffer: number;
  /** An inherited socket (systemd's LISTEN_FDS) to adopt instead of opening one. */
  inherited?: { fd: number; registeredBy?: number };
  pid?: number;
}

/**
 * Opens (or adopts) the records socket and makes this process the kernel's audit daemon through it.
 *
 * The kernel keeps unicasting to the socket's port while the socket lives, whoever holds it; and while the socket
 * lives its registration counts as healthy even when the pid that made it is dead, so a second AUDIT_SET is refused
 * (EEXIST), verified on Linux 6.18. An inherited socket registered by a predecessor is therefore adopted as it is:
 * records keep arriving, and the kernel goes on naming the predecessor's pid.
 */
export async function registerFirst(opts: RegisterFirstOptions): Promise<HeldAuditSocket> {
  const pid = opts.pid ?? process.pid;
  const inherited = opts.inherited;
  const records = new NativeAuditSocket({
    coalesceMs: 2,
    ...(inherited ? { fd: inherited.fd } : { receiveBuffer: opts.receiveBuffer }),
  });
  let control: NativeAuditSocket;
  try {
    control = new NativeAuditSocket({});
  } catch (e) {
    records.close();
    throw e;
  }
  const held = new HeldAuditSocket(records, control);
  const client = await AuditClient.open({ socket: held });
  try {
    if (!inherited) {
      const before = await client.getStatus();
      if (before.pid !== 0 && before.pid !== pid && processAlive(before.pid)) throw new DaemonBusyError(before.pid);
    }
    // From the records socket (its port is where the kernel will unicast) and without NLM_F_ACK: a success puts
    // nothing on it to read past. The kernel handles the request inside sendmsg; AUDIT_GET says how it went.
    records.send(encodeRequest(MsgType.SET, 0, statusChangeToStruct({ pid }), false));
    const after = await client.getStatus();
    if (after.pid === pid) held.registration = { pid, adopted: false };
    else if (inherited && after.pid !== 0 && adoptable(after.pid, inherited.registeredBy))
      held.registration = { pid, adopted: true };
    else if (after.pid !== 0) throw new DaemonBusyError(after.pid);
    else throw new KernelError('EIO', 5, 'AUDIT_SET', 'AUDIT_SET: the kernel did not take the registration');
  } catch (e) {
    held.close();
    throw e;
  } finally {
    client.pause();
  }
  return held;
}

/**
 * The kernel names a pid other than ours although our AUDIT_SET went out on the inherited socket: it is that
 * socket's registration when the pid is the one the store recorded with it (a reused pid number is then not a
 * rival: a rival could only have registered after this socket was closed), or, with no record, a dead process.
 */
function adoptable(kernelPid: number, registeredBy: number | undefined): boolean {
  return registeredBy !== undefined ? kernelPid === registeredBy : !processAlive(kernelPid);
}

/**
 * Undoes registerFirst when the daemon will not run (bad config, failed start): the kernel must not go on naming a
 * pid about to exit. An adopted registration ends only when every copy of the socket is closed (the caller asks
 * systemd to drop its copy).
 */
export async function undoRegistration(held: HeldAuditSocket): Promise<void> {
  held.close();
  const reg = held.registration;
  if (!reg || reg.adopted) return;
  const c = await AuditClient.open();
  try {
    if ((await c.getStatus()).pid === reg.pid) await c.setStatus({ pid: 0 });
  } finally {
    c.close();
  }
}

/** The inherited socket systemd passed (sd_listen_fds(3)): only for this pid, fds from 3 on, named by FDNAME. */
export interface ListenedSocket {
  fd: number;
  name: string;
  /** The pid recorded in the name, the one that registered the socket. */
  registeredBy?: number;
}

export function listenedSocket(env: NodeJS.ProcessEnv, pid = process.pid): ListenedSocket | null {
  if (env.LISTEN_PID === undefined || env.LISTEN_FDS === undefined) return null;
  // Another process's fds (the variables leaked through a shell or a child): not ours to touch.
  if (!/^\d+$/.test(env.LISTEN_PID) || Number(env.LISTEN_PID) !== pid) return null;
  if (!/^\d+$/.test(env.LISTEN_FDS)) return null;
  const n = Number(env.LISTEN_FDS);
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  for (let i = 0; i < n && i < 16; i++) {
    const name = names[i] ?? '';
    if (n === 1 || name.startsWith(FDNAME_PREFIX)) {
      const m = new RegExp(`^${FDNAME_PREFIX}(\\d+)$`).exec(name);
      return { fd: 3 + i, name, ...(m ? { registeredBy: Number(m[1]) } : {}) };
    }
  }
  return null;
}

/**
 * Marks every fd from 3 on close-on-exec, before the daemon starts any program: an fd the daemon inherited without
 * O_CLOEXEC (a LISTEN_FDS socket other than the one it adopts, anything a parent leaked outside systemd) would
 * otherwise reach every plugin, *_exe program and auxiliary daemon, which libuv's spawn does not close. The daemon's
 * own descriptors are opened O_CLOEXEC already, and a child's stdio is dup2()ed, which clears the flag. `how` takes
 * a fallback at once (tests). Returns the way taken.
 */
export function inheritedFdsCloseOnExec(how?: 'proc' | 'scan'): 'close_range' | 'proc' | 'scan' {
  return native().cloexecFrom(3, how);
}
