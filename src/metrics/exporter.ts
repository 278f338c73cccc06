// Metrics exporters: an HTTP listener answering GET /metrics (bounded, local by default) or a periodic textfile.
import { Buffer } from 'node:buffer';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { IoError } from '../errors';
import type { MetricsExporter, MetricsSource, MetricsSpec } from './contract';
import { CONTENT_TYPE, renderExposition } from './exposition';
import { writeTextfileAtomic } from './textfile';

/**
 * Scrapers are few: past this many open connections, the oldest is closed for the new one. Refusing the newest let any
 * local user hold all of them with requests sent a byte at a time, so no scrape ever got through.
 */
export const MAX_CONNECTIONS = 16;

/** GET /metrics on one address; every other method or path gets an error status, never a body from the source. */
export class HttpMetricsExporter implements MetricsExporter {
  private server: http.Server | null = null;

  constructor(
    private readonly listen: { host: string; port: number },
    private readonly source: MetricsSource,
    private readonly onError?: (e: Error) => void,
  ) {}

  async start(): Promise<void> {
    // Timeouts checked every second (Node's default, 30 s, let a trickled request live 35 s).
    const s = http.createServer(
      { maxHeaderSize: 8192, requestTimeout: 5000, headersTimeout: 5000, connectionsCheckingInterval: 1000 },
      (req, res) => void this.answer(req, res),
    );
    // Sockets by age. One leaves the set as soon as it is closed here, not only at its 'close' event (emitted later):
    // a trim never counts, or closes again, a socket it already closed.
    const open = new Set<Socket>();
    s.on('connection', (sock) => {
      open.add(sock);
      sock.once('close', () => open.delete(sock));
      for (const old of open) {
        if (open.size <= MAX_CONNECTIONS) break;
        open.delete(old);
        old.destroy();
      }
    });
    // And a hard cap that holds whatever the above does: past it Node closes new connections at once.
    s.maxConnections = MAX_CONNECTIONS * 4;
    s.keepAliveTimeout = 5000;
    // A scraper that stalls mid-request holds a socket only this long.
    s.setTimeout(10000, (sock) => sock.destroy());
    await new Promise<void>((resolve, reject) => {
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new IoError(`metrics cannot listen on ${this.listen.host}:${this.listen.port} (${e.code})`, 'E_IO', {
            cause: e,
          }),
        ),
      );
      s.listen(this.listen.port, this.listen.host, () => resolve());
    });
    // Past the listen, an accept that fails (EMFILE: the process out of descriptors) is an 'error' on the server:
    // without a listener it would end the daemon. The listener keeps accepting once descriptors are free again; the
    // failure is told at most every 10 s (accepts fail in a burst).
    let told = Number.NEGATIVE_INFINITY;
    s.on('error', (e) => {
      const now = Date.now();
      if (now - told < 10_000) return;
      told = now;
      this.onError?.(new IoError(`metrics listener: ${e.message}`, 'E_IO', { cause: e }));
    });
    this.server = s;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // The request body (if any) is never read: a client cannot make the daemon buffer it.
    req.resume();
    const url = (req.url ?? '').split('?')[0];
    if (url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
      return;
    }
    let body: string;
    try {
      body = renderExposition(await this.source.metrics());
    } catch {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  address(): { host: string; port: number } | null {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a ? { host: a.address, port: a.port } : null;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** Rewrites a textfile every `intervalMs` and once more at stop (node_exporter's textfile collector reads it). */
export class TextfileMetricsExporter implements MetricsExporter {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly file: string,
    private readonly source: MetricsSource,
    private readonly onError: (e: Error) => void,
    private readonly intervalMs = 1000,
  ) {}

  private writing = false;

  async write(): Promise<void> {
    // One write at a time: a slow source (a kernel status request) never stacks up writers.
    if (this.writing) return;
    this.writing = true;
    try {
      writeTextfileAtomic(this.file, renderExposition(await this.source.metrics()));
    } catch (e) {
      this.onError(e as Error);
    } finally {
      this.writing = false;
    }
  }

  async start(): Promise<void> {
    await this.write();
    this.timer = setInterval(() => void this.write(), this.intervalMs);
    this.timer.unref();
  }

  address(): null {
    return null;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.write();
  }
}

export function createMetricsExporter(
  spec: MetricsSpec,
  source: MetricsSource,
  onError: (e: Error) => void,
): MetricsExporter {
  return 'listen' in spec
    ? new HttpMetricsExporter(spec.listen, source, onError)
    : new TextfileMetricsExporter(spec.textfile, source, onError);
}
