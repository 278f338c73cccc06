// The daemon's control socket: a root-only unix socket, peer credentials checked, one JSON request per line.
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { AuditmuxError, IoError, PermissionError } from '../errors';
import { native } from '../kernel/native';
import { checkDirSafe } from '../safefs';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export type ControlHandler = (cmd: string, args: Record<string, unknown>, peer: PeerCred) => Promise<unknown>;

interface Request {
  id?: unknown;
  cmd?: unknown;
  args?: unknown;
}

const MAX_REQUEST_BYTES = 1 << 20;

function socketFd(s: Socket): number {
  // net.Socket hides the fd; the pipe handle exposes it on Linux, and SO_PEERCRED needs it.
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new IoError('control socket: cannot read the peer file descriptor');
  return fd;
}

export function peerOf(s: Socket): PeerCred {
  return native().peerCredentials(socketFd(s));
}

export class ControlServer {
  private server: Server | null = null;
  /** uid allowed besides root (tests run as root; this stays 0 in production). */
  constructor(private readonly path: string, private readonly handler: ControlHandler, private readonly allowedUid = 0) {}

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    // In a directory others can write, our socket could be swapped for theirs between bind and a root client's connect.
    checkDirSafe(dirname(this.path), { owners: [0, process.geteuid?.() ?? 0], what: 'control socket directory' });
    try {
      const st = lstatSync(this.path);
      if (!st.isSocket()) throw new IoError(`control socket path ${this.path} exists and is not a socket`, 'E_CONTROL_PATH');
      unlinkSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The mode is set before anyone can connect: umask covers the window between bind and chmod.
      const old = process.umask(0o177);
      server.listen(this.path, () => {
        process.umask(old);
        server.off('error', reject);
        resolve();
      });
    });
    // umask made it 0600 at bind (chmod(2) on the name would follow a symlink); check what is there now.
    const st = lstatSync(this.path);
    if (!st.isSocket() || (st.mode & 0o077) !== 0) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw new IoError(`control socket ${this.path} is not a 0600 socket after bind (refused)`, 'E_CONTROL_PATH');
    }
    this.server = server;
  }

  private accept(s: Socket): void {
    let peer: PeerCred;
    try {
      peer = peerOf(s);
    } catch (e) {
      // Without credentials there is no way to know who asks: answer nothing but the reason.
      s.end(JSON.stringify({ id: null, ok: false, error: { code: 'E_PERM', message: `control socket: ${(e as Error).message}` } }) + '\n');
      return;
    }
    if (peer.uid !== 0 && peer.uid !== this.allowedUid) {
      s.end(JSON.stringify({ id: null, ok: false, error: { code: 'E_PERM', message: `control socket: uid ${peer.uid} is not root` } }) + '\n');
      return;
    }
    let buf = '';
    s.setEncoding('utf8');
    s.on('error', () => s.destroy());
    s.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        s.end(JSON.stringify({ id: null, ok: false, error: { code: 'E_USAGE', message: 'request too large' } }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.dispatch(s, line, peer);
      }
    });
  }

  private async dispatch(s: Socket, line: string, peer: PeerCred): Promise<void> {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
    } catch (e) {
      s.write(JSON.stringify({ id: null, ok: false, error: { code: 'E_USAGE', message: `bad request: ${(e as Error).message}` } }) + '\n');
      return;
    }
    const id = req.id ?? null;
    if (typeof req.cmd !== 'string' || (req.args !== undefined && (typeof req.args !== 'object' || req.args === null))) {
      s.write(JSON.stringify({ id, ok: false, error: { code: 'E_USAGE', message: 'request needs "cmd" (string) and optional "args" (object)' } }) + '\n');
      return;
    }
    try {
      const result = await this.handler(req.cmd, (req.args ?? {}) as Record<string, unknown>, peer);
      if (!s.destroyed) s.write(JSON.stringify({ id, ok: true, result }, bigintJson) + '\n');
    } catch (e) {
      const err = e instanceof AuditmuxError ? { code: e.code, message: e.message, exitCode: e.exitCode } : { code: 'E_INTERNAL', message: String((e as Error)?.message ?? e) };
      if (!s.destroyed) s.write(JSON.stringify({ id, ok: false, error: err }) + '\n');
    }
  }

  async close(): Promise<void> {
    const srv = this.server;
    this.server = null;
    if (!srv) return;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

export function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** Error returned by the daemon over the control socket. */
export class ControlError extends AuditmuxError {}

/** One request to a running daemon; rejects with the daemon's error code and exit code. */
export function controlRequest(path: string, cmd: string, args: Record<string, unknown> = {}, timeoutMs = 10000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new IoError(`control socket ${path}: no answer in ${timeoutMs} ms`, 'E_TIMEOUT'));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ id: 1, cmd, args }, bigintJson) + '\n'));
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      let res: { ok: boolean; result?: unknown; error?: { code: string; message: string; exitCode?: number } };
      try {
        res = JSON.parse(buf.slice(0, nl));
      } catch {
        reject(new IoError(`control socket ${path}: malformed answer`));
        return;
      }
      if (res.ok) resolve(res.result);
      else if (res.error?.code === 'E_PERM') reject(new PermissionError(res.error.message));
      else reject(new ControlError(res.error?.code ?? 'E_CONTROL', res.error?.message ?? 'request failed', res.error?.exitCode ?? 1));
    });
    s.on('close', () => {
      clearTimeout(timer);
      // Resolved already when an answer came; otherwise the daemon hung up without one.
      reject(new IoError(`control socket ${path}: the daemon closed the connection without an answer`, 'E_CONTROL_CLOSED'));
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is the auditmux daemon running?)' : e.code === 'EACCES' ? ' (root only)' : '';
      reject(new IoError(`control socket ${path}: ${e.code ?? e.message}${hint}`, e.code === 'EACCES' ? 'E_PERM' : 'E_NO_DAEMON'));
    });
  });
}
