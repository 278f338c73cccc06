// The daemon's control socket: a root-only unix socket, peer credentials checked, one JSON request per line.
import { Buffer } from 'node:buffer';
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { dirname, isAbsolute } from 'node:path';
import { AuditmuxError, IoError, PermissionError } from '../errors';
import { native } from '../kernel/native';
import { checkDirSafe } from '../safefs';
import { pathTrustProblem } from '../trust';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export type ControlHandler = (cmd: string, args: Record<string, unknown>, peer: PeerCred) => Promise<unknown>;

function socketFd(s: Socket): number {
  // net.Socket hides the fd; the pipe handle exposes it on Linux, and SO_PEERCRED needs it.
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new IoError('control socket: cannot read the peer file descriptor');
  return fd;
}

export function peerOf(s: Socket): PeerCred {
  return native().peerCredentials(socketFd(s));
}

/** A parsed request line, or the error to answer it with. */
export type ParsedRequest =
  | { ok: true; id: unknown; cmd: string; args: Record<string, unknown> }
  | { ok: false; id: unknown; error: { code: string; message: string } };

/**
 * One request line of the JSON-lines protocol: `{"id": any, "cmd": string, "args"?: object}`. Never throws; bad
 * input gets an E_USAGE answer. `line` excludes the newline.
 */
export function parseRequest(line: string): ParsedRequest {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { ok: false, id: null, error: { code: 'E_USAGE', message: `bad request: ${(e as Error).message}` } };
  }
  if (typeof req !== 'object' || req === null || Array.isArray(req)) {
    return { ok: false, id: null, error: { code: 'E_USAGE', message: 'bad request: not a JSON object' } };
  }
  const r = req as { id?: unknown; cmd?: unknown; args?: unknown };
  // The id is echoed in the answer: only a scalar, so no client value can make the answer fail to serialise (an id
  // nested thousands deep overflowed JSON.stringify's stack and left the connection busy, unanswered, forever).
  const id = typeof r.id === 'string' || (typeof r.id === 'number' && Number.isFinite(r.id)) ? r.id : null;
  if (
    typeof r.cmd !== 'string' ||
    (r.args !== undefined && (typeof r.args !== 'object' || r.args === null || Array.isArray(r.args)))
  ) {
    return {
      ok: false,
      id,
      error: { code: 'E_USAGE', message: 'request needs "cmd" (string) and optional "args" (object)' },
    };
  }
  return { ok: true, id, cmd: r.cmd, args: (r.args ?? {}) as Record<string, unknown> };
}

/**
 * What one client may cost the daemon. The socket is root-only, so these guard against a buggy or hung orchestrator
 * rather than an unprivileged attacker: whatever a client does, it holds at most one request in progress, one
 * request line and about one reply of memory, and it cannot keep the daemon from stopping.
 */
export interface ControlLimits {
  /** Open connections at once; one more gets an E_BUSY answer and is closed. */
  maxConnections: number;
  /** Longest request line in bytes; a longer one gets an error and the connection is closed. */
  maxRequestBytes: number;
  /** Reply bytes a client may leave unread; past this it is closed (one reply bigger than this closes it too). */
  maxQueuedBytes: number;
  /** A connection with no traffic for this long, and no request in progress, is closed. */
  idleMs: number;
  /** At shutdown, requests in progress get this long to answer before every connection is destroyed. */
  closeGraceMs: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  maxConnections: 64,
  maxRequestBytes: 64 << 10,
  maxQueuedBytes: 4 << 20,
  idleMs: 30_000,
  closeGraceMs: 1000,
};

export interface ControlStats {
  connections: number;
  accepted: number;
  requests: number;
  refusedBusy: number;
  closedIdle: number;
  closedOversize: number;
  closedBacklog: number;
  closedShutdown: number;
  /** Accepts that failed after the start (EMFILE: the daemon out of descriptors); the socket keeps listening. */
  acceptErrors: number;
  /** Largest backlog of written but unread reply bytes seen on one connection. */
  maxQueuedBytes: number;
}

function errorLine(id: unknown, code: string, message: string): string {
  return JSON.stringify({ id, ok: false, error: { code, message } }) + '\n';
}

/**
 * One client. Requests are handled one at a time, in order: while one is in progress, or while its reply is still
 * unread past the socket's high-water mark, nothing more is read from the client (backpressure), so a client that
 * pipelines requests and never reads the answers stalls itself, not the daemon's memory.
 */
class Connection {
  private buf: Buffer = Buffer.alloc(0);
  busy = false;
  private closing = false;
  private readEnded = false;

  constructor(
    readonly s: Socket,
    private readonly peer: PeerCred,
    private readonly server: ControlServer,
    private readonly limits: ControlLimits,
    private readonly stats: ControlStats,
    private readonly handler: ControlHandler,
  ) {
    s.setTimeout(limits.idleMs);
    s.on('timeout', () => {
      if (this.busy) return;
      this.stats.closedIdle++;
      s.destroy();
    });
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    // The server allows half-open sockets: a client may send its requests and shut its side before reading answers.
    s.on('end', () => {
      this.readEnded = true;
      this.pump();
    });
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.pump();
  }

