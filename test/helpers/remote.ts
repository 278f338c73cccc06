// Shared pieces of the aggregator tests (unit and kernel tier): an aggregator that collects what it accepts, an
// auditmux remote client aimed at it, loopback TCP/TLS connections to it, a wait for a connection the listener closes.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { RemoteOutput } from '../../src/output/remote/client';
import { startAggregator, type Aggregator, type AggregatorOptions } from '../../src/output/remote/aggregator';
import type { ListenConfig, RemoteOutputSpec } from '../../src/config/schema';
import { captureDiag } from './peers';

/** An aggregator listening as `cfg` says whose sink collects every line it accepts, as latin1 text, in `got`. */
export async function collectingAggregator(
  cfg: ListenConfig,
  opts: AggregatorOptions = {},
): Promise<{ agg: Aggregator; got: string[] }> {
  const got: string[] = [];
  const agg = await startAggregator(cfg, (l) => got.push(l.toString('latin1')), opts);
  return { agg, got };
}

/**
 * An auditmux remote output (node c1, RAW, spooled under spoolDir) sending to 127.0.0.1:port; `over` changes the
 * timing and window a test depends on. Network failures are ignored: the tests watch the stats, not the diagnostics.
 */
export function remoteClient(port: number, spoolDir: string, over: Partial<RemoteOutputSpec> = {}): RemoteOutput {
  return new RemoteOutput(
    {
      type: 'remote',
      name: 'r',
      format: 'RAW',
      spool: { dir: spoolDir, maxBytes: 1 << 24, fullAction: 'syslog', fullExe: null },
      host: '127.0.0.1',
      port,
      heartbeatTimeout: 0,
      ackTimeoutMs: 5000,
      networkRetryMs: 100,
      networkFailureAction: 'ignore',
      networkFailureExe: null,
      window: 4,
      ...over,
    },
    { nodeName: 'c1', contidKernel: false, diag: captureDiag() },
  );
}

/** A plain TCP connection to 127.0.0.1:port, resolved once connected. */
export function connectTcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** A TLS connection to 127.0.0.1:port trusting the CA file `ca`, with the client certificate `client` if given. */
export function connectTls(port: number, ca: string, client?: { cert: string; key: string }): tls.TLSSocket {
  return tls.connect({
    host: '127.0.0.1',
    port,
    ca: fs.readFileSync(ca),
    ...(client ? { cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) } : {}),
  });
}

/** Resolves once `s` is closed (at once if it already is): how a test sees the listener refuse or drop it. */
export function closed(s: net.Socket): Promise<void> {
  return new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));
}