  /** Starts the next complete request, or resumes reading when there is none. */
  private pump(): void {
    if (this.busy || this.closing || this.s.destroyed) return;
    const nl = this.buf.indexOf(10);
    const lineLen = nl < 0 ? this.buf.length : nl;
    if (lineLen > this.limits.maxRequestBytes) {
      this.fail(errorLine(null, 'E_USAGE', `request too large (over ${this.limits.maxRequestBytes} bytes)`));
      this.stats.closedOversize++;
      return;
    }
    if (nl < 0) {
      // The client is done sending and every complete request is answered (a last unterminated line is dropped).
      if (this.readEnded) {
        this.closing = true;
        this.s.end(() => this.s.destroy());
        this.s.setTimeout(this.limits.idleMs);
        return;
      }
      this.s.resume();
      return;
    }
    const line = this.buf.subarray(0, nl).toString('utf8');
    this.buf = this.buf.subarray(nl + 1);
    this.busy = true;
    this.s.pause();
    // A request in progress is not idleness: reload or aux-add may take a while.
    this.s.setTimeout(0);
    this.stats.requests++;
    // answer() catches what the handler throws; this catches what is left (an answer that cannot be serialised), so
    // the client always gets a reply and its connection leaves the busy state.
    void this.answer(line).then(
      (reply) => this.reply(reply),
      (e: unknown) => this.reply(errorLine(null, 'E_INTERNAL', `cannot answer: ${String((e as Error)?.message ?? e)}`)),
    );
  }

  private async answer(line: string): Promise<string> {
    const req = parseRequest(line);
    if (!req.ok) return JSON.stringify({ id: req.id, ok: false, error: req.error }) + '\n';
    try {
      const result = await this.handler(req.cmd, req.args, this.peer);
      return JSON.stringify({ id: req.id, ok: true, result }, bigintJson) + '\n';
    } catch (e) {
      const err =
        e instanceof AuditmuxError
          ? { code: e.code, message: e.message, exitCode: e.exitCode }
          : { code: 'E_INTERNAL', message: String((e as Error)?.message ?? e) };
      return JSON.stringify({ id: req.id, ok: false, error: err }) + '\n';
    }
  }

  private reply(text: string): void {
    this.busy = false;
    const s = this.s;
    if (s.destroyed) return;
    s.write(text);
    const queued = s.writableLength;
    if (queued > this.stats.maxQueuedBytes) this.stats.maxQueuedBytes = queued;
    if (queued > this.limits.maxQueuedBytes) {
      this.stats.closedBacklog++;
      s.destroy();
      return;
    }
    if (this.closing) {
      this.server.closeOne(this);
      return;
    }
    s.setTimeout(this.limits.idleMs);
    if (s.writableNeedDrain) s.once('drain', () => this.pump());
    else this.pump();
  }

  /**
   * Answers with `text` and closes. What the client still sends is read and dropped (at most a few request sizes)
   * until it closes too: destroying at once would make its pending writes fail and lose it the answer.
   */
  private fail(text: string): void {
    this.closing = true;
    this.buf = Buffer.alloc(0);
    const s = this.s;
    let dropped = 0;
    s.removeAllListeners('data');
    s.on('data', (c: Buffer) => {
      dropped += c.length;
      if (dropped > 4 * this.limits.maxRequestBytes) s.destroy();
    });
    s.resume();
    s.end(text);
    s.setTimeout(this.limits.idleMs);
  }

  /** Shutdown: stop taking requests; an idle connection goes at once, a busy one after its answer. */
  shutdown(): void {
    this.closing = true;
    this.buf = Buffer.alloc(0);
    this.s.pause();
    if (!this.busy) this.server.closeOne(this);
  }
}

export class ControlServer {
  private server: Server | null = null;
  private readonly conns = new Set<Connection>();
  private readonly limits: ControlLimits;
  private readonly counters: ControlStats = {
    connections: 0,
    accepted: 0,
    requests: 0,
    refusedBusy: 0,
    closedIdle: 0,
    closedOversize: 0,
    closedBacklog: 0,
    closedShutdown: 0,
    acceptErrors: 0,
    maxQueuedBytes: 0,
  };
  /** uid allowed besides root (tests run as root; this stays 0 in production). */
  constructor(
    private readonly path: string,
    private readonly handler: ControlHandler,
    private readonly allowedUid = 0,
    limits: Partial<ControlLimits> = {},
  ) {
    this.limits = { ...DEFAULT_CONTROL_LIMITS, ...limits };
  }

  stats(): ControlStats {
    return { ...this.counters, connections: this.conns.size };
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    // In a directory others can write, our socket could be swapped for theirs between bind and a root client's connect.
    checkDirSafe(dirname(this.path), { owners: [0, process.geteuid?.() ?? 0], what: 'control socket directory' });
    // And every directory above it: whoever can write one of them can move the socket's directory away and put their
    // own in its place, with a socket root's CLI then connects to and obeys (status, aux add answers).
    if (isAbsolute(this.path)) {
      const problem = pathTrustProblem(dirname(dirname(this.path)), { dir: true });
      if (problem)
        throw new IoError(
          `control socket directory ${dirname(this.path)}: ${problem}; others could swap it (refused)`,
          'E_UNSAFE_DIR',
        );
    }
    try {
      const st = lstatSync(this.path);
      if (!st.isSocket())
        throw new IoError(`control socket path ${this.path} exists and is not a socket`, 'E_CONTROL_PATH');
      unlinkSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const server = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The mode is set before anyone can connect: umask covers the window between bind and chmod.
      const old = process.umask(0o177);
      server.listen(this.path, () => {
        process.umask(old);
        server.off('error', reject);
        // An accept that fails later is an 'error' on the server: without a listener it would end the daemon.
        server.on('error', () => this.counters.acceptErrors++);
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
    s.on('error', () => s.destroy());
    // Answered and closed; what a refused client sends is dropped unread, and it has closeGraceMs to go.
    const refuse = (code: string, message: string): void => {
      s.resume();
      s.end(errorLine(null, code, message));
      setTimeout(() => s.destroy(), this.limits.closeGraceMs).unref();
    };
    if (!this.server) return refuse('E_BUSY', 'control socket: the daemon is stopping');
    if (this.conns.size >= this.limits.maxConnections) {
      this.counters.refusedBusy++;
      return refuse('E_BUSY', `control socket: too many connections (${this.limits.maxConnections})`);
    }
    let peer: PeerCred;
    try {
      peer = peerOf(s);
    } catch (e) {
      // Without credentials there is no way to know who asks: answer nothing but the reason.
      return refuse('E_PERM', `control socket: ${(e as Error).message}`);
    }
    if (peer.uid !== 0 && peer.uid !== this.allowedUid)
      return refuse('E_PERM', `control socket: uid ${peer.uid} is not root`);
    this.counters.accepted++;
    const c = new Connection(s, peer, this, this.limits, this.counters, this.handler);
    this.conns.add(c);
    s.once('close', () => this.conns.delete(c));
  }

  /** Ends a connection, destroying it if the client does not take the end within the grace period. */
  closeOne(c: Connection): void {
    this.counters.closedShutdown++;
    c.s.end(() => c.s.destroy());
    setTimeout(() => c.s.destroy(), this.limits.closeGraceMs).unref();
  }

  /**
   * Stops listening and closes every connection: idle ones at once, ones with a request in progress after its answer,
   * and after closeGraceMs whatever is left is destroyed. An idle or stuck client can never hold up shutdown.
   */
  async close(): Promise<void> {
    const srv = this.server;
    this.server = null;
    if (!srv) return;
    const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
    for (const c of this.conns) c.shutdown();
    const grace = setTimeout(() => {
      for (const c of this.conns) c.s.destroy();
    }, this.limits.closeGraceMs);
    await closed;
    clearTimeout(grace);
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
export function controlRequest(
  path: string,
  cmd: string,
  args: Record<string, unknown> = {},
  timeoutMs = 10000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new IoError(`control socket ${path}: no answer in ${timeoutMs} ms`, 'E_TIMEOUT'));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => {
      // Whoever listens gets the request (an OCI hook's container state, aux add's paths) and is believed: only the
      // daemon's uid, root (or this client's own), may. The daemon checks its directories when it binds; a socket
      // put at the path by anyone else (a directory made writable later) is refused here before a byte is sent.
      let uid = -1;
      try {
        uid = peerOf(s).uid;
      } catch {
        // no credentials: refused below
      }
      const me = process.geteuid?.() ?? 0;
      if (uid !== 0 && uid !== me) {
        clearTimeout(timer);
        s.destroy();
        reject(
          new IoError(
            `control socket ${path}: the listener runs as uid ${uid}, not root; nothing was sent`,
            'E_UNTRUSTED_PEER',
          ),
        );
        return;
      }
      s.write(JSON.stringify({ id: 1, cmd, args }, bigintJson) + '\n');
    });
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
      else
        reject(
          new ControlError(
            res.error?.code ?? 'E_CONTROL',
            res.error?.message ?? 'request failed',
            res.error?.exitCode ?? 1,
          ),
        );
    });
    s.on('close', () => {
      clearTimeout(timer);
      // Resolved already when an answer came; otherwise the daemon hung up without one.
      reject(
        new IoError(`control socket ${path}: the daemon closed the connection without an answer`, 'E_CONTROL_CLOSED'),
      );
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? ' (is the auditmux daemon running?)'
          : e.code === 'EACCES'
            ? ' (root only)'
            : '';
      reject(
        new IoError(
          `control socket ${path}: ${e.code ?? e.message}${hint}`,
          e.code === 'EACCES' ? 'E_PERM' : 'E_NO_DAEMON',
        ),
      );
    });
  });
}
